//! [`RouterBuilder`]: the one way to make a [`Router`], every input named.
//!
//! A router needs a backend, a way to match the example phrases (a sentence encoder, or words
//! only, said out loud: matching by words is right about half as often on human-phrased
//! messages), and an audit (a log file, or none). Leaving one out is an error that says what
//! to call, never a silent default.

use std::path::PathBuf;
use std::sync::Arc;

use super::{RouteError, Router};
use crate::backend::Backend;
use crate::routing::audit::AuditLog;
use crate::routing::config::RoutingConfig;

/// A backend not chosen yet: [`RouterBuilder::backend`] sets one.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBackend;

/// How the example phrases are matched to a message.
enum Matching {
    Unset,
    WordsOnly,
    #[cfg(feature = "local")]
    Meaning(Arc<crate::encoder::SentenceEncoder>),
}

/// Where the router writes its audit lines.
enum AuditChoice {
    Unset,
    None,
    Path(PathBuf),
    Log(AuditLog),
}

/// Where a router's audit lines go: a log file's path (opened, or created, at
/// [`RouterBuilder::build`]) or an [`AuditLog`] already open.
pub struct AuditTarget(AuditChoice);

impl From<PathBuf> for AuditTarget {
    fn from(path: PathBuf) -> Self {
        AuditTarget(AuditChoice::Path(path))
    }
}

impl From<&std::path::Path> for AuditTarget {
    fn from(path: &std::path::Path) -> Self {
        AuditTarget(AuditChoice::Path(path.to_path_buf()))
    }
}

impl From<AuditLog> for AuditTarget {
    fn from(log: AuditLog) -> Self {
        AuditTarget(AuditChoice::Log(log))
    }
}

/// Builds a [`Router`]: [`Router::builder`], then [`backend`](Self::backend), then
/// [`encoder`](Self::encoder) or [`words_only`](Self::words_only), then
/// [`audit`](Self::audit) or [`no_audit`](Self::no_audit), then [`build`](Self::build).
///
/// ```
/// use strictly::backend::NoModel;
/// use strictly::routing::{Router, RoutingConfig};
///
/// let config = RoutingConfig::load("config/routing.example.toml")?;
/// // The config's vote matches phrases: without an encoder, words-only must be asked for.
/// let unsaid = Router::builder(config.clone()).backend(NoModel).no_audit().build();
/// assert!(unsaid.err().unwrap().to_string().contains("words_only"));
/// let router = Router::builder(config).backend(NoModel).words_only().no_audit().build()?;
/// assert!(router.audit_log().is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct RouterBuilder<B> {
    config: RoutingConfig,
    backend: B,
    matching: Matching,
    audit: AuditChoice,
}

impl<B> RouterBuilder<B> {
    pub(super) fn new(config: RoutingConfig, backend: B) -> Self {
        RouterBuilder { config, backend, matching: Matching::Unset, audit: AuditChoice::Unset }
    }

    /// The backend the router asks: a [`LocalBackend`](crate::backend::local::LocalBackend),
    /// an OpenAI-compatible server, [`AnyBackend`](crate::backend::AnyBackend), or
    /// [`NoModel`](crate::backend::NoModel) for a router that asks no model (the examples'
    /// vote routes every message, in microseconds).
    pub fn backend<C: Backend>(self, backend: C) -> RouterBuilder<C> {
        RouterBuilder { config: self.config, backend, matching: self.matching, audit: self.audit }
    }

    /// Matches messages to the example phrases by meaning, with this sentence encoder: the
    /// vote and the few-shot examples it retrieves use its embeddings. The phrases are
    /// embedded at [`build`](Self::build), once.
    #[cfg(feature = "local")]
    pub fn encoder(mut self, encoder: Arc<crate::encoder::SentenceEncoder>) -> Self {
        self.matching = Matching::Meaning(encoder);
        self
    }

    /// Matches messages to the example phrases by shared words and trigrams only, without a
    /// sentence encoder (less accurate on messages phrased unlike the examples).
    pub fn words_only(mut self) -> Self {
        self.matching = Matching::WordsOnly;
        self
    }

    /// Appends one audit line per routed message (flushed and synced) to this log: a path
    /// (for the config's own, `config.audit.path.clone()`) or an open [`AuditLog`].
    pub fn audit(mut self, to: impl Into<AuditTarget>) -> Self {
        self.audit = to.into().0;
        self
    }

    /// Writes no audit line: the caller keeps the record (the service's store does).
    pub fn no_audit(mut self) -> Self {
        self.audit = AuditChoice::None;
        self
    }
}

impl<B: Backend> RouterBuilder<B> {
    /// The router. Fails when the audit log cannot be opened, when the encoder cannot embed
    /// the phrases, or when a choice was left unmade: the audit ([`audit`](Self::audit) or
    /// [`no_audit`](Self::no_audit)), and, when the router votes with the example phrases,
    /// how it matches them ([`encoder`](Self::encoder) or [`words_only`](Self::words_only)).
    pub fn build(self) -> Result<Router<B>, RouteError> {
        let audit = match self.audit {
            AuditChoice::Unset => return Err(RouteError::Incomplete("no audit chosen: call .audit(path) or .no_audit()")),
            AuditChoice::None => None,
            AuditChoice::Path(path) => Some(AuditLog::open(&path)?),
            AuditChoice::Log(log) => Some(log),
        };
        #[cfg_attr(not(feature = "local"), allow(unused_mut))]
        let mut router = Router::over(self.config, Arc::new(self.backend), audit);
        match self.matching {
            Matching::Unset if router.votes() => Err(RouteError::Incomplete(UNSET_MATCHING)),
            Matching::Unset | Matching::WordsOnly => Ok(router),
            #[cfg(feature = "local")]
            Matching::Meaning(encoder) => {
                router.set_encoder(encoder)?;
                Ok(router)
            }
        }
    }
}

#[cfg(feature = "local")]
const UNSET_MATCHING: &str =
    "the example phrases vote on this config's messages, but no matching was chosen: call .encoder(encoder) to match them by meaning, or .words_only()";
#[cfg(not(feature = "local"))]
const UNSET_MATCHING: &str =
    "the example phrases vote on this config's messages, but no matching was chosen: call .words_only() (this build has no sentence encoder)";
