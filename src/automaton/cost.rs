//! The work of a token mask, bounded at compile ([`CompileOptions::max_mask_work`]).
//!
//! A state's first mask determinises the DFA states its walk of the token trie reaches: each
//! is the epsilon closure of an NFA state set stepped on one byte, so the work of one DFA
//! transition grows with the size of the set, and a mask builds up to a few hundred of
//! them. An automaton whose sets are small walks in microseconds whatever its size; one
//! whose alternatives all stay alive side by side (a deep `anyOf` of strings, each string a
//! copy of the same gadget) steps them all on every byte.
//!
//! The measure is the largest NFA state set among the DFA states a breadth-first walk of
//! the subset construction finds from the start, over the grammar's byte classes, within
//! [`PROBE_SETS`] sets and [`CompileOptions::max_work`] steps. It is counted, not timed: a
//! schema is refused or not whatever the machine's load. The probe is a lower bound on the
//! largest set (a set it does not reach is not counted), so the bound only refuses: a
//! refused schema holds a set that large, and nothing the automaton admits changes.

use std::collections::{HashSet, VecDeque};

use regex_automata::nfa::thompson::{State, NFA};
use regex_automata::util::primitives::StateID;

use super::distance::{self, NfaSet, Visited};
use crate::schema::{CompileOptions, Ir, NodeId, SchemaError};

/// How many distinct DFA states the probe visits at most.
pub const PROBE_SETS: usize = 512;

/// What the probe found.
#[derive(Debug, Clone, Default)]
pub struct MaskWork {
    /// The largest NFA state set seen.
    pub largest: usize,
    /// That set (NFA state ids, sorted).
    pub(crate) set: NfaSet,
    /// DFA states visited.
    pub sets: usize,
    /// Steps spent: NFA states stepped and closed.
    pub work: u64,
}

/// Walks the subset construction from the start, breadth first, stepping each set on one
/// byte of each of `classes` (one representative per byte class), within `max_sets` sets
/// and `max_work` steps.
pub(crate) fn probe(nfa: &NFA, classes: &[u8], max_sets: usize, max_work: u64) -> MaskWork {
    let mut visited = Visited::default();
    let start = distance::closure(nfa, &[nfa.start_anchored()], &mut visited);
    let mut found = MaskWork { largest: start.len(), set: start.clone(), sets: 1, work: start.len() as u64 };
    let mut seen: HashSet<NfaSet> = HashSet::from([start.clone()]);
    let mut queue = VecDeque::from([start]);
    let (mut stack, mut next) = (Vec::new(), Vec::new());
    while let Some(set) = queue.pop_front() {
        let live = distance::live_bytes(nfa, &set);
        for &rep in classes.iter().filter(|&&b| live.contains(b)) {
            if found.work > max_work || seen.len() >= max_sets {
                return found;
            }
            distance::step_byte_into(nfa, &set, rep, &mut visited, &mut stack, &mut next);
            found.work += (set.len() + next.len()) as u64;
            if next.is_empty() {
                continue;
            }
            next.sort_unstable();
            if seen.contains(&next) {
                continue;
            }
            if next.len() > found.largest {
                found.largest = next.len();
                found.set = next.clone();
            }
            seen.insert(next.clone());
            found.sets += 1;
            queue.push_back(std::mem::take(&mut next));
        }
    }
    found
}

/// Where each schema node's NFA states lie: the lowering adds a node's states in one
/// contiguous run of builder ids, and the NFA keeps the builder's order, dropping only the
/// unions left with one alternative.
#[derive(Debug, Default)]
pub(crate) struct Spans {
    /// `(first, end, node)` in builder ids, `end` exclusive.
    pub(crate) spans: Vec<(usize, usize, NodeId)>,
    /// Builder ids the NFA drops (unions of one alternative), sorted.
    pub(crate) dropped: Vec<usize>,
}

impl Spans {
    /// The smallest node whose states hold every state of `set` (the root when none does,
    /// or when the NFA does not have the states the builder was given less the dropped).
    fn owner(&self, nfa: &NFA, set: &[StateID], root: NodeId) -> NodeId {
        let Some(builder_ids) = self.builder_ids(nfa) else { return root };
        let ids: Vec<usize> = set.iter().map(|&s| builder_ids[s.as_usize()]).collect();
        let (Some(&lo), Some(&hi)) = (ids.iter().min(), ids.iter().max()) else { return root };
        self.spans
            .iter()
            .filter(|(first, end, _)| *first <= lo && hi < *end)
            .min_by_key(|(first, end, _)| end - first)
            .map_or(root, |&(_, _, node)| node)
    }

    /// Builder ids by NFA id: every builder id but the dropped, in order (`None` when the NFA
    /// does not have the states the builder was given less the dropped).
    fn builder_ids(&self, nfa: &NFA) -> Option<Vec<usize>> {
        let mut builder_ids = Vec::with_capacity(nfa.states().len());
        let mut dropped = self.dropped.iter().peekable();
        let mut id = 0;
        while builder_ids.len() < nfa.states().len() {
            if dropped.next_if_eq(&&id).is_none() {
                builder_ids.push(id);
            }
            id += 1;
        }
        dropped.next().is_none().then_some(builder_ids)
    }

    /// The NFA ids of builder states that each read the given byte ranges; none at all unless
    /// every one is found reading exactly those ranges (a state found elsewhere would be
    /// worse than none).
    pub(crate) fn nfa_ids<'r>(&self, nfa: &NFA, states: impl IntoIterator<Item = &'r super::lower::Reads>) -> Vec<StateID> {
        let Some(builder_ids) = self.builder_ids(nfa) else { return Vec::new() };
        let mut found = Vec::new();
        for (builder_id, read) in states {
            let Ok(i) = builder_ids.binary_search(&builder_id.as_usize()) else { return Vec::new() };
            let Ok(id) = StateID::new(i) else { return Vec::new() };
            let reads: Vec<(u8, u8)> = match nfa.state(id) {
                State::ByteRange { trans } => vec![(trans.start, trans.end)],
                State::Sparse(t) => t.transitions.iter().map(|t| (t.start, t.end)).collect(),
                _ => return Vec::new(),
            };
            if reads != *read {
                return Vec::new();
            }
            found.push(id);
        }
        found
    }
}

/// Refuses an automaton whose masks would step more than
/// [`CompileOptions::max_mask_work`] NFA states at once, naming the subschema that holds
/// the largest set.
pub(crate) fn check(nfa: &NFA, classes: &[u8], spans: &Spans, ir: &Ir, options: &CompileOptions) -> Result<MaskWork, SchemaError> {
    let found = probe(nfa, classes, PROBE_SETS, options.max_work);
    if found.largest <= options.max_mask_work {
        return Ok(found);
    }
    let owner = spans.owner(nfa, &found.set, ir.root());
    Err(SchemaError::too_large(
        ir.pointer(owner),
        format!(
            "a token mask would step {} NFA states at once, more than max_mask_work ({}): the alternatives here stay alive side by side",
            found.largest, options.max_mask_work
        ),
    ))
}
