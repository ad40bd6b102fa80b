//! Strings that a Thompson NFA cannot build by concatenation alone: the
//! union of some regexes, minus a finite set of words (property names that
//! are declared, so must not recur as pattern keys), within a window of
//! character counts (`minLength`/`maxLength` beside a `pattern`).
//!
//! Each regex is determinised lazily; the product of those DFAs with a trie
//! of the excluded words and a character counter is explored in full, then
//! emitted into the builder, JSON-escaping bytes as a string body needs.
//! States from which no accepting state can be reached are not emitted, so
//! the NFA stays free of dead ends.

use std::collections::HashMap;

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::hybrid::LazyStateID;
use regex_automata::nfa::thompson;
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;
use regex_automata::Anchored;
use regex_syntax::hir::Hir;

use super::{Built, Lowerer};
use crate::bytes::{json_escapes, ByteSet, Utf8, UTF8_STATES};
use crate::schema::SchemaError;

/// Product states beyond this are refused as too large.
const MAX_STATES: usize = 20_000;
/// Lazy-DFA cache per regex; a cache clear would invalidate state ids.
const CACHE_BYTES: usize = 16 << 20;
/// Trie position of a string that has left every excluded word.
const OUTSIDE: usize = usize::MAX;

/// What the product accepts: strings of the union of `regexes` (each a
/// whole-string HIR), not in `excluded`, with `min..=max` characters.
pub(crate) struct Product<'a> {
    pub regexes: &'a [Hir],
    pub excluded: &'a [&'a str],
    pub min_chars: usize,
    pub max_chars: Option<usize>,
}

/// A trie over the UTF-8 bytes of the excluded words.
struct Trie {
    children: Vec<HashMap<u8, usize>>,
    word_end: Vec<bool>,
}

impl Trie {
    fn new(words: &[&str]) -> Self {
        let mut trie = Self { children: vec![HashMap::new()], word_end: vec![false] };
        for word in words {
            let mut at = 0;
            for &byte in word.as_bytes() {
                at = match trie.children[at].get(&byte) {
                    Some(&next) => next,
                    None => {
                        trie.children.push(HashMap::new());
                        trie.word_end.push(false);
                        let next = trie.children.len() - 1;
                        trie.children[at].insert(byte, next);
                        next
                    }
                };
            }
            trie.word_end[at] = true;
        }
        trie
    }

    fn step(&self, at: usize, byte: u8) -> usize {
        if at == OUTSIDE {
            return OUTSIDE;
        }
        self.children[at].get(&byte).copied().unwrap_or(OUTSIDE)
    }

    fn is_word(&self, at: usize) -> bool {
        at != OUTSIDE && self.word_end[at]
    }
}

/// One state of the product: a DFA state per regex, a trie position and a
/// character count (saturated at the minimum when there is no maximum).
type Key = (Vec<LazyStateID>, usize, usize);

impl Lowerer<'_> {
    /// Lowers a [`Product`]; `accept(mask)` gives the continuation after a
    /// string that matches exactly the regexes in `mask` (bit `i`: regex `i`).
    pub(crate) fn product(&mut self, spec: &Product, accept: &mut dyn FnMut(&mut Self, u64) -> Built) -> Built {
        let too_large = |l: &Self, why: String| SchemaError::too_large(&l.at, why);
        if spec.regexes.is_empty() || spec.regexes.len() > 64 {
            return Err(too_large(self, format!("{} regexes in one product", spec.regexes.len())));
        }
        let mut dfas: Vec<(DFA, Cache)> = Vec::new();
        let mut start = Vec::new();
        for hir in spec.regexes {
            let nfa = thompson::Compiler::new().build_from_hir(hir).map_err(|e| too_large(self, e.to_string()))?;
            let dfa = crate::automaton::lazy_dfa(nfa, CACHE_BYTES).map_err(|e| too_large(self, e.to_string()))?;
            let mut cache = dfa.create_cache();
            let s =
                dfa.start_state(&mut cache, &start::Config::new().anchored(Anchored::Yes)).map_err(|e| too_large(self, e.to_string()))?;
            start.push(s);
            dfas.push((dfa, cache));
        }
        let trie = Trie::new(spec.excluded);
        let cap = spec.max_chars.unwrap_or(spec.min_chars);

        // Explore every reachable product state.
        let mut keys: Vec<Key> = vec![(start, 0, 0)];
        let mut index: HashMap<Key, usize> = HashMap::from([(keys[0].clone(), 0)]);
        let mut edges: Vec<Vec<(u8, usize)>> = Vec::new();
        let mut masks: Vec<u64> = Vec::new();
        let mut i = 0;
        while i < keys.len() {
            self.spend(1)?;
            let (states, at, count) = keys[i].clone();
            let mut mask = 0u64;
            for (k, ((dfa, cache), &s)) in dfas.iter_mut().zip(&states).enumerate() {
                if dfa.next_eoi_state(cache, s).is_ok_and(|e| e.is_match()) {
                    mask |= 1 << k;
                }
            }
            let accepting = mask != 0 && !trie.is_word(at) && count >= spec.min_chars;
            masks.push(if accepting { mask } else { 0 });
            let mut out = Vec::new();
            for byte in 0..=255u8 {
                let lead = !(0x80..0xC0).contains(&byte);
                let count = if lead { count + 1 } else { count };
                if spec.max_chars.is_some_and(|m| count > m) {
                    continue;
                }
                let mut next = Vec::with_capacity(states.len());
                let mut alive = false;
                for ((dfa, cache), &s) in dfas.iter_mut().zip(&states) {
                    let t = dfa.next_state(cache, s, byte).map_err(|e| SchemaError::too_large(&self.at, e.to_string()))?;
                    alive |= !t.is_dead() && !t.is_quit();
                    next.push(t);
                }
                if !alive {
                    continue;
                }
                let key = (next, trie.step(at, byte), count.min(cap.max(spec.min_chars)));
                let target = match index.get(&key) {
                    Some(&t) => t,
                    None => {
                        if keys.len() >= MAX_STATES {
                            return Err(too_large(self, format!("a pattern needs more than {MAX_STATES} automaton states")));
                        }
                        self.check()?;
                        keys.push(key.clone());
                        index.insert(key, keys.len() - 1);
                        keys.len() - 1
                    }
                };
                out.push((byte, target));
            }
            edges.push(out);
            i += 1;
        }
        if dfas.iter().any(|(_, cache)| cache.clear_count() > 0) {
            return Err(too_large(self, "a pattern's automaton outgrew its cache".into()));
        }

        // Continuations per accepting mask, then the states that reach one.
        let mut continuation: HashMap<u64, Option<StateID>> = HashMap::new();
        let mut finals: Vec<Option<StateID>> = vec![None; keys.len()];
        for (s, &mask) in masks.iter().enumerate() {
            if mask == 0 {
                continue;
            }
            let next = match continuation.get(&mask) {
                Some(&next) => next,
                None => {
                    let next = accept(self, mask)?;
                    continuation.insert(mask, next);
                    next
                }
            };
            finals[s] = next;
        }
        let mut live: Vec<bool> = finals.iter().map(Option::is_some).collect();
        let mut reverse: Vec<Vec<usize>> = vec![Vec::new(); keys.len()];
        for (s, out) in edges.iter().enumerate() {
            for &(_, t) in out {
                reverse[t].push(s);
            }
        }
        let mut stack: Vec<usize> = (0..keys.len()).filter(|&s| live[s]).collect();
        while let Some(t) = stack.pop() {
            for &s in &reverse[t] {
                if !live[s] {
                    live[s] = true;
                    stack.push(s);
                }
            }
        }
        if !live[0] {
            return Ok(None);
        }

        let room = text_rooms(&edges, &live);

        // Emit: one union per live state, then its transitions.
        let mut ids: Vec<Option<StateID>> = vec![None; keys.len()];
        for s in 0..keys.len() {
            if live[s] {
                ids[s] = Some(self.open_union()?);
            }
        }
        for s in 0..keys.len() {
            let Some(u) = ids[s] else { continue };
            if let Some(next) = finals[s] {
                self.patch(u, next)?;
            }
            let out: Vec<(u8, StateID)> = edges[s].iter().filter_map(|&(b, t)| ids[t].map(|id| (b, id))).collect();
            // A state no text kills marks its first range as free: the range's state is in a
            // DFA state's NFA set exactly when this state is. Below a maximum, a state marks
            // every range with what text it surely takes and the most it may, so that a set
            // whose every text reader is marked knows when text kills it.
            let mut free = live[s] && room[s] == u32::MAX;
            let rooms = spec.max_chars.filter(|_| live[s] && !free).map(|max| (room[s], max.saturating_sub(keys[s].2) as u32));
            let mut j = 0;
            while j < out.len() {
                let (byte, target) = out[j];
                if crate::bytes::json_escapes(byte) {
                    let escaped = serde_json::to_string(&(byte as char).to_string()).expect("string serialises");
                    let alt = self.lit(&escaped.as_bytes()[1..escaped.len() - 1], target)?;
                    self.patch(u, alt)?;
                    j += 1;
                    continue;
                }
                // A run of consecutive plain bytes with one target is one range.
                let mut end = j;
                while end + 1 < out.len()
                    && out[end + 1].1 == target
                    && out[end + 1].0 == out[end].0 + 1
                    && !crate::bytes::json_escapes(out[end + 1].0)
                {
                    end += 1;
                }
                let alt = self.range(byte, out[end].0, target)?;
                self.patch(u, alt)?;
                if std::mem::take(&mut free) {
                    self.free_roots.push((alt, vec![(byte, out[end].0)]));
                }
                if let Some(rooms) = rooms {
                    self.room_roots.push(((alt, vec![(byte, out[end].0)]), rooms));
                }
                j = end + 1;
            }
        }
        Ok(ids[0])
    }
}

/// For each live product state, how many characters of text it surely takes: every string of
/// text that starts at most that many characters (a last one may be cut short) keeps it alive
/// (`u32::MAX`: any string). A state at a place inside a character that lacks an edge for a
/// byte text may take there fails; the room is the fewest characters text starts on its way to
/// a failure (a 0-1 breadth-first search back from the failures: a lead byte starts one, a
/// continuation byte none). Only the place at a character boundary is returned.
fn text_rooms(edges: &[Vec<(u8, usize)>], live: &[bool]) -> Vec<u32> {
    let n = edges.len();
    let need: [ByteSet; UTF8_STATES] = Utf8::ALL.map(|place| (0..=255u8).filter(|&b| place.next(b).is_some()).collect());
    let at = |s: usize, place: Utf8| s * UTF8_STATES + place as usize;
    // One more than the room, so that a failure inside a character (no room even for the
    // character under way) is 0.
    let mut dist = vec![u32::MAX; n * UTF8_STATES];
    let mut preds: Vec<Vec<(usize, u8)>> = vec![Vec::new(); n];
    let mut queue = std::collections::VecDeque::new();
    for s in (0..n).filter(|&s| live[s]) {
        let mut has = ByteSet::EMPTY;
        for &(b, t) in &edges[s] {
            if live[t] && !json_escapes(b) {
                has.insert(b);
                preds[t].push((s, b));
            }
        }
        for place in Utf8::ALL {
            if !need[place as usize].is_subset(&has) {
                let d = u32::from(place == Utf8::Boundary);
                dist[at(s, place)] = d;
                if d == 0 {
                    queue.push_front((s, place));
                } else {
                    queue.push_back((s, place));
                }
            }
        }
    }
    while let Some((t, reached)) = queue.pop_front() {
        let d = dist[at(t, reached)];
        for &(s, b) in &preds[t] {
            for place in Utf8::ALL {
                if place.next(b) != Some(reached) {
                    continue;
                }
                let step = u32::from(place == Utf8::Boundary);
                if d + step < dist[at(s, place)] {
                    dist[at(s, place)] = d + step;
                    if step == 0 {
                        queue.push_front((s, place));
                    } else {
                        queue.push_back((s, place));
                    }
                }
            }
        }
    }
    (0..n)
        .map(|s| match dist[at(s, Utf8::Boundary)] {
            _ if !live[s] => 0,
            u32::MAX => u32::MAX,
            d => d - 1,
        })
        .collect()
}
