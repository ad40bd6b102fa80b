//! IR → Thompson NFA, built directly with `regex_automata`'s NFA builder.
//!
//! Construction runs backwards in continuation-passing style: every emitter
//! takes the state that follows it (`next`) and returns its own start state.
//! Two constructs that share a continuation can therefore share states, which
//! keeps the NFA linear where a regex string would not be:
//! - a separated list `[a, a, a]` holds one copy of `a` (a regex needs two);
//! - optional properties in schema order share their suffix, so `n` optional
//!   properties cost `O(n)` states, not `O(n²)`.
//!
//! `None` stands for the empty language; it propagates upwards so that the
//! NFA never holds a state from which no match is reachable. That keeps the
//! determinised automaton honest: a live state can always be completed.

use std::collections::HashMap;
use std::time::Instant;

use regex_automata::nfa::thompson::{Builder, Transition};
use regex_automata::util::primitives::StateID;
use regex_syntax::hir::{Class, Hir, HirKind};
use regex_syntax::utf8::Utf8Sequences;
use serde_json::Value;

use super::{decimal, regex};

mod contains;
mod product;
use crate::schema::{
    ArrayRule, CompileOptions, Ir, Node, NodeId, NumberRule, ObjectRule, SchemaError, StringRule, Typed,
};

type Built = Result<Option<StateID>, SchemaError>;

/// `maxItems` above this (and above `minItems`) is lowered as this many.
const MAX_UNROLL: usize = 128;
/// `maxLength` above this (and above `minLength`) is lowered as this many.
const MAX_UNROLL_CHARS: usize = 1024;
/// The same for strings that are also bound by a `pattern` or `format`,
/// whose lengths are counted in a product automaton.
const MAX_PRODUCT_CHARS: usize = 256;
/// The most members an object's states count (see [`Lowerer::object`]).
const MAX_COUNTED_PROPERTIES: usize = 32;
/// How deeply [`Lowerer::node`] and free values may nest (nodes inside
/// nodes, recursive `$ref`s unrolled) before the schema is refused as too
/// deep. A level uses less stack than a level of the reader; the compiler's
/// own thread holds the deepest lowering many times over.
const MAX_NESTING: usize = 256;

pub(crate) struct Lowerer<'a> {
    pub(crate) b: Builder,
    ir: &'a Ir,
    opts: &'a CompileOptions,
    ref_depth: HashMap<NodeId, usize>,
    deadline: Instant,
    states: usize,
    /// The pointer of the node being lowered, for errors.
    at: String,
    /// Levels of [`Lowerer::node`] and free values under way.
    nesting: usize,
}

/// The encodings of one character of a set inside a JSON string (UTF-8
/// sequences and `serde_json`'s escapes) as a deterministic byte trie whose
/// equal suffixes are shared: every node's byte ranges are disjoint, so it is
/// one NFA state (`Sparse`). Nodes come children first; the last is the root.
/// A transition's target is a node index, or `None` for the character's end.
pub(crate) struct CharTrie {
    pub(crate) nodes: Vec<Vec<TrieEdge>>,
}

/// A [`CharTrie`] transition: a byte range and the node it leads to (`None`: the end).
pub(crate) type TrieEdge = (u8, u8, Option<usize>);

/// Character encodings as sequences of byte ranges.
type Encodings = Vec<Vec<(u8, u8)>>;

/// The trie of any character: what [`super::strings`] looks for in a built NFA.
pub(crate) fn any_char_trie() -> std::sync::Arc<CharTrie> {
    CharTrie::for_set(&[('\0', char::MAX)])
}

/// Character sets whose [`CharTrie`] a process keeps (a schema's strings use a few).
const MAX_CHAR_TRIES: usize = 4096;

impl CharTrie {
    /// The trie of a character set, built once per process: every compile uses the one
    /// for any character, and a bounded string emits one per position.
    fn for_set(ranges: &[(char, char)]) -> std::sync::Arc<Self> {
        type Tries = HashMap<Vec<(char, char)>, std::sync::Arc<CharTrie>>;
        static TRIES: std::sync::OnceLock<std::sync::Mutex<Tries>> = std::sync::OnceLock::new();
        let mut tries = TRIES.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        if let Some(trie) = tries.get(ranges) {
            return trie.clone();
        }
        if tries.len() >= MAX_CHAR_TRIES {
            tries.clear();
        }
        let trie = std::sync::Arc::new(Self::json(ranges));
        tries.insert(ranges.to_vec(), trie.clone());
        trie
    }

    fn json(ranges: &[(char, char)]) -> Self {
        let mut seqs: Encodings = Vec::new();
        for &(lo, hi) in ranges {
            // Literal part: U+0020..=U+10FFFF without '"' and '\\'.
            for (a, b) in [(' ', '!'), ('#', '['), (']', char::MAX)] {
                let (l, h) = (lo.max(a), hi.min(b));
                if l <= h {
                    seqs.extend(Utf8Sequences::new(l, h).map(|seq| seq.as_slice().iter().map(|r| (r.start, r.end)).collect::<Vec<_>>()));
                }
            }
            // Escaped part.
            for special in (0u8..0x80).filter(|&b| crate::bytes::json_escapes(b)).map(char::from) {
                if lo <= special && special <= hi {
                    let escaped = serde_json::to_string(&special.to_string()).expect("string serialises");
                    seqs.push(escaped.as_bytes()[1..escaped.len() - 1].iter().map(|&b| (b, b)).collect());
                }
            }
        }
        let mut trie = Self { nodes: Vec::new() };
        if !seqs.is_empty() {
            trie.node(seqs, &mut HashMap::new());
        }
        trie
    }

    /// The node for a set of non-empty sequences (the encodings are prefix-free, so none
    /// ends where another goes on); `None` when every sequence has ended.
    fn node(&mut self, mut seqs: Encodings, memo: &mut HashMap<Encodings, Option<usize>>) -> Option<usize> {
        seqs.sort();
        seqs.dedup();
        if seqs.iter().all(Vec::is_empty) {
            return None;
        }
        debug_assert!(seqs.iter().all(|s| !s.is_empty()), "character encodings are prefix-free");
        if let Some(&node) = memo.get(&seqs) {
            return node;
        }
        // Cut the byte space where any first range starts or ends.
        let mut cuts: Vec<u16> = seqs.iter().flat_map(|s| [s[0].0 as u16, s[0].1 as u16 + 1]).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut trans: Vec<TrieEdge> = Vec::new();
        for w in cuts.windows(2) {
            let (lo, hi) = (w[0] as u8, (w[1] - 1) as u8);
            let tails: Encodings = seqs.iter().filter(|s| s[0].0 <= lo && hi <= s[0].1).map(|s| s[1..].to_vec()).collect();
            if tails.is_empty() {
                continue;
            }
            let child = self.node(tails, memo);
            match trans.last_mut() {
                Some(t) if t.2 == child && t.1 as u16 + 1 == lo as u16 => t.1 = hi,
                _ => trans.push((lo, hi, child)),
            }
        }
        self.nodes.push(trans);
        let node = Some(self.nodes.len() - 1);
        memo.insert(seqs, node);
        node
    }
}

impl<'a> Lowerer<'a> {
    pub(crate) fn new(ir: &'a Ir, opts: &'a CompileOptions, deadline: Instant) -> Self {
        let mut b = Builder::new();
        b.set_utf8(false);
        Self { b, ir, opts, ref_depth: HashMap::new(), deadline, states: 0, at: String::new(), nesting: 0 }
    }

    fn check(&mut self) -> Result<(), SchemaError> {
        self.states += 1;
        if self.states > self.opts.max_nfa_states {
            return Err(SchemaError::too_large(&self.at, format!("the automaton needs more than {} NFA states", self.opts.max_nfa_states)));
        }
        if self.states % 4096 == 0 {
            self.check_deadline()?;
        }
        Ok(())
    }

    fn check_deadline(&self) -> Result<(), SchemaError> {
        if Instant::now() > self.deadline {
            return Err(SchemaError::too_large(&self.at, format!("compilation took longer than {} ms", self.opts.time_limit_ms)));
        }
        Ok(())
    }

    fn nfa_err(&self, e: impl std::fmt::Display) -> SchemaError {
        SchemaError::too_large(&self.at, format!("NFA construction failed: {e}"))
    }

    // ---- primitives ---------------------------------------------------

    fn range(&mut self, start: u8, end: u8, next: StateID) -> Result<StateID, SchemaError> {
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

    fn union_opt(&mut self, alts: Vec<Option<StateID>>) -> Built {
        let alts: Vec<StateID> = alts.into_iter().flatten().collect();
        if alts.is_empty() {
            return Ok(None);
        }
        self.union(alts).map(Some)
    }

    /// A union whose alternatives are filled in later (for loops).
    fn open_union(&mut self) -> Result<StateID, SchemaError> {
        self.check()?;
        self.b.add_union(vec![]).map_err(|e| self.nfa_err(e))
    }

    fn patch(&mut self, from: StateID, to: StateID) -> Result<(), SchemaError> {
        self.b.patch(from, to).map_err(|e| self.nfa_err(e))
    }

    /// Optional whitespace, when the options allow it.
    fn ws(&mut self, next: StateID) -> Result<StateID, SchemaError> {
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
    fn punct(&mut self, byte: u8, next: StateID) -> Result<StateID, SchemaError> {
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
        let trie = CharTrie::for_set(ranges);
        if trie.nodes.is_empty() {
            return Ok(None);
        }
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
        Ok(ids.last().copied())
    }

    fn any_char(&mut self, next: StateID) -> Built {
        self.json_char(&[('\0', char::MAX)], next)
    }

    /// `sub{min,max}` given an emitter for one `sub`.
    fn repeat(
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

    // ---- values -------------------------------------------------------

    /// Runs one level of the recursive lowering, refusing the schema when
    /// levels nest deeper than [`MAX_NESTING`] (the stack stays bounded).
    fn nested(&mut self, lower: impl FnOnce(&mut Self) -> Built) -> Built {
        if self.nesting >= MAX_NESTING {
            return Err(SchemaError::too_large(&self.at, format!("the automaton nests more than {MAX_NESTING} values deep")));
        }
        self.nesting += 1;
        let result = lower(self);
        self.nesting -= 1;
        result
    }

    /// Lowers a node; `None` when it admits nothing here.
    pub(crate) fn node(&mut self, id: NodeId, next: StateID) -> Built {
        let saved = std::mem::replace(&mut self.at, self.ir.pointer(id).to_string());
        let result = self.nested(|l| l.node_level(id, next));
        self.at = saved;
        result
    }

    fn node_level(&mut self, id: NodeId, next: StateID) -> Built {
        match self.ir.node(id) {
            Node::Any => self.any_value(self.opts.any_value_depth, next),
            Node::Never => Ok(None),
            Node::Literals(values) => {
                let mut alts = Vec::new();
                for v in values {
                    let text = canonical_literal(v);
                    alts.push(Some(self.lit(text.as_bytes(), next)?));
                }
                self.union_opt(alts)
            }
            Node::AnyOf(ids) => {
                let mut alts = Vec::new();
                for &branch in ids {
                    alts.push(self.node(branch, next)?);
                }
                self.union_opt(alts)
            }
            Node::Ref(target) => {
                let depth = self.ref_depth.entry(*target).or_insert(0);
                if *depth >= self.opts.max_recursion_depth {
                    Ok(None)
                } else {
                    *depth += 1;
                    let r = self.node(*target, next);
                    *self.ref_depth.get_mut(target).expect("entry exists") -= 1;
                    r
                }
            }
            Node::Typed(t) => self.typed(t, next),
        }
    }

    fn typed(&mut self, t: &Typed, next: StateID) -> Built {
        let mut alts = Vec::new();
        if t.null {
            alts.push(Some(self.lit(b"null", next)?));
        }
        if t.boolean {
            alts.push(Some(self.lit(b"true", next)?));
            alts.push(Some(self.lit(b"false", next)?));
        }
        if let Some(rule) = &t.number {
            alts.push(self.number(rule, next)?);
        }
        if let Some(rule) = &t.string {
            alts.push(self.string(rule, next)?);
        }
        if let Some(rule) = &t.array {
            alts.push(self.array(rule, next)?);
        }
        if let Some(rule) = &t.object {
            alts.push(self.object(rule, next)?);
        }
        self.union_opt(alts)
    }

    /// Any JSON value, nested at most `depth` levels.
    fn any_value(&mut self, depth: usize, next: StateID) -> Built {
        let mut alts = vec![
            Some(self.lit(b"null", next)?),
            Some(self.lit(b"true", next)?),
            Some(self.lit(b"false", next)?),
            self.number(&NumberRule::default(), next)?,
            self.string(&StringRule::default(), next)?,
        ];
        if depth > 0 {
            // Arrays and objects of free values, one level shallower.
            let close = self.punct(b']', next)?;
            let after = self.open_union()?;
            let item_then_after = self.nested(|l| l.any_value(depth - 1, after))?.expect("free values are never empty");
            let comma = self.punct(b',', item_then_after)?;
            self.patch(after, comma)?;
            self.patch(after, close)?;
            let first = self.union(vec![item_then_after, close])?;
            alts.push(Some(self.punct(b'[', first)?));

            let close = self.punct(b'}', next)?;
            let after = self.open_union()?;
            let value = self.nested(|l| l.any_value(depth - 1, after))?.expect("free values are never empty");
            let colon = self.punct(b':', value)?;
            let key = self.string(&StringRule::default(), colon)?.expect("free strings are never empty");
            let comma = self.punct(b',', key)?;
            self.patch(after, comma)?;
            self.patch(after, close)?;
            let first = self.union(vec![key, close])?;
            alts.push(Some(self.punct(b'{', first)?));
        }
        self.union_opt(alts)
    }

    fn number(&mut self, rule: &NumberRule, next: StateID) -> Built {
        if let Some(m) = rule.multiple_of {
            if rule.minimum.is_some() || rule.maximum.is_some() {
                return Err(SchemaError::inexact("multipleOf", &self.at, "`multipleOf` together with bounds is not supported"));
            }
            return self.multiple_of(m, next);
        }
        let bounded = rule.minimum.is_some() || rule.maximum.is_some();
        let source = if !bounded {
            if rule.integer {
                r"(?:0|-?[1-9][0-9]{0,17})".to_string()
            } else {
                r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]+)?(?:[eE][+-]?[1-9][0-9]?)?".to_string()
            }
        } else {
            let too_big = || SchemaError::inexact("minimum", &self.at, "bounds beyond ±1e30 are not supported");
            let lo = match rule.minimum {
                None => None,
                Some(b) => Some(integer_bound(b.value, b.exclusive, true).ok_or_else(too_big)?),
            };
            let hi = match rule.maximum {
                None => None,
                Some(b) => Some(integer_bound(b.value, b.exclusive, false).ok_or_else(too_big)?),
            };
            if rule.integer {
                let lo = lo.map(|(v, e)| if e { v + 1 } else { v });
                let hi = hi.map(|(v, e)| if e { v - 1 } else { v });
                match integer_range(lo, hi) {
                    Some(re) => re,
                    None => return Ok(None),
                }
            } else {
                let bound = |b: Option<crate::schema::Bound>| b.map(|b| (b.value, b.exclusive));
                match decimal::range(bound(rule.minimum), bound(rule.maximum)) {
                    Ok(Some(re)) => re,
                    Ok(None) => return Ok(None),
                    Err(why) => return Err(SchemaError::inexact("minimum", &self.at, why)),
                }
            }
        };
        let hir = regex::parse(&source).map_err(|e| SchemaError::too_large(&self.at, e))?;
        self.hir(&hir, next)
    }

    /// Integers that are multiples of `m`: a remainder automaton, unrolled to
    /// at most 18 digits.
    fn multiple_of(&mut self, m: u64, next: StateID) -> Built {
        const DIGITS: usize = 18;
        let m = m as usize;
        if m > 10_000 {
            return Err(SchemaError::inexact("multipleOf", &self.at, "divisors above 10,000 are not supported"));
        }
        // layer[r]: having read k digits with remainder r; built from the last layer back.
        let mut layer: Vec<Option<StateID>> = (0..m).map(|r| (r == 0).then_some(next)).collect();
        for _ in 1..DIGITS {
            let mut prev = Vec::with_capacity(m);
            for r in 0..m {
                let mut alts = Vec::new();
                if r == 0 {
                    alts.push(next);
                }
                for d in 0..10u8 {
                    if let Some(target) = layer[(r * 10 + d as usize) % m] {
                        alts.push(self.range(b'0' + d, b'0' + d, target)?);
                    }
                }
                prev.push(if alts.is_empty() { None } else { Some(self.union(alts)?) });
            }
            layer = prev;
        }
        let mut firsts = vec![self.lit(b"0", next)?];
        for d in 1..10u8 {
            if let Some(target) = layer[d as usize % m] {
                firsts.push(self.range(b'0' + d, b'0' + d, target)?);
            }
        }
        // "-0" is excluded: serde_json reads it as the float -0.0, which
        // draft-04 validators do not count as an integer.
        let nonzero = self.union(firsts[1..].to_vec())?;
        let minus = self.range(b'-', b'-', nonzero)?;
        let digits = self.union(firsts)?;
        Ok(Some(self.union(vec![digits, minus])?))
    }

    fn string(&mut self, rule: &StringRule, next: StateID) -> Built {
        let close = self.lit(b"\"", next)?;
        let body = match (&rule.format, &rule.pattern) {
            _ if !rule.excluded.is_empty() => {
                let mut regexes = Vec::new();
                if let Some(format) = rule.format {
                    regexes.push(regex::parse(format.regex()).map_err(|e| SchemaError::too_large(&self.at, e))?);
                }
                let pattern = rule.pattern.as_ref().map_or("", |(p, _)| p.as_str());
                let at = rule.pattern.as_ref().map_or(self.at.clone(), |(_, at)| at.clone());
                regexes.push(regex::full_match(pattern).map_err(|e| SchemaError::inexact("pattern", &at, e))?);
                self.string_product(rule, regexes, close)?
            }
            (None, None) => {
                // Very long bounded strings are unrolled only this far: a subset, so sound.
                let max = rule.max_len.map(|m| m.min(MAX_UNROLL_CHARS.max(rule.min_len)));
                self.repeat(rule.min_len, max, close, &mut |l, n| l.any_char(n))?
            }
            (Some(format), None) => {
                let hir = regex::parse(format.regex()).map_err(|e| SchemaError::too_large(&self.at, e))?;
                if self.lengths_implied(rule, regex::char_len(&hir)) {
                    self.hir(&hir, close)?
                } else {
                    self.string_product(rule, vec![hir], close)?
                }
            }
            (None, Some((pattern, at))) => {
                let source = regex::ecma_to_rust(pattern).map_err(|e| SchemaError::inexact("pattern", at, e))?;
                let hir = regex::parse(&source).map_err(|e| SchemaError::inexact("pattern", at, e))?;
                let branches = regex::branches(&hir).map_err(|e| SchemaError::inexact("pattern", at, e))?;
                let implied = branches.iter().all(|branch| {
                    let (lo, hi) = regex::char_len(&branch.hir);
                    let unanchored = !branch.anchored_start || !branch.anchored_end;
                    self.lengths_implied(rule, (lo, if unanchored { None } else { hi }))
                });
                if implied {
                    let mut alts = Vec::new();
                    for branch in branches {
                        let tail = if branch.anchored_end { close } else { self.any_chars(close)? };
                        let Some(mid) = self.hir(&branch.hir, tail)? else { continue };
                        alts.push(Some(if branch.anchored_start { mid } else { self.any_chars(mid)? }));
                    }
                    self.union_opt(alts)?
                } else {
                    let hir = regex::full_match(pattern).map_err(|e| SchemaError::inexact("pattern", at, e))?;
                    self.string_product(rule, vec![hir], close)?
                }
            }
            (Some(format), Some((pattern, at))) => {
                let format = regex::parse(format.regex()).map_err(|e| SchemaError::too_large(&self.at, e))?;
                let pattern = regex::full_match(pattern).map_err(|e| SchemaError::inexact("pattern", at, e))?;
                self.string_product(rule, vec![format, pattern], close)?
            }
        };
        match body {
            Some(body) => Ok(Some(self.lit(b"\"", body)?)),
            None => Ok(None),
        }
    }

    /// String bodies matching every one of `regexes` (whole-string HIRs)
    /// within the length bounds: an intersection, built as a product.
    /// `maxLength` above [`MAX_PRODUCT_CHARS`] (and `minLength`) is lowered
    /// as that many characters: a subset, so sound.
    fn string_product(&mut self, rule: &StringRule, regexes: Vec<Hir>, close: StateID) -> Built {
        let all = (1u64 << regexes.len()) - 1;
        let max_chars = rule.max_len.map(|m| m.min(MAX_PRODUCT_CHARS.max(rule.min_len)));
        let excluded: Vec<&str> = rule.excluded.iter().map(String::as_str).collect();
        let spec = product::Product { regexes: &regexes, excluded: &excluded, min_chars: rule.min_len, max_chars };
        self.product(&spec, &mut |_, mask| Ok((mask == all).then_some(close)))
    }

    fn any_chars(&mut self, next: StateID) -> Result<StateID, SchemaError> {
        Ok(self.repeat(0, None, next, &mut |l, n| l.any_char(n))?.expect("a star is never empty"))
    }

    /// Whether a regex matching `lo..=hi` characters already keeps to the
    /// rule's `minLength`/`maxLength`.
    fn lengths_implied(&self, rule: &StringRule, (lo, hi): (usize, Option<usize>)) -> bool {
        lo >= rule.min_len && rule.max_len.is_none_or(|max| hi.is_some_and(|h| h <= max))
    }

    /// Lowers a regex HIR; characters are JSON-escaped as inside a string.
    pub(crate) fn hir(&mut self, hir: &Hir, next: StateID) -> Built {
        match hir.kind() {
            HirKind::Empty => Ok(Some(next)),
            HirKind::Literal(lit) => {
                let text = String::from_utf8_lossy(&lit.0).into_owned();
                let mut state = next;
                for c in text.chars().rev() {
                    match self.json_char(&[(c, c)], state)? {
                        Some(s) => state = s,
                        None => return Ok(None),
                    }
                }
                Ok(Some(state))
            }
            HirKind::Class(Class::Unicode(class)) => {
                let ranges: Vec<(char, char)> = class.ranges().iter().map(|r| (r.start(), r.end())).collect();
                self.json_char(&ranges, next)
            }
            HirKind::Class(Class::Bytes(class)) => {
                let mut ranges = Vec::new();
                for r in class.ranges() {
                    if r.end() > 0x7f {
                        return Err(SchemaError::inexact("pattern", &self.at, "byte classes beyond ASCII are not supported"));
                    }
                    ranges.push((r.start() as char, r.end() as char));
                }
                self.json_char(&ranges, next)
            }
            HirKind::Look(_) => Err(SchemaError::inexact("pattern", &self.at, "anchors inside the pattern are not supported")),
            HirKind::Capture(c) => self.hir(&c.sub, next),
            HirKind::Repetition(r) => {
                let sub = (*r.sub).clone();
                self.repeat(r.min as usize, r.max.map(|m| m as usize), next, &mut |l, n| l.hir(&sub, n))
            }
            HirKind::Concat(parts) => {
                let mut state = next;
                for part in parts.iter().rev() {
                    match self.hir(part, state)? {
                        Some(s) => state = s,
                        None => return Ok(None),
                    }
                }
                Ok(Some(state))
            }
            HirKind::Alternation(alts) => {
                let mut out = Vec::new();
                for alt in alts {
                    out.push(self.hir(alt, next)?);
                }
                self.union_opt(out)
            }
        }
    }

    fn array(&mut self, rule: &ArrayRule, next: StateID) -> Built {
        if let Some(c) = &rule.contains {
            return self.array_counting(rule, c, next);
        }
        let close = self.punct(b']', next)?;
        let (min, max) = (rule.min_items, rule.max_items);
        let element = |i: usize| rule.prefix.get(i).copied().or(rule.items);
        // Past `uniform`, every position behaves alike and can loop.
        let uniform = rule.prefix.len().max(min);
        let items_limit = if rule.items.is_none() { Some(rule.prefix.len()) } else { None };
        let max = match (max, items_limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        // Very long bounded arrays are unrolled only this far: a subset, so sound.
        .map(|m| m.min(MAX_UNROLL.max(min)));
        if max.is_some_and(|m| m < min) {
            return Ok(None);
        }
        // after[k]: k elements emitted, expecting ',' or ']'.
        let last = max.unwrap_or(uniform.max(1));
        let mut states: Vec<Option<StateID>> = vec![None; last + 1];
        // For unbounded arrays, positions from `last` on loop through one
        // shared copy of `items` whose continuation is the loop itself.
        let mut shared: Option<(StateID, Option<StateID>)> = None;
        if max.is_none() {
            let u = self.open_union()?;
            let items = rule.items.expect("unbounded arrays have items");
            let elem = self.node(items, u)?;
            if let Some(elem) = elem {
                let comma = self.punct(b',', elem)?;
                self.patch(u, comma)?;
            }
            self.patch(u, close)?;
            states[last] = Some(u);
            shared = Some((u, elem));
        } else {
            states[last] = Some(close);
        }
        // An element at position k followed by state `then`, reusing the
        // shared copy when it is the same node with the same continuation.
        let element_then = |l: &mut Self, k: usize, then: StateID| -> Built {
            let Some(node) = element(k) else { return Ok(None) };
            if let Some((u, elem)) = shared {
                if then == u && Some(node) == rule.items {
                    return Ok(elem);
                }
            }
            l.node(node, then)
        };
        for k in (1..last).rev() {
            let mut alts = Vec::new();
            if k >= min {
                alts.push(Some(close));
            }
            if let Some(then) = states[k + 1] {
                if let Some(value) = element_then(self, k, then)? {
                    alts.push(Some(self.punct(b',', value)?));
                }
            }
            states[k] = self.union_opt(alts)?;
        }
        let mut firsts = Vec::new();
        if min == 0 {
            firsts.push(Some(close));
        }
        if last >= 1 {
            if let Some(then) = states[1] {
                firsts.push(element_then(self, 0, then)?);
            }
        }
        match self.union_opt(firsts)? {
            Some(first) => Ok(Some(self.punct(b'[', first)?)),
            None => Ok(None),
        }
    }

    /// An object. Members come in a fixed order (declared properties in
    /// schema order, then other keys), a subset of the orders JSON allows.
    ///
    /// The states are counted: `c` members emitted so far, for `c` up to
    /// `top` (`maxProperties`, or `minProperties` when there is no maximum,
    /// where the count stops). With neither, `top` is 1: "none yet" and
    /// "some", which decides whether a comma comes first. Keys other than
    /// the declared ones count once towards `minProperties` (they may
    /// repeat; a subset). The NFA holds about `top + 1` copies of each
    /// member, so `top` is bounded by
    /// [`MAX_COUNTED_PROPERTIES`]; a larger `maxProperties` is lowered as that
    /// bound (a subset: fewer members also satisfy it).
    fn object(&mut self, rule: &ObjectRule, next: StateID) -> Built {
        let min = rule.min_props;
        if min > MAX_COUNTED_PROPERTIES {
            return Err(SchemaError::too_large(&self.at, format!("`minProperties` above {MAX_COUNTED_PROPERTIES} is not supported")));
        }
        let (top, saturate) = match rule.max_props {
            Some(max) if max < min => return Ok(None),
            Some(max) => (max.min(MAX_COUNTED_PROPERTIES.max(min)), false),
            None => (min.max(1), true),
        };
        let succ = |c: usize| if c < top { Some(c + 1) } else if saturate { Some(top) } else { None };
        let close = self.punct(b'}', next)?;
        // After the declared properties, with `c` members emitted: `fresh[c]`
        // before any other key, `more[c]` after at least one. Other keys may
        // repeat (`{"x":1,"x":2}` has one member), so towards `minProperties`
        // they count once in all: only a declared count `c` with `c + 1 >=
        // min` may go on to other keys, and `more` may always close. Towards
        // `maxProperties` every key counts, which repeats only make safer.
        let mut fresh = Vec::with_capacity(top + 1);
        let mut more = Vec::with_capacity(top + 1);
        for c in 0..=top {
            let u = self.open_union()?;
            if c >= min {
                self.patch(u, close)?;
            }
            fresh.push(u);
            let u = self.open_union()?;
            self.patch(u, close)?;
            more.push(u);
        }
        // Whether `fresh[c]` leads anywhere (it closes, or takes another key).
        let mut live: Vec<bool> = (0..=top).map(|c| c >= min).collect();
        let declared: Vec<&str> = rule.properties.iter().map(|p| p.name.as_str()).collect();
        // The other keys and their values, by the count they lead to.
        let mut keys: HashMap<usize, Option<StateID>> = HashMap::new();
        for c in 0..=top {
            let Some(n) = succ(c) else { continue };
            let key = match keys.get(&n) {
                Some(&key) => key,
                None => {
                    let key = self.other_member(rule, &declared, more[n])?;
                    keys.insert(n, key);
                    key
                }
            };
            let Some(key) = key else { continue };
            let comma = self.punct(b',', key)?;
            self.patch(more[c], comma)?;
            if c + 1 >= min {
                self.patch(fresh[c], if c > 0 { comma } else { key })?;
                live[c] = true;
            }
        }
        // Declared properties from last to first.
        let mut states: Vec<Option<StateID>> = fresh.into_iter().zip(live).map(|(u, live)| live.then_some(u)).collect();
        for p in rule.properties.iter().rev() {
            let key = serde_json::to_string(&p.name).expect("string serialises");
            let mut members: HashMap<usize, Option<StateID>> = HashMap::new();
            let mut before = Vec::with_capacity(top + 1);
            for c in 0..=top {
                let member = match succ(c).and_then(|n| states[n].map(|s| (n, s))) {
                    None => None,
                    Some((n, after)) => match members.get(&n) {
                        Some(&m) => m,
                        None => {
                            let member = match self.node(p.node, after)? {
                                Some(value) => {
                                    let colon = self.punct(b':', value)?;
                                    Some(self.lit(key.as_bytes(), colon)?)
                                }
                                None => None,
                            };
                            members.insert(n, member);
                            member
                        }
                    },
                };
                let member = match member {
                    Some(m) if c > 0 => Some(self.punct(b',', m)?),
                    m => m,
                };
                before.push(if p.required { member } else { self.union_opt(vec![member, states[c]])? });
            }
            states = before;
        }
        match states[0] {
            Some(first) => Ok(Some(self.punct(b'{', first)?)),
            None => Ok(None),
        }
    }

    /// A key other than the declared names, its colon and its value, then
    /// `after`: keys of `patternProperties` when there are any (keys that
    /// match none would take `additionalProperties`, and leaving them out is
    /// a sound subset), else any other key with `additionalProperties`.
    fn other_member(&mut self, rule: &ObjectRule, declared: &[&str], after: StateID) -> Built {
        if !rule.patterns.is_empty() && rule.names.is_some() {
            return Err(SchemaError::inexact("propertyNames", &self.at, "`propertyNames` beside `patternProperties` is not supported"));
        }
        if !rule.patterns.is_empty() {
            let regexes = rule
                .patterns
                .iter()
                .map(|p| regex::full_match(&p.pattern).map_err(|e| SchemaError::inexact("patternProperties", &p.pointer, e)))
                .collect::<Result<Vec<_>, _>>()?;
            let spec = product::Product { regexes: &regexes, excluded: declared, min_chars: 0, max_chars: None };
            // A key that matches one pattern takes its schema; one that matches
            // several takes the intersection of all (a sound subset).
            let mut value_of = |l: &mut Self, mask: u64| -> Built {
                let node = match mask.count_ones() {
                    1 => Some(rule.patterns[mask.trailing_zeros() as usize].node),
                    _ => rule.patterns_all,
                };
                let Some(value) = node.map(|n| l.node(n, after)).transpose()?.flatten() else { return Ok(None) };
                let colon = l.punct(b':', value)?;
                Ok(Some(l.lit(b"\"", colon)?))
            };
            return match self.product(&spec, &mut value_of)? {
                Some(key) => Ok(Some(self.lit(b"\"", key)?)),
                None => Ok(None),
            };
        }
        let Some(additional) = rule.additional else { return Ok(None) };
        let Some(value) = self.node(additional, after)? else { return Ok(None) };
        let colon = self.punct(b':', value)?;
        if let Some(names) = &rule.names {
            // Keys are strings of `propertyNames` other than the declared names.
            let mut keys = names.clone();
            keys.excluded.extend(declared.iter().map(|d| d.to_string()));
            return self.string(&keys, colon);
        }
        let key_end = self.lit(b"\"", colon)?;
        match self.key_not_in(declared, key_end)? {
            Some(key) => Ok(Some(self.lit(b"\"", key)?)),
            None => Ok(None),
        }
    }

    /// Key bodies (without quotes) that differ from every name in `names`:
    /// the complement of a finite set, built over a character trie.
    fn key_not_in(&mut self, names: &[&str], next: StateID) -> Built {
        if names.is_empty() {
            return Ok(Some(self.any_chars(next)?));
        }
        let rest = self.any_chars(next)?;
        let words: Vec<Vec<char>> = names.iter().map(|n| n.chars().collect()).collect();
        self.trie_complement(&words, 0, next, rest)
    }

    /// Strings that, having matched a shared prefix of length `depth` of
    /// every word in `words`, do not complete to any of them.
    fn trie_complement(&mut self, words: &[Vec<char>], depth: usize, next: StateID, rest: StateID) -> Built {
        let mut alts = Vec::new();
        // Stop here, unless a word ends here.
        if !words.iter().any(|w| w.len() == depth) {
            alts.push(next);
        }
        let mut children: Vec<char> = words.iter().filter_map(|w| w.get(depth).copied()).collect();
        children.sort_unstable();
        children.dedup();
        // Diverge with a character no word continues with, then anything.
        let mut gaps = Vec::new();
        let mut from = '\0';
        for &c in &children {
            if c > from {
                gaps.push((from, prev_char(c)));
            }
            from = next_char(c);
        }
        if !children.contains(&char::MAX) {
            gaps.push((from, char::MAX));
        }
        let gaps: Vec<_> = gaps.into_iter().filter(|(a, b)| a <= b).collect();
        if let Some(s) = self.json_char(&gaps, rest)? {
            alts.push(s);
        }
        for c in children {
            let sub: Vec<Vec<char>> = words.iter().filter(|w| w.get(depth) == Some(&c)).cloned().collect();
            if let Some(after) = self.trie_complement(&sub, depth + 1, next, rest)? {
                if let Some(s) = self.json_char(&[(c, c)], after)? {
                    alts.push(s);
                }
            }
        }
        self.union_opt(alts.into_iter().map(Some).collect())
    }
}

fn prev_char(c: char) -> char {
    match c {
        '\u{E000}' => '\u{D7FF}',
        c => char::from_u32(c as u32 - 1).unwrap_or('\0'),
    }
}

fn next_char(c: char) -> char {
    match c {
        '\u{D7FF}' => '\u{E000}',
        char::MAX => char::MAX,
        c => char::from_u32(c as u32 + 1).unwrap_or(char::MAX),
    }
}

/// A bound rounded inwards to an integer: `(value, exclusive)`.
fn integer_bound(v: f64, exclusive: bool, is_min: bool) -> Option<(i128, bool)> {
    if !v.is_finite() || v.abs() > 1e30 {
        return None;
    }
    if v.fract() == 0.0 {
        return Some((v as i128, exclusive));
    }
    // Non-integer bound: the nearest integer inside the range, inclusive.
    // For integers this is exact; for decimals it admits a subset.
    Some(((if is_min { v.ceil() } else { v.floor() }) as i128, false))
}

/// Regex for integers in `[lo, hi]` (either side may be open).
fn integer_range(lo: Option<i128>, hi: Option<i128>) -> Option<String> {
    if let (Some(l), Some(h)) = (lo, hi) {
        if l > h {
            return None;
        }
    }
    let mut alts = Vec::new();
    // Non-negative part.
    if hi.is_none_or(|h| h >= 0) {
        let from = lo.map_or(0, |l| l.max(0)) as u128;
        alts.push(regex::uint_range(from, hi.map(|h| h as u128)));
    }
    // Negative part: -m with m in [max(1, -hi), -lo].
    if lo.is_none_or(|l| l < 0) {
        let from = hi.map_or(1, |h| (-h).max(1)) as u128;
        alts.push(format!("-{}", regex::uint_range(from, lo.map(|l| (-l) as u128))));
    }
    Some(format!("(?:{})", alts.join("|")))
}

/// The canonical text of a literal: compact `serde_json`, with integral
/// numbers written as integers.
pub(crate) fn canonical_literal(v: &Value) -> String {
    serde_json::to_string(&crate::automaton::canonical_value(v)).expect("values serialise")
}
