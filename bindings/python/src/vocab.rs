//! `strictly.Vocabulary`: a tokenizer's tokens as exact bytes, and its stop tokens.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use strictly::tokenizer::GgufTokenizer;
use strictly::vocab::Vocabulary;

/// A tokenizer's vocabulary: every token's bytes, the special tokens, and the stop tokens.
///
/// The engine's vocabulary has one end-of-sequence token, the first stop token; the others
/// are special tokens that the matcher allows and accepts wherever that one is.
#[pyclass(frozen, name = "Vocabulary", module = "strictly")]
pub struct PyVocabulary {
    pub(crate) vocab: Arc<Vocabulary>,
    pub(crate) stops: Vec<u32>,
    /// The text of each special token, for `decode`.
    texts: Vec<Option<String>>,
}

impl PyVocabulary {
    fn build(tokens: Vec<Option<Vec<u8>>>, texts: Vec<Option<String>>, stops: Vec<u32>, vocab_size: Option<usize>) -> PyResult<Self> {
        let mut tokens = tokens;
        let mut texts = texts;
        if let Some(size) = vocab_size {
            if size < tokens.len() {
                return Err(PyValueError::new_err(format!("vocab_size {size} is smaller than the tokenizer's {} tokens", tokens.len())));
            }
            tokens.resize(size, None);
        }
        texts.resize(tokens.len(), None);
        if tokens.is_empty() {
            return Err(PyValueError::new_err("the vocabulary is empty"));
        }
        let mut seen = Vec::new();
        for &s in &stops {
            if s as usize >= tokens.len() {
                return Err(PyValueError::new_err(format!("stop token {s} is outside the vocabulary of {} tokens", tokens.len())));
            }
            if !seen.contains(&s) {
                seen.push(s);
            }
        }
        // A stop token is never text the grammar produces.
        for &s in &seen {
            if let Some(bytes) = tokens[s as usize].take() {
                texts[s as usize].get_or_insert_with(|| String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        let vocab = Arc::new(Vocabulary::from_token_bytes(tokens, seen.first().copied()));
        Ok(Self { vocab, stops: seen, texts })
    }

    fn from_tokenizer(tokenizer: &tokenizers::Tokenizer, stops: Vec<u32>, vocab_size: Option<usize>) -> PyResult<Self> {
        let vocab = Vocabulary::from_tokenizer(tokenizer, None).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let added = tokenizer.get_added_tokens_decoder();
        let mut tokens = Vec::with_capacity(vocab.len());
        let mut texts = Vec::with_capacity(vocab.len());
        for id in 0..vocab.len() as u32 {
            let special = vocab.is_special(id);
            tokens.push((!special).then(|| vocab.token_bytes(id).to_vec()));
            texts.push(if special { added.get(&id).map(|a| a.content.clone()) } else { None });
        }
        Self::build(tokens, texts, stops, vocab_size)
    }
}

#[pymethods]
impl PyVocabulary {
    /// The vocabulary of a GGUF model's tokenizer, as the `strictly` CLI builds it; the stop
    /// token is the model's end-of-sequence token. `vocab_size` pads the vocabulary with
    /// special tokens to the model's logits width, when that is larger.
    #[staticmethod]
    #[pyo3(signature = (path, *, vocab_size=None))]
    fn from_gguf(py: Python<'_>, path: PathBuf, vocab_size: Option<usize>) -> PyResult<Self> {
        let tokenizer = py
            .detach(|| GgufTokenizer::from_gguf(&path))
            .map_err(|e| PyOSError::new_err(format!("{}: {e}", path.display())))?;
        let vocab = tokenizer.vocab();
        let n = vocab.len() as u32;
        let tokens = (0..n).map(|id| (!vocab.is_special(id)).then(|| vocab.token_bytes(id).to_vec())).collect();
        let texts = (0..n)
            .map(|id| vocab.is_special(id).then(|| String::from_utf8_lossy(&tokenizer.decode_bytes(&[id])).into_owned()))
            .collect();
        let stops = tokenizer.eos().into_iter().collect();
        py.detach(|| Self::build(tokens, texts, stops, vocab_size))
    }

    /// The vocabulary of a Hugging Face `tokenizer.json` file, with the ids that end a
    /// generation (the first is the engine's end-of-sequence token).
    #[staticmethod]
    #[pyo3(signature = (path, eos_token_ids, *, vocab_size=None))]
    fn from_tokenizer_json(py: Python<'_>, path: PathBuf, eos_token_ids: Vec<u32>, vocab_size: Option<usize>) -> PyResult<Self> {
        let text = std::fs::read_to_string(&path).map_err(|e| PyOSError::new_err(format!("{}: {e}", path.display())))?;
        Self::from_tokenizer_json_str(py, &text, eos_token_ids, vocab_size)
    }

    /// As [`from_tokenizer_json`], from the file's text (what `tokenizers.Tokenizer.to_str()` gives).
    #[staticmethod]
    #[pyo3(signature = (text, eos_token_ids, *, vocab_size=None))]
    fn from_tokenizer_json_str(py: Python<'_>, text: &str, eos_token_ids: Vec<u32>, vocab_size: Option<usize>) -> PyResult<Self> {
        py.detach(|| {
            let tokenizer: tokenizers::Tokenizer =
                text.parse().map_err(|e| PyValueError::new_err(format!("not a tokenizer.json: {e}")))?;
            Self::from_tokenizer(&tokenizer, eos_token_ids, vocab_size)
        })
    }

    /// The vocabulary of a Hugging Face tokenizer (a `transformers` `PreTrainedTokenizerFast`),
    /// read from `tokenizer.backend_tokenizer.to_str()`; the stop tokens are
    /// `stop_token_ids`, by default `[tokenizer.eos_token_id]`. `vocab_size` pads to the
    /// model's logits width (`model.config.vocab_size`) when that is larger.
    #[staticmethod]
    #[pyo3(signature = (tokenizer, *, vocab_size=None, stop_token_ids=None))]
    fn from_huggingface(
        py: Python<'_>,
        tokenizer: &Bound<'_, PyAny>,
        vocab_size: Option<usize>,
        stop_token_ids: Option<Vec<u32>>,
    ) -> PyResult<Self> {
        let backend = tokenizer.getattr("backend_tokenizer").map_err(|_| {
            PyValueError::new_err("the tokenizer has no `backend_tokenizer` (a fast tokenizer is needed: use_fast=True)")
        })?;
        let text: String = backend.call_method0("to_str")?.extract()?;
        let stops = match stop_token_ids {
            Some(ids) => ids,
            None => {
                let eos = tokenizer.getattr("eos_token_id")?;
                if eos.is_none() { Vec::new() } else { vec![eos.extract()?] }
            }
        };
        Self::from_tokenizer_json_str(py, &text, stops, vocab_size)
    }

    /// The number of token ids (the width of the logits the masks apply to).
    #[getter]
    fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    fn __len__(&self) -> usize {
        self.vocab.len()
    }

    /// The ids that end a generation.
    #[getter]
    fn stop_token_ids(&self) -> Vec<u32> {
        self.stops.clone()
    }

    /// A token's bytes (`b""` for a special token).
    fn token_bytes<'py>(&self, py: Python<'py>, id: u32) -> PyResult<Bound<'py, PyBytes>> {
        self.check(id)?;
        Ok(PyBytes::new(py, self.vocab.token_bytes(id)))
    }

    /// Whether a token is special (a control or stop token, never grammar text).
    fn is_special(&self, id: u32) -> PyResult<bool> {
        self.check(id)?;
        Ok(self.vocab.is_special(id))
    }

    /// The bytes of a token sequence; special tokens as their text.
    fn decode<'py>(&self, py: Python<'py>, ids: Vec<u32>) -> PyResult<Bound<'py, PyBytes>> {
        let mut out = Vec::new();
        for id in ids {
            self.check(id)?;
            if self.vocab.is_special(id) {
                out.extend_from_slice(self.texts[id as usize].as_deref().unwrap_or("").as_bytes());
            } else {
                out.extend_from_slice(self.vocab.token_bytes(id));
            }
        }
        Ok(PyBytes::new(py, &out))
    }

    fn __repr__(&self) -> String {
        format!("Vocabulary(vocab_size={}, stop_token_ids={:?})", self.vocab.len(), self.stops)
    }
}

impl PyVocabulary {
    fn check(&self, id: u32) -> PyResult<()> {
        if (id as usize) < self.vocab.len() {
            Ok(())
        } else {
            Err(PyValueError::new_err(format!("token {id} is outside the vocabulary of {} tokens", self.vocab.len())))
        }
    }
}
