//! Distance to acceptance, computed on the NFA.
//!
//! A DFA state is a set of NFA states, so the fewest bytes that complete it
//! is the minimum, over its NFA states, of each one's distance to the match
//! state. Those distances come from one backwards 0-1 BFS over the NFA
//! (epsilon edges cost 0, byte edges 1): linear in the NFA, computed once per
//! grammar. A generation tracks its NFA state set alongside its DFA state,
//! which makes the token budget exact without exploring the DFA.

use std::collections::VecDeque;

use regex_automata::nfa::thompson::{State, NFA};
use regex_automata::util::primitives::StateID;

use crate::bytes::ByteSet;

/// Per-NFA-state distances to the match state, in bytes.
#[derive(Debug, Clone)]
pub struct NfaDistances {
    dist: Vec<u32>,
}

/// A set of NFA states (closed under epsilon moves), sorted.
pub type NfaSet = Vec<StateID>;

impl NfaDistances {
    /// Computes the distances of every state of `nfa`.
    pub fn new(nfa: &NFA) -> Self {
        let n = nfa.states().len();
        // Reverse adjacency, (predecessor, cost), in one buffer: `preds[starts[v]..starts[v + 1]]`
        // are `v`'s. One list per state would be a million small blocks on a large NFA, and
        // freeing them leaves the allocator a pass over each at its next large request (the
        // next mask's first allocation).
        let mut starts = vec![0u32; n + 1];
        let mut matches = Vec::new();
        for (i, state) in nfa.states().iter().enumerate() {
            if let State::Match { .. } = state {
                matches.push(i as u32);
            }
            successors(state, |next, _| starts[next + 1] += 1);
        }
        for v in 0..n {
            starts[v + 1] += starts[v];
        }
        let mut fill = starts.clone();
        let mut preds = vec![(0u32, 0u8); starts[n] as usize];
        for (i, state) in nfa.states().iter().enumerate() {
            successors(state, |next, cost| {
                preds[fill[next] as usize] = (i as u32, cost);
                fill[next] += 1;
            });
        }
        drop(fill);
        let rev = |v: usize| &preds[starts[v] as usize..starts[v + 1] as usize];
        let mut dist = vec![u32::MAX; n];
        let mut queue = VecDeque::new();
        for m in matches {
            dist[m as usize] = 0;
            queue.push_back(m);
        }
        while let Some(v) = queue.pop_front() {
            let d = dist[v as usize];
            for &(u, cost) in rev(v as usize) {
                let nd = d + cost as u32;
                if nd < dist[u as usize] {
                    dist[u as usize] = nd;
                    if cost == 0 {
                        queue.push_front(u);
                    } else {
                        queue.push_back(u);
                    }
                }
            }
        }
        Self { dist }
    }

    /// The fewest bytes that complete a set.
    pub fn of(&self, set: &[StateID]) -> u32 {
        set.iter().map(|s| self.dist[s.as_usize()]).min().unwrap_or(u32::MAX)
    }
}

/// Calls `f` with each state `state` moves to and the move's cost in bytes (0 for an
/// epsilon move).
fn successors(state: &State, mut f: impl FnMut(usize, u8)) {
    match state {
        State::ByteRange { trans } => f(trans.next.as_usize(), 1),
        State::Sparse(s) => s.transitions.iter().for_each(|t| f(t.next.as_usize(), 1)),
        State::Dense(d) => d.transitions.iter().for_each(|t| f(t.as_usize(), 1)),
        State::Look { next, .. } | State::Capture { next, .. } => f(next.as_usize(), 0),
        State::Union { alternates } => alternates.iter().for_each(|a| f(a.as_usize(), 0)),
        State::BinaryUnion { alt1, alt2 } => {
            f(alt1.as_usize(), 0);
            f(alt2.as_usize(), 0);
        }
        State::Fail | State::Match { .. } => {}
    }
}

/// A visited set over NFA states that is emptied in O(1): each use takes a
/// new stamp instead of clearing a buffer as large as the NFA.
#[derive(Debug, Clone, Default)]
pub struct Visited {
    stamp: u32,
    marks: Vec<u32>,
}

impl Visited {
    /// A visited set sized for an NFA of `states` states. The buffer is as large as the
    /// NFA: sized here, where an automaton or a generation is set up, rather than on the
    /// first step of a walk, where a large allocation can cost the allocator a pass over
    /// every small block freed before it (milliseconds on an NFA of a million states).
    pub fn for_states(states: usize) -> Self {
        Self { stamp: 0, marks: vec![0; states] }
    }

    /// The heap memory this set holds, in bytes.
    pub fn memory_usage(&self) -> usize {
        self.marks.capacity() * std::mem::size_of::<u32>()
    }

    fn reset(&mut self, states: usize) {
        if self.marks.len() != states || self.stamp == u32::MAX {
            self.marks = vec![0; states];
            self.stamp = 0;
        }
        self.stamp += 1;
    }

    /// Marks a state; `true` if it was already marked since the last reset.
    fn visit(&mut self, s: StateID) -> bool {
        std::mem::replace(&mut self.marks[s.as_usize()], self.stamp) == self.stamp
    }
}

/// The epsilon closure of `seeds`.
pub fn closure(nfa: &NFA, seeds: &[StateID], visited: &mut Visited) -> NfaSet {
    visited.reset(nfa.states().len());
    let (mut stack, mut out) = (seeds.to_vec(), Vec::new());
    close(nfa, visited, &mut stack, &mut out);
    out.sort_unstable();
    out
}

/// Empties `stack` into `out` (unsorted) through epsilon moves: the states of the closure
/// that read a byte or match. `visited` must have been reset for this closure.
fn close(nfa: &NFA, visited: &mut Visited, stack: &mut Vec<StateID>, out: &mut NfaSet) {
    while let Some(s) = stack.pop() {
        if visited.visit(s) {
            continue;
        }
        match nfa.state(s) {
            State::Look { next, .. } | State::Capture { next, .. } => stack.push(*next),
            State::Union { alternates } => stack.extend(alternates.iter().copied()),
            State::BinaryUnion { alt1, alt2 } => stack.extend([*alt1, *alt2]),
            State::Fail => {}
            _ => out.push(s),
        }
    }
}

/// The bytes on which some state of `set` moves: every NFA state can still
/// reach a match, so these are exactly the bytes a DFA state of this set does
/// not reject.
pub fn live_bytes(nfa: &NFA, set: &[StateID]) -> ByteSet {
    let mut live = ByteSet::EMPTY;
    let mut add = |start: u8, end: u8| live = live | ByteSet::range(start, end);
    for &s in set {
        match nfa.state(s) {
            State::ByteRange { trans } => add(trans.start, trans.end),
            State::Sparse(t) => t.transitions.iter().for_each(|t| add(t.start, t.end)),
            State::Dense(t) => {
                t.transitions.iter().enumerate().filter(|(_, n)| **n != StateID::ZERO).for_each(|(b, _)| add(b as u8, b as u8))
            }
            _ => {}
        }
    }
    live
}

/// The set after reading one byte, written into `out` (emptied first; left unsorted),
/// with `stack` as scratch: the step of a walk that visits many sets and keeps none, so
/// it allocates nothing once the buffers have grown.
pub fn step_byte_into(nfa: &NFA, set: &[StateID], byte: u8, visited: &mut Visited, stack: &mut Vec<StateID>, out: &mut NfaSet) {
    visited.reset(nfa.states().len());
    stack.clear();
    out.clear();
    for &s in set {
        let target = match nfa.state(s) {
            State::ByteRange { trans } => trans.matches_byte(byte).then_some(trans.next),
            State::Sparse(t) => t.matches_byte(byte),
            State::Dense(t) => t.matches_byte(byte),
            _ => None,
        };
        stack.extend(target);
    }
    close(nfa, visited, stack, out);
}

/// The set after reading `bytes`; empty when they are rejected.
pub fn step(nfa: &NFA, set: &[StateID], bytes: &[u8], visited: &mut Visited) -> NfaSet {
    let (mut current, mut next, mut stack) = (set.to_vec(), Vec::with_capacity(set.len()), Vec::new());
    for &b in bytes {
        step_byte_into(nfa, &current, b, visited, &mut stack, &mut next);
        std::mem::swap(&mut current, &mut next);
        if current.is_empty() {
            break;
        }
    }
    current.sort_unstable();
    current
}
