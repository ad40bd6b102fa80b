//! A [`Constraint`]: one generation's cursor over a shared [`TokenAutomaton`], with the token
//! budget that keeps room to close the value.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use regex_automata::hybrid::LazyStateID;

use super::automaton::{Cleared, DfaStep, Engine, StateInfo, TokenAutomaton};
use super::ConstraintError;
use crate::automaton::distance::{self, NfaSet, Visited};
use crate::vocab::TokenSet;

/// One generation's position in a [`TokenAutomaton`].
#[derive(Debug)]
pub struct Constraint {
    automaton: Arc<TokenAutomaton>,
    state: LazyStateID,
    /// The DFA cache's clear count when `state` was computed: if the cache
    /// has been cleared since, `state` is stale and is recomputed from `bytes`.
    clears: usize,
    bytes: Vec<u8>,
    /// The NFA state set after `bytes[..nfa_at]`, caught up lazily.
    nfa_set: NfaSet,
    nfa_at: usize,
    visited: Visited,
    finished: bool,
    /// What each accepted step replaced, latest last, for [`Constraint::rollback`].
    history: Vec<Step>,
}

/// The position before one accepted step (a token, EOS, or [`Constraint::advance_bytes`]).
#[derive(Debug, Clone, Copy)]
struct Step {
    state: LazyStateID,
    clears: usize,
    bytes: usize,
    finished: bool,
}

/// How many times an operation is retried after a cache clear.
const RETRIES: usize = 4;

impl Constraint {
    /// Starts a generation.
    pub fn new(automaton: Arc<TokenAutomaton>) -> Self {
        let (state, clears) = {
            let mut engine = automaton.lock();
            engine.sync(&automaton.grammar);
            (engine.start, engine.clears)
        };
        let nfa_set = automaton.nfa_start();
        let visited = Visited::for_states(automaton.nfa().states().len());
        Self { automaton, state, clears, bytes: Vec::new(), nfa_set, nfa_at: 0, visited, finished: false, history: Vec::new() }
    }

    /// The automaton this constraint walks.
    pub fn automaton(&self) -> &Arc<TokenAutomaton> {
        &self.automaton
    }

    /// The bytes accepted so far.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether EOS was accepted.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Runs `op` on an up-to-date state, redoing it if the cache is cleared.
    fn run<T>(
        &mut self,
        mut op: impl FnMut(&TokenAutomaton, &mut Engine, LazyStateID) -> Result<T, Cleared>,
    ) -> Result<T, ConstraintError> {
        let automaton = self.automaton.clone();
        let mut engine = automaton.lock();
        for _ in 0..RETRIES {
            engine.sync(&automaton.grammar);
            if engine.clears != self.clears {
                let start = engine.start;
                match automaton.step(&mut engine, start, &self.bytes) {
                    Ok(Some(s)) => {
                        self.state = s;
                        self.clears = engine.clears;
                    }
                    Ok(None) => unreachable!("accepted bytes stay accepted"),
                    Err(Cleared) => continue,
                }
            }
            let state = self.state;
            if let Ok(v) = op(&automaton, &mut engine, state) {
                return Ok(v);
            }
        }
        Err(ConstraintError::CacheThrash)
    }

    /// The allowed tokens (EOS only in an accepting state). Cached per state.
    pub fn mask(&mut self) -> Result<Arc<TokenSet>, ConstraintError> {
        if self.finished {
            return Err(ConstraintError::Finished);
        }
        Ok(self.info()?.mask.clone())
    }

    /// What the automaton knows about the current state; a state seen for the first time
    /// is told which bytes it does not reject (from the NFA set), so that computing its
    /// mask never determinises a transition to the dead state (most of a state's byte
    /// classes, outside strings).
    fn info(&mut self) -> Result<Arc<StateInfo>, ConstraintError> {
        if let Some(info) = self.run(|_, e, s| Ok(e.states.get(&s).cloned()))? {
            return Ok(info);
        }
        let automaton = self.automaton.clone();
        let set = self.nfa_set().clone();
        let live = distance::live_bytes(automaton.nfa(), &set);
        let position = automaton.grammar.string_position(&set);
        let longest = automaton.vocab.trie().max_token_len();
        let room = position.map(|(p, _)| if p.room == u32::MAX { usize::MAX } else { p.room as usize });
        // Otherwise, what a counted pattern product surely takes.
        let sure = if room.is_none() { automaton.grammar.text_room(&set) } else { None };
        // Far from a bounded string's end: the set without the position, and the string.
        let far = position
            .filter(|(p, _)| p.room != u32::MAX && p.room as usize >= longest)
            .map(|(p, root)| (set.iter().copied().filter(|&s| s != root).collect::<Vec<_>>(), p.chain));
        self.run(|a, e, s| {
            let Some(key) = &far else { return a.info(e, s, &set, &live, room, sure) };
            if let Some(mask) = e.far.get(key) {
                let info = Arc::new(StateInfo { mask: mask.clone(), forced: OnceLock::new() });
                e.states.insert(s, info.clone());
                return Ok(info);
            }
            let info = a.info(e, s, &set, &live, room, sure)?;
            e.far.insert(key.clone(), info.mask.clone());
            Ok(info)
        })
    }

    /// Accepts a token, or refuses it with an error (the state is unchanged).
    pub fn advance(&mut self, token: u32) -> Result<(), ConstraintError> {
        if self.finished {
            return Err(ConstraintError::Finished);
        }
        let vocab = self.automaton.vocab.clone();
        if Some(token) == vocab.eos() {
            return if self.is_accepting()? {
                self.remember();
                self.finished = true;
                Ok(())
            } else {
                Err(ConstraintError::Disallowed { token })
            };
        }
        if vocab.is_special(token) {
            return Err(ConstraintError::Disallowed { token });
        }
        if self.step_bytes(vocab.token_bytes(token))? {
            Ok(())
        } else {
            Err(ConstraintError::Disallowed { token })
        }
    }

    /// Accepts bytes that need not be one token (text a caller inserts, such as
    /// [`Constraint::forced_bytes`]), as one step for [`Constraint::rollback`]; returns whether
    /// they were accepted (if not, the state is unchanged).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use strictly::{automaton::Grammar, constraint::{Constraint, TokenAutomaton}, schema::CompileOptions, vocab::Vocabulary};
    /// let grammar = Grammar::compile(&serde_json::json!({"enum": ["yes", "no"]}), &CompileOptions::default())?;
    /// let vocab = Vocabulary::from_token_bytes(vec![Some(b"\"".to_vec()), None], Some(1));
    /// let mut c = Constraint::new(Arc::new(TokenAutomaton::new(grammar, Arc::new(vocab))));
    /// assert!(!c.advance_bytes(b"\"maybe")?);
    /// assert!(c.advance_bytes(b"\"no\"")?);
    /// assert!(c.is_accepting()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ConstraintError::Finished`] after EOS.
    pub fn advance_bytes(&mut self, bytes: &[u8]) -> Result<bool, ConstraintError> {
        if self.finished {
            return Err(ConstraintError::Finished);
        }
        self.step_bytes(bytes)
    }

    fn step_bytes(&mut self, bytes: &[u8]) -> Result<bool, ConstraintError> {
        match self.run(|a, e, s| a.step(e, s, bytes))? {
            Some(next) => {
                self.remember();
                self.bytes.extend_from_slice(bytes);
                self.state = next;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn remember(&mut self) {
        self.history.push(Step { state: self.state, clears: self.clears, bytes: self.bytes.len(), finished: self.finished });
    }

    /// How many accepted steps [`Constraint::rollback`] can undo (every one since the start).
    pub fn steps(&self) -> usize {
        self.history.len()
    }

    /// Undoes the last `n` accepted steps (tokens, EOS, or [`Constraint::advance_bytes`]
    /// calls), as a speculative decoder does with the draft tokens the model rejected. Costs
    /// no automaton work: each step kept its state (a state from before a cache clear is
    /// recomputed from the bytes on next use, as always).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use strictly::{automaton::Grammar, constraint::{Constraint, TokenAutomaton}, schema::CompileOptions, vocab::Vocabulary};
    /// let grammar = Grammar::compile(&serde_json::json!({"enum": ["yes", "no"]}), &CompileOptions::default())?;
    /// let tokens = [&b"\""[..], b"yes", b"no"];
    /// let vocab = Vocabulary::from_token_bytes(tokens.iter().map(|t| Some(t.to_vec())).chain([None]).collect(), Some(3));
    /// let mut c = Constraint::new(Arc::new(TokenAutomaton::new(grammar, Arc::new(vocab))));
    /// for t in [0, 1, 0, 3] { c.advance(t)?; }        // "yes" and EOS
    /// c.rollback(3)?;                                  // back to "
    /// assert_eq!(c.bytes(), b"\"");
    /// c.advance(2)?;                                   // "no
    /// assert_eq!(c.forced_bytes()?, b"\"");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ConstraintError::Rollback`] when fewer than `n` steps were taken (nothing is undone).
    pub fn rollback(&mut self, n: usize) -> Result<(), ConstraintError> {
        if n > self.history.len() {
            return Err(ConstraintError::Rollback { asked: n, taken: self.history.len() });
        }
        if n == 0 {
            return Ok(());
        }
        let at = self.history.len() - n;
        let step = self.history[at];
        self.history.truncate(at);
        self.state = step.state;
        self.clears = step.clears;
        self.finished = step.finished;
        self.bytes.truncate(step.bytes);
        if self.nfa_at > step.bytes {
            self.nfa_set = self.automaton.nfa_start();
            self.nfa_at = 0;
        }
        Ok(())
    }

    /// How many of `tokens`, in order from here, the automaton accepts (without moving):
    /// a speculative decoder checks its guess with this before asking the model.
    pub fn accepted_prefix(&mut self, tokens: &[u32]) -> Result<usize, ConstraintError> {
        if self.finished {
            return Ok(0);
        }
        let vocab = self.automaton.vocab.clone();
        self.run(|a, e, s| {
            let mut state = s;
            for (n, &t) in tokens.iter().enumerate() {
                if vocab.is_special(t) || Some(t) == vocab.eos() {
                    return Ok(n);
                }
                match a.step(e, state, vocab.token_bytes(t))? {
                    Some(next) => state = next,
                    None => return Ok(n),
                }
            }
            Ok(tokens.len())
        })
    }

    /// Whether the bytes so far are a complete instance.
    pub fn is_accepting(&mut self) -> Result<bool, ConstraintError> {
        self.run(|a, e, s| Ok(a.accepting(e, s)))
    }

    /// Whether nothing but EOS can follow (generation can stop here).
    pub fn is_complete(&mut self) -> Result<bool, ConstraintError> {
        if self.finished {
            return Ok(true);
        }
        let eos = self.automaton.vocab.eos();
        let mask = self.mask()?;
        Ok(self.is_accepting()? && mask.iter().all(|t| Some(t) == eos))
    }

    /// The bytes that must come next, whatever the model does.
    pub fn forced_bytes(&mut self) -> Result<Vec<u8>, ConstraintError> {
        let info = self.info()?;
        if let Some(forced) = info.forced.get() {
            return Ok(forced.clone());
        }
        let forced = self.run(|a, e, s| a.forced_from(e, s))?;
        Ok(info.forced.get_or_init(|| forced).clone())
    }

    /// The NFA state set after the bytes so far.
    fn nfa_set(&mut self) -> &NfaSet {
        if self.nfa_at < self.bytes.len() {
            let nfa = self.automaton.nfa();
            self.nfa_set = distance::step(nfa, &self.nfa_set, &self.bytes[self.nfa_at..], &mut self.visited);
            self.nfa_at = self.bytes.len();
        }
        &self.nfa_set
    }

    /// Bytes from here to the nearest complete instance.
    pub fn distance_to_accept(&mut self) -> u32 {
        let automaton = self.automaton.clone();
        automaton.distances().of(self.nfa_set())
    }

    /// The fewest tokens that can complete the value from here, as a lower
    /// bound: the shortest completion's bytes over the longest token's (0 in
    /// an accepting state). With [`Constraint::distance_to_accept`] (bytes,
    /// an upper bound on tokens), it brackets what a cap must allow.
    pub fn min_tokens_to_accept(&mut self) -> usize {
        let longest = self.automaton.vocab.trie().max_token_len().max(1);
        (self.distance_to_accept() as usize).div_ceil(longest)
    }

    /// The one check every decoding loop makes (the API, `generate`, the
    /// coverage walks): with `left` of `cap` tokens remaining, an error when
    /// the value cannot be completed in them, so that a cut-off value is
    /// never reported as output. Call it before decoding (the start state's
    /// distance may already exceed the cap), after each token, and at the cap.
    ///
    /// # Errors
    /// [`ConstraintError::TokenCap`] when even the fewest tokens that can
    /// complete the value exceed `left`.
    pub fn check_room(&mut self, left: usize, cap: usize) -> Result<(), ConstraintError> {
        if self.finished {
            return Ok(());
        }
        let needed = self.min_tokens_to_accept();
        // At the cap, the bound is exact: accepting or not.
        let short = if left == 0 { !self.is_accepting()? } else { needed > left };
        if short {
            let bytes = self.distance_to_accept() as usize;
            return Err(ConstraintError::TokenCap { needed: needed.max(1), bytes, left, cap });
        }
        Ok(())
    }

    /// Bytes to the nearest complete instance after `token`, or `None`
    /// when the token is not allowed.
    fn distance_after(&mut self, token: u32) -> Option<u32> {
        let automaton = self.automaton.clone();
        self.nfa_set();
        let set = distance::step(automaton.nfa(), &self.nfa_set, automaton.vocab.token_bytes(token), &mut self.visited);
        (!set.is_empty()).then(|| automaton.distances().of(&set))
    }

    /// Whether `token` leaves room to finish within `remaining` tokens
    /// (this one included), one token per byte in the worst case.
    pub fn fits_budget(&mut self, token: u32, remaining: usize) -> Result<bool, ConstraintError> {
        if Some(token) == self.automaton.vocab.eos() {
            return self.is_accepting();
        }
        Ok(self.distance_after(token).is_some_and(|d| (d as usize) < remaining))
    }

    /// The allowed tokens that leave room to finish within `remaining`
    /// tokens; if none does, those that get closest (the shortest completion).
    ///
    /// Tokens are grouped by the DFA state they lead to (a DFA state is one
    /// NFA state set, so one distance): only one token per group is stepped
    /// through the NFA.
    pub fn mask_within_budget(&mut self, remaining: usize) -> Result<TokenSet, ConstraintError> {
        let mask = self.mask()?;
        let eos = self.automaton.vocab.eos();
        let ends: Vec<(u32, LazyStateID)> = self.run(|a, e, s| {
            let mut walker = DfaStep::new(a, e);
            let mut ends = Vec::new();
            a.vocab.trie().walk(&mut walker, s, |t, end| ends.push((t, end)));
            if walker.cleared {
                Err(Cleared)
            } else {
                Ok(ends)
            }
        })?;
        let mut by_state: HashMap<LazyStateID, Option<u32>> = HashMap::new();
        let mut scored = Vec::with_capacity(ends.len());
        for (t, end) in ends {
            let d = match by_state.get(&end) {
                Some(&d) => d,
                None => {
                    let d = self.distance_after(t);
                    by_state.insert(end, d);
                    d
                }
            };
            if let Some(d) = d {
                scored.push((t, d));
            }
        }
        let mut set = TokenSet::new(mask.universe());
        if let Some(e) = eos.filter(|&e| mask.contains(e)) {
            // Finishing is always within budget.
            set.insert(e);
            if remaining <= 1 {
                return Ok(set);
            }
        }
        let fits: Vec<u32> = scored.iter().filter(|(_, d)| (*d as usize) < remaining).map(|(t, _)| *t).collect();
        if !fits.is_empty() {
            fits.iter().for_each(|&t| set.insert(t));
        } else if set.is_empty() {
            let best = scored.iter().map(|(_, d)| *d).min().unwrap_or(u32::MAX);
            scored.iter().filter(|(_, d)| *d == best).for_each(|(t, _)| set.insert(*t));
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::automaton::Grammar;
    use crate::schema::CompileOptions;
    use crate::vocab::Vocabulary;

    #[test]
    fn the_room_check_bounds_tokens_by_the_longest_token_and_is_exact_at_the_cap() {
        let grammar = Grammar::compile(&serde_json::json!({"type": "string", "pattern": "^a{10}$"}), &CompileOptions::default()).unwrap();
        let tokens = [&b"\""[..], b"a", b"aaaa"];
        let vocab = Vocabulary::from_token_bytes(tokens.iter().map(|t| Some(t.to_vec())).collect(), None);
        let mut c = Constraint::new(Arc::new(TokenAutomaton::new(grammar, Arc::new(vocab))));
        // 12 bytes, 4 at most per token: at least 3 tokens.
        assert_eq!(c.check_room(2, 2), Err(ConstraintError::TokenCap { needed: 3, bytes: 12, left: 2, cap: 2 }));
        assert_eq!(c.check_room(3, 3), Ok(()));
        // At the cap, only a complete value passes.
        assert_eq!(c.check_room(0, 3), Err(ConstraintError::TokenCap { needed: 3, bytes: 12, left: 0, cap: 3 }));
        for t in [0, 2, 2, 1, 1, 0] {
            c.advance(t).unwrap();
        }
        assert_eq!(c.check_room(0, 6), Ok(()));
    }

    #[test]
    fn a_rollback_gives_back_each_earlier_mask_and_refuses_more_steps_than_taken() {
        let schema = serde_json::json!({"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}, "b": {"enum": [1, 22]}},
                                        "required": ["a", "b"], "additionalProperties": false});
        let grammar = Grammar::compile(&schema, &CompileOptions::default()).unwrap();
        let tokens = [&b"{\"a\":\""[..], b"x", b"xy", b"\",\"b\":", b"1", b"2", b"}", b"\""];
        let vocab = Vocabulary::from_token_bytes(tokens.iter().map(|t| Some(t.to_vec())).chain([None]).collect(), Some(8));
        let mut c = Constraint::new(Arc::new(TokenAutomaton::new(grammar, Arc::new(vocab))));
        let walk = [0, 2, 1, 3, 5, 5, 6, 8];
        let mut masks = vec![c.mask().unwrap()];
        let mut forced = vec![c.forced_bytes().unwrap()];
        for &t in &walk {
            c.advance(t).unwrap();
            if c.is_finished() {
                break;
            }
            masks.push(c.mask().unwrap());
            forced.push(c.forced_bytes().unwrap());
        }
        assert!(c.is_finished());
        assert_eq!(c.steps(), walk.len());
        assert_eq!(c.rollback(walk.len() + 1), Err(ConstraintError::Rollback { asked: walk.len() + 1, taken: walk.len() }));
        assert!(c.is_finished(), "a refused rollback changes nothing");
        for back in (0..masks.len()).rev() {
            c.rollback(c.steps() - back).unwrap();
            assert!(!c.is_finished());
            assert_eq!(c.mask().unwrap(), masks[back], "after rolling back to step {back}");
            assert_eq!(c.forced_bytes().unwrap(), forced[back]);
            assert_eq!(c.distance_to_accept() as usize, {
                let mut fresh = Constraint::new(c.automaton().clone());
                walk[..back].iter().for_each(|&t| fresh.advance(t).unwrap());
                fresh.distance_to_accept() as usize
            });
        }
        // A step taken again after a rollback is taken as the first time.
        assert!(c.advance_bytes(b"{\"a\":\"xyx\",\"b\":22}").unwrap());
        assert!(c.is_accepting().unwrap());
        c.rollback(1).unwrap();
        assert_eq!(c.bytes(), b"");
    }
}
