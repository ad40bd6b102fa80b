//! Append-only JSON-lines audit log: one line per routed message.
//!
//! Each [`AuditLog::append`] writes one complete line, flushes it and `fsync`s the data before
//! returning, so a record that was acknowledged survives a crash. The log can be shared between
//! threads (`&AuditLog` is enough; writes are serialized by a mutex).
//!
//! ```no_run
//! use strictly::routing::audit::{AuditLog, AuditRecord};
//! # fn run(cfg: &strictly::routing::RoutingConfig, msg: &str,
//! #        verdict: &strictly::routing::ModelVerdict) -> Result<(), strictly::routing::audit::AuditError> {
//! let log = AuditLog::open(&cfg.audit.path)?;
//! let decision = strictly::routing::decide(cfg, msg, verdict);
//! log.append(&AuditRecord::new(None, msg, cfg.audit.redact, &decision, verdict))?;
//! # Ok(()) }
//! ```

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::classification::{Action, Target};
use super::decision::{Decision, ModelVerdict, Rule};
use super::kommunicate::KommunicatePayload;

/// How much of the customer's text goes into the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Redaction {
    /// The text as received.
    None,
    /// Email addresses become `[email]`, and every run of digits becomes `#`, which also
    /// covers order, card and phone numbers (`+1 (555) 123-4567` → `+# (#) #-#`).
    #[default]
    Digits,
    /// Only a hash and the length are kept.
    Full,
}

impl Redaction {
    /// The text as it is to be logged.
    ///
    /// ```
    /// use strictly::routing::audit::{LoggedText, Redaction};
    /// assert_eq!(
    ///     Redaction::Digits.apply("order 732201 for jo@mail.com, call 555-0100"),
    ///     LoggedText::Text("order # for [email], call #-#".into())
    /// );
    /// ```
    pub fn apply(self, text: &str) -> LoggedText {
        match self {
            Redaction::None => LoggedText::Text(text.to_owned()),
            Redaction::Digits => LoggedText::Text(mask_digits_and_emails(text)),
            Redaction::Full => LoggedText::Hashed {
                fnv1a64: format!("{:016x}", fnv1a64(text)),
                chars: text.chars().count(),
            },
        }
    }
}

/// The customer's text in an audit record: `"text"` or `{"fnv1a64": "...", "chars": n}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum LoggedText {
    /// The text, possibly masked.
    Text(String),
    /// FNV-1a 64-bit hash of the UTF-8 text and its length in characters. The hash lets you
    /// spot repeated messages; it does not stop someone from confirming a guessed text.
    Hashed {
        /// Hex digest.
        fnv1a64: String,
        /// Length in characters.
        chars: usize,
    },
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// When the record was made, RFC 3339 in UTC with milliseconds.
    pub time: String,
    /// The message id: the caller's (e.g. Kommunicate's message `key`) or a generated one.
    pub id: String,
    /// The customer's text, redacted as configured.
    pub text: LoggedText,
    /// Final action.
    pub action: Action,
    /// Final target.
    pub target: Target,
    /// Confidence from token probabilities.
    pub model_confidence: Option<f32>,
    /// Self-reported confidence.
    pub reported_confidence: Option<f32>,
    /// The examples' support for their route, when they were asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub examples_support: Option<f32>,
    /// Rules that fired.
    pub rules: Vec<Rule>,
    /// Backend name.
    pub backend: String,
    /// Model name.
    pub model: String,
    /// Backend latency.
    pub latency_ms: f64,
    /// What was sent to Kommunicate.
    pub payload: KommunicatePayload,
    /// The kind of the backend's error (`timeout`, `rate_limit`, `schema_violation`, ...),
    /// when the model was asked and failed; the decision is then default routing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_error: Option<String>,
}

impl AuditRecord {
    /// A record stamped with the current time; `id: None` generates one with [`new_message_id`].
    pub fn new(
        id: Option<&str>,
        text: &str,
        redact: Redaction,
        decision: &Decision,
        verdict: &ModelVerdict,
    ) -> Self {
        AuditRecord {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            id: id.map_or_else(new_message_id, str::to_owned),
            text: redact.apply(text),
            action: decision.action,
            target: decision.target.clone(),
            model_confidence: decision.model_confidence,
            examples_support: decision.examples_support,
            reported_confidence: decision.reported_confidence,
            rules: decision.rules.clone(),
            backend: verdict.backend.clone(),
            model: verdict.model.clone(),
            latency_ms: verdict.latency_ms,
            payload: KommunicatePayload::from(decision),
            backend_error: None,
        }
    }
}

/// A process-unique, roughly time-ordered id: microseconds since the Unix epoch and a counter,
/// in hex (`"6123f0a1b2c3d-2a"`).
pub fn new_message_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!("{micros:x}-{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Why the audit log could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Creating the parent directory or opening the file failed.
    #[error("cannot open audit log {}: {source}", path.display())]
    Open {
        /// The log's path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Writing, flushing or syncing a record failed.
    #[error("cannot write audit log {}: {source}", path.display())]
    Write {
        /// The log's path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The record could not be serialized.
    #[error("cannot serialize audit record: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// An open audit log, appending to a JSON-lines file.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl AuditLog {
    /// Opens (creating it and its parent directories if needed) a log for appending.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        let path = path.as_ref().to_owned();
        let open = || {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            OpenOptions::new().create(true).append(true).open(&path)
        };
        match open() {
            Ok(file) => Ok(AuditLog {
                file: Mutex::new(file),
                path,
            }),
            Err(source) => Err(AuditError::Open { path, source }),
        }
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one record as one line, then flushes and syncs it to disk.
    pub fn append(&self, record: &AuditRecord) -> Result<(), AuditError> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        // A panic elsewhere while holding the lock cannot leave a half-written line behind
        // (each line is one write_all of a complete buffer), so a poisoned lock is still usable.
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        file.write_all(&line)
            .and_then(|()| file.flush())
            .and_then(|()| file.sync_data())
            .map_err(|source| AuditError::Write {
                path: self.path.clone(),
                source,
            })
    }
}

fn mask_digits_and_emails(text: &str) -> String {
    let not_word = |c: char| !c.is_alphanumeric();
    let mut out = String::with_capacity(text.len());
    for token in text.split_inclusive(char::is_whitespace) {
        let core = token.trim_matches(not_word);
        if core
            .split_once('@')
            .is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.'))
        {
            let start = token.len() - token.trim_start_matches(not_word).len();
            out.push_str(&token[..start]);
            out.push_str("[email]");
            out.push_str(&token[start + core.len()..]);
            continue;
        }
        let mut prev_digit = false;
        for c in token.chars() {
            let digit = c.is_numeric();
            if !(digit && prev_digit) {
                out.push(if digit { '#' } else { c });
            }
            prev_digit = digit;
        }
    }
    out
}

fn fnv1a64(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
