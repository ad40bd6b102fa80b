//! Objects: declared properties in schema order, then other keys
//! (`patternProperties`, `additionalProperties`, `propertyNames`), with
//! states that count members for `minProperties`/`maxProperties`.

use std::collections::HashMap;

use regex_automata::util::primitives::StateID;

use super::super::regex;
use super::{product, Built, Lowerer};
use crate::schema::{ObjectRule, SchemaError};

/// The most members an object's states count (see [`Lowerer::object`]).
const MAX_COUNTED_PROPERTIES: usize = 32;

impl Lowerer<'_> {
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
    pub(super) fn object(&mut self, rule: &ObjectRule, next: StateID) -> Built {
        let min = rule.min_props;
        if min > MAX_COUNTED_PROPERTIES {
            return Err(SchemaError::too_large(&self.at, format!("`minProperties` above {MAX_COUNTED_PROPERTIES} is not supported")));
        }
        let (top, saturate) = match rule.max_props {
            Some(max) if max < min => return Ok(None),
            Some(max) => (max.min(MAX_COUNTED_PROPERTIES.max(min)), false),
            None => (min.max(1), true),
        };
        let succ = |c: usize| {
            if c < top {
                Some(c + 1)
            } else if saturate {
                Some(top)
            } else {
                None
            }
        };
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
    pub(super) fn other_member(&mut self, rule: &ObjectRule, declared: &[&str], after: StateID) -> Built {
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
    pub(super) fn key_not_in(&mut self, names: &[&str], next: StateID) -> Built {
        if names.is_empty() {
            return Ok(Some(self.any_chars(next)?));
        }
        let rest = self.any_chars(next)?;
        let words: Vec<Vec<char>> = names.iter().map(|n| n.chars().collect()).collect();
        self.trie_complement(&words, 0, next, rest)
    }

    /// Strings that, having matched a shared prefix of length `depth` of
    /// every word in `words`, do not complete to any of them.
    pub(super) fn trie_complement(&mut self, words: &[Vec<char>], depth: usize, next: StateID, rest: StateID) -> Built {
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
        if let Some((s, read)) = self.json_char_root(&gaps, rest)? {
            // From this node every string is a viable prefix: one that leaves the words goes on
            // through `rest`, one that follows a word can leave it at any character (a gap is
            // never empty). So a DFA state holding this root lets any text through.
            self.free_roots.push((s, read));
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
