//! Nearest example phrases by meaning: the cosine similarity of sentence embeddings
//! ([`SentenceEncoder`]), where [`retrieve`](super::retrieve) compares words.
//!
//! The phrases are embedded once, when the index is built (a few hundred phrases take about a
//! second on 2 cores); a query costs one encoder pass over the message and a dot product per
//! phrase.

use std::sync::Arc;

use crate::encoder::{EncoderError, SentenceEncoder};

/// An immutable index of phrase embeddings.
#[derive(Debug, Clone)]
pub(crate) struct SemanticIndex {
    encoder: Arc<SentenceEncoder>,
    dim: usize,
    /// Row-major: one unit vector of `dim` per phrase.
    matrix: Vec<f32>,
}

impl SemanticIndex {
    /// Embeds `texts` with `encoder`.
    pub(crate) fn new<S: AsRef<str>>(encoder: Arc<SentenceEncoder>, texts: &[S]) -> Result<Self, EncoderError> {
        let dim = encoder.dim();
        let matrix = encoder.embed(texts)?.concat();
        Ok(Self { encoder, dim, matrix })
    }

    /// Every phrase's cosine with the query, in position order.
    pub(crate) fn similarities(&self, query: &str) -> Result<Vec<f32>, EncoderError> {
        let q = self.encoder.embed_one(query)?;
        Ok(self.matrix.chunks_exact(self.dim).map(|p| crate::encoder::cosine(&q, p)).collect())
    }
}
