//! Rebuilding a router over another config (a reload, learned phrases) without reloading its
//! backend or re-embedding the phrases it has embedded, and comparing texts as its vote does.

use super::{RouteError, Router};
use crate::backend::Backend;
use crate::routing::config::RoutingConfig;
#[cfg(feature = "local")]
use crate::routing::vote::ExampleVote;

impl<B: Backend> Router<B> {
    /// A router over `config` with this one's backend (shared, not reloaded), encoder and
    /// phrase embeddings: only phrases this router has not embedded are embedded (returned:
    /// how many). It writes no audit of its own.
    pub fn rebuild(&self, config: RoutingConfig) -> Result<(Router<B>, usize), RouteError> {
        #[cfg_attr(not(feature = "local"), allow(unused_mut))]
        let mut router = Self::over(config, self.backend.clone(), None);
        #[cfg(feature = "local")]
        {
            router.embeddings = self.embeddings.clone();
            if let Some(encoder) = &self.encoder {
                let embedded = router.set_encoder(encoder.clone())?;
                return Ok((router, embedded));
            }
        }
        Ok((router, 0))
    }

    /// Builds the vote over meaning with `encoder`; returns how many phrases were embedded.
    #[cfg(feature = "local")]
    pub(super) fn set_encoder(&mut self, encoder: std::sync::Arc<crate::encoder::SentenceEncoder>) -> Result<usize, RouteError> {
        self.encoder = Some(encoder.clone());
        if self.examples.is_none() {
            return Ok(0);
        }
        let (vote, embedded) = ExampleVote::with_encoder_cached(&self.config, encoder, &self.embeddings)?;
        self.examples = Some(vote);
        Ok(embedded)
    }

    /// How similar a text is to `text`, as the vote judges phrases: the cosine of their
    /// embeddings with an encoder (a phrase of this router's is not embedded again), the
    /// word-and-trigram similarity without one.
    pub fn similarity_to<'a>(&'a self, text: &str) -> Box<dyn Fn(&str) -> f32 + 'a> {
        #[cfg(feature = "local")]
        if let Some(encoder) = &self.encoder {
            let embed = move |t: &str| -> Option<std::sync::Arc<[f32]>> {
                self.embeddings.get(t).or_else(|| encoder.embed_one(t).ok().map(Into::into))
            };
            if let Some(target) = embed(text) {
                return Box::new(move |other| embed(other).map_or(0.0, |e| crate::encoder::cosine(&target, &e)));
            }
        }
        let text = text.to_owned();
        Box::new(move |other| crate::routing::retrieve::ExampleIndex::new([other]).similarities(&text)[0])
    }

    /// The sentence encoder the vote matches by meaning with, if any.
    #[cfg(feature = "local")]
    pub fn encoder(&self) -> Option<&std::sync::Arc<crate::encoder::SentenceEncoder>> {
        self.encoder.as_ref()
    }
}
