//! Learned phrases in the store ([`LearnedPhrase`]; see [`crate::routing::learning`]).
//!
//! | store | where | generation |
//! |---|---|---|
//! | embedded | `<audit stem>.phrases.jsonl`: one `{"op": "add", "phrase": {...}}` or `{"op": "remove", "id": ...}` per line, replayed in order | the file's line count |
//! | PostgreSQL | table `learned_phrases` | `phrase_generation`, bumped in each change's transaction |
//!
//! The generation changes with every change, so a replica that loaded the phrases at
//! generation *g* knows it is up to date while the store still says *g*.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{PgStore, StoreError};
use crate::routing::audit::{AuditError, AuditLog};
use crate::routing::learning::LearnedPhrase;

/// One line of the embedded phrases file.
#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Change {
    Add { phrase: LearnedPhrase },
    Remove { id: String },
}

/// `<audit stem>.phrases.jsonl` beside the audit file.
pub fn phrases_path(audit: &Path) -> PathBuf {
    let stem = audit.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "audit".into());
    audit.with_file_name(format!("{stem}.phrases.jsonl"))
}

/// The learned phrases beside the audit file at `audit`, oldest first, and the generation.
pub fn read_embedded(audit: &Path) -> Result<(Vec<LearnedPhrase>, u64), StoreError> {
    let path = phrases_path(audit);
    let read_error = |source| StoreError::Read { path: path.display().to_string(), source };
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(read_error(e)),
    };
    let (mut phrases, mut generation) = (Vec::<LearnedPhrase>::new(), 0);
    for line in BufReader::new(file).lines() {
        let line = line.map_err(read_error)?;
        match serde_json::from_str::<Change>(&line) {
            Ok(Change::Add { phrase }) => phrases.push(phrase),
            Ok(Change::Remove { id }) => phrases.retain(|p| p.id != id),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "skipping an unreadable phrase line");
                continue;
            }
        }
        generation += 1;
    }
    Ok((phrases, generation))
}

/// The generation of the phrases beside `audit` (their file's lines).
pub fn embedded_generation(audit: &Path) -> Result<u64, StoreError> {
    read_embedded(audit).map(|(_, g)| g)
}

/// Removes `remove` and adds `add`, as whole lines (each synced).
pub fn change_embedded(audit: &Path, add: Option<&LearnedPhrase>, remove: &[String]) -> Result<(), StoreError> {
    let log = AuditLog::open(phrases_path(audit))?;
    let mut lines = Vec::new();
    for id in remove {
        lines.push(serde_json::to_vec(&Change::Remove { id: id.clone() }).map_err(AuditError::from)?);
    }
    if let Some(phrase) = add {
        lines.push(serde_json::to_vec(&Change::Add { phrase: phrase.clone() }).map_err(AuditError::from)?);
    }
    for mut line in lines {
        line.push(b'\n');
        log.append_line(&line)?;
    }
    Ok(())
}

fn query_error(e: tokio_postgres::Error) -> StoreError {
    StoreError::query(e)
}

impl PgStore {
    /// The learned phrases, oldest first, and the generation, read in one transaction.
    pub async fn phrases(&self) -> Result<(Vec<LearnedPhrase>, u64), StoreError> {
        let mut client = self.pool_client().await?;
        let tx = client.build_transaction().read_only(true).start().await.map_err(query_error)?;
        let generation: i64 = tx.query_one("SELECT generation FROM phrase_generation", &[]).await.map_err(query_error)?.get(0);
        let rows = tx
            .query("SELECT id, time, action, target, text, correction_id, decision_id FROM learned_phrases ORDER BY time, id", &[])
            .await
            .map_err(query_error)?;
        tx.commit().await.map_err(query_error)?;
        let phrases = rows
            .iter()
            .map(|r| {
                let action: String = r.get(2);
                Ok(LearnedPhrase {
                    id: r.get(0),
                    time: humantime::format_rfc3339_millis(r.get::<_, SystemTime>(1)).to_string(),
                    action: serde_json::from_value(Value::String(action)).map_err(StoreError::query)?,
                    target: r.get(3),
                    text: r.get(4),
                    correction_id: r.get(5),
                    decision_id: r.get(6),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((phrases, generation as u64))
    }

    /// The phrases' generation.
    pub async fn phrase_generation(&self) -> Result<u64, StoreError> {
        let client = self.pool_client().await?;
        let g: i64 = client.query_one("SELECT generation FROM phrase_generation", &[]).await.map_err(query_error)?.get(0);
        Ok(g as u64)
    }

    /// Removes `remove` and adds `add` in one transaction that bumps the generation.
    pub async fn change_phrases(&self, add: Option<&LearnedPhrase>, remove: &[String]) -> Result<(), StoreError> {
        let mut client = self.pool_client().await?;
        let tx = client.transaction().await.map_err(query_error)?;
        if !remove.is_empty() {
            tx.execute("DELETE FROM learned_phrases WHERE id = ANY($1)", &[&remove]).await.map_err(query_error)?;
        }
        if let Some(p) = add {
            let time = humantime::parse_rfc3339_weak(&p.time)
                .map_err(|e| StoreError::query_because(format!("phrase time {:?}: {e}", p.time), e))?;
            tx.execute(
                "INSERT INTO learned_phrases (id, time, action, target, text, correction_id, decision_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&p.id, &time, &p.action.as_str(), &p.target, &p.text, &p.correction_id, &p.decision_id],
            )
            .await
            .map_err(query_error)?;
        }
        tx.execute("UPDATE phrase_generation SET generation = generation + 1", &[]).await.map_err(query_error)?;
        tx.commit().await.map_err(query_error)
    }
}
