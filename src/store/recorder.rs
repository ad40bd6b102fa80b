//! [`Recorder`]: the store with a spool in front, so that a decision is never lost when the
//! store is down, and the replay that drains the spool in order.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;

use super::spool::{Spool, SpoolEntry, SpoolError};
use super::{Claim, Finished, Row, Store, StoreError};

/// Where a decision went.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Committed to the store.
    Stored,
    /// In the spool, synced to its file: the store gets it on replay.
    Spooled,
    /// In the spool's memory only (its file cannot be written either): kept while the process
    /// lives.
    Held,
    /// Not written: the claim of its webhook key was taken over (claim again).
    Lost,
}

/// How the record is doing, for `/readyz`.
#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    /// Records reach the store.
    Ok,
    /// Records wait in the spool (the store is unreachable); nothing is lost.
    Degraded(String),
    /// Records cannot be written durably at all (neither the store nor the spool file).
    Failing(String),
}

/// The store, a spool, and the task that replays the spool.
pub struct Recorder {
    store: Store,
    spool: Spool,
    wake: Arc<Notify>,
    last_error: Mutex<Option<String>>,
}

/// Pause between replay attempts while the store stays down.
const RETRY: Duration = Duration::from_millis(250);

impl Recorder {
    /// A recorder over `store` and `spool`; starts the replay on the current tokio runtime
    /// (it ends when the recorder is dropped).
    pub fn start(store: Store, spool: Spool) -> Arc<Recorder> {
        let recorder = Arc::new(Recorder { store, spool, wake: Arc::new(Notify::new()), last_error: Mutex::new(None) });
        tokio::spawn(replay(Arc::downgrade(&recorder)));
        recorder
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Records waiting in the spool.
    pub fn spool_depth(&self) -> usize {
        self.spool.len()
    }

    /// The spool.
    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    fn failed(&self, e: &StoreError) {
        tracing::error!(store = %self.store.location(), error = %e, "the store cannot be written; decisions go to the spool");
        *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
    }

    /// The record's health.
    pub fn health(&self) -> Health {
        let error = self.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone().unwrap_or_default();
        let (depth, memory) = (self.spool.len(), self.spool.memory_only());
        if memory > 0 {
            Health::Failing(format!(
                "{memory} decisions are held in memory only: neither the store nor the spool file can be written ({error})"
            ))
        } else if depth > 0 {
            Health::Degraded(format!("{depth} decisions wait in the spool for the store ({error})"))
        } else {
            Health::Ok
        }
    }

    /// Claims a webhook key in the store.
    pub async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, StoreError> {
        self.store.claim(key, lease).await
    }

    /// Writes a decision: to the store when nothing waits in the spool (with the key's reply,
    /// when `keyed` is given, as [`Store::finish`]); else, or when the store fails, to the
    /// spool. `hold` keeps the decision in memory when the spool file cannot be written
    /// either (for a decision that is answered whatever happens); otherwise that is an error.
    pub async fn write(&self, row: Row, keyed: Option<(&str, &Value)>, hold: bool) -> Result<Outcome, SpoolError> {
        if self.spool.is_empty() {
            let written = match keyed {
                Some((key, reply)) => self.store.finish(key, &row, reply).await,
                None => self.store.append(&row).await.map(|()| Finished::Stored),
            };
            match written {
                Ok(Finished::Stored) => return Ok(Outcome::Stored),
                Ok(Finished::Lost) => return Ok(Outcome::Lost),
                Err(e) => self.failed(&e),
            }
        }
        let entry = SpoolEntry { line: row.line, key: keyed.map(|(k, _)| k.to_owned()), reply: keyed.map(|(_, r)| r.clone()) };
        let synced = self.spool.push(entry, hold)?;
        self.wake.notify_one();
        Ok(if synced { Outcome::Spooled } else { Outcome::Held })
    }

    /// Replays the spool now, until it is empty or the store fails; the number written.
    pub async fn drain(&self) -> usize {
        let mut written = 0;
        while let Some(entry) = self.spool.front() {
            let row = match Row::from_line(entry.line.clone()) {
                Ok(row) => row,
                Err(e) => {
                    tracing::error!(error = %e, line = %entry.line, "dropping a spooled line that is not a record");
                    self.spool.pop_front();
                    continue;
                }
            };
            match self.store.settle(entry.key.as_deref(), &row, entry.reply.as_ref()).await {
                Ok(()) => {
                    self.spool.pop_front();
                    written += 1;
                }
                Err(e) => {
                    *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
                    break;
                }
            }
        }
        if written > 0 {
            tracing::info!(written, waiting = self.spool.len(), "spooled decisions written to the store");
        }
        written
    }
}

async fn replay(recorder: Weak<Recorder>) {
    loop {
        let Some(r) = recorder.upgrade() else { return };
        if !r.spool.is_empty() {
            r.drain().await;
        }
        let pause = if r.spool.is_empty() { Duration::from_secs(1) } else { RETRY };
        // Wait without keeping the recorder alive, so that dropping it ends this task.
        let wake = r.wake.clone();
        drop(r);
        // `notify_one` before this wait leaves a permit, so no wake-up is missed.
        let woken = tokio::time::timeout(pause, wake.notified()).await.is_ok();
        if woken {
            // Let a burst of writes land before replaying.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
