//! The [`TokenAutomaton`]: a grammar joined with a vocabulary, its lazy DFA's cache, the
//! per-state knowledge shared by every generation, and the forced bytes of a state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use regex_automata::hybrid::dfa::Cache;
use regex_automata::hybrid::LazyStateID;
use regex_automata::util::primitives::StateID;

use crate::automaton::distance::{self, NfaDistances, NfaSet, Visited};
use crate::automaton::Grammar;
use crate::bytes::ByteSet;
use crate::vocab::{ByteRecognizer, TokenSet, Vocabulary};

/// What the automaton knows about one DFA state.
#[derive(Debug)]
pub(super) struct StateInfo {
    pub(super) mask: Arc<TokenSet>,
    /// Computed on the first [`Constraint::forced_bytes`] at this state: a mask does not need it.
    pub(super) forced: OnceLock<Vec<u8>>,
}

/// One byte class of the grammar's DFA (bytes it cannot tell apart).
#[derive(Debug, Clone, Copy)]
pub(super) struct ByteClass {
    /// The class's first byte, which stands for all of them.
    pub(super) rep: u8,
    pub(super) bytes: ByteSet,
}


/// The lazy DFA's cache was cleared during an operation: the state ids it
/// held are stale, and the operation must be redone from the byte history.
pub(super) struct Cleared;

/// Mutable per-automaton caches, behind one lock.
pub(super) struct Engine {
    pub(super) cache: Cache,
    /// Per-state knowledge, keyed by ids valid for `clears`.
    pub(super) states: HashMap<LazyStateID, Arc<StateInfo>>,
    /// Masks of long bounded strings' far positions, by the rest of the NFA set and the
    /// string: every position with room for more characters than any token holds takes
    /// the same tokens (one DFA state each, one mask for all).
    pub(super) far: HashMap<(Vec<StateID>, StateID), Arc<TokenSet>>,
    pub(super) start: LazyStateID,
    /// The cache's clear count that `states` and `start` belong to.
    pub(super) clears: usize,
}

impl Engine {
    /// Drops everything keyed by stale ids after a cache clear.
    pub(super) fn sync(&mut self, grammar: &Grammar) {
        if self.cache.clear_count() != self.clears {
            self.states.clear();
            self.far.clear();
            self.start = grammar.start(&mut self.cache);
            self.clears = self.cache.clear_count();
        }
    }
}

/// The bound on cached state masks; past it the cache starts afresh.
pub const MAX_CACHED_STATES: usize = 20_000;

/// A grammar joined with a vocabulary, with per-state caches shared by every
/// generation that uses it.
pub struct TokenAutomaton {
    pub(super) grammar: Grammar,
    pub(super) vocab: Arc<Vocabulary>,
    pub(super) classes: Vec<ByteClass>,
    pub(super) engine: Mutex<Engine>,
    pub(super) distances: OnceLock<NfaDistances>,
}

impl std::fmt::Debug for TokenAutomaton {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAutomaton").field("nfa_states", &self.grammar.nfa_states()).finish()
    }
}

/// Adapter: the lazy DFA as a [`ByteRecognizer`] for the trie walk. Stops
/// the walk (rejects everything) as soon as the cache is cleared under it.
pub(super) struct DfaStep<'a> {
    pub(super) automaton: &'a TokenAutomaton,
    pub(super) engine: &'a mut Engine,
    pub(super) cleared: bool,
}

impl<'a> DfaStep<'a> {
    pub(super) fn new(automaton: &'a TokenAutomaton, engine: &'a mut Engine) -> Self {
        Self { automaton, engine, cleared: false }
    }
}

impl ByteRecognizer for DfaStep<'_> {
    type State = LazyStateID;
    #[inline]
    fn step(&mut self, state: LazyStateID, byte: u8) -> Option<LazyStateID> {
        if self.cleared {
            return None;
        }
        self.automaton.next(self.engine, state, byte).unwrap_or_else(|Cleared| {
            self.cleared = true;
            None
        })
    }
}

impl TokenAutomaton {
    /// Joins a grammar and a vocabulary.
    pub fn new(grammar: Grammar, vocab: Arc<Vocabulary>) -> Self {
        let mut cache = grammar.new_cache();
        let start = grammar.start(&mut cache);
        let clears = cache.clear_count();
        let byte_classes = grammar.dfa().byte_classes();
        let classes = byte_classes
            .representatives(0..=255)
            .filter_map(|u| u.as_u8())
            .map(|rep| {
                let bytes: ByteSet = byte_classes
                    .elements(regex_automata::util::alphabet::Unit::u8(byte_classes.get(rep)))
                    .filter_map(|u| u.as_u8())
                    .collect();
                ByteClass { rep, bytes }
            })
            .collect();
        Self {
            grammar,
            vocab,
            classes,
            engine: Mutex::new(Engine { cache, states: HashMap::new(), far: HashMap::new(), start, clears }),
            distances: OnceLock::new(),
        }
    }

    /// The grammar.
    pub fn grammar(&self) -> &Grammar {
        &self.grammar
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &Arc<Vocabulary> {
        &self.vocab
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn nfa(&self) -> &regex_automata::nfa::thompson::NFA {
        self.grammar.dfa().get_nfa()
    }

    pub(super) fn distances(&self) -> &NfaDistances {
        self.distances.get_or_init(|| NfaDistances::new(self.nfa()))
    }

    /// The NFA state set at the start.
    pub(super) fn nfa_start(&self) -> NfaSet {
        distance::closure(self.nfa(), &[self.nfa().start_anchored()], &mut Visited::default())
    }

    /// Reads one byte from a state: the live state it leads to, or `Ok(None)` when it is
    /// rejected; `Err(Cleared)` when the lazy DFA's cache has been cleared since the engine
    /// was synced (every state id in hand is stale). The one place a DFA transition is taken.
    #[inline]
    pub(super) fn next(&self, engine: &mut Engine, state: LazyStateID, byte: u8) -> Result<Option<LazyStateID>, Cleared> {
        let next = self.grammar.dfa().next_state(&mut engine.cache, state, byte);
        if engine.cache.clear_count() != engine.clears {
            return Err(Cleared);
        }
        Ok(next.ok().filter(|n| !n.is_dead()))
    }

    /// Reads bytes from a state; `Ok(None)` when they are rejected.
    pub(super) fn step(&self, engine: &mut Engine, state: LazyStateID, bytes: &[u8]) -> Result<Option<LazyStateID>, Cleared> {
        let mut s = state;
        for &b in bytes {
            match self.next(engine, s, b)? {
                Some(n) => s = n,
                None => return Ok(None),
            }
        }
        Ok(Some(s))
    }

    pub(super) fn accepting(&self, engine: &mut Engine, state: LazyStateID) -> bool {
        self.grammar.is_accepting(&mut engine.cache, state)
    }

    /// Bytes that are the only way on from `state`.
    pub(super) fn forced_from(&self, engine: &mut Engine, mut state: LazyStateID) -> Result<Vec<u8>, Cleared> {
        let mut forced = Vec::new();
        while forced.len() < 256 && !self.accepting(engine, state) {
            let mut live = None;
            let mut count = 0;
            for class in &self.classes {
                if let Some(n) = self.next(engine, state, class.rep)? {
                    count += 1;
                    live = Some((class, n));
                    if count > 1 {
                        break;
                    }
                }
            }
            let (Some((class, next)), 1) = (live, count) else { break };
            // A class of several bytes is a choice, not a forced byte.
            if class.bytes.len() != 1 {
                break;
            }
            forced.push(class.rep);
            state = next;
        }
        Ok(forced)
    }
}
