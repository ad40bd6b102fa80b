//! The walk for a state that reads only a few bytes (a key's next letter, the punctuation
//! between values): led by the NFA state set, which says at each trie node which bytes
//! are live, instead of the lazy DFA.
//!
//! A plain walk steps the lazy DFA on every child of every node it enters, and each new
//! transition is a determinisation: an epsilon closure, a new DFA state built and hashed,
//! for a state the generation will mostly never reach (every prefix of every live token
//! gets one). Below a state with few live bytes the NFA sets are small (a key name, a
//! literal: one to a few NFA states), so stepping the set by hand and reading its live
//! bytes costs a few loads per node and builds nothing. Where the live set grows large (a
//! string body, a number), the walk hands over to the plain DFA walk from that node.
//!
//! The NFA never holds a state from which no match is reachable, so a byte is live in a
//! set exactly when the DFA of that set does not reject it: both walks find the same
//! tokens.

use std::sync::Arc;

use regex_automata::hybrid::LazyStateID;
use regex_automata::util::primitives::StateID;

use super::automaton::{Cleared, DfaStep, Engine, StateInfo, TokenAutomaton};
use super::plan::FEW_LIVE_BYTES;
use crate::automaton::distance::{self, NfaSet, Visited};
use crate::bytes::ByteSet;
use crate::vocab::{TokenSet, TokenTrie, TrieNodeId};

/// Above this many NFA states a set is no longer stepped by hand: the lazy DFA, which
/// determinises a set once and then caches it, is cheaper.
pub(super) const MAX_GUIDED_SET: usize = 64;

/// The buffers of a guided walk, kept in the engine between walks.
#[derive(Default)]
pub(super) struct Scratch {
    /// `sets[d]`: the NFA set at the node of depth `d` on the current path.
    sets: Vec<NfaSet>,
    /// The bytes from the start to the current node.
    path: Vec<u8>,
    visited: Visited,
    stack: Vec<StateID>,
}

impl Scratch {
    /// Buffers for an NFA of `states` states (see [`Visited::for_states`]).
    pub(super) fn for_states(states: usize) -> Self {
        Self { visited: Visited::for_states(states), ..Self::default() }
    }

    /// The heap memory these buffers hold, in bytes.
    pub(super) fn memory_usage(&self) -> usize {
        let id = std::mem::size_of::<StateID>();
        self.visited.memory_usage()
            + self.sets.iter().map(|s| s.capacity() * id).sum::<usize>()
            + self.sets.capacity() * std::mem::size_of::<NfaSet>()
            + self.path.capacity()
            + self.stack.capacity() * id
    }
}

/// A walk in progress: where it started, the mask it fills and its buffers.
struct Guide<'a> {
    automaton: &'a TokenAutomaton,
    trie: &'a TokenTrie,
    start: LazyStateID,
    mask: TokenSet,
    s: Scratch,
}

impl TokenAutomaton {
    /// [`info`](Self::info) for a state with few live bytes, given its NFA state set and
    /// the bytes that set reads.
    pub(super) fn info_guided(
        &self,
        engine: &mut Engine,
        state: LazyStateID,
        set: &[StateID],
        live: &ByteSet,
    ) -> Result<Arc<StateInfo>, Cleared> {
        let mut s = std::mem::take(&mut engine.scratch);
        s.path.clear();
        match s.sets.first_mut() {
            Some(first) => {
                first.clear();
                first.extend_from_slice(set);
            }
            None => s.sets.push(set.to_vec()),
        }
        let mut guide = Guide { automaton: self, trie: self.vocab.trie(), start: state, mask: TokenSet::new(self.vocab.len()), s };
        let walked = guide.below(engine, TokenTrie::ROOT, *live);
        engine.scratch = std::mem::take(&mut guide.s);
        walked?;
        Ok(self.keep(engine, state, guide.mask))
    }
}

impl Guide<'_> {
    /// Adds the tokens below `node`, whose NFA set (`sets[path.len()]`) reads `live`.
    fn below(&mut self, engine: &mut Engine, node: TrieNodeId, live: ByteSet) -> Result<(), Cleared> {
        let (automaton, trie) = (self.automaton, self.trie);
        let nfa = automaton.nfa();
        let depth = self.s.path.len();
        if self.s.sets.len() < depth + 2 {
            self.s.sets.push(NfaSet::new());
        }
        for (byte, child) in trie.children(node, &live) {
            let s = &mut self.s;
            let (here, deeper) = s.sets.split_at_mut(depth + 1);
            let next = &mut deeper[0];
            distance::step_byte_into(nfa, &here[depth], byte, &mut s.visited, &mut s.stack, next);
            if next.is_empty() {
                continue;
            }
            trie.tokens_at(child).iter().for_each(|&t| self.mask.insert(t));
            if trie.is_leaf(child) {
                continue;
            }
            let next_live = distance::live_bytes(nfa, next);
            let small = next.len() <= MAX_GUIDED_SET;
            self.s.path.push(byte);
            let walked = if next_live.len() <= FEW_LIVE_BYTES && small {
                self.below(engine, child, next_live)
            } else {
                self.hand_over(engine, child, &next_live)
            };
            self.s.path.pop();
            walked?;
        }
        Ok(())
    }

    /// The plain DFA walk below `node` (at the end of the path), over its `live` children.
    fn hand_over(&mut self, engine: &mut Engine, node: TrieNodeId, live: &ByteSet) -> Result<(), Cleared> {
        let Some(state) = self.automaton.step(engine, self.start, &self.s.path)? else { return Ok(()) };
        let mut walker = DfaStep::new(self.automaton, engine);
        let mask = &mut self.mask;
        self.trie.walk_below(node, live, &mut walker, state, &ByteSet::EMPTY, 0, |visit| mask.insert_walked(&visit));
        if walker.cleared {
            Err(Cleared)
        } else {
            Ok(())
        }
    }
}
