//! Token-level constraint: a [`Grammar`] over a [`Vocabulary`].
//!
//! A [`TokenAutomaton`] is built once per (schema, vocabulary) and shared;
//! it caches, per DFA state, the mask of allowed tokens, the bytes the state
//! forces, and the distance to acceptance. A [`Constraint`] is one
//! generation's cursor over it.
//!
//! # Costs
//! Later visits to a state are a hash lookup. A state's first mask walks the
//! token trie from the state, pruning every subtree the automaton rejects,
//! and avoids the work that most first visits would otherwise repeat:
//! - the NFA set of the state says which bytes it does not reject, so neither
//!   the run search below nor the walk's first level asks the lazy DFA about a
//!   dead byte (outside strings 4-6 of 60-89 byte classes are live);
//! - a state that reads only a few bytes (a key's next letter, the punctuation
//!   between values; three first visits in four) is walked on its NFA set alone
//!   (`constraint/guided.rs`): the set is stepped along the live children of each trie node,
//!   so the walk builds no DFA state for the token prefixes it passes through, and
//!   hands over to the DFA walk only where the live bytes grow many (a string body);
//! - a string body at a character boundary (found in the NFA by structure, see
//!   `automaton::strings`) takes the vocabulary's text tokens of at
//!   most its room whole (plain bytes and UTF-8 text, precomputed by length)
//!   and walks only the 432 of SmolLM2's tokens that hold a quote, backslash,
//!   control byte or broken UTF-8; far from a long bounded string's end, where
//!   no token can reach the bound, its positions share one mask;
//! - elsewhere the state's *run* (the bytes that all lead one way, and how far)
//!   is found first: the tokens made of run bytes alone come as one bitset from
//!   the vocabulary ([`Vocabulary::run_split`]) and only the rest is walked; a
//!   run whose first byte leads into a loop (a key's first letter in an object
//!   that admits any key, the letter after a backslash) takes the loop's split.
//!
//! What remains is mostly the lazy DFA determinising the states the other walks
//! reach for the first time, and allocating each new mask.
//!
//! # The end of a value
//! The lazy DFA reports a match one byte late: the byte after a complete value leads
//! to a match state that holds no NFA state, not to the dead state.
//! [`TokenAutomaton`] treats that state as dead, so no token in a mask reads past
//! the end (`"ab",` for `"ab"`), while a top-level number can still take more digits. docs/benchmarks.md gives the
//! measured figures, first visits included.
//!
//! ```
//! use std::sync::Arc;
//! use strictly::{automaton::Grammar, constraint::{Constraint, TokenAutomaton}, schema::CompileOptions, vocab::Vocabulary};
//! let grammar = Grammar::compile(&serde_json::json!({"enum": ["yes", "no"]}), &CompileOptions::default()).unwrap();
//! let tokens = [&b"\"yes\""[..], b"\"", b"yes", b"no", b"\"no", b"maybe"];
//! let vocab = Vocabulary::from_token_bytes(tokens.iter().map(|t| Some(t.to_vec())).chain([None]).collect(), Some(6));
//! let automaton = Arc::new(TokenAutomaton::new(grammar, Arc::new(vocab)));
//! let mut c = Constraint::new(automaton);
//! let mask = c.mask().unwrap();
//! assert!(mask.contains(0) && mask.contains(1) && mask.contains(4) && !mask.contains(5) && !mask.contains(6));
//! c.advance(4).unwrap();               // "no
//! assert_eq!(c.forced_bytes().unwrap(), b"\"");
//! c.advance(1).unwrap();               // "
//! assert!(c.is_accepting().unwrap());
//! assert!(c.mask().unwrap().contains(6)); // EOS only now
//! ```

mod automaton;
pub mod cache;
mod cursor;
mod guided;
mod plan;
mod text;

pub use crate::vocab::TokenSet;
pub use automaton::{TokenAutomaton, MAX_CACHED_STATES};
pub use cache::{AutomatonCache, CacheStats};
pub use cursor::Constraint;

/// Errors of a constraint.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConstraintError {
    /// The token is not in the current mask.
    #[error("token {token} is not allowed here")]
    Disallowed {
        /// The token's id.
        token: u32,
    },
    /// The constraint has already accepted EOS; no token may follow.
    #[error("the generation is already finished")]
    Finished,
    /// A single step needs more DFA states than the lazy DFA's cache holds, even right after a clear.
    #[error("the automaton cache thrashes: a single step needs more states than the cache holds")]
    CacheThrash,
    /// [`Constraint::rollback`] was asked to undo more steps than were taken.
    #[error("cannot roll back {asked} steps: only {taken} were taken")]
    Rollback {
        /// The steps asked for.
        asked: usize,
        /// The steps taken so far.
        taken: usize,
    },
    /// The shortest completion cannot fit in the tokens left: the output
    /// would be cut off, so it is not produced (see [`Constraint::check_room`]).
    #[error(
        "the shortest valid completion needs at least {needed} more tokens ({bytes} bytes), but only {left} of the {cap}-token cap are left"
    )]
    TokenCap {
        /// The fewest tokens that can complete the value (a lower bound:
        /// its bytes over the longest token's).
        needed: usize,
        /// Bytes of the shortest completion.
        bytes: usize,
        /// Tokens left under the cap.
        left: usize,
        /// The cap.
        cap: usize,
    },
}
