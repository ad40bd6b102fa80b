//! Chat messages and their rendering into token ids through the model's
//! chat template (from the GGUF metadata).
//!
//! Templates are rendered by structure, not by evaluating Jinja: strictly
//! recognises the ChatML family (SmolLM2, Qwen2: `<|im_start|>`) and Llama 3
//! (`<|start_header_id|>`), inserts their control tokens **by id**, and
//! encodes every piece of text as plain text. A `<|im_end|>` typed into a
//! message therefore stays seven characters, never a control token.
//!
//! ```
//! use strictly::chat::{ChatMessage, Role};
//! let m = ChatMessage { role: Role::User, content: "hi".into() };
//! assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"role":"user","content":"hi"}"#);
//! ```

use serde::{Deserialize, Serialize};

use crate::tokenizer::{GgufTokenizer, TokenizerError};

/// Who speaks a [`ChatMessage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions.
    System,
    /// The customer (or an example customer message).
    User,
    /// The model (or an example answer).
    Assistant,
}

impl Role {
    /// The role's name in templates.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One turn of a chat prompt; serializes as `{"role":"user","content":"..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// The speaker.
    pub role: Role,
    /// The text.
    pub content: String,
}

/// The chat template families strictly can render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateKind {
    /// `<|im_start|>role\ncontent<|im_end|>\n`
    ChatMl,
    /// `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>`
    Llama3,
}

/// Errors rendering a prompt.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    /// The GGUF's chat template is neither ChatML nor Llama 3.
    #[error("the model's chat template is not one strictly can render (ChatML or Llama 3)")]
    UnknownTemplate,
    /// The template needs a control token the vocabulary lacks; holds the token's text.
    #[error("the tokenizer lacks the control token {0}")]
    MissingControl(&'static str),
    /// Tokenizing the prompt failed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
}

/// A prompt as token ids, with the length of its leading system turn (the
/// part a prefix cache can share between requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedPrompt {
    /// The prompt's token ids, the assistant's opening included.
    pub ids: Vec<u32>,
    /// Tokens from the start of `ids` to the end of the leading system turn (0 when there is none).
    pub system_len: usize,
}

/// Renders chat messages, then the assistant's opening, into token ids.
pub fn render(tokenizer: &GgufTokenizer, messages: &[ChatMessage]) -> Result<RenderedPrompt, ChatError> {
    let kind = template_kind(tokenizer)?;
    let control = |t: &'static str| tokenizer.control(t).ok_or(ChatError::MissingControl(t));
    let mut ids = Vec::new();
    let mut system_len = 0;
    match kind {
        TemplateKind::ChatMl => {
            let (start, end) = (control("<|im_start|>")?, control("<|im_end|>")?);
            for m in messages {
                ids.push(start);
                ids.extend(tokenizer.encode_plain(&format!("{}\n{}", m.role.as_str(), m.content))?);
                ids.push(end);
                ids.extend(tokenizer.encode_plain("\n")?);
                if m.role == Role::System && system_len == 0 {
                    system_len = ids.len();
                }
            }
            ids.push(start);
            ids.extend(tokenizer.encode_plain("assistant\n")?);
        }
        TemplateKind::Llama3 => {
            let (begin, head, tail, eot) =
                (control("<|begin_of_text|>")?, control("<|start_header_id|>")?, control("<|end_header_id|>")?, control("<|eot_id|>")?);
            ids.push(begin);
            for m in messages {
                ids.push(head);
                ids.extend(tokenizer.encode_plain(m.role.as_str())?);
                ids.push(tail);
                ids.extend(tokenizer.encode_plain(&format!("\n\n{}", m.content))?);
                ids.push(eot);
                if m.role == Role::System && system_len == 0 {
                    system_len = ids.len();
                }
            }
            ids.push(head);
            ids.extend(tokenizer.encode_plain("assistant")?);
            ids.push(tail);
            ids.extend(tokenizer.encode_plain("\n\n")?);
        }
    }
    Ok(RenderedPrompt { ids, system_len })
}

/// Which template family the model's metadata declares.
pub fn template_kind(tokenizer: &GgufTokenizer) -> Result<TemplateKind, ChatError> {
    let template = tokenizer.chat_template().unwrap_or_default();
    if template.contains("<|im_start|>") || (template.is_empty() && tokenizer.control("<|im_start|>").is_some()) {
        Ok(TemplateKind::ChatMl)
    } else if template.contains("<|start_header_id|>") {
        Ok(TemplateKind::Llama3)
    } else {
        Err(ChatError::UnknownTemplate)
    }
}
