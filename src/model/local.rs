//! A GGUF Llama-family model on the CPU through candle (feature `local`).
//!
//! Loading reads the GGUF with candle's `gguf_file`, optionally re-quantizes
//! the weights (candle's CPU kernels are fastest on Q8_0/Q4_0; SmolLM2 ships
//! as Q4_1, see [`Requantize`]), and builds the transformer of
//! [`super::llama`]. The tokenizer comes from the same file's metadata
//! ([`GgufTokenizer`]).
//!
//! A [`Session`] owns a KV cache. [`Session::fork`] copies it, which is how
//! the prompt prefix cache works: prefill the shared system prompt once,
//! then fork a session per request.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::Device;

use super::llama::{KvCache, Weights};

use crate::tokenizer::{GgufTokenizer, TokenizerError};

/// Errors loading or running the model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The GGUF file cannot be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file's path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// candle failed to load a tensor or run the forward pass.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// The GGUF's tokenizer cannot be read or built.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The prompt and the output cap do not fit in the model's context.
    #[error("the prompt and output need {needed} positions, but the model's context holds {limit}")]
    ContextFull {
        /// Positions needed, in tokens.
        needed: usize,
        /// The model's context length, in tokens.
        limit: usize,
    },
    /// The GGUF's `general.architecture` is not a Llama-family one; holds its value.
    #[error("architecture `{0}` is not supported (Llama-family GGUFs only)")]
    Architecture(String),
}

/// Re-quantization of the weights at load time. Figures: `cargo bench --bench decode`,
/// llama.cpp's prompt, 2 cores, `target-cpu=native`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Requantize {
    /// Keep the file's formats (SmolLM2's Q4_1: 13.4 ms/token).
    Keep,
    /// Q8_0 (the default): candle's fastest CPU kernel, 8.5 ms/token; `generate` peaks at
    /// 286 MB resident. Prompts also take strictly's own Q8_0 kernel, about twice as fast as
    /// candle's (docs/benchmarks.md, prompt prefill).
    #[default]
    Q8_0,
    /// Q4_0: 9.1 ms/token, 223 MB resident, for tighter memory.
    Q4_0,
}

/// How to load a model.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Default [`Requantize::Q8_0`] (see docs/benchmarks.md, decoding).
    pub requantize: Requantize,
}

/// A loaded model and its tokenizer.
#[derive(Debug, Clone)]
pub struct LocalModel {
    weights: Arc<Weights>,
    tokenizer: GgufTokenizer,
    path: PathBuf,
    name: String,
}

/// Architectures whose GGUFs load through [`Weights`].
const ARCHITECTURES: &[&str] = &["llama", "qwen2"];

impl LocalModel {
    /// Loads a GGUF model.
    pub fn load(path: &Path, options: &LoadOptions) -> Result<Self, ModelError> {
        let io = |source| ModelError::Io { path: path.display().to_string(), source };
        let tokenizer = GgufTokenizer::from_gguf(path)?;
        let mut file = std::fs::File::open(path).map_err(io)?;
        let content = gguf_file::Content::read(&mut file)?;
        let text = |key: &str| content.metadata.get(key).and_then(|v| v.to_string().ok()).cloned();
        let arch = text("general.architecture").unwrap_or_default();
        if !ARCHITECTURES.contains(&arch.as_str()) {
            return Err(ModelError::Architecture(arch));
        }
        let name = text("general.name").unwrap_or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
        let target = match options.requantize {
            Requantize::Keep => None,
            Requantize::Q8_0 => Some(GgmlDType::Q8_0),
            Requantize::Q4_0 => Some(GgmlDType::Q4_0),
        };
        let weights = Weights::from_gguf(&content, &arch, |name| {
            let t = content.tensor(&mut file, name, &Device::Cpu)?;
            requantized(t, target)
        })?;
        Ok(Self { weights: Arc::new(weights), tokenizer, path: path.to_path_buf(), name })
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

    /// Positions the model can attend to: the trained context, at most 4,096
    /// (the RoPE tables' length).
    pub fn context(&self) -> usize {
        self.weights.hp.context
    }

    /// A fresh session with an empty KV cache.
    pub fn session(&self) -> Session {
        Session { weights: self.weights.clone(), cache: KvCache::new() }
    }
}

/// Re-quantizes a 2-D weight matrix to `target` when its rows split into
/// whole blocks; vectors (norms, biases) stay as they are.
fn requantized(t: QTensor, target: Option<GgmlDType>) -> candle_core::Result<QTensor> {
    let Some(dtype) = target else { return Ok(t) };
    let dims = t.shape().dims();
    if dims.len() < 2 || t.dtype() == dtype || dims[dims.len() - 1] % dtype.block_size() != 0 {
        return Ok(t);
    }
    QTensor::quantize(&t.dequantize(&Device::Cpu)?, dtype)
}

/// The outcome of [`Session::feed_each`]: the final hidden state after each fed token.
#[derive(Debug)]
pub struct Fed {
    weights: Arc<Weights>,
    hidden: candle_core::Tensor,
}

impl Fed {
    /// The logits after the `i`-th fed token; with `allowed`, only those tokens' logits
    /// (the rest `-inf`), as in [`Session::feed_allowed`].
    pub fn logits(&self, i: usize, allowed: Option<&[u32]>) -> Result<Vec<f32>, ModelError> {
        Ok(self.weights.logits_at(&self.hidden, i, allowed)?)
    }
}

/// A KV cache over a model, advanced by feeding tokens.
#[derive(Debug)]
pub struct Session {
    weights: Arc<Weights>,
    cache: KvCache,
}

impl Session {
    /// Positions consumed so far.
    pub fn position(&self) -> usize {
        self.cache.len()
    }

    /// An independent session at the same position: the prompt prefix cache
    /// forks the session that consumed the system prompt once per request.
    pub fn fork(&self) -> Result<Self, ModelError> {
        Ok(Self { weights: self.weights.clone(), cache: self.cache.fork()? })
    }

    /// Feeds tokens in one batched forward pass and returns the logits that
    /// follow the last one.
    pub fn feed(&mut self, tokens: &[u32]) -> Result<Vec<f32>, ModelError> {
        self.feed_allowed(tokens, None)
    }

    /// Like [`Session::feed`], but when `allowed` is given only those tokens'
    /// logits are computed; every other entry is `-inf`. The decoder passes
    /// the next step's mask when it allows few tokens.
    pub fn feed_allowed(&mut self, tokens: &[u32], allowed: Option<&[u32]>) -> Result<Vec<f32>, ModelError> {
        self.room_for(tokens)?;
        Ok(self.weights.forward(tokens, &mut self.cache, allowed)?)
    }

    /// Feeds tokens in one batched forward pass; [`Fed::logits`] then gives the logits
    /// after any of them, computed on demand.
    pub fn feed_each(&mut self, tokens: &[u32]) -> Result<Fed, ModelError> {
        self.room_for(tokens)?;
        let hidden = self.weights.forward_hidden(tokens, &mut self.cache)?;
        Ok(Fed { weights: self.weights.clone(), hidden })
    }

    /// Goes back to `position` (no further than the current one): the positions after it
    /// are forgotten, as if their tokens had never been fed.
    pub fn rewind(&mut self, position: usize) {
        self.cache.truncate(position);
    }

    /// Checks that there are tokens to feed and that they fit, and makes room for them.
    fn room_for(&mut self, tokens: &[u32]) -> Result<(), ModelError> {
        if tokens.is_empty() {
            return Err(ModelError::Candle(candle_core::Error::Msg("a forward pass needs at least one token".into())));
        }
        self.ensure_room(tokens.len())
    }

    /// Checks that `n` more positions fit, and makes room for them.
    pub fn ensure_room(&mut self, n: usize) -> Result<(), ModelError> {
        let needed = self.position() + n;
        let limit = self.weights.hp.context;
        if needed > limit {
            return Err(ModelError::ContextFull { needed, limit });
        }
        self.cache.reserve(&self.weights, needed)?;
        Ok(())
    }
}
