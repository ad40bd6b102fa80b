//! The spool: decisions waiting for the store, oldest first, in a fsynced JSON-lines file
//! (so a restart replays them) and in memory (the replay's queue).
//!
//! The file keeps every entry until the queue is empty, then is cut to zero; when more than
//! `max` entries were replayed without the queue emptying, it is rewritten with the waiting
//! ones. A replay after a crash may therefore write an entry the store already has, which the
//! store ignores (records are written once per `decision_id`). When the file cannot be written
//! (a full disk), or the spool holds its `max` entries, an entry that must not be lost (an
//! answered webhook) is still held in memory, and the spool reports it ([`Spool::memory_only`]).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::StoreError;
use crate::routing::audit::{AuditError, AuditLog};

/// One waiting decision: the audit line, and for a webhook delivery its key and reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpoolEntry {
    /// The audit line.
    pub line: Value,
    /// The webhook key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The webhook reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Value>,
}

/// Why an entry was not spooled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// The spool holds `max` entries.
    #[error("the spool is full ({0} records wait for the store)")]
    Full(usize),
    /// The spool file cannot be written, and the entry was not to be held in memory.
    #[error("cannot write the spool: {message}")]
    Write {
        /// Why.
        message: String,
        /// The file's error, when there is one.
        #[source]
        source: Option<AuditError>,
    },
}

struct State {
    file: Option<AuditLog>,
    queue: VecDeque<SpoolEntry>,
    /// Entries replayed since the file was last emptied or rewritten.
    replayed: usize,
    /// Entries in the queue that are not in the file.
    memory_only: usize,
}

/// A bounded queue of decisions for the store; see the module docs.
pub struct Spool {
    path: PathBuf,
    max: usize,
    state: Mutex<State>,
}

impl Spool {
    /// Opens (creating) the spool file and loads the entries it holds.
    pub fn open(path: &Path, max: usize) -> Result<Spool, StoreError> {
        let file = AuditLog::open(path)?;
        let mut queue = VecDeque::new();
        let reader = std::fs::File::open(path).map_err(|source| StoreError::Read { path: path.display().to_string(), source })?;
        for line in BufReader::new(reader).lines() {
            let line = line.map_err(|source| StoreError::Read { path: path.display().to_string(), source })?;
            match serde_json::from_str::<SpoolEntry>(&line) {
                Ok(e) => queue.push_back(e),
                Err(e) => tracing::error!(spool = %path.display(), error = %e, "skipping an unreadable spool line"),
            }
        }
        if !queue.is_empty() {
            tracing::warn!(spool = %path.display(), records = queue.len(), "records from an earlier run wait for the store");
        }
        Ok(Spool {
            path: path.to_owned(),
            max: max.max(1),
            state: Mutex::new(State { file: Some(file), queue, replayed: 0, memory_only: 0 }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Entries waiting.
    pub fn len(&self) -> usize {
        self.state().queue.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waiting entries that only memory holds (the file could not be written).
    pub fn memory_only(&self) -> usize {
        self.state().memory_only
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an entry (synced to the file). When the file cannot be written, the entry is
    /// held in memory if `hold` is true (and `Ok(false)` returned), else refused.
    pub fn push(&self, entry: SpoolEntry, hold: bool) -> Result<bool, SpoolError> {
        let mut state = self.state();
        let full = state.queue.len() >= self.max;
        if full && !hold {
            return Err(SpoolError::Full(state.queue.len()));
        }
        let written = match &state.file {
            // Past the bound, an answered decision is still kept, in memory, and reported.
            _ if full => Err((format!("the spool is full ({} records)", state.queue.len()), None)),
            Some(file) => serde_json::to_vec(&entry)
                .map_err(AuditError::from)
                .and_then(|mut line| {
                    line.push(b'\n');
                    file.append_line(&line)
                })
                .map_err(|e| (e.to_string(), Some(e))),
            None => Err((format!("{} is not open", self.path.display()), None)),
        };
        match written {
            Ok(()) => {
                state.queue.push_back(entry);
                Ok(true)
            }
            Err((e, _)) if hold => {
                tracing::error!(spool = %self.path.display(), error = %e, "a decision is held in memory only");
                state.queue.push_back(entry);
                state.memory_only += 1;
                Ok(false)
            }
            Err((message, source)) => Err(SpoolError::Write { message, source }),
        }
    }

    /// The oldest waiting entry.
    pub fn front(&self) -> Option<SpoolEntry> {
        self.state().queue.front().cloned()
    }

    /// Drops the oldest entry once the store has it; empties or rewrites the file as needed.
    pub fn pop_front(&self) {
        let mut state = self.state();
        if state.queue.pop_front().is_none() {
            return;
        }
        state.replayed += 1;
        if state.queue.is_empty() {
            state.memory_only = 0;
            state.replayed = 0;
            let cut = std::fs::OpenOptions::new().write(true).open(&self.path).and_then(|f| {
                f.set_len(0)?;
                f.sync_all()
            });
            if let Err(e) = cut {
                tracing::error!(spool = %self.path.display(), error = %e, "cannot empty the spool file");
            }
        } else if state.replayed > self.max || state.memory_only > 0 {
            // Rewrite with the waiting entries (this also saves the memory-only ones, if the
            // disk has room again).
            match rewrite(&self.path, &state.queue) {
                Ok(()) => {
                    state.replayed = 0;
                    state.memory_only = 0;
                    state.file = AuditLog::open(&self.path).ok();
                }
                Err(e) => tracing::warn!(spool = %self.path.display(), error = %e, "cannot rewrite the spool file"),
            }
        }
    }
}

fn rewrite(path: &Path, queue: &VecDeque<SpoolEntry>) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    for entry in queue {
        serde_json::to_writer(&mut out, entry)?;
        out.write_all(b"\n")?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
