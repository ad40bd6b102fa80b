//! States from which every string of text stays alive.
//!
//! A string body's state usually takes the string plan ([`super::plan::Plan::Text`]) because
//! the grammar recognises it ([`crate::automaton::Grammar::string_position`]). Some bodies
//! are not a plain chain of character gadgets: a pattern product's states (the keys of
//! `patternProperties`, a `pattern` beside `maxLength`), a key that must differ from the
//! declared names while it still shares a prefix with one. Many of those states still let
//! every string of text characters through, where the run plans would walk the trie for
//! several milliseconds. This search finds them on the DFA itself: a breadth-first search
//! over the states text reaches, paired with where the text is inside a UTF-8 character,
//! up to the longest token. It is bounded in work (NFA states stepped, DFA states met), not
//! time, and a state it cannot settle within that keeps its usual plan.

use regex_automata::hybrid::LazyStateID;

use super::automaton::{ByteClass, Cleared, Engine, StateMap, TokenAutomaton};
use crate::bytes::{json_text_first_bytes, ByteSet, Utf8, UTF8_STATES};

/// The work one search may do, in NFA states stepped: each DFA transition it asks for may
/// step the whole NFA set of a state (the current state's set stands for all of them). Past
/// it, the state keeps its usual plan, having spent a fraction of what that plan costs.
pub(super) const MAX_TEXT_WORK: usize = 1 << 16;

/// A state whose NFA set is larger is not searched: each transition steps the whole set, and a
/// search can cost more than the walk it saves (one that passed over a 953-state set took
/// 14 ms, where the walk takes 4 to 7).
pub(super) const MAX_TEXT_SET: usize = 256;

/// Before the search, one text byte is read again and again until a state recurs: a body that
/// counts characters (a `pattern` beside `maxLength`) meets a new state at every one, and is
/// given up on after this many and one more, instead of at [`MAX_TEXT_STATES`].
pub(super) const COUNT_PROBE: usize = 8;

/// DFA states one search may meet. A string body whose text states close up within this
/// many (a pattern's `.*`, a key past the declared names) passes; one that counts characters
/// meets a new state per character, and stops here early.
pub(super) const MAX_TEXT_STATES: usize = 48;

/// For each place inside a character, the bytes a search must try there: one per DFA byte
/// class and place it leads to (the DFA cannot tell a class's bytes apart, and UTF-8 only
/// by where they lead).
#[derive(Debug)]
pub(super) struct TextSteps {
    steps: [Vec<(u8, Utf8)>; UTF8_STATES],
    /// [`json_text_first_bytes`]: a state that does not read them all is no candidate.
    first: ByteSet,
}

impl TextSteps {
    pub(super) fn new(classes: &[ByteClass]) -> Self {
        let steps = Utf8::ALL.map(|at| {
            let mut out: Vec<(u8, Utf8)> = Vec::new();
            for class in classes {
                let mut seen: Vec<Utf8> = Vec::new();
                for byte in class.bytes.iter() {
                    if let Some(to) = at.next(byte) {
                        if !seen.contains(&to) {
                            seen.push(to);
                            out.push((byte, to));
                        }
                    }
                }
            }
            out
        });
        Self { steps, first: json_text_first_bytes() }
    }
}

impl TokenAutomaton {
    /// Whether every string of text (whole characters, and a last one cut short) of at most
    /// the longest token's bytes keeps `state` alive: then the state takes every text token
    /// whole, as a free string does. `live` is what the state's NFA set reads, and
    /// `nfa_states` that set's size. `Ok(false)` also when the answer would cost too much: a
    /// set past [`MAX_TEXT_SET`], a probe that finds the body counting ([`COUNT_PROBE`]), a
    /// search past [`MAX_TEXT_WORK`] or [`MAX_TEXT_STATES`].
    pub(super) fn text_universal(
        &self,
        engine: &mut Engine,
        state: LazyStateID,
        live: &ByteSet,
        nfa_states: usize,
    ) -> Result<bool, Cleared> {
        let text = &self.text_steps;
        if !text.first.is_subset(live) || nfa_states > MAX_TEXT_SET {
            return Ok(false);
        }
        let max_steps = MAX_TEXT_WORK / nfa_states.max(1);
        let longest = self.vocab.trie().max_token_len();
        // The probe: a letter (or the first text byte) again and again.
        let boundary = &text.steps[Utf8::Boundary as usize];
        let Some(&(probe, _)) = boundary.iter().find(|(b, _)| b.is_ascii_alphanumeric()).or(boundary.first()) else { return Ok(false) };
        let mut chain = vec![state];
        loop {
            let Some(next) = self.next(engine, *chain.last().expect("the state"), probe)? else { return Ok(false) };
            if chain.contains(&next) {
                break;
            }
            if chain.len() > COUNT_PROBE {
                return Ok(false);
            }
            chain.push(next);
        }
        // Each (state, place) once, at the least depth it is met: from there the search
        // already covers every string the deeper meetings would.
        let mut seen: StateMap<u8> = StateMap::default();
        seen.insert(state, 1 << Utf8::Boundary as u8);
        let mut level = vec![(state, Utf8::Boundary)];
        let mut next_level = Vec::new();
        let mut steps = 0;
        for _ in 0..longest {
            for &(at, place) in &level {
                for &(byte, to) in &text.steps[place as usize] {
                    steps += 1;
                    if steps > max_steps {
                        return Ok(false);
                    }
                    let Some(next) = self.next(engine, at, byte)? else { return Ok(false) };
                    if seen.len() >= MAX_TEXT_STATES && !seen.contains_key(&next) {
                        return Ok(false);
                    }
                    let bits = seen.entry(next).or_insert(0);
                    if *bits & (1 << to as u8) == 0 {
                        *bits |= 1 << to as u8;
                        next_level.push((next, to));
                    }
                }
            }
            if next_level.is_empty() {
                break;
            }
            std::mem::swap(&mut level, &mut next_level);
            next_level.clear();
        }
        Ok(true)
    }
}
