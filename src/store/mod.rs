//! The service's state outside the process: the decision record, the webhook's idempotency
//! keys and corrections, in one [`Store`].
//!
//! | store | chosen by | record | keys | corrections | learned phrases |
//! |---|---|---|---|---|---|
//! | embedded (default) | no URL | the JSON-lines audit ([`AuditLog`]) | `<audit>.keys.jsonl`, loaded at start | `<audit>.corrections.jsonl` | `<audit>.phrases.jsonl` |
//! | PostgreSQL | `[store] url = "postgres://..."` or `STRICTLY_STORE_URL` | table `decisions` | table `webhook_keys` | table `corrections` | table `learned_phrases` |
//!
//! Every write is committed (synced, for the files) before it returns. A decision record has a
//! unique `decision_id`; writing it twice leaves one record, so a replayed write is harmless.
//!
//! Webhook keys: [`Store::claim`] decides who routes a delivery. The first claimant gets
//! [`Claim::Mine`], routes the message and calls [`Store::finish`], which writes the record and
//! the reply together (one transaction in PostgreSQL). A later claim gets [`Claim::Done`] with
//! that reply; a concurrent one gets [`Claim::Busy`] and polls. A claim whose owner died (no
//! reply after the lease) is taken over. The embedded store serves one process, where the
//! service's in-memory coalescing already makes claims exclusive.
//!
//! When the store cannot be written, the [`Recorder`] in front of it keeps the records in a
//! [`spool::Spool`] (a fsynced JSON-lines file, bounded) and replays them, in order and once
//! each, when it can.
//!
//! PostgreSQL is reached without TLS: run it on the same host (a Unix socket) or a trusted
//! network. Its password comes from the URL or the environment (`PGPASSWORD` is not read;
//! put it in `STRICTLY_STORE_URL`), and every message shows the URL with the password masked
//! ([`redact_url`]).
//!

mod config;
mod embedded;
pub mod feedback;
mod keys;
pub mod phrases;
mod postgres;
mod recorder;
pub mod report;
pub mod spool;

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use config::{redact_url, StoreConfig};
pub use embedded::EmbeddedStore;
pub use postgres::{PgStore, MIGRATIONS};
pub use recorder::{Health, Outcome, Recorder};

use crate::routing::audit::{AuditError, AuditRecord};
use crate::routing::learning::LearnedPhrase;
use crate::routing::Action;

/// Why the store cannot be opened or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store's URL is not a PostgreSQL connection string.
    #[error("store URL {url}: {reason}")]
    Url {
        /// The URL, password masked.
        url: String,
        /// What is wrong with it.
        reason: String,
        /// The driver's error behind it.
        #[source]
        source: Option<BoxError>,
    },
    /// Connecting or authenticating failed.
    #[error("cannot connect to the store at {url}: {reason}")]
    Connect {
        /// The URL, password masked.
        url: String,
        /// The server's or the network's answer.
        reason: String,
        /// The driver's error behind it, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The database was migrated by a newer version of strictly.
    #[error("the store at {url} is at schema version {found}, newer than this binary's {known}; upgrade strictly")]
    NewerSchema {
        /// The URL, password masked.
        url: String,
        /// The database's version.
        found: i64,
        /// The newest version this binary knows.
        known: i64,
    },
    /// A query failed (the connection dropped, the server stopped, ...), or its answer cannot
    /// be read.
    #[error("store query failed: {message}")]
    Query {
        /// What failed, with the causes the driver gives, on one line.
        message: String,
        /// The error behind it (the driver's, the JSON parser's, a task's), when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// A file of the embedded store.
    #[error(transparent)]
    File(#[from] AuditError),
    /// Reading a file of the embedded store.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// The error behind a [`StoreError`].
type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl StoreError {
    /// A failed query whose message is its cause's.
    pub(crate) fn query(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Query { message: e.to_string(), source: Some(Box::new(e)) }
    }

    /// A failed query, said as `message`, with its cause.
    pub(crate) fn query_because(message: String, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Query { message, source: Some(Box::new(e)) }
    }

    /// A query whose answer is wrong, with no error behind it.
    pub(crate) fn bad_answer(message: String) -> Self {
        StoreError::Query { message, source: None }
    }
}

/// The answer to [`Store::claim`].
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The caller owns the key: it decides and calls [`Store::finish`].
    Mine,
    /// The key was answered before: its reply.
    Done(Value),
    /// Another replica holds the claim and has not answered yet: poll again.
    Busy,
}

/// The answer to [`Store::finish`].
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    /// The record and the reply are stored.
    Stored,
    /// The claim was taken over (the lease had passed): nothing was written; claim again.
    Lost,
}

/// What a decision should have been, as a reviewer says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correction {
    /// The correction's own id ([`new_correction_id`]; empty for corrections written before
    /// corrections had ids).
    #[serde(default)]
    pub id: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// The corrected decision's message id (the audit line's `id`).
    pub message_id: String,
    /// The corrected decision's `decision_id`, when the correction names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<String>,
    /// The right action.
    pub action: Action,
    /// The right target, as in the audit line (`{"kind": "team", "id": "..."}`).
    pub target: Value,
    /// Why, in the reviewer's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Who corrected it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

/// A decision record as the stores write it: the audit line and the fields they index.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The line's `decision_id`.
    pub decision_id: String,
    /// The line's `id`.
    pub message_id: String,
    /// The line's `time`.
    pub time: std::time::SystemTime,
    /// The line's `action`.
    pub action: String,
    /// The line's `path`.
    pub path: Option<String>,
    /// The line's `latency_ms`.
    pub latency_ms: f64,
    /// The whole line.
    pub line: Value,
}

impl Row {
    /// The row of a record.
    pub fn new(record: &AuditRecord) -> Result<Row, StoreError> {
        Row::from_line(serde_json::to_value(record).map_err(AuditError::from)?)
    }

    /// The row of an audit line read back (a spool's); the line needs `decision_id`, `id`,
    /// `time` and `action`.
    pub fn from_line(line: Value) -> Result<Row, StoreError> {
        let text = |k: &str| line.get(k).and_then(Value::as_str).map(str::to_owned);
        let missing = |k: &str| StoreError::bad_answer(format!("a record without `{k}`"));
        Ok(Row {
            decision_id: text("decision_id").ok_or_else(|| missing("decision_id"))?,
            message_id: text("id").ok_or_else(|| missing("id"))?,
            time: record_time(&line).ok_or_else(|| missing("time"))?,
            action: text("action").ok_or_else(|| missing("action"))?,
            path: text("path"),
            latency_ms: line.get("latency_ms").and_then(Value::as_f64).unwrap_or(0.0),
            line,
        })
    }
}

/// The record, the keys and the corrections: embedded files or PostgreSQL.
pub enum Store {
    /// Files beside the audit log (one process).
    Embedded(EmbeddedStore),
    /// A PostgreSQL database shared by the replicas.
    Postgres(PgStore),
}

impl Store {
    /// Opens the configured store: PostgreSQL when `config.url` is set (migrating it), else the
    /// files beside `audit_path`, remembering up to `keys` webhook keys.
    pub async fn open(config: &StoreConfig, audit_path: &Path, keys: usize) -> Result<Store, StoreError> {
        match &config.url {
            Some(url) => Ok(Store::Postgres(PgStore::connect(url, config).await?)),
            None => {
                let path = audit_path.to_owned();
                let keys_path = config.keys_path.clone();
                let store = tokio::task::spawn_blocking(move || EmbeddedStore::open(&path, keys_path.as_deref(), keys))
                    .await
                    .map_err(StoreError::query)??;
                Ok(Store::Embedded(store))
            }
        }
    }

    /// `embedded` or `postgres`.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Embedded(_) => "embedded",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Where the store is: the audit file, or the URL with its password masked.
    pub fn location(&self) -> String {
        match self {
            Store::Embedded(s) => s.audit_path().display().to_string(),
            Store::Postgres(s) => s.url().to_owned(),
        }
    }

    /// Writes a decision record (once per `decision_id`).
    pub async fn append(&self, row: &Row) -> Result<(), StoreError> {
        match self {
            Store::Embedded(s) => s.append(row).await,
            Store::Postgres(s) => s.append(row).await,
        }
    }

    /// Claims a webhook key for `lease` (see the module docs).
    pub async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, StoreError> {
        match self {
            Store::Embedded(s) => Ok(s.claim(key)),
            Store::Postgres(s) => s.claim(key, lease).await,
        }
    }

    /// Writes the record of a claimed key's decision and its reply, together.
    pub async fn finish(&self, key: &str, row: &Row, reply: &Value) -> Result<Finished, StoreError> {
        match self {
            Store::Embedded(s) => s.settle(key, row, reply).await.map(|()| Finished::Stored),
            Store::Postgres(s) => s.finish(key, row, reply).await,
        }
    }

    /// Writes a decision made while the store was unreachable (from the spool): the record
    /// (once per `decision_id`), and the reply for `key` unless the key has one already.
    pub async fn settle(&self, key: Option<&str>, row: &Row, reply: Option<&Value>) -> Result<(), StoreError> {
        match (self, key.zip(reply)) {
            (Store::Embedded(s), Some((key, reply))) => s.settle(key, row, reply).await,
            (Store::Postgres(s), Some((key, reply))) => s.settle(key, row, reply).await,
            (_, None) => self.append(row).await,
        }
    }

    /// Adds a correction.
    pub async fn add_correction(&self, correction: &Correction) -> Result<(), StoreError> {
        match self {
            Store::Embedded(s) => s.add_correction(correction).await,
            Store::Postgres(s) => s.add_correction(correction).await,
        }
    }

    /// The corrections made at or after `since` (all when `None`), oldest first.
    pub async fn corrections(&self, since: Option<std::time::SystemTime>) -> Result<Vec<Correction>, StoreError> {
        match self {
            Store::Embedded(s) => s.corrections(since).await,
            Store::Postgres(s) => s.corrections(since).await,
        }
    }

    /// The decision record whose `decision_id` is `id`, else the newest whose message id is
    /// `id`.
    pub async fn record(&self, id: &str) -> Result<Option<Value>, StoreError> {
        match self {
            Store::Embedded(s) => {
                let path = s.audit_path().to_owned();
                let id = id.to_owned();
                tokio::task::spawn_blocking(move || EmbeddedStore::find_record(&path, &id)).await.map_err(StoreError::query)?
            }
            Store::Postgres(s) => s.record(id).await,
        }
    }

    /// The decision records made at or after `since` (all when `None`), oldest first; the
    /// last `limit` when given.
    pub async fn records(&self, since: Option<std::time::SystemTime>, limit: Option<usize>) -> Result<Vec<Value>, StoreError> {
        match self {
            Store::Embedded(s) => s.records(since, limit).await,
            Store::Postgres(s) => s.records(since, limit).await,
        }
    }

    /// The learned phrases, oldest first, and their generation (see [`phrases`]).
    pub async fn phrases(&self) -> Result<(Vec<LearnedPhrase>, u64), StoreError> {
        match self {
            Store::Embedded(s) => {
                let path = s.audit_path().to_owned();
                blocking(move || phrases::read_embedded(&path)).await
            }
            Store::Postgres(s) => s.phrases().await,
        }
    }

    /// The learned phrases' generation: it changes with every change to them.
    pub async fn phrase_generation(&self) -> Result<u64, StoreError> {
        match self {
            Store::Embedded(s) => {
                let path = s.audit_path().to_owned();
                blocking(move || phrases::embedded_generation(&path)).await
            }
            Store::Postgres(s) => s.phrase_generation().await,
        }
    }

    /// Removes the learned phrases `remove` and adds `add`.
    pub async fn change_phrases(&self, add: Option<&LearnedPhrase>, remove: &[String]) -> Result<(), StoreError> {
        match self {
            Store::Embedded(s) => {
                let (path, add, remove) = (s.audit_path().to_owned(), add.cloned(), remove.to_vec());
                blocking(move || phrases::change_embedded(&path, add.as_ref(), &remove)).await
            }
            Store::Postgres(s) => s.change_phrases(add, remove).await,
        }
    }

    /// Bytes of a partial last line moved aside when the audit file was opened.
    pub fn repaired_bytes(&self) -> u64 {
        match self {
            Store::Embedded(s) => s.repaired_bytes(),
            Store::Postgres(_) => 0,
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, StoreError> + Send + 'static) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.map_err(StoreError::query)?
}

/// A new correction id: `c-` and a [decision id](new_decision_id)'s form, unique across
/// processes and machines.
pub fn new_correction_id() -> String {
    format!("c-{}", crate::routing::audit::new_decision_id())
}

/// RFC 3339 time of a record or correction, for `since` filters.
pub(crate) fn record_time(v: &Value) -> Option<std::time::SystemTime> {
    v.get("time").and_then(Value::as_str).and_then(|t| humantime::parse_rfc3339_weak(t).ok())
}
