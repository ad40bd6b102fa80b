//! How a state's mask is computed the first time it is visited: the plan for the state
//! (see the [module docs](super)), chosen in [`TokenAutomaton::info`], then the walk of the
//! token trie that finishes it.

use std::sync::{Arc, OnceLock};

use regex_automata::hybrid::LazyStateID;
use regex_automata::util::primitives::StateID;

use super::automaton::{Cleared, DfaStep, Engine, StateInfo, TokenAutomaton, MAX_CACHED_STATES};
use super::guided::MAX_GUIDED_SET;
use crate::bytes::ByteSet;
use crate::vocab::{RunSplit, TokenSet, TokenTrie};

/// A state that surely takes some characters of text steps its longer text tokens one by one
/// ([`Plan::Text`]) when there are at most this many; more, and it keeps its usual plan.
pub(super) const MAX_LONGER_TEXT: usize = 2048;

/// A state that reads at most this many bytes is walked without looking for a run.
pub(super) const FEW_LIVE_BYTES: u32 = 16;

/// A run of a state (see [`TokenAutomaton::run_bytes`]).
pub(super) struct Run {
    pub(super) bytes: ByteSet,
    pub(super) len: usize,
    /// No byte of the set is alive after `len` of them.
    pub(super) closed: bool,
    /// Set when `bytes` lead one step to a state that loops on this larger set, which
    /// is then the run (see [`Vocabulary::run_tokens_headed`]); `bytes` is the head. With
    /// the loop's split, which has a rest trie.
    pub(super) then_loop: Option<(ByteSet, Arc<RunSplit>)>,
}

/// One walk that finishes a mask: a token trie, the first bytes to walk, and a run the
/// walk may take whole (see [`TokenTrie::walk_runs`]).
pub(super) struct Walk<'t> {
    pub(super) trie: &'t TokenTrie,
    pub(super) first: ByteSet,
    pub(super) run_bytes: ByteSet,
    pub(super) run: usize,
}

impl<'t> Walk<'t> {
    pub(super) fn of(trie: &'t TokenTrie, first: ByteSet) -> Self {
        Self { trie, first, run_bytes: ByteSet::EMPTY, run: 0 }
    }
}

/// How a state's first mask is made: one of five plans, chosen in one place
/// ([`TokenAutomaton::plan`]) and carried out in [`TokenAutomaton::info`].
pub(super) enum Plan {
    /// A string body at a character boundary with `room` characters left: its text tokens
    /// of at most `room` characters are taken whole, the others walked. Also a state with
    /// no such room from which every string of text stays alive
    /// ([`TokenAutomaton::text_universal`]), with `room` `usize::MAX`. With `longer`, `room`
    /// is only what the state surely takes (a pattern product that counts characters): the
    /// text tokens longer than that, up to the most it may take (`None`: no bound), are
    /// stepped one by one.
    Text { room: usize, longer: Option<Option<usize>> },
    /// A state that reads only a few bytes, with a small NFA state set: the walk of their
    /// subtrees, led by the NFA's live bytes at each node (see [`super::guided`]).
    Guided,
    /// A state that reads only a few bytes, with a large NFA state set: the walk of their
    /// subtrees is the mask.
    Walk,
    /// Head bytes into a state that loops on `looped`: the loop's split supplies the
    /// tokens that start with a head byte.
    Headed { head: ByteSet, looped: ByteSet, split: Arc<RunSplit> },
    /// A run: the tokens it accepts whole come from the vocabulary's split for it, and
    /// only the rest is walked.
    Run(Run),
}

impl TokenAutomaton {
    /// Computes (or fetches) what is known of a state, given its NFA state set, the bytes
    /// that set reads, and its room when it is a string body at a character boundary.
    pub(super) fn info(
        &self,
        engine: &mut Engine,
        state: LazyStateID,
        set: &[StateID],
        live: &ByteSet,
        room: Option<usize>,
        sure: Option<(usize, Option<usize>)>,
    ) -> Result<Arc<StateInfo>, Cleared> {
        if let Some(info) = engine.states.get(&state) {
            return Ok(info.clone());
        }
        if engine.states.len() >= MAX_CACHED_STATES {
            engine.states.clear();
            engine.far.clear();
        }
        match self.plan(engine, state, set.len(), live, room, sure)? {
            Plan::Text { room, longer } => self.info_text(engine, state, live, room, longer),
            Plan::Guided => self.info_guided(engine, state, set, live),
            Plan::Walk => self.info_walked(engine, state, live),
            Plan::Headed { head, looped, split } => self.info_headed(engine, state, &head, &looped, &split, live),
            Plan::Run(run) => self.info_run(engine, state, &run, live),
        }
    }

    /// Chooses how a state's first mask is made: a string body by its room, a state with
    /// few live bytes by a walk (led by the NFA where its set of `nfa_states` is small),
    /// otherwise by its run (which may head into a loop).
    pub(super) fn plan(
        &self,
        engine: &mut Engine,
        state: LazyStateID,
        nfa_states: usize,
        live: &ByteSet,
        room: Option<usize>,
        sure: Option<(usize, Option<usize>)>,
    ) -> Result<Plan, Cleared> {
        if let Some(room) = room {
            return Ok(Plan::Text { room, longer: None });
        }
        if let Some((sure, most)) = sure.filter(|&(sure, most)| self.vocab.string_chars().count_between(sure, most) <= MAX_LONGER_TEXT) {
            return Ok(Plan::Text { room: sure, longer: Some(most) });
        }
        if self.text_universal(engine, state, live, nfa_states)? {
            return Ok(Plan::Text { room: usize::MAX, longer: None });
        }
        if live.len() <= FEW_LIVE_BYTES {
            return Ok(if nfa_states <= MAX_GUIDED_SET { Plan::Guided } else { Plan::Walk });
        }
        let mut run = self.run_bytes(engine, state, live)?;
        Ok(match run.then_loop.take() {
            Some((looped, split)) => Plan::Headed { head: run.bytes, looped, split },
            None => Plan::Run(run),
        })
    }

    /// [`info`](Self::info) for a run. The tokens a run accepts whole are the same for
    /// every state with that run: fetch them, then walk only what lies outside the run.
    pub(super) fn info_run(&self, engine: &mut Engine, state: LazyStateID, run: &Run, live: &ByteSet) -> Result<Arc<StateInfo>, Cleared> {
        let split = self.vocab.run_split(&run.bytes, run.len, run.closed);
        let mask = TokenSet::from_words(&split.run_tokens, self.vocab.len());
        let walk = match &split.rest {
            Some(rest) => Walk::of(rest, *live),
            None => Walk { trie: self.vocab.trie(), first: *live, run_bytes: run.bytes, run: split.run },
        };
        self.walked(engine, state, mask, &[walk])
    }

    /// [`info`](Self::info) for a state whose `head` bytes lead to a state that loops on
    /// `looped`: the tokens of the loop's split that start with a head byte are taken
    /// whole; the loop's rest, and every token that starts with a loop byte outside the
    /// head, are walked.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn info_headed(
        &self,
        engine: &mut Engine,
        state: LazyStateID,
        head: &ByteSet,
        looped: &ByteSet,
        split: &RunSplit,
        live: &ByteSet,
    ) -> Result<Arc<StateInfo>, Cleared> {
        let Some(rest) = &split.rest else { unreachable!("run_bytes keeps only a loop whose split has a rest") };
        let mask = TokenSet::from_words(&self.vocab.run_tokens_headed(split, looped, head), self.vocab.len());
        let walked = (*looped - *head) & *live;
        let others = *live - walked;
        self.walked(engine, state, mask, &[Walk::of(rest, others), Walk::of(self.vocab.trie(), walked)])
    }

    /// [`info`](Self::info) for a string body at a character boundary with `room`
    /// characters left ([`Grammar::string_position`]; `usize::MAX` for a free string):
    /// the text tokens (plain bytes and UTF-8 text) of at most `room` characters are
    /// taken whole, the longer ones are not (they would overflow the string), and the
    /// tokens with a quote, backslash, control byte or broken UTF-8 are walked. No run is
    /// looked for, so no DFA state ahead is determinised for it.
    pub(super) fn info_text(
        &self,
        engine: &mut Engine,
        state: LazyStateID,
        live: &ByteSet,
        room: usize,
        longer: Option<Option<usize>>,
    ) -> Result<Arc<StateInfo>, Cleared> {
        let chars = self.vocab.string_chars();
        let mut mask = TokenSet::from_words(chars.text_up_to(room), self.vocab.len());
        if let Some(most) = longer {
            for id in chars.text_between(room, most) {
                if self.step(engine, state, self.vocab.token_bytes(id))?.is_some() {
                    mask.insert(id);
                }
            }
        }
        self.walked(engine, state, mask, &[Walk::of(&chars.rest, *live)])
    }

    /// [`info`](Self::info) for a state that reads only a few bytes (a key's next letter,
    /// the punctuation between values): no run is worth finding, the walk of those bytes'
    /// subtrees is the mask.
    pub(super) fn info_walked(&self, engine: &mut Engine, state: LazyStateID, live: &ByteSet) -> Result<Arc<StateInfo>, Cleared> {
        self.walked(engine, state, TokenSet::new(self.vocab.len()), &[Walk::of(self.vocab.trie(), *live)])
    }

    /// Finishes a mask: adds every token the walks find from `state`, then caches it.
    pub(super) fn walked(
        &self,
        engine: &mut Engine,
        state: LazyStateID,
        mut mask: TokenSet,
        walks: &[Walk<'_>],
    ) -> Result<Arc<StateInfo>, Cleared> {
        let mut walker = DfaStep::new(self, engine);
        for walk in walks {
            walk.trie.walk_from(&walk.first, &mut walker, state, &walk.run_bytes, walk.run, |visit| mask.insert_walked(&visit));
        }
        if walker.cleared {
            return Err(Cleared);
        }
        Ok(self.keep(engine, state, mask))
    }

    /// Adds EOS where the state accepts, and caches the state's mask.
    pub(super) fn keep(&self, engine: &mut Engine, state: LazyStateID, mut mask: TokenSet) -> Arc<StateInfo> {
        if self.accepting(engine, state) {
            if let Some(eos) = self.vocab.eos() {
                mask.insert(eos);
            }
        }
        let info = Arc::new(StateInfo { mask: Arc::new(mask), forced: OnceLock::new() });
        engine.states.insert(state, info.clone());
        info
    }

    /// The largest set of bytes that all lead from `state` to one state, and
    /// how many such bytes in a row keep the automaton alive (`usize::MAX`
    /// when the set loops `state` to itself). Inside a JSON string the set is
    /// the plain characters and the run is the room left before `maxLength`.
    pub(super) fn run_bytes(&self, engine: &mut Engine, state: LazyStateID, live: &ByteSet) -> Result<Run, Cleared> {
        // Group the live classes by successor; keep the group with the most bytes. (A class
        // is live or dead as a whole: the NFA does not tell its bytes apart.)
        let mut groups: Vec<(LazyStateID, ByteSet)> = Vec::with_capacity(8);
        for class in self.classes.iter().filter(|c| live.contains(c.rep)) {
            if let Some(next) = self.next(engine, state, class.rep)? {
                let at = groups.iter().position(|g| g.0 == next).unwrap_or_else(|| {
                    groups.push((next, ByteSet::EMPTY));
                    groups.len() - 1
                });
                groups[at].1 = groups[at].1 | class.bytes;
            }
        }
        let Some(&(first, set)) = groups.iter().max_by_key(|g| g.1.len()) else {
            return Ok(Run { bytes: ByteSet::EMPTY, len: 0, closed: false, then_loop: None });
        };
        if first == state {
            return Ok(Run { bytes: set, len: usize::MAX, closed: false, then_loop: None });
        }
        // A head into a loop (the first byte of a key, or the character after a backslash):
        // take the loop as the run. Head bytes that do not loop there (a quote after a
        // backslash) are left to the walk of the loop's rest.
        let mut looped = ByteSet::EMPTY;
        let mut loops = false;
        for class in self.classes.iter().filter(|c| set.contains(c.rep)) {
            if self.next(engine, first, class.rep)? == Some(first) {
                loops = true;
                break;
            }
        }
        if loops {
            for class in &self.classes {
                if self.next(engine, first, class.rep)? == Some(first) {
                    looped = looped | class.bytes;
                }
            }
        }
        if loops && looped.len() >= 32 {
            let split = self.vocab.run_split(&looped, usize::MAX, false);
            if split.rest.is_some() {
                return Ok(Run { bytes: set, len: 1, closed: false, then_loop: Some((looped, split)) });
            }
        }
        // Classes partition the bytes, so the set's classes are those whose byte is in it.
        let reps: Vec<u8> = self.classes.iter().filter(|c| set.contains(c.rep)).map(|c| c.rep).collect();
        // Follow the chain while every class of the set agrees on one live successor, no
        // further than the longest token of set bytes (a longer run changes no mask) and
        // no further than the shortest run that gets a trie of its own: each step costs
        // one DFA transition per class, where the walk of the few longer tokens costs
        // one per byte.
        let limit = self.vocab.longest_run_token(&set).min(crate::vocab::MIN_SPLIT_RUN);
        let (mut run, mut current) = (1, first);
        while run < limit {
            // Stop at the first class that goes elsewhere: each transition may be a new
            // DFA state to determinise.
            let to = self.next(engine, current, reps[0])?;
            let mut agree = true;
            for &rep in &reps[1..] {
                if self.next(engine, current, rep)? != to {
                    agree = false;
                    break;
                }
            }
            match (to, agree) {
                (_, false) => break,
                // Closed when every run byte dies here, not just the first class.
                (None, true) => return Ok(Run { bytes: set, len: run, closed: true, then_loop: None }),
                (Some(next), true) => {
                    run += 1;
                    current = next;
                }
            }
        }
        Ok(Run { bytes: set, len: run, closed: false, then_loop: None })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::automaton::Grammar;
    use crate::schema::CompileOptions;
    use crate::vocab::Vocabulary;

    #[test]
    fn a_free_string_runs_on_the_bytes_the_vocabulary_splits_for_in_advance() {
        let grammar = Grammar::compile(&serde_json::json!({"type": "string"}), &CompileOptions::default()).unwrap();
        let tokens = [&b"\""[..], b"ab", b"a\"", b"\xc3\xa9"];
        let vocab = Vocabulary::from_token_bytes(tokens.iter().map(|t| Some(t.to_vec())).collect(), None);
        let automaton = TokenAutomaton::new(grammar, Arc::new(vocab));
        let mut engine = automaton.lock();
        let start = engine.start;
        let inside = automaton.step(&mut engine, start, b"\"").ok().flatten().unwrap();
        let run = automaton.run_bytes(&mut engine, inside, &ByteSet::ALL).ok().unwrap();
        assert_eq!(run.bytes, crate::bytes::json_string_run_bytes());
        assert_eq!(run.len, usize::MAX);
    }
}
