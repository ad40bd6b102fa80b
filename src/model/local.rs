//! A GGUF Llama-family model on the CPU through candle (feature `local`).
//!
//! Loading reads the GGUF with candle's `gguf_file`, optionally re-quantizes
//! the weights (candle's CPU kernels are fastest on Q8_0/Q4_0; SmolLM2 ships
//! as Q4_1, see [`Requantize`]), and builds candle-transformers' quantized
//! llama. The tokenizer comes from the same file's metadata
//! ([`GgufTokenizer`]).
//!
//! A [`Session`] owns a KV cache. Sessions are cheap to fork (the cache
//! tensors are reference-counted and never mutated in place), which is how
//! the prompt prefix cache works: prefill the shared system prompt once,
//! then fork a session per request.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::{ModelWeights, MAX_SEQ_LEN};

use crate::tokenizer::{GgufTokenizer, TokenizerError};

/// Errors loading or running the model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("the prompt and output need {needed} positions, but the model's context holds {limit}")]
    ContextFull { needed: usize, limit: usize },
    #[error("architecture `{0}` is not supported (Llama-family GGUFs only)")]
    Architecture(String),
}

/// Re-quantization of the weights at load time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Requantize {
    /// Keep the file's formats.
    Keep,
    /// Q8_0: the fastest SIMD kernels (10.6 ms/token here), but `generate`
    /// then peaks at 434 MB resident.
    Q8_0,
    /// Q4_0 (the default): SIMD kernels, 9% slower than Q8_0 (11.5 ms/token),
    /// and `generate` peaks at 300 MB resident, under the 400 MB budget.
    #[default]
    Q4_0,
}

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Default [`Requantize::Q4_0`] (see the README's decoding benchmark).
    pub requantize: Requantize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { requantize: Requantize::default() }
    }
}

/// A loaded model and its tokenizer.
#[derive(Debug, Clone)]
pub struct LocalModel {
    weights: ModelWeights,
    tokenizer: GgufTokenizer,
    path: PathBuf,
    name: String,
    context: usize,
}

impl LocalModel {
    /// Loads a GGUF model.
    pub fn load(path: &Path, options: &LoadOptions) -> Result<Self, ModelError> {
        let io = |source| ModelError::Io { path: path.display().to_string(), source };
        let tokenizer = GgufTokenizer::from_gguf(path)?;
        let mut file = std::fs::File::open(path).map_err(io)?;
        let content = gguf_file::Content::read(&mut file)?;
        let arch = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if arch != "llama" {
            return Err(ModelError::Architecture(arch));
        }
        let name = content
            .metadata
            .get("general.name")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
        let trained = content
            .metadata
            .get("llama.context_length")
            .and_then(|v| v.to_u32().ok())
            .map_or(MAX_SEQ_LEN, |n| n as usize);
        let device = Device::Cpu;
        let weights = match options.requantize {
            Requantize::Keep => ModelWeights::from_gguf(content, &mut file, &device)?,
            target => {
                let dtype = if target == Requantize::Q8_0 { GgmlDType::Q8_0 } else { GgmlDType::Q4_0 };
                let bytes = requantized_gguf(&content, &mut file, dtype, &device)?;
                drop(content);
                let mut cursor = Cursor::new(bytes);
                let content = gguf_file::Content::read(&mut cursor)?;
                ModelWeights::from_gguf(content, &mut cursor, &device)?
            }
        };
        Ok(Self { weights, tokenizer, path: path.to_path_buf(), name, context: trained.min(MAX_SEQ_LEN) })
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &GgufTokenizer {
        &self.tokenizer
    }

    /// The model's name from its metadata.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The GGUF path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Positions the model can attend to (candle's rope tables stop at 4096).
    pub fn context(&self) -> usize {
        self.context
    }

    /// A fresh session with an empty KV cache.
    pub fn session(&self) -> Session {
        let mut weights = self.weights.clone();
        weights.clear_kv_cache();
        Session { weights, pos: 0, context: self.context }
    }
}

/// Re-encodes a GGUF in memory with 2-D weight matrices in `dtype`.
/// Embeddings and norms are left as they are (candle dequantizes embeddings).
fn requantized_gguf(
    content: &gguf_file::Content,
    file: &mut std::fs::File,
    dtype: GgmlDType,
    device: &Device,
) -> Result<Vec<u8>, ModelError> {
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    for name in names {
        let t = content.tensor(file, name, device)?;
        let keep = t.shape().dims().len() < 2 || t.dtype() == dtype || t.shape().dims()[t.shape().dims().len() - 1] % dtype.block_size() != 0;
        let t = if keep { t } else { QTensor::quantize(&t.dequantize(device)?, dtype)? };
        tensors.push((name.clone(), t));
    }
    let metadata: Vec<(&str, &gguf_file::Value)> = content.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &metadata, &refs)?;
    Ok(out.into_inner())
}

/// A KV cache over a model, advanced by feeding tokens.
#[derive(Debug, Clone)]
pub struct Session {
    weights: ModelWeights,
    pos: usize,
    context: usize,
}

impl Session {
    /// Positions consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Feeds tokens in one batched forward pass and returns the logits that
    /// follow the last one.
    pub fn feed(&mut self, tokens: &[u32]) -> Result<Vec<f32>, ModelError> {
        if tokens.is_empty() {
            return Err(ModelError::Candle(candle_core::Error::Msg("feed() needs at least one token".into())));
        }
        if self.pos + tokens.len() > self.context {
            return Err(ModelError::ContextFull { needed: self.pos + tokens.len(), limit: self.context });
        }
        let input = Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0)?;
        let logits = self.weights.forward(&input, self.pos)?;
        self.pos += tokens.len();
        Ok(logits.squeeze(0)?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?)
    }

    /// Checks that `n` more positions fit.
    pub fn ensure_room(&self, n: usize) -> Result<(), ModelError> {
        if self.pos + n > self.context {
            return Err(ModelError::ContextFull { needed: self.pos + n, limit: self.context });
        }
        Ok(())
    }
}
