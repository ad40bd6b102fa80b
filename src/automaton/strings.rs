//! String bodies found in a built NFA, for the constraint's fast paths.
//!
//! A string that takes any character is lowered as a loop (free) or a chain of
//! positions (bounded) over one gadget: the trie of a JSON character (see
//! `lower/char_trie.rs`). Where the NFA set of a DFA state is such a gadget's root and
//! nothing else that reads text, the tokens a mask takes depend only on the
//! room left in the string, so the constraint can take them by length
//! ([`crate::vocab::StringChars`]) instead of looking for a run through the
//! DFA, and far positions of a long string can share one mask.
//!
//! Positions are recognised by structure in the built NFA, never by the
//! builder's state numbering: a union whose first branch is a subgraph equal
//! to the character trie, leading back to the union (free) or on to the next
//! position's union (bounded, same exit), the last position leading to the
//! exit itself, an exit that reads only the closing quote.

use std::collections::HashMap;

use regex_automata::nfa::thompson::{State, NFA};
use regex_automata::util::primitives::StateID;

use super::lower::{any_char_trie, TrieEdge};

/// Where a character gadget's root sits in its string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Characters the string may still take ([`u32::MAX`]: no bound).
    pub room: u32,
    /// The string (its last position's union, or a free loop's union).
    pub chain: StateID,
}

/// Every string position of an NFA, by the root of its character gadget.
#[derive(Debug, Clone)]
pub struct StringBodies {
    positions: HashMap<StateID, Position>,
    /// Roots from which every string of whole characters stays alive, each a free position:
    /// every loop over the character gadget, found by structure, whatever follows the loop (a
    /// free string, and the `.*` that an unanchored pattern starts or ends with), and the roots
    /// the lowering marks ([`Self::with_free_roots`]: a key complement's gaps).
    free: HashMap<StateID, Position>,
    /// States of a pattern product that counts characters, with the characters of text they
    /// surely take and the most they may ([`Self::with_rooms`]).
    rooms: HashMap<StateID, (u32, u32)>,
    /// [`crate::bytes::json_text_first_bytes`], once per grammar.
    text_first: crate::bytes::ByteSet,
}

impl StringBodies {
    /// Scans an NFA for free and bounded string bodies.
    pub fn find(nfa: &NFA) -> Self {
        let trie = any_char_trie();
        // Union → (gadget root, where the gadget leads, the union's exit).
        let mut gadgets: HashMap<StateID, (StateID, StateID, StateID)> = HashMap::new();
        for (i, state) in nfa.states().iter().enumerate() {
            if let State::BinaryUnion { alt1, alt2 } = state {
                if let Some(target) = gadget_target(nfa, &trie.nodes, *alt1) {
                    gadgets.insert(StateID::new_unchecked(i), (*alt1, target, *alt2));
                }
            }
        }
        let mut positions = HashMap::new();
        let mut free = HashMap::new();
        for (&union, &(root, target, exit)) in &gadgets {
            if target == union {
                // Any character leads back to the root, whatever comes after the loop.
                free.insert(root, Position { room: u32::MAX, chain: union });
            }
            if positions.contains_key(&root) || !reads_only_quote(nfa, exit) {
                continue;
            }
            if target == union {
                positions.insert(root, Position { room: u32::MAX, chain: union });
                continue;
            }
            // Follow the chain down to its last position, then number the rooms back up.
            let mut chain = vec![(union, root)];
            let mut at = target;
            let last = loop {
                if at == exit {
                    break Some(chain.last().expect("one position at least").0);
                }
                match gadgets.get(&at) {
                    Some(&(next_root, next_target, next_exit)) if next_exit == exit && chain.len() < 1 << 20 => {
                        chain.push((at, next_root));
                        at = next_target;
                    }
                    _ => break None,
                }
            };
            let Some(last) = last else { continue };
            for (k, &(_, root)) in chain.iter().rev().enumerate() {
                positions.insert(root, Position { room: k as u32 + 1, chain: last });
            }
        }
        Self { positions, free, rooms: HashMap::new(), text_first: crate::bytes::json_text_first_bytes() }
    }

    /// Adds roots from which every string of whole characters stays alive, though they are
    /// no loop (found in the built NFA from the lowering's marks).
    pub(crate) fn with_free_roots(mut self, roots: impl IntoIterator<Item = StateID>) -> Self {
        self.free.extend(roots.into_iter().map(|root| (root, Position { room: u32::MAX, chain: root })));
        self
    }

    /// Adds the states the lowering marks with rooms (a pattern product that counts
    /// characters): every string of text that starts at most the first many characters keeps
    /// them alive, and every one that starts more than the second kills them.
    pub(crate) fn with_rooms(mut self, roots: impl IntoIterator<Item = (StateID, (u32, u32))>) -> Self {
        self.rooms.extend(roots);
        self
    }

    /// The rooms of a marked state ([`Self::with_rooms`]): what it surely takes, and the most.
    pub fn room(&self, state: StateID) -> Option<(u32, u32)> {
        self.rooms.get(&state).copied()
    }

    /// The bytes a character of a string body can start with.
    pub fn text_first(&self) -> &crate::bytes::ByteSet {
        &self.text_first
    }

    /// The position a gadget root stands for.
    pub fn position(&self, root: StateID) -> Option<Position> {
        self.positions.get(&root).copied()
    }

    /// The free position a root stands for, if it is one ([`Self::free`]).
    pub fn free_root(&self, root: StateID) -> Option<Position> {
        self.free.get(&root).copied()
    }

    /// Whether no string body was found.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty() && self.free.is_empty() && self.rooms.is_empty()
    }
}

/// When the subgraph from `root` is the character trie (same transitions, node for
/// node, every end leading to one state), that state.
fn gadget_target(nfa: &NFA, nodes: &[Vec<TrieEdge>], root: StateID) -> Option<StateID> {
    // Most unions are not strings: turn them away before allocating.
    match (nfa.state(root), nodes.last()) {
        (State::Sparse(s), Some(top)) if s.transitions.len() == top.len() => {}
        _ => return None,
    }
    let mut mapped: Vec<Option<StateID>> = vec![None; nodes.len()];
    let mut target = None;
    let mut stack = vec![(nodes.len().checked_sub(1)?, root)];
    while let Some((node, state)) = stack.pop() {
        match mapped[node] {
            Some(seen) if seen == state => continue,
            Some(_) => return None,
            None => mapped[node] = Some(state),
        }
        let trans: Vec<(u8, u8, StateID)> = match nfa.state(state) {
            State::Sparse(s) => s.transitions.iter().map(|t| (t.start, t.end, t.next)).collect(),
            State::ByteRange { trans } => vec![(trans.start, trans.end, trans.next)],
            _ => return None,
        };
        if trans.len() != nodes[node].len() {
            return None;
        }
        for (&(start, end, child), &(s, e, next)) in nodes[node].iter().zip(&trans) {
            if (start, end) != (s, e) {
                return None;
            }
            match child {
                Some(child) => stack.push((child, next)),
                None if target.is_none_or(|t| t == next) => target = Some(next),
                None => return None,
            }
        }
    }
    target
}

/// Whether `state` reads the closing quote and nothing else.
fn reads_only_quote(nfa: &NFA, state: StateID) -> bool {
    matches!(nfa.state(state), State::ByteRange { trans } if trans.start == b'"' && trans.end == b'"')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::automaton::Grammar;
    use crate::schema::CompileOptions;

    fn bodies(schema: serde_json::Value) -> Vec<Position> {
        let g = Grammar::compile(&schema, &CompileOptions::default()).unwrap();
        let mut p: Vec<Position> = g.strings.positions.values().copied().collect();
        p.sort_by_key(|p| p.room);
        p
    }

    #[test]
    fn free_and_bounded_strings_are_found_with_their_rooms() {
        let free = bodies(serde_json::json!({"type": "string"}));
        assert_eq!(free.len(), 1);
        assert_eq!(free[0].room, u32::MAX);
        let bounded = bodies(serde_json::json!({"type": "string", "minLength": 2, "maxLength": 5}));
        assert_eq!(bounded.iter().map(|p| p.room).collect::<Vec<_>>(), vec![1, 2, 3]);
        // A pattern's string is not a plain gadget chain.
        assert!(bodies(serde_json::json!({"type": "string", "pattern": "^[a-z]{0,5}$"})).is_empty());
    }

    #[test]
    fn an_unanchored_pattern_has_a_loop_on_each_open_side() {
        let loops = |schema| {
            let g = Grammar::compile(&schema, &CompileOptions::default()).unwrap();
            (g.strings.free.len(), g.strings.positions.len())
        };
        // `.*ab.*`: the loop before `ab`, and the free string after it.
        assert_eq!(loops(serde_json::json!({"type": "string", "pattern": "ab"})), (2, 1));
        // `.*ab`: a loop that does not lead to the closing quote, so no position.
        assert_eq!(loops(serde_json::json!({"type": "string", "pattern": "ab$"})), (1, 0));
        assert_eq!(loops(serde_json::json!({"type": "string", "pattern": "^ab$"})), (0, 0));
    }

    #[test]
    fn a_key_other_than_the_declared_names_has_marked_roots() {
        // The free roots beyond the loops the structure alone finds: the marked ones.
        let universal = |schema| {
            let g = Grammar::compile(&schema, &CompileOptions::default()).unwrap();
            g.strings.free.len() - StringBodies::find(g.dfa().get_nfa()).free.len()
        };
        let names = serde_json::json!({"name": {"type": "integer"}, "names": {"type": "integer"}});
        // One root per node of the names' character trie (`n`, `a`, `m`, `e`, `s` and the
        // end), for each place another key may take: found in the built NFA, not dropped.
        let open = universal(serde_json::json!({"type": "object", "properties": names}));
        assert!(open >= 6 && open % 6 == 0, "{open}");
        // No other key: no complement.
        assert_eq!(universal(serde_json::json!({"type": "object", "properties": names, "additionalProperties": false})), 0);
    }

    #[test]
    fn a_pattern_product_that_counts_marks_its_rooms() {
        let g = Grammar::compile(
            &serde_json::json!({"type": "string", "pattern": "[a-z]+", "minLength": 3, "maxLength": 20}),
            &CompileOptions::default(),
        )
        .unwrap();
        let mut rooms: Vec<u32> = g.strings.rooms.values().map(|&(sure, _)| sure).filter(|&sure| sure > 0).collect();
        rooms.sort_unstable();
        rooms.dedup();
        // Before a letter, at the start, any text of 19 characters (the 20th must be a
        // letter); after one, any text up to the end: 19 after the first character, down to 1.
        assert_eq!(rooms, (1..=19).collect::<Vec<u32>>());
    }

    #[test]
    fn pattern_products_mark_the_states_no_text_can_kill() {
        let marked = |schema| {
            let g = Grammar::compile(&schema, &CompileOptions::default()).unwrap();
            g.strings.free.len() - StringBodies::find(g.dfa().get_nfa()).free.len()
        };
        // A string other than some words: every state of the product, the start included.
        assert!(marked(serde_json::json!({"type": "string", "not": {"enum": ["none", "all", "hacks"]}})) >= 5);
        // `a` then anything, at least three characters: the states after the `a`.
        assert!(marked(serde_json::json!({"type": "string", "pattern": "^a", "minLength": 3})) >= 1);
        // Counted up to `maxLength`: enough text always kills it.
        assert_eq!(marked(serde_json::json!({"type": "string", "pattern": "^[a-z ]+$", "maxLength": 5})), 0);
        // Only digits: a letter kills it.
        assert_eq!(marked(serde_json::json!({"type": "string", "pattern": "^[0-9]+$", "minLength": 2})), 0);
    }
}
