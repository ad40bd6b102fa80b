//! strictly: JSON-Schema-constrained decoding and support routing.

pub mod schema;
pub mod automaton;
pub mod vocab;
pub mod constraint;
pub mod tokenizer;
pub mod coverage;
pub mod model;
pub mod chat;
pub mod backend;
#[cfg(feature = "local")]
pub mod decode;
#[cfg(feature = "local")]
pub mod encoder;

pub mod routing;
pub mod rules;
pub mod kommunicate;
pub mod audit;
pub mod route;
pub mod eval;
#[cfg(feature = "serve")]
pub mod serve;
#[cfg(feature = "harness")]
pub mod ab;
