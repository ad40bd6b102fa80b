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
use crate::bytes::{json_escapes, json_text_first_bytes, ByteSet};

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

/// Where a text string stands inside a UTF-8 character: at a boundary, or which bytes may
/// continue it (RFC 3629's table: no overlong forms, no surrogates, nothing past U+10FFFF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Utf8 {
    Boundary,
    /// This many continuation bytes (80..=BF) still to come.
    Tail1,
    Tail2,
    Tail3,
    /// After E0: A0..=BF, then one more.
    E0,
    /// After ED: 80..=9F, then one more.
    Ed,
    /// After F0: 90..=BF, then two more.
    F0,
    /// After F4: 80..=8F, then two more.
    F4,
}

const UTF8_STATES: usize = 8;

impl Utf8 {
    const ALL: [Utf8; UTF8_STATES] = [Utf8::Boundary, Utf8::Tail1, Utf8::Tail2, Utf8::Tail3, Utf8::E0, Utf8::Ed, Utf8::F0, Utf8::F4];

    /// Where `byte` leads, or `None` when text cannot hold it here (a quote, a backslash or
    /// a control byte, which a string writes escaped, or broken UTF-8).
    fn next(self, byte: u8) -> Option<Utf8> {
        let tail = |n: u8| match n {
            0 => Utf8::Boundary,
            1 => Utf8::Tail1,
            2 => Utf8::Tail2,
            _ => Utf8::Tail3,
        };
        match self {
            Utf8::Boundary => match byte {
                0x00..=0x7F if json_escapes(byte) => None,
                0x00..=0x7F => Some(Utf8::Boundary),
                0xC2..=0xDF => Some(Utf8::Tail1),
                0xE0 => Some(Utf8::E0),
                0xED => Some(Utf8::Ed),
                0xE1..=0xEF => Some(Utf8::Tail2),
                0xF0 => Some(Utf8::F0),
                0xF1..=0xF3 => Some(Utf8::Tail3),
                0xF4 => Some(Utf8::F4),
                _ => None,
            },
            Utf8::Tail1 | Utf8::Tail2 | Utf8::Tail3 => (0x80..=0xBF).contains(&byte).then(|| tail(self as u8 - 1)),
            Utf8::E0 => (0xA0..=0xBF).contains(&byte).then_some(Utf8::Tail1),
            Utf8::Ed => (0x80..=0x9F).contains(&byte).then_some(Utf8::Tail1),
            Utf8::F0 => (0x90..=0xBF).contains(&byte).then_some(Utf8::Tail2),
            Utf8::F4 => (0x80..=0x8F).contains(&byte).then_some(Utf8::Tail2),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The search's UTF-8 places accept exactly the prefixes of valid UTF-8 that a JSON string
    /// writes as they are (what the vocabulary counts as text), over every 1 to 3 byte string
    /// and a sample of 4 byte ones.
    #[test]
    fn the_places_accept_what_the_vocabulary_calls_text() {
        let text = |bytes: &[u8]| {
            !bytes.iter().any(|&b| json_escapes(b))
                && match std::str::from_utf8(bytes) {
                    Ok(_) => true,
                    Err(e) => e.error_len().is_none(),
                }
        };
        let walks = |bytes: &[u8]| bytes.iter().try_fold(Utf8::Boundary, |at, &b| at.next(b)).is_some();
        for a in 0..=255u8 {
            assert_eq!(walks(&[a]), text(&[a]), "{a:02x}");
            for b in 0..=255u8 {
                assert_eq!(walks(&[a, b]), text(&[a, b]), "{a:02x} {b:02x}");
                for c in (0..=255u8).step_by(7) {
                    assert_eq!(walks(&[a, b, c]), text(&[a, b, c]), "{a:02x} {b:02x} {c:02x}");
                }
            }
        }
        for bytes in [&[0xF0u8, 0x90, 0x80, 0x80][..], &[0xF4, 0x8F, 0xBF, 0xBF], &[0xF4, 0x90, 0x80, 0x80], &[0xF0, 0x8F, 0xBF, 0xBF]] {
            assert_eq!(walks(bytes), text(bytes), "{bytes:02x?}");
        }
    }
}
