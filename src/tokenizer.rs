//! The model's tokenizer, built from a GGUF file's own metadata.
//!
//! SmolLM2's GGUF declares a GPT-2-style byte-level BPE with `pre=smollm`:
//! digits are split one by one, and no space is prefixed. (candle's
//! `TokenizerFromGguf` adds a leading space, so ids drift from llama.cpp's.)
//! Qwen2 (`pre=qwen2`) and Llama 3 (`pre=llama-bpe`) load through the same
//! path with their own split regexes.
//!
//! Control tokens (`<|im_start|>`, `<|im_end|>`) are never parsed out of text:
//! [`GgufTokenizer::encode_plain`] treats everything as plain text, and chat
//! templates insert control tokens by id. A user who types `<|im_end|>` gets
//! the characters, not the control token.
//!
//! Reading the metadata needs no model weights and no candle: the compiler's
//! tests and the coverage run use it too.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{SplitDelimiterBehavior, Tokenizer};

use crate::vocab::Vocabulary;

/// Errors reading a GGUF file or building its tokenizer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenizerError {
    /// The file cannot be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file's path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file does not start with the GGUF magic; holds the path.
    #[error("{0} is not a GGUF file (bad magic)")]
    NotGguf(String),
    /// The GGUF version is not 2 or 3; holds the version read.
    #[error("unsupported GGUF version {0}")]
    Version(u32),
    /// The metadata cannot be parsed: it ends early, or has a bad string, length or value type.
    #[error("GGUF metadata is malformed: {message}")]
    Malformed {
        /// What was wrong.
        message: String,
        /// The error behind it (the read's, the UTF-8 check's), when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A required metadata key is absent; holds the key.
    #[error("GGUF metadata lacks `{0}`")]
    Missing(&'static str),
    /// `tokenizer.ggml.model` is not a GPT-2-style byte-level BPE; holds its value.
    #[error("tokenizer model `{0}` is not supported (only GPT-2-style byte-level BPE)")]
    UnsupportedModel(String),
    /// The `tokenizers` crate refused the vocabulary, merges or pre-tokenizer; holds its error.
    #[error("building the tokenizer failed: {0}")]
    Build(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The tokens do not make a vocabulary.
    #[error(transparent)]
    Vocab(#[from] crate::vocab::VocabError),
}

/// One GGUF metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// Any GGUF integer type, widened to i64.
    Int(i64),
    /// A GGUF f32 or f64, widened to f64.
    Float(f64),
    /// A GGUF bool.
    Bool(bool),
    /// A GGUF string.
    Str(String),
    /// A GGUF array, of any one item type.
    Array(Vec<MetaValue>),
}

impl MetaValue {
    fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }
    fn as_int(&self) -> Option<i64> {
        match self {
            MetaValue::Int(i) => Some(*i),
            _ => None,
        }
    }
}

/// Reads the key-value metadata at the head of a GGUF file (not the tensors).
pub fn read_gguf_metadata(path: &Path) -> Result<HashMap<String, MetaValue>, TokenizerError> {
    let io = |source| TokenizerError::Io { path: path.display().to_string(), source };
    let mut r = BufReader::with_capacity(1 << 20, File::open(path).map_err(io)?);
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic).map_err(io)?;
    if &magic != b"GGUF" {
        return Err(TokenizerError::NotGguf(path.display().to_string()));
    }
    let version = read_u32(&mut r)?;
    if !(2..=3).contains(&version) {
        return Err(TokenizerError::Version(version));
    }
    let _tensors = read_u64(&mut r)?;
    let count = read_u64(&mut r)?;
    let mut meta = HashMap::new();
    for _ in 0..count {
        let key = read_string(&mut r)?;
        let ty = read_u32(&mut r)?;
        let value = read_value(&mut r, ty)?;
        meta.insert(key, value);
    }
    Ok(meta)
}

/// Metadata that reads but makes no sense (a length or a type), with no error behind it.
fn bad(message: String) -> TokenizerError {
    TokenizerError::Malformed { message, source: None }
}

fn malformed(e: std::io::Error) -> TokenizerError {
    TokenizerError::Malformed { message: e.to_string(), source: Some(Box::new(e)) }
}

fn read_u32(r: &mut impl Read) -> Result<u32, TokenizerError> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).map_err(malformed)?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64(r: &mut impl Read) -> Result<u64, TokenizerError> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b).map_err(malformed)?;
    Ok(u64::from_le_bytes(b))
}

fn read_string(r: &mut impl Read) -> Result<String, TokenizerError> {
    let len = read_u64(r)?;
    if len > 1 << 24 {
        return Err(bad(format!("string of {len} bytes")));
    }
    let mut b = vec![0u8; len as usize];
    r.read_exact(&mut b).map_err(malformed)?;
    String::from_utf8(b).map_err(|e| TokenizerError::Malformed { message: e.to_string(), source: Some(Box::new(e)) })
}

fn read_value(r: &mut impl Read, ty: u32) -> Result<MetaValue, TokenizerError> {
    let mut buf = [0u8; 8];
    let mut fixed = |n: usize, r: &mut dyn Read| -> Result<[u8; 8], TokenizerError> {
        buf = [0; 8];
        r.read_exact(&mut buf[..n]).map_err(malformed)?;
        Ok(buf)
    };
    Ok(match ty {
        0 => MetaValue::Int(fixed(1, r)?[0] as i64),
        1 => MetaValue::Int(fixed(1, r)?[0] as i8 as i64),
        2 => MetaValue::Int(u16::from_le_bytes(fixed(2, r)?[..2].try_into().expect("2 bytes")) as i64),
        3 => MetaValue::Int(i16::from_le_bytes(fixed(2, r)?[..2].try_into().expect("2 bytes")) as i64),
        4 => MetaValue::Int(u32::from_le_bytes(fixed(4, r)?[..4].try_into().expect("4 bytes")) as i64),
        5 => MetaValue::Int(i32::from_le_bytes(fixed(4, r)?[..4].try_into().expect("4 bytes")) as i64),
        6 => MetaValue::Float(f32::from_le_bytes(fixed(4, r)?[..4].try_into().expect("4 bytes")) as f64),
        7 => MetaValue::Bool(fixed(1, r)?[0] != 0),
        8 => MetaValue::Str(read_string(r)?),
        9 => {
            let item = read_u32(r)?;
            let len = read_u64(r)?;
            if len > 1 << 24 {
                return Err(bad(format!("array of {len} items")));
            }
            let mut items = Vec::with_capacity(len as usize);
            for _ in 0..len {
                items.push(read_value(r, item)?);
            }
            MetaValue::Array(items)
        }
        10 => MetaValue::Int(u64::from_le_bytes(fixed(8, r)?) as i64),
        11 => MetaValue::Int(i64::from_le_bytes(fixed(8, r)?)),
        12 => MetaValue::Float(f64::from_le_bytes(fixed(8, r)?)),
        other => return Err(bad(format!("value type {other}"))),
    })
}

/// GGUF token types (llama.cpp's `llama_token_type`).
const TOKEN_CONTROL: i64 = 3;
const TOKEN_UNUSED: i64 = 5;

/// The tokenizer of a GGUF model.
#[derive(Clone)]
pub struct GgufTokenizer {
    plain: Tokenizer,
    vocab: Arc<Vocabulary>,
    tokens: Vec<String>,
    control: HashMap<String, u32>,
    bos: Option<u32>,
    eos: Option<u32>,
    chat_template: Option<String>,
    pre: String,
}

impl std::fmt::Debug for GgufTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufTokenizer").field("pre", &self.pre).field("vocab", &self.tokens.len()).finish()
    }
}

impl GgufTokenizer {
    /// Builds the tokenizer of the GGUF file at `path`.
    pub fn from_gguf(path: &Path) -> Result<Self, TokenizerError> {
        Self::from_metadata(&read_gguf_metadata(path)?)
    }

    /// Builds a tokenizer from GGUF metadata.
    pub fn from_metadata(meta: &HashMap<String, MetaValue>) -> Result<Self, TokenizerError> {
        let get = |k: &'static str| meta.get(k).ok_or(TokenizerError::Missing(k));
        let model = get("tokenizer.ggml.model")?.as_str().unwrap_or_default().to_string();
        if model != "gpt2" {
            return Err(TokenizerError::UnsupportedModel(model));
        }
        let strings = |v: &MetaValue| -> Vec<String> {
            match v {
                MetaValue::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
                _ => Vec::new(),
            }
        };
        let tokens = strings(get("tokenizer.ggml.tokens")?);
        let merges = strings(get("tokenizer.ggml.merges")?);
        let types: Vec<i64> = match meta.get("tokenizer.ggml.token_type") {
            Some(MetaValue::Array(items)) => items.iter().map(|i| i.as_int().unwrap_or(1)).collect(),
            _ => vec![1; tokens.len()],
        };
        let pre = meta.get("tokenizer.ggml.pre").and_then(MetaValue::as_str).unwrap_or("default").to_string();
        let id = |k: &str| meta.get(k).and_then(MetaValue::as_int).map(|v| v as u32);
        let (bos, eos) = (id("tokenizer.ggml.bos_token_id"), id("tokenizer.ggml.eos_token_id"));
        let chat_template = meta.get("tokenizer.chat_template").and_then(MetaValue::as_str).map(str::to_string);

        let vocab_map: HashMap<String, u32> = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        let merges: Vec<(String, String)> =
            merges.iter().filter_map(|m| m.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string()))).collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab_map.into_iter().collect::<tokenizers::models::bpe::Vocab>(), merges)
            .build()
            .map_err(TokenizerError::Build)?;
        let mut plain = Tokenizer::new(bpe);
        plain.with_pre_tokenizer(Some(pre_tokenizer(&pre)?));
        plain.with_decoder(Some(tokenizers::decoders::byte_level::ByteLevel::default()));

        let control: HashMap<String, u32> =
            tokens.iter().enumerate().filter(|(i, _)| types.get(*i) == Some(&TOKEN_CONTROL)).map(|(i, t)| (t.clone(), i as u32)).collect();
        let byte_of = crate::vocab::gpt2_char_to_byte();
        let token_bytes: Vec<Option<Vec<u8>>> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let ty = types.get(i).copied().unwrap_or(1);
                if ty == TOKEN_CONTROL || ty == TOKEN_UNUSED {
                    return None;
                }
                t.chars().map(|c| byte_of.get(&c).copied()).collect::<Option<Vec<u8>>>()
            })
            .collect();
        let vocab = Arc::new(Vocabulary::from_token_bytes(token_bytes, eos));
        Ok(Self { plain, vocab, tokens, control, bos, eos, chat_template, pre })
    }

    /// Encodes text as plain text: control-token strings stay characters.
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let enc = self.plain.encode(text, false).map_err(TokenizerError::Build)?;
        Ok(enc.get_ids().to_vec())
    }

    /// Decodes ids to bytes exactly (control tokens as their text).
    pub fn decode_bytes(&self, ids: &[u32]) -> Vec<u8> {
        let mut out = Vec::new();
        for &id in ids {
            if self.vocab.is_special(id) {
                out.extend_from_slice(self.tokens.get(id as usize).map_or("", String::as_str).as_bytes());
            } else {
                out.extend_from_slice(self.vocab.token_bytes(id));
            }
        }
        out
    }

    /// The id of a control token such as `<|im_start|>`.
    pub fn control(&self, text: &str) -> Option<u32> {
        self.control.get(text).copied()
    }

    /// The vocabulary, for constraints.
    pub fn vocab(&self) -> &Arc<Vocabulary> {
        &self.vocab
    }

    /// Beginning-of-sequence id.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// End-of-sequence id.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// The chat template from the metadata.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// The pre-tokenizer name (`tokenizer.ggml.pre`).
    pub fn pre(&self) -> &str {
        &self.pre
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

fn pre_tokenizer(pre: &str) -> Result<PreTokenizerWrapper, TokenizerError> {
    let byte_level = |use_regex: bool| ByteLevel::new(false, true, use_regex);
    let split = |re: &str| -> Result<PreTokenizerWrapper, TokenizerError> {
        Ok(Split::new(SplitPattern::Regex(re.to_string()), SplitDelimiterBehavior::Isolated, false).map_err(TokenizerError::Build)?.into())
    };
    const LLAMA3: &str =
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    const QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    Ok(match pre {
        "smollm" => Sequence::new(vec![Digits::new(true).into(), byte_level(true).into()]).into(),
        "llama-bpe" | "llama3" => Sequence::new(vec![split(LLAMA3)?, byte_level(false).into()]).into(),
        "qwen2" => Sequence::new(vec![split(QWEN2)?, byte_level(false).into()]).into(),
        _ => byte_level(true).into(),
    })
}
