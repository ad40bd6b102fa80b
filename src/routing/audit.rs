//! Append-only JSON-lines audit log: one line per routed message.
//!
//! Each [`AuditLog::append`] writes one complete line, flushes it and `fsync`s the data before
//! returning, so a record that was acknowledged survives a crash. An append is whole or absent:
//! when a write fails part-way (a full disk), the file is cut back to its length before the
//! append. A file that already ends in a partial line (a crash mid-write, or a file written by
//! an older version) is repaired when it is opened: the partial tail is moved to a `.partial`
//! file beside it (appended there, so nothing is lost), counted ([`AuditLog::repaired`]) and
//! logged. The log can be shared between threads (`&AuditLog` is enough; writes are serialized
//! by a mutex).
//!
//! ## The line's schema (version [`AUDIT_VERSION`])
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `v` | integer | the schema version, 1; lines without it predate the field |
//! | `time` | string | RFC 3339, UTC, milliseconds |
//! | `decision_id` | string | unique per decision, across processes and machines; a replayed record keeps it |
//! | `id` | string | the message id (Kommunicate's `key`, the caller's `id`, or generated) |
//! | `path` | string? | what decided: `examples`, `model`, `event`, `not_text`, `deadline`, `overloaded` (service only) |
//! | `text` | string or `{fnv1a64, chars}` | the customer's text, redacted as configured |
//! | `action`, `target` | | the final action and target |
//! | `model_confidence`, `reported_confidence`, `examples_support` | number? | the confidences |
//! | `examples_confidence` | number? | the vote's confidence (the winner's share of the voters' weight), when it was taken |
//! | `nearest` | array? | the vote's nearest phrases, nearest first (at most [`NEAREST_RECORDED`]): `{phrase, target, similarity}`; absent when no vote was taken and under `redact = "full"` |
//! | `rules` | array of strings | the rules that fired |
//! | `backend`, `model`, `latency_ms` | | who decided and how long it took |
//! | `payload` | object | what was sent to Kommunicate |
//! | `backend_error` | string? | the backend error's kind, when the model failed |
//!
//! New fields may be added within a version; a change of meaning raises it.
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
use std::io::{Read, Seek, SeekFrom, Write};
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
            Redaction::Full => LoggedText::Hashed { fnv1a64: format!("{:016x}", fnv1a64(text)), chars: text.chars().count() },
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

/// The version of the audit line's schema (the `v` field; see the module docs).
pub const AUDIT_VERSION: u32 = 1;

/// How many of the vote's nearest phrases a record keeps.
pub const NEAREST_RECORDED: usize = 3;

/// One of the vote's nearest phrases, as a record keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NearPhrase {
    /// The example phrase.
    pub phrase: String,
    /// Its route.
    pub target: Target,
    /// Its similarity to the message, as the vote weighed it.
    pub similarity: f32,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// The schema's version, [`AUDIT_VERSION`].
    pub v: u32,
    /// When the record was made, RFC 3339 in UTC with milliseconds.
    pub time: String,
    /// Unique per decision ([`new_decision_id`]): a store writes a record with a given id once.
    pub decision_id: String,
    /// The message id: the caller's (e.g. Kommunicate's message `key`) or a generated one.
    pub id: String,
    /// What decided (`examples`, `model`, `event`, ...), when the service knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
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
    /// The examples' vote's confidence, when it was taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub examples_confidence: Option<f32>,
    /// The vote's nearest phrases, nearest first (none under full redaction).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nearest: Vec<NearPhrase>,
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
    pub fn new(id: Option<&str>, text: &str, redact: Redaction, decision: &Decision, verdict: &ModelVerdict) -> Self {
        AuditRecord {
            v: AUDIT_VERSION,
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            decision_id: new_decision_id(),
            id: id.map_or_else(new_message_id, str::to_owned),
            path: None,
            text: redact.apply(text),
            action: decision.action,
            target: decision.target.clone(),
            model_confidence: decision.model_confidence,
            examples_support: decision.examples_support,
            examples_confidence: decision.examples_confidence,
            nearest: Vec::new(),
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
    let micros = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
    format!("{micros:x}-{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// An id unique across processes and machines: microseconds since the Unix epoch and 64 bits
/// hashed under a per-process random key from the process id, the time and a counter, in hex
/// (`"6123f0a1b2c3d-9f1c0e7a5b3d2e41"`).
pub fn new_decision_id() -> String {
    use std::hash::BuildHasher;
    static KEY: std::sync::OnceLock<std::collections::hash_map::RandomState> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let micros = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
    let h = KEY.get_or_init(Default::default).hash_one((std::process::id(), micros, COUNTER.fetch_add(1, Ordering::Relaxed)));
    format!("{micros:x}-{h:016x}")
}

/// Why the audit log could not be opened or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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

/// The file under an [`AuditLog`]: a [`File`] opened for appending, or anything that behaves
/// like one (a test injects a writer that fails part-way).
// `len` is an append-only file's length, read to cut back to it; emptiness is never asked.
#[allow(clippy::len_without_is_empty)]
pub trait AuditFile: Write + Send + std::fmt::Debug {
    /// The file's current length in bytes.
    fn len(&mut self) -> std::io::Result<u64>;
    /// Cuts the file back to `len` bytes.
    fn cut(&mut self, len: u64) -> std::io::Result<()>;
    /// Syncs the written data to the disk.
    fn sync(&mut self) -> std::io::Result<()>;
}

impl AuditFile for File {
    fn len(&mut self) -> std::io::Result<u64> {
        self.metadata().map(|m| m.len())
    }
    fn cut(&mut self, len: u64) -> std::io::Result<()> {
        self.set_len(len)?;
        self.sync_data()
    }
    fn sync(&mut self) -> std::io::Result<()> {
        self.sync_data()
    }
}

/// A partial last line found when the log was opened, and where it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// Bytes moved out of the log.
    pub bytes: u64,
    /// The file they were appended to (the log's path with `.partial` added).
    pub moved_to: PathBuf,
}

/// An open audit log, appending to a JSON-lines file.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<Box<dyn AuditFile>>,
    repaired: Option<Repair>,
}

impl AuditLog {
    /// Opens (creating it and its parent directories if needed) a log for appending; a partial
    /// last line is moved aside first (see the module docs).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        let path = path.as_ref().to_owned();
        let open = || {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let repaired = repair_partial_tail(&path)?;
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            Ok((file, repaired))
        };
        match open() {
            Ok((file, repaired)) => {
                if let Some(r) = &repaired {
                    tracing::warn!(
                        log = %path.display(),
                        bytes = r.bytes,
                        moved_to = %r.moved_to.display(),
                        "the audit log ended in a partial line; it was moved aside"
                    );
                }
                let mut log = AuditLog::with_file(&path, Box::new(file));
                log.repaired = repaired;
                Ok(log)
            }
            Err(source) => Err(AuditError::Open { path, source }),
        }
    }

    /// A log over an already open file (`path` is only for messages); no repair is done.
    pub fn with_file(path: impl AsRef<Path>, file: Box<dyn AuditFile>) -> Self {
        AuditLog { path: path.as_ref().to_owned(), file: Mutex::new(file), repaired: None }
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The partial last line moved aside at open, if there was one.
    pub fn repaired(&self) -> Option<&Repair> {
        self.repaired.as_ref()
    }

    /// Writes one record as one line, then flushes and syncs it to disk. On error the file is
    /// cut back to its length before the call, so no partial line stays behind.
    pub fn append(&self, record: &AuditRecord) -> Result<(), AuditError> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        self.append_line(&line)
    }

    /// Appends one serialized line (ending in a newline), whole or not at all.
    pub fn append_line(&self, line: &[u8]) -> Result<(), AuditError> {
        // Each append restores the file on error, so a poisoned lock is still usable.
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let error = |source| AuditError::Write { path: self.path.clone(), source };
        let before = file.len().map_err(error)?;
        let written = file.write_all(line).and_then(|()| file.flush()).and_then(|()| file.sync());
        if let Err(source) = written {
            if let Err(e) = file.cut(before) {
                tracing::error!(log = %self.path.display(), error = %e, "cannot cut the audit log back after a failed write");
            }
            return Err(error(source));
        }
        Ok(())
    }
}

/// Moves a partial last line (bytes after the last newline) of a regular file to
/// `<path>.partial`, and cuts the file after its last whole line.
fn repair_partial_tail(path: &Path) -> std::io::Result<Option<Repair>> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() == 0 {
        return Ok(None);
    }
    let len = meta.len();
    // Find the last newline, reading backwards in blocks.
    let mut end = len;
    let mut keep = 0;
    let mut block = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let buf = &mut block[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(buf)?;
        if let Some(i) = buf.iter().rposition(|&b| b == b'\n') {
            keep = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    if keep == len {
        return Ok(None);
    }
    let mut tail = Vec::with_capacity((len - keep) as usize);
    file.seek(SeekFrom::Start(keep))?;
    file.read_to_end(&mut tail)?;
    let mut moved_to = path.as_os_str().to_owned();
    moved_to.push(".partial");
    let moved_to = PathBuf::from(moved_to);
    let mut aside = OpenOptions::new().create(true).append(true).open(&moved_to)?;
    tail.push(b'\n');
    aside.write_all(&tail)?;
    aside.sync_data()?;
    file.set_len(keep)?;
    file.sync_data()?;
    Ok(Some(Repair { bytes: len - keep, moved_to }))
}

fn mask_digits_and_emails(text: &str) -> String {
    let not_word = |c: char| !c.is_alphanumeric();
    let mut out = String::with_capacity(text.len());
    for token in text.split_inclusive(char::is_whitespace) {
        let core = token.trim_matches(not_word);
        if core.split_once('@').is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.')) {
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
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
