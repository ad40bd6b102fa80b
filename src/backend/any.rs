//! [`AnyBackend`]: one of the backends, chosen at run time.
//!
//! The [`Backend`] trait uses `async fn`, so it is not object-safe; an enum stands in for
//! `dyn Backend`. A router over an `AnyBackend` is a `Router<AnyBackend>` whatever the flag
//! or the config chose.

use serde::Deserialize;

use super::{Backend, BackendError, NoModel, Reply, SchemaSpec};
use crate::chat::ChatMessage;

/// Which backend routes the messages: `--backend local|openai|examples`, or `kind` under
/// `[backend]` in the routing config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The GGUF model, decoding under the token mask (feature `local`).
    #[default]
    Local,
    /// An OpenAI-compatible server (feature `openai`).
    OpenAi,
    /// No model: the examples' vote routes every message.
    Examples,
}

impl BackendKind {
    /// The name the flag and the config use.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Local => "local",
            BackendKind::OpenAi => "openai",
            BackendKind::Examples => "examples",
        }
    }
}

impl std::str::FromStr for BackendKind {
    type Err = String;

    /// ```
    /// use strictly::backend::BackendKind;
    /// assert_eq!("openai".parse::<BackendKind>(), Ok(BackendKind::OpenAi));
    /// assert!("gpt".parse::<BackendKind>().unwrap_err().contains("local, openai or examples"));
    /// ```
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(BackendKind::Local),
            "openai" => Ok(BackendKind::OpenAi),
            "examples" => Ok(BackendKind::Examples),
            other => Err(format!("backend `{other}` is not one of local, openai or examples")),
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Any backend, chosen at run time.
pub enum AnyBackend {
    /// The GGUF model under the token mask.
    #[cfg(feature = "local")]
    Local(super::local::LocalBackend),
    /// An OpenAI-compatible server.
    #[cfg(feature = "openai")]
    OpenAi(super::openai::OpenAiBackend),
    /// No model (the examples' vote decides).
    None(NoModel),
}

impl AnyBackend {
    /// Which kind this is.
    pub fn kind(&self) -> BackendKind {
        match self {
            #[cfg(feature = "local")]
            AnyBackend::Local(_) => BackendKind::Local,
            #[cfg(feature = "openai")]
            AnyBackend::OpenAi(_) => BackendKind::OpenAi,
            AnyBackend::None(_) => BackendKind::Examples,
        }
    }
}

#[cfg(feature = "local")]
impl From<super::local::LocalBackend> for AnyBackend {
    fn from(b: super::local::LocalBackend) -> Self {
        AnyBackend::Local(b)
    }
}

#[cfg(feature = "openai")]
impl From<super::openai::OpenAiBackend> for AnyBackend {
    fn from(b: super::openai::OpenAiBackend) -> Self {
        AnyBackend::OpenAi(b)
    }
}

impl From<NoModel> for AnyBackend {
    fn from(b: NoModel) -> Self {
        AnyBackend::None(b)
    }
}

impl Backend for AnyBackend {
    fn name(&self) -> &str {
        match self {
            #[cfg(feature = "local")]
            AnyBackend::Local(b) => b.name(),
            #[cfg(feature = "openai")]
            AnyBackend::OpenAi(b) => b.name(),
            AnyBackend::None(b) => b.name(),
        }
    }

    fn model(&self) -> &str {
        match self {
            #[cfg(feature = "local")]
            AnyBackend::Local(b) => b.model(),
            #[cfg(feature = "openai")]
            AnyBackend::OpenAi(b) => b.model(),
            AnyBackend::None(b) => b.model(),
        }
    }

    fn asks_model(&self) -> bool {
        match self {
            #[cfg(feature = "local")]
            AnyBackend::Local(b) => b.asks_model(),
            #[cfg(feature = "openai")]
            AnyBackend::OpenAi(b) => b.asks_model(),
            AnyBackend::None(b) => b.asks_model(),
        }
    }

    fn runs_inline(&self) -> bool {
        match self {
            #[cfg(feature = "local")]
            AnyBackend::Local(b) => b.runs_inline(),
            #[cfg(feature = "openai")]
            AnyBackend::OpenAi(b) => b.runs_inline(),
            AnyBackend::None(b) => b.runs_inline(),
        }
    }

    async fn complete(&self, messages: &[ChatMessage], schema: &SchemaSpec) -> Result<Reply, BackendError> {
        match self {
            #[cfg(feature = "local")]
            AnyBackend::Local(b) => b.complete(messages, schema).await,
            #[cfg(feature = "openai")]
            AnyBackend::OpenAi(b) => b.complete(messages, schema).await,
            AnyBackend::None(b) => b.complete(messages, schema).await,
        }
    }
}
