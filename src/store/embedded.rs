//! The embedded store: the JSON-lines audit log, the key file and the corrections file, in
//! one process. Writes run on tokio's blocking threads (each one syncs to disk).

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use serde_json::Value;

use super::keys::KeyFile;
use super::{record_time, Claim, Correction, Row, StoreError};
use crate::routing::audit::{AuditError, AuditLog};

/// Decision ids remembered to make a replayed write a no-op.
const RECENT_IDS: usize = 100_000;
/// How much of the audit file's end is read at open for those ids.
const TAIL_BYTES: u64 = 16 << 20;

struct Inner {
    audit: AuditLog,
    keys: Mutex<KeyFile>,
    corrections: AuditLog,
    recent: Mutex<RecentIds>,
}

#[derive(Default)]
struct RecentIds {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl RecentIds {
    fn insert(&mut self, id: &str) {
        if self.set.insert(id.to_owned()) {
            self.order.push_back(id.to_owned());
            while self.order.len() > RECENT_IDS {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

/// Files beside the audit log; see the [module docs](super).
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

/// `audit.jsonl` → `audit.<suffix>`.
fn beside(audit: &Path, suffix: &str) -> PathBuf {
    let stem = audit.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "audit".into());
    audit.with_file_name(format!("{stem}.{suffix}"))
}

impl EmbeddedStore {
    /// Opens the audit log at `audit` (repairing a partial last line), the key file (default
    /// `<audit stem>.keys.jsonl`, remembering `keys` keys) and the corrections file.
    pub fn open(audit: &Path, keys_path: Option<&Path>, keys: usize) -> Result<Self, StoreError> {
        let log = AuditLog::open(audit)?;
        let keys_path = keys_path.map_or_else(|| beside(audit, "keys.jsonl"), Path::to_owned);
        let keys = KeyFile::open(&keys_path, keys)?;
        let corrections = AuditLog::open(beside(audit, "corrections.jsonl"))?;
        let mut recent = RecentIds::default();
        for id in tail_ids(audit)? {
            recent.insert(&id);
        }
        tracing::info!(audit = %audit.display(), keys = keys.len(), "embedded store open");
        Ok(EmbeddedStore { inner: Arc::new(Inner { audit: log, keys: Mutex::new(keys), corrections, recent: Mutex::new(recent) }) })
    }

    /// The audit file.
    pub fn audit_path(&self) -> &Path {
        self.inner.audit.path()
    }

    /// Bytes of a partial last line moved aside at open.
    pub fn repaired_bytes(&self) -> u64 {
        self.inner.audit.repaired().map_or(0, |r| r.bytes)
    }

    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner)).await.map_err(StoreError::query)?
    }

    /// Appends the record unless its `decision_id` was written recently.
    pub async fn append(&self, row: &Row) -> Result<(), StoreError> {
        let row = row.clone();
        self.blocking(move |inner| append(inner, &row)).await
    }

    /// The stored reply, or the key is the caller's.
    pub fn claim(&self, key: &str) -> Claim {
        let keys = self.inner.keys.lock().unwrap_or_else(PoisonError::into_inner);
        keys.get(key).map_or(Claim::Mine, |reply| Claim::Done(reply.clone()))
    }

    /// Appends the record, then the key's reply (unless it has one): a crash between the two
    /// leaves the record and not the key, so the retry is routed again (a second record,
    /// never a lost one).
    pub async fn settle(&self, key: &str, row: &Row, reply: &Value) -> Result<(), StoreError> {
        let (key, row, reply) = (key.to_owned(), row.clone(), reply.clone());
        self.blocking(move |inner| {
            append(inner, &row)?;
            let mut keys = inner.keys.lock().unwrap_or_else(PoisonError::into_inner);
            if keys.get(&key).is_none() {
                keys.put(&key, &row.decision_id, &reply)?;
            }
            Ok(())
        })
        .await
    }

    /// Appends a correction.
    pub async fn add_correction(&self, correction: &Correction) -> Result<(), StoreError> {
        let mut line = serde_json::to_vec(correction).map_err(AuditError::from)?;
        line.push(b'\n');
        self.blocking(move |inner| Ok(inner.corrections.append_line(&line)?)).await
    }

    /// Corrections at or after `since`.
    pub async fn corrections(&self, since: Option<SystemTime>) -> Result<Vec<Correction>, StoreError> {
        self.blocking(move |inner| {
            let lines = read_lines(inner.corrections.path(), since)?;
            Ok(lines.into_iter().filter_map(|v| serde_json::from_value(v).ok()).collect())
        })
        .await
    }

    /// Records at or after `since`, the last `limit`.
    pub async fn records(&self, since: Option<SystemTime>, limit: Option<usize>) -> Result<Vec<Value>, StoreError> {
        self.blocking(move |inner| EmbeddedStore::read_records(inner.audit.path(), since, limit)).await
    }

    /// The records of the audit file at `audit` at or after `since`, the last `limit`,
    /// read without opening the store (nothing is written; a partial last line is skipped).
    pub fn read_records(audit: &Path, since: Option<SystemTime>, limit: Option<usize>) -> Result<Vec<Value>, StoreError> {
        let mut lines = read_lines(audit, since)?;
        if let Some(n) = limit {
            lines.drain(..lines.len().saturating_sub(n));
        }
        Ok(lines)
    }

    /// The record of the audit file at `audit` whose `decision_id` is `id`, else the newest
    /// whose message id is `id`, read without opening the store.
    pub fn find_record(audit: &Path, id: &str) -> Result<Option<Value>, StoreError> {
        let read_error = |source| StoreError::Read { path: audit.display().to_string(), source };
        let file = match std::fs::File::open(audit) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(read_error(e)),
        };
        let mut by_message = None;
        for line in BufReader::new(file).lines() {
            let line = line.map_err(read_error)?;
            // Most lines do not mention the id at all: skip them without parsing.
            if !line.contains(id) {
                continue;
            }
            let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
            if v.get("decision_id").and_then(Value::as_str) == Some(id) {
                return Ok(Some(v));
            }
            if v.get("id").and_then(Value::as_str) == Some(id) {
                by_message = Some(v);
            }
        }
        Ok(by_message)
    }

    /// Appends a correction to the corrections file beside the audit file at `audit`, without
    /// opening the store (a server may be writing the audit file; this file takes whole lines).
    pub fn append_correction(audit: &Path, correction: &Correction) -> Result<(), StoreError> {
        let mut line = serde_json::to_vec(correction).map_err(AuditError::from)?;
        line.push(b'\n');
        Ok(AuditLog::open(beside(audit, "corrections.jsonl"))?.append_line(&line)?)
    }

    /// The corrections beside the audit file at `audit`, at or after `since`, read without
    /// opening the store.
    pub fn read_corrections(audit: &Path, since: Option<SystemTime>) -> Result<Vec<Correction>, StoreError> {
        let lines = read_lines(&beside(audit, "corrections.jsonl"), since)?;
        Ok(lines.into_iter().filter_map(|v| serde_json::from_value(v).ok()).collect())
    }
}

fn append(inner: &Inner, row: &Row) -> Result<(), StoreError> {
    if inner.recent.lock().unwrap_or_else(PoisonError::into_inner).set.contains(&row.decision_id) {
        return Ok(());
    }
    let mut line = serde_json::to_vec(&row.line).map_err(AuditError::from)?;
    line.push(b'\n');
    inner.audit.append_line(&line)?;
    inner.recent.lock().unwrap_or_else(PoisonError::into_inner).insert(&row.decision_id);
    Ok(())
}

/// Every whole JSON line of a file at or after `since` (unreadable lines are skipped).
fn read_lines(path: &Path, since: Option<SystemTime>) -> Result<Vec<Value>, StoreError> {
    let read_error = |source| StoreError::Read { path: path.display().to_string(), source };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_error(e)),
    };
    let mut out = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(read_error)?;
        let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
        if since.is_none_or(|s| record_time(&v).is_some_and(|t| t >= s)) {
            out.push(v);
        }
    }
    Ok(out)
}

/// The decision ids in the last [`TAIL_BYTES`] of the audit file.
fn tail_ids(path: &Path) -> Result<Vec<String>, StoreError> {
    let read_error = |source| StoreError::Read { path: path.display().to_string(), source };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    if !file.metadata().map_err(read_error)?.is_file() {
        return Ok(Vec::new());
    }
    let len = file.metadata().map_err(read_error)?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES))).map_err(read_error)?;
    let mut text = Vec::new();
    file.read_to_end(&mut text).map_err(read_error)?;
    Ok(text
        .split(|&b| b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter_map(|v| v.get("decision_id").and_then(Value::as_str).map(str::to_owned))
        .collect())
}
