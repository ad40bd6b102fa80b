//! The sentence encoder: text in, a unit vector out, so that similar meanings are near.
//!
//! all-MiniLM-L6-v2 (a 6-layer BERT, 384 dimensions) runs on candle's tensors (`bert.rs`):
//! WordPiece ids from the model's own `tokenizer.json` (truncated to 256 tokens, as
//! sentence-transformers does for this model), the last hidden states mean-pooled over the
//! attention mask, then L2-normalised. The cosine similarity of two embeddings is their dot
//! product. `tests/routing/encoder.rs` checks the output against embeddings that sentence-transformers
//! itself produced (`benches/encoder/reference.py`).
//!
//! Cost on 2 cores: a short message embeds in a few milliseconds; a config's few hundred
//! phrases embed once, in batches sorted by length so padding stays small.
//!
//! ```no_run
//! use strictly::encoder::SentenceEncoder;
//!
//! let encoder = SentenceEncoder::load(&strictly::model::resolve::resolve_encoder(None)?)?;
//! let e = encoder.embed(&["my card was charged twice", "I was billed two times"])?;
//! assert!(strictly::encoder::cosine(&e[0], &e[1]) > 0.5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bert;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use tokenizers::{Tokenizer, TruncationParams};

use bert::{Bert, Config};

/// The longest input, in tokens; longer texts are cut (sentence-transformers' `max_seq_length`
/// for this model).
pub const MAX_TOKENS: usize = 256;

/// Texts embedded in one forward pass.
const BATCH: usize = 32;

/// Why the encoder could not load or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncoderError {
    /// A file of the encoder's folder cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `config.json` does not parse.
    #[error("cannot read {path}: {source}")]
    Config {
        /// The file's path.
        path: PathBuf,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// `tokenizer.json` does not load, or a text does not tokenize.
    #[error("the tokenizer failed: {0}")]
    Tokenizer(#[source] tokenizers::Error),
    /// candle failed to load the weights or run the model.
    #[error("the encoder failed: {0}")]
    Model(#[from] candle_core::Error),
}

/// A loaded sentence encoder. Cheap to share behind an `Arc`; `embed` takes `&self`.
pub struct SentenceEncoder {
    model: Bert,
    tokenizer: Tokenizer,
    dim: usize,
    /// A short fingerprint of the weights' checksum, for caches keyed by model.
    fingerprint: String,
}

impl std::fmt::Debug for SentenceEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceEncoder").field("dim", &self.dim).field("fingerprint", &self.fingerprint).finish()
    }
}

impl SentenceEncoder {
    /// Loads `model.safetensors`, `tokenizer.json` and `config.json` from `dir`
    /// (see [`crate::model::resolve::resolve_encoder`]).
    pub fn load(dir: &Path) -> Result<Self, EncoderError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| EncoderError::Read { path, source })
        };
        let config: Config = serde_json::from_slice(&read("config.json")?)
            .map_err(|source| EncoderError::Config { path: dir.join("config.json"), source })?;
        let mut tokenizer = Tokenizer::from_bytes(read("tokenizer.json")?).map_err(EncoderError::Tokenizer)?;
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(EncoderError::Tokenizer)?;
        tokenizer.with_padding(None);
        let weights = read("model.safetensors")?;
        let fingerprint = {
            use sha2::{Digest, Sha256};
            Sha256::digest(&weights).iter().take(8).map(|b| format!("{b:02x}")).collect()
        };
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)?;
        let model = Bert::load(vb, &config)?;
        Ok(Self { model, tokenizer, dim: config.hidden_size, fingerprint })
    }

    /// The embedding's length (384 for all-MiniLM-L6-v2).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// A short hex fingerprint of the weights, to key caches of embeddings.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The token ids the model sees for `text` (with `[CLS]` and `[SEP]`, truncated).
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, EncoderError> {
        let enc = self.tokenizer.encode(text, true).map_err(EncoderError::Tokenizer)?;
        Ok(enc.get_ids().to_vec())
    }

    /// One unit vector per text, in order. Texts are batched by length.
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>, EncoderError> {
        let ids: Vec<Vec<u32>> = texts.iter().map(|t| self.token_ids(t.as_ref())).collect::<Result<_, _>>()?;
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut out = vec![Vec::new(); ids.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
            for (&i, v) in chunk.iter().zip(self.forward(&batch)?) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// One text's unit vector.
    pub fn embed_one(&self, text: &str) -> Result<Vec<f32>, EncoderError> {
        let ids = self.token_ids(text)?;
        Ok(self.forward(&[&ids])?.pop().expect("one row per input"))
    }

    /// Mean-pooled, normalised embeddings of a padded batch.
    fn forward(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>, EncoderError> {
        let len = batch.iter().map(|b| b.len()).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(batch.len() * len);
        let mut mask = Vec::with_capacity(batch.len() * len);
        for b in batch {
            ids.extend(b.iter().copied().chain(std::iter::repeat_n(0, len - b.len())));
            mask.extend((0..len).map(|i| u32::from(i < b.len())));
        }
        let shape = (batch.len(), len);
        let ids = Tensor::from_vec(ids, shape, &Device::Cpu)?;
        let mask = Tensor::from_vec(mask, shape, &Device::Cpu)?;
        let hidden = self.model.forward(&ids, &mask)?;
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        Ok(mean.broadcast_div(&norms)?.to_vec2::<f32>()?)
    }
}

/// The cosine similarity of two unit vectors: their dot product.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
