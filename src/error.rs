//! [`Error`]: one error type for a library user, over every module's own.
//!
//! Each layer keeps its precise error ([`SchemaError`](crate::schema::SchemaError),
//! [`RouteError`](crate::routing::RouteError), ...), and each converts into [`Error`] with `?`,
//! unchanged: each variant is transparent (the same message, the same
//! [`source`](std::error::Error::source) chain down to the cause).
//!
//! ```
//! use strictly::automaton::Grammar;
//! use strictly::schema::CompileOptions;
//!
//! fn compile(schema: &serde_json::Value) -> Result<Grammar, strictly::Error> {
//!     Ok(Grammar::compile(schema, &CompileOptions::default())?)
//! }
//! let err = compile(&serde_json::json!({"type": "string", "pattern": "(?=lookahead)"})).unwrap_err();
//! assert!(matches!(err, strictly::Error::Schema(_)));
//! assert!(err.to_string().contains("pattern"), "{err}");
//! ```

/// Anything a public entry point of strictly can fail with. New variants may come.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A JSON Schema cannot be enforced exactly (the keyword and the JSON pointer are named).
    #[error(transparent)]
    Schema(#[from] crate::schema::SchemaError),
    /// A tokenizer's vocabulary cannot be used.
    #[error(transparent)]
    Vocab(#[from] crate::vocab::VocabError),
    /// A generation's constraint refused a step.
    #[error(transparent)]
    Constraint(#[from] crate::constraint::ConstraintError),
    /// The GGUF file's tokenizer cannot be read.
    #[error(transparent)]
    Tokenizer(#[from] crate::tokenizer::TokenizerError),
    /// The model's chat template cannot be rendered.
    #[error(transparent)]
    Chat(#[from] crate::chat::ChatError),
    /// A model or encoder cannot be found.
    #[error(transparent)]
    Resolve(#[from] crate::model::resolve::ResolveError),
    /// The local model cannot load or run.
    #[cfg(feature = "local")]
    #[error(transparent)]
    Model(#[from] crate::model::local::ModelError),
    /// Decoding failed.
    #[cfg(feature = "local")]
    #[error(transparent)]
    Decode(#[from] crate::decode::DecodeError),
    /// The sentence encoder cannot load or embed.
    #[cfg(feature = "local")]
    #[error(transparent)]
    Encoder(#[from] crate::encoder::EncoderError),
    /// A backend call failed.
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    /// The routing config cannot be read or is invalid.
    #[error(transparent)]
    Config(#[from] crate::routing::ConfigError),
    /// The audit log cannot be opened or written.
    #[error(transparent)]
    Audit(#[from] crate::routing::audit::AuditError),
    /// A message cannot be routed, or a router cannot be built.
    #[error(transparent)]
    Route(#[from] crate::routing::RouteError),
    /// The decision store failed.
    #[cfg(feature = "store")]
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}
