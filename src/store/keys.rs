//! The embedded store's webhook keys: answered keys and their replies in an append-only
//! JSON-lines file, loaded at start, bounded, and compacted when it grows past twice its bound.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::StoreError;
use crate::routing::audit::{AuditError, AuditLog};

#[derive(Serialize, Deserialize)]
struct KeyLine {
    key: String,
    decision_id: String,
    reply: Value,
}

/// Answered keys, oldest evicted first, mirrored in a file.
pub(super) struct KeyFile {
    path: PathBuf,
    log: AuditLog,
    replies: HashMap<String, (String, Value)>,
    order: VecDeque<String>,
    capacity: usize,
    /// Lines in the file (live and evicted or repeated).
    lines: usize,
}

impl KeyFile {
    /// Opens (creating) the file and loads its newest `capacity` keys; a partial last line is
    /// moved aside as in the audit log.
    pub(super) fn open(path: &Path, capacity: usize) -> Result<Self, StoreError> {
        let log = AuditLog::open(path)?;
        let mut keys =
            KeyFile { path: path.to_owned(), log, replies: HashMap::new(), order: VecDeque::new(), capacity: capacity.max(1), lines: 0 };
        let file = std::fs::File::open(path).map_err(|source| StoreError::Read { path: path.display().to_string(), source })?;
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|source| StoreError::Read { path: path.display().to_string(), source })?;
            keys.lines += 1;
            match serde_json::from_str::<KeyLine>(&line) {
                Ok(k) => keys.remember(k.key, k.decision_id, k.reply),
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "skipping an unreadable key line"),
            }
        }
        if keys.lines > 2 * keys.capacity {
            keys.compact()?;
        }
        Ok(keys)
    }

    /// The reply stored for `key`.
    pub(super) fn get(&self, key: &str) -> Option<&Value> {
        self.replies.get(key).map(|(_, reply)| reply)
    }

    /// Keys remembered.
    pub(super) fn len(&self) -> usize {
        self.replies.len()
    }

    /// Writes `key`'s reply (synced), then remembers it.
    pub(super) fn put(&mut self, key: &str, decision_id: &str, reply: &Value) -> Result<(), StoreError> {
        let line = KeyLine { key: key.to_owned(), decision_id: decision_id.to_owned(), reply: reply.clone() };
        let mut bytes = serde_json::to_vec(&line).map_err(AuditError::from)?;
        bytes.push(b'\n');
        self.log.append_line(&bytes)?;
        self.lines += 1;
        self.remember(line.key, line.decision_id, line.reply);
        if self.lines > 2 * self.capacity {
            self.compact()?;
        }
        Ok(())
    }

    fn remember(&mut self, key: String, decision_id: String, reply: Value) {
        if self.replies.insert(key.clone(), (decision_id, reply)).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.replies.remove(&old);
            }
        }
    }

    /// Rewrites the file with the remembered keys only: a synced temporary file renamed over it.
    fn compact(&mut self) -> Result<(), StoreError> {
        let write_error = |source| StoreError::File(AuditError::Write { path: self.path.clone(), source });
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(write_error)?);
        for key in &self.order {
            let (decision_id, reply) = &self.replies[key];
            let line = KeyLine { key: key.clone(), decision_id: decision_id.clone(), reply: reply.clone() };
            serde_json::to_writer(&mut out, &line).map_err(AuditError::from)?;
            out.write_all(b"\n").map_err(write_error)?;
        }
        let file = out.into_inner().map_err(|e| write_error(e.into_error()))?;
        file.sync_all().map_err(write_error)?;
        std::fs::rename(&tmp, &self.path).map_err(write_error)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename is durable once the directory is synced.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        self.log = AuditLog::open(&self.path)?;
        self.lines = self.order.len();
        Ok(())
    }
}
