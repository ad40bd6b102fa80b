//! strictly: JSON-Schema-constrained decoding with local models, and the support routing built
//! on it.
//!
//! # The pipeline
//!
//! A schema becomes a token mask at every decoding step; a message becomes a Kommunicate
//! action. Each layer imports only the layers above it in this list:
//!
//! ```text
//!  bytes       ByteSet: sets of bytes, and which bytes a JSON string holds unescaped
//!    │
//!  vocab       a tokenizer's tokens as exact bytes; the byte trie; TokenSet (a mask)
//!    │
//!  schema      JSON Schema → typed IR (drafts 04–2020-12, $ref, allOf merged, not negated);
//!    │         what cannot be enforced exactly is an error naming keyword and JSON pointer
//!  automaton   IR → byte-level NFA → lazy DFA (regex-automata): the Grammar
//!    │
//!  constraint  Grammar × vocabulary → TokenAutomaton (masks cached per DFA state);
//!    │         Constraint: one generation's cursor, with the token budget
//!  decode      masked sampling over a local GGUF model (candle), forced bytes fast-forwarded
//!    │
//!  backend     the Backend trait: local decoding, or a remote OpenAI-compatible API
//!    │
//!  routing     config → deployment schema and prompt; example phrases voted by meaning;
//!    │         rules → Decision → Kommunicate payload and audit line (Router)
//!  store       the decision record, webhook keys and corrections: files, or PostgreSQL
//!    │
//!  serve       HTTP: Kommunicate's webhook, /v1/route, OpenAI-compatible endpoints, metrics
//! ```
//!
//! Beside them: `tokenizer` and `chat` (the GGUF tokenizer and chat templates), `model` (the
//! resolver and the forward pass), `encoder` (the sentence encoder), the MaskBench coverage run
//! (`coverage`, engine only), and behind the `harness` feature the routing evaluation (`eval`)
//! and the fitting of the examples' vote to labelled messages (`tune`).
//!
//! # From schema to mask to value
//!
//! ```
//! use std::sync::Arc;
//! use strictly::automaton::Grammar;
//! use strictly::constraint::{Constraint, TokenAutomaton};
//! use strictly::schema::CompileOptions;
//! use strictly::vocab::Vocabulary;
//!
//! // 1. The schema compiles to a byte-level grammar.
//! let schema = serde_json::json!({"type": "object", "properties": {"ok": {"type": "boolean"}},
//!                                 "required": ["ok"], "additionalProperties": false});
//! let grammar = Grammar::compile(&schema, &CompileOptions::default())?;
//!
//! // 2. Joined with a vocabulary (here six tokens and an end-of-sequence token).
//! let tokens: [&[u8]; 6] = [b"{\"ok\":", b"true", b"false", b"}", b"{", b"null"];
//! let vocab = Vocabulary::from_token_bytes(
//!     tokens.iter().map(|t| Some(t.to_vec())).chain([None]).collect(), Some(6));
//! let automaton = Arc::new(TokenAutomaton::new(grammar, Arc::new(vocab)));
//!
//! // 3. A generation's cursor: at each step the mask says which tokens may come next.
//! let mut c = Constraint::new(automaton);
//! let mask = c.mask()?;
//! assert!(mask.contains(0) && mask.contains(4) && !mask.contains(1) && !mask.contains(6));
//! c.advance(0)?;                                   // {"ok":
//! assert!(!c.mask()?.contains(5));                 // null is not a boolean
//! c.advance(2)?;                                   // false
//! assert_eq!(c.forced_bytes()?, b"}");             // the only way on: fed without sampling
//! c.advance(3)?;
//! assert!(c.is_accepting()?);                      // {"ok":false}
//! assert!(c.mask()?.contains(6));                  // now the end of sequence is allowed
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Route a message
//!
//! ```
//! use strictly::backend::NoModel;
//! use strictly::routing::{Action, Router, RoutingConfig};
//!
//! let config = RoutingConfig::load("config/routing.example.toml")?;
//! // No model: the example phrases vote, matched by shared words (`.encoder(..)`: by meaning).
//! let router = Router::builder(config).backend(NoModel).words_only().no_audit().build()?;
//! let routed = router.route_blocking("I was charged twice, I want a refund", None)?;
//! assert_eq!(routed.decision.action, Action::HandoffTeam);
//! # Ok::<(), strictly::Error>(())
//! ```
//!
//! A router over a model ([`backend::local::LocalBackend`], or an OpenAI-compatible server)
//! asks it what the examples leave open; [`routing::Router::route`] is the async form.
//! Every fallible step converts into [`Error`].
//!
//! # Glossary
//!
//! - **state**: a state of the grammar's lazy DFA; every mask is cached by it.
//! - **run**: bytes that all lead a state the same way for some length (the plain characters
//!   inside a string); the tokens made of run bytes alone are taken as one bitset.
//! - **split**: the vocabulary divided by a run: the tokens the run takes whole, and a trie
//!   of the rest that is still walked.
//! - **plan**: how a state's first mask is made (a string body's text tokens by room, a walk
//!   of a few live bytes, a run, or a head into a loop).
//! - **live bytes**: the bytes a state does not reject, read off its NFA state set; a walk
//!   *guided* by them steps the set along the live children of each trie node and builds
//!   no DFA state for the prefixes it passes.
//! - **forced bytes**: the bytes that are the only way on from a state; the decoder feeds
//!   their tokens without sampling.
//! - **budget**: the tokens left under the cap; the constraint keeps room to close the value,
//!   and a schema whose shortest completion does not fit is an error, never a cut-off value.
//! - **branch point**: an output offset where the mask allowed several tokens; their
//!   probabilities give the router its confidence.
//! - **ballot**: the example phrases' vote on a message: the route, its **confidence** (the
//!   winner's share of the weight) and its **support** (how near the nearest phrases are).
//! - **decision**: what the rules make of the model's output and the ballot: an action, a
//!   target and the rules that fired, audited.

#![warn(missing_docs)]

pub mod automaton;
pub mod backend;
pub mod bytes;
pub mod chat;
pub mod constraint;
#[cfg(feature = "local")]
pub mod decode;
#[cfg(feature = "local")]
pub mod encoder;
mod error;
pub mod model;
pub mod pattern;
pub mod routing;
pub mod schema;
#[cfg(feature = "serve")]
pub mod serve;
#[cfg(feature = "store")]
pub mod store;
pub mod tokenizer;
pub mod vocab;

pub use error::Error;

#[cfg(feature = "harness")]
pub mod ab;
pub mod coverage;
#[cfg(feature = "harness")]
pub mod eval;
#[cfg(feature = "harness")]
pub mod tune;
