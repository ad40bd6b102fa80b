//! The NFA primitives every lowering builds from: byte ranges, literals,
//! unions (closed, and open ones patched later for loops), bounded and
//! unbounded repetition, optional whitespace, punctuation, and one JSON
//! character of a set (through its [`CharTrie`]).

use regex_automata::nfa::thompson::Transition;
use regex_automata::util::primitives::StateID;

use super::char_trie::CharTrie;
use super::{Built, Lowerer};
use crate::schema::SchemaError;

impl Lowerer<'_> {
    pub(super) fn range(&mut self, start: u8, end: u8, next: StateID) -> Result<StateID, SchemaError> {
        self.check()?;
        self.b.add_range(Transition { start, end, next }).map_err(|e| self.nfa_err(e))
    }

    pub(crate) fn lit(&mut self, bytes: &[u8], mut next: StateID) -> Result<StateID, SchemaError> {
        for &byte in bytes.iter().rev() {
            next = self.range(byte, byte, next)?;
        }
        Ok(next)
    }

    pub(crate) fn union(&mut self, alts: Vec<StateID>) -> Result<StateID, SchemaError> {
        if alts.len() == 1 {
            return Ok(alts[0]);
        }
        self.check()?;
        self.b.add_union(alts).map_err(|e| self.nfa_err(e))
    }

    /// One of several literal texts, then `next` (an enum's values, listed multiples).
    pub(super) fn literals<S: AsRef<[u8]>>(&mut self, texts: impl IntoIterator<Item = S>, next: StateID) -> Built {
        let mut alts = Vec::new();
        for text in texts {
            alts.push(Some(self.lit(text.as_ref(), next)?));
        }
        self.union_opt(alts)
    }

    pub(super) fn union_opt(&mut self, alts: Vec<Option<StateID>>) -> Built {
        let alts: Vec<StateID> = alts.into_iter().flatten().collect();
        if alts.is_empty() {
            return Ok(None);
        }
        self.union(alts).map(Some)
    }

    /// A union whose alternatives are filled in later (for loops).
    pub(super) fn open_union(&mut self) -> Result<StateID, SchemaError> {
        self.check()?;
        let u = self.b.add_union(vec![]).map_err(|e| self.nfa_err(e))?;
        self.open.insert(u, 0);
        Ok(u)
    }

    pub(super) fn patch(&mut self, from: StateID, to: StateID) -> Result<(), SchemaError> {
        if let Some(alternatives) = self.open.get_mut(&from) {
            *alternatives += 1;
        }
        self.b.patch(from, to).map_err(|e| self.nfa_err(e))
    }

    /// The open unions the NFA drops (those left with one alternative), by builder id.
    pub(crate) fn dropped_unions(&self) -> Vec<usize> {
        let mut dropped: Vec<usize> = self.open.iter().filter(|(_, &n)| n == 1).map(|(id, _)| id.as_usize()).collect();
        dropped.sort_unstable();
        dropped
    }

    /// Optional whitespace, when the options allow it.
    pub(super) fn ws(&mut self, next: StateID) -> Result<StateID, SchemaError> {
        let Some(max) = self.opts.whitespace else { return Ok(next) };
        let mut state = next;
        for _ in 0..max {
            let space = self.range(b' ', b' ', state)?;
            let newline = self.range(b'\n', b'\n', state)?;
            state = self.union(vec![next, space, newline])?;
        }
        Ok(state)
    }

    /// Punctuation with optional whitespace after it.
    pub(super) fn punct(&mut self, byte: u8, next: StateID) -> Result<StateID, SchemaError> {
        let after = self.ws(next)?;
        self.range(byte, byte, after)
    }

    /// One character of a set, as it appears inside a JSON string in
    /// canonical form (`serde_json`'s escaping).
    ///
    /// Its encodings (UTF-8 sequences and escapes) are emitted as one
    /// deterministic trie ([`CharTrie`], built once per set): the lazy DFA then
    /// keeps one NFA state per open character, where a union of the ~14
    /// encodings kept one per encoding, and each new DFA state inside a string
    /// costs that much less to determinise.
    pub(crate) fn json_char(&mut self, ranges: &[(char, char)], next: StateID) -> Built {
        Ok(self.json_char_root(ranges, next)?.map(|(root, _)| root))
    }

    /// [`Self::json_char`], and the byte ranges its root reads (to find the root again in
    /// the built NFA).
    pub(super) fn json_char_root(&mut self, ranges: &[(char, char)], next: StateID) -> Result<Option<super::Reads>, SchemaError> {
        let trie = CharTrie::for_set(ranges);
        let Some(last) = trie.nodes.last() else { return Ok(None) };
        let read: Vec<(u8, u8)> = last.iter().map(|&(start, end, _)| (start, end)).collect();
        let mut ids: Vec<StateID> = Vec::with_capacity(trie.nodes.len());
        for node in &trie.nodes {
            let target = |t: Option<usize>| t.map_or(next, |i| ids[i]);
            let state = match node.as_slice() {
                [(start, end, t)] => self.range(*start, *end, target(*t))?,
                many => {
                    let trans = many.iter().map(|&(start, end, t)| Transition { start, end, next: target(t) }).collect();
                    self.check()?;
                    self.b.add_sparse(trans).map_err(|e| self.nfa_err(e))?
                }
            };
            ids.push(state);
        }
        Ok(ids.last().map(|&root| (root, read)))
    }

    pub(super) fn any_char(&mut self, next: StateID) -> Built {
        self.json_char(&[('\0', char::MAX)], next)
    }

    /// `sub{min,max}` given an emitter for one `sub`.
    pub(super) fn repeat(
        &mut self,
        min: usize,
        max: Option<usize>,
        next: StateID,
        one: &mut dyn FnMut(&mut Self, StateID) -> Built,
    ) -> Built {
        let mut state = match max {
            None => {
                let u = self.open_union();
                let u = u?;
                match one(self, u)? {
                    Some(body) => {
                        self.patch(u, body)?;
                        self.patch(u, next)?;
                        u
                    }
                    None => {
                        self.patch(u, next)?;
                        if min > 0 {
                            return Ok(None);
                        }
                        u
                    }
                }
            }
            Some(max) => {
                if max < min {
                    return Ok(None);
                }
                let mut state = next;
                for _ in min..max {
                    match one(self, state)? {
                        Some(body) => state = self.union(vec![body, next])?,
                        None => break,
                    }
                }
                state
            }
        };
        for _ in 0..min {
            match one(self, state)? {
                Some(s) => state = s,
                None => return Ok(None),
            }
        }
        Ok(Some(state))
    }

    pub(super) fn any_chars(&mut self, next: StateID) -> Result<StateID, SchemaError> {
        Ok(self.repeat(0, None, next, &mut |l, n| l.any_char(n))?.expect("a star is never empty"))
    }
}
