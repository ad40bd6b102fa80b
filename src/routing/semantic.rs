//! Nearest example phrases by meaning: the cosine similarity of sentence embeddings
//! ([`SentenceEncoder`]), where [`retrieve`](super::retrieve) compares words.
//!
//! The phrases are embedded once, when the index is built (a few hundred phrases take a few
//! seconds on 2 cores), and cached on disk keyed by the encoder's weights and the phrases; a query costs one encoder pass over the message and a dot product per
//! phrase.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest, Sha256};

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
    /// Embeds `texts` with `encoder`, or reads their embeddings from the cache
    /// (`models/embeddings/`, keyed by the weights and the texts), and writes the cache after
    /// embedding. A cache that cannot be read or written is only a slower start.
    pub(crate) fn new<S: AsRef<str>>(encoder: Arc<SentenceEncoder>, texts: &[S]) -> Result<Self, EncoderError> {
        let dim = encoder.dim();
        let path = cache_path(&encoder, texts);
        if let Some(matrix) = read_cache(&path, texts.len() * dim) {
            return Ok(Self { encoder, dim, matrix });
        }
        let matrix = encoder.embed(texts)?.concat();
        write_cache(&path, &matrix);
        Ok(Self { encoder, dim, matrix })
    }

    /// [`new`](Self::new), with the embeddings of phrases the `cache` holds taken from it (a
    /// reload re-embeds only the phrases that changed). An empty cache is filled from the disk
    /// cache (or the encoder); afterwards it holds exactly `texts`. Returns the index and how
    /// many phrases were embedded now (0 when every one was cached).
    pub(crate) fn cached<S: AsRef<str>>(
        encoder: Arc<SentenceEncoder>,
        texts: &[S],
        cache: &EmbeddingCache,
    ) -> Result<(Self, usize), EncoderError> {
        let mut map = cache.map.lock().unwrap_or_else(PoisonError::into_inner);
        let dim = encoder.dim();
        if map.is_empty() {
            let path = cache_path(&encoder, texts);
            let (matrix, embedded) = match read_cache(&path, texts.len() * dim) {
                Some(m) => (m, 0),
                None => {
                    let m = encoder.embed(texts)?.concat();
                    write_cache(&path, &m);
                    (m, texts.len())
                }
            };
            for (t, row) in texts.iter().zip(matrix.chunks_exact(dim)) {
                map.insert(t.as_ref().to_owned(), row.into());
            }
            return Ok((Self { encoder, dim, matrix }, embedded));
        }
        let mut missing: Vec<&str> = texts.iter().map(AsRef::as_ref).filter(|t| !map.contains_key(*t)).collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            for (t, row) in missing.iter().zip(encoder.embed(&missing)?) {
                map.insert((*t).to_owned(), row.into());
            }
        }
        let matrix: Vec<f32> = texts.iter().flat_map(|t| map[t.as_ref()].iter().copied()).collect();
        let keep: std::collections::HashSet<&str> = texts.iter().map(AsRef::as_ref).collect();
        map.retain(|t, _| keep.contains(t.as_str()));
        Ok((Self { encoder, dim, matrix }, missing.len()))
    }

    /// Every phrase's cosine with the query, in position order.
    pub(crate) fn similarities(&self, query: &str) -> Result<Vec<f32>, EncoderError> {
        Ok(self.cosines(&self.encoder.embed_one(query)?))
    }

    /// Every phrase's cosine with an embedding the caller made with [`encoder`](Self::encoder),
    /// in position order.
    pub(crate) fn cosines(&self, embedding: &[f32]) -> Vec<f32> {
        self.matrix.chunks_exact(self.dim).map(|p| crate::encoder::cosine(embedding, p)).collect()
    }

    /// The encoder the phrases were embedded with.
    pub(crate) fn encoder(&self) -> &SentenceEncoder {
        &self.encoder
    }
}

/// Phrase embeddings by text, kept across rebuilds of a router's vote.
#[derive(Debug, Default)]
pub(crate) struct EmbeddingCache {
    map: Mutex<HashMap<String, Arc<[f32]>>>,
}

impl EmbeddingCache {
    /// The cached embedding of `text`.
    pub(crate) fn get(&self, text: &str) -> Option<Arc<[f32]>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner).get(text).cloned()
    }
}

/// `models/embeddings/<sha256 of the weights' fingerprint and the texts>.f32`.
fn cache_path<S: AsRef<str>>(encoder: &SentenceEncoder, texts: &[S]) -> PathBuf {
    let mut h = Sha256::new();
    h.update(encoder.fingerprint().as_bytes());
    for t in texts {
        h.update((t.as_ref().len() as u64).to_le_bytes());
        h.update(t.as_ref().as_bytes());
    }
    let key: String = h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect();
    crate::model::resolve::cache_dir().join("embeddings").join(format!("{key}.f32"))
}

/// Little-endian f32s, exactly `len` of them, or nothing.
fn read_cache(path: &Path, len: usize) -> Option<Vec<f32>> {
    let bytes = std::fs::read(path).ok()?;
    (bytes.len() == len * 4).then(|| bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// Writes through a temporary file and a rename, so a reader never sees half a cache.
fn write_cache(path: &Path, matrix: &[f32]) {
    let Some(dir) = path.parent() else { return };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let bytes: Vec<u8> = matrix.iter().flat_map(|v| v.to_le_bytes()).collect();
    let written = std::fs::create_dir_all(dir).and_then(|_| std::fs::write(&tmp, bytes)).and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        tracing::debug!("phrase embeddings not cached at {}: {e}", path.display());
        let _ = std::fs::remove_file(&tmp);
    }
}
