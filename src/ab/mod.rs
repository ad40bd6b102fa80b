//! `strictly ab`: the same labelled messages through two routers, side by side.
//!
//! A team choosing between two backends (the local model, the examples alone, OpenAI's strict
//! mode, another OpenAI-compatible server) runs every row of a routing CSV through a router
//! over each, and gets the figures of [`crate::eval`] for both, what only a comparison has (how
//! often they agree, a paired significance test, the rows where they disagree and who was
//! right), and tokens and cost per 1,000 messages.
//!
//! A harness, not the engine: it sits on top of routing ([`crate::routing`], [`crate::eval`]) and
//! nothing below imports it.
//!
//! - **One side after the other.** All of A's rows, then all of B's, so that the two do not
//!   share the machine while their latency is measured. A side routes
//!   [`Side::concurrency`] rows at a time: 1 for the local model (it uses every core),
//!   more for a remote server.
//! - **Resumable.** Each finished row of a side is appended (and flushed) to
//!   `rows-KEY.jsonl` in the output folder, where KEY hashes the config, the CSV and both
//!   backends' descriptions ([`run_key`]). A rerun with the same inputs skips the rows found
//!   there; a change to any of them starts a new file instead of mixing runs.
//! - **Reports:** `report.md`, `report.json`, `confusion-a.svg`, `confusion-b.svg`,
//!   `accuracy.svg`, `latency.svg` and `cost.svg` ([`report`], [`svg`]).

pub mod report;
pub mod stats;
mod store;
pub mod svg;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::task::Poll;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backend::Backend;
use crate::eval::{Row, RowResult};
use crate::routing::Router;

pub use report::AbReport;
pub use store::Store;

/// Backend error kinds that mean the model's answer broke the schema: it did not parse, did
/// not validate, or was cut by the token cap (the kinds of
/// [`crate::backend::BackendError::is_violation`]).
pub const VIOLATION_KINDS: [&str; 3] = ["parse", "schema_violation", "truncated"];

/// Errors of an A/B run.
#[derive(Debug, thiserror::Error)]
pub enum AbError {
    /// Routing a row failed.
    #[error(transparent)]
    Eval(#[from] crate::eval::EvalError),
    /// A file of the run cannot be read, written or parsed.
    #[error("{path}: {why}")]
    Io {
        /// The file's path.
        path: String,
        /// The error's message (with the line number for a bad JSONL line).
        why: String,
        /// The error behind it (the file system's, the JSON parser's).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The CSV (or the chosen half or sample of it) has no rows.
    #[error("no rows to compare")]
    NoRows,
    /// A side's concurrency is 0.
    #[error("--concurrency must be at least 1")]
    Concurrency,
}

impl AbError {
    /// A file of the run failed: its path, what went wrong, and the error behind it.
    fn io(path: &std::path::Path, why: String, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        AbError::Io { path: path.display().to_string(), why, source: Box::new(source) }
    }
}

/// One side of the comparison: a router and how to run it.
pub struct Side<'a, B: Backend> {
    /// Its router (over the side's backend, with the run's config).
    pub router: &'a Router<B>,
    /// What the report calls it, e.g. `local (SmolLM2-135M)`.
    pub label: String,
    /// Rows routed at a time: 1 for the local model, more for a remote server.
    pub concurrency: usize,
}

/// One side's finished row, as kept in the run's JSONL.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SideRow {
    /// `a` or `b`.
    pub side: String,
    /// The row's score, as `strictly eval` computes it.
    pub result: RowResult,
    /// The backend's error kind ([`crate::backend::BackendError::kind`]), when it failed.
    pub error_kind: Option<String>,
    /// The backend's error message, when it failed.
    pub error: Option<String>,
    /// The model's answer broke the schema (invalid output, or an error of a
    /// [`VIOLATION_KINDS`] kind).
    pub violation: bool,
    /// Prompt tokens of the model call (0 when the backend gave no output).
    pub prompt_tokens: usize,
    /// Output tokens of the model call (0 when the backend gave no output).
    pub completion_tokens: usize,
    /// What the call cost, when the backend prices its usage.
    pub cost_usd: Option<f64>,
}

/// The run's key: the first 16 hex digits of SHA-256 over each part (length-prefixed, so
/// parts cannot run into each other). Pass the config's and the CSV's bytes and a description
/// of each backend (kind, model, decoding options).
pub fn run_key(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Routes every row through both sides (skipping the rows `out`'s run file already has for
/// this `key`), then writes the reports into `out` and returns them.
pub async fn run<A: Backend + Send + Sync + 'static, B: Backend + Send + Sync + 'static>(
    a: &Side<'_, A>,
    b: &Side<'_, B>,
    rows: &[Row],
    out: &Path,
    key: &str,
) -> Result<AbReport, AbError> {
    if rows.is_empty() {
        return Err(AbError::NoRows);
    }
    if a.concurrency == 0 || b.concurrency == 0 {
        return Err(AbError::Concurrency);
    }
    let mut store = Store::open(out, key)?;
    let todo = |side: &str, store: &Store| rows.iter().filter(|r| store.get(side, &r.id).is_none()).count();
    let (todo_a, todo_b) = (todo("a", &store), todo("b", &store));
    if rows.len() * 2 > todo_a + todo_b {
        eprintln!("resuming {}: {} of {} side-rows already done", store.path().display(), rows.len() * 2 - todo_a - todo_b, rows.len() * 2);
    }
    let progress = indicatif::ProgressBar::new((todo_a + todo_b) as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} {elapsed} (eta {eta})") {
        progress.set_style(style);
    }
    progress.set_message(format!("A: {}", a.label));
    run_side(a, "a", rows, &mut store, &progress).await?;
    progress.set_message(format!("B: {}", b.label));
    run_side(b, "b", rows, &mut store, &progress).await?;
    progress.finish_and_clear();
    let (mut side_a, mut side_b) = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
    for row in rows {
        // Both sides have every row now: `run_side` returned Ok for each.
        side_a.extend(store.get("a", &row.id).cloned());
        side_b.extend(store.get("b", &row.id).cloned());
    }
    let report = report::build(
        rows,
        report::SideRows { label: &a.label, backend: a.router.backend().name(), model: a.router.backend().model(), rows: side_a },
        report::SideRows { label: &b.label, backend: b.router.backend().name(), model: b.router.backend().model(), rows: side_b },
        key,
    );
    report::write(&report, out)?;
    Ok(report)
}

/// Routes the rows one side has not finished, `side.concurrency` at a time, appending each
/// to the store as it finishes.
async fn run_side<B: Backend + Send + Sync + 'static>(
    side: &Side<'_, B>,
    name: &str,
    rows: &[Row],
    store: &mut Store,
    progress: &indicatif::ProgressBar,
) -> Result<(), AbError> {
    let validator = crate::schema::validator(&side.router.schema().schema).ok();
    let pending: Vec<&Row> = rows.iter().filter(|r| store.get(name, &r.id).is_none()).collect();
    let validator = validator.as_ref();
    let jobs = pending.into_iter().map(|row| -> Pin<Box<dyn Future<Output = Result<SideRow, AbError>> + '_>> {
        Box::pin(async move { route_one(side.router, validator, row, name).await })
    });
    buffered(jobs, side.concurrency, |done| {
        store.append(&done?)?;
        progress.inc(1);
        Ok(())
    })
    .await
}

/// Routes one row and keeps what the report needs.
async fn route_one<B: Backend + Send + Sync + 'static>(
    router: &Router<B>,
    validator: Option<&jsonschema::Validator>,
    row: &Row,
    side: &str,
) -> Result<SideRow, AbError> {
    let (result, routed) = crate::eval::route_row(router, validator, row).await?;
    let kind = routed.answer.error_kind.map(str::to_string);
    let violation =
        (routed.answer.verdict.output.is_some() && !result.valid) || kind.as_deref().is_some_and(|k| VIOLATION_KINDS.contains(&k));
    let usage = routed.answer.usage.unwrap_or_default();
    Ok(SideRow {
        side: side.into(),
        result,
        error_kind: kind.or_else(|| routed.answer.backend_error.as_ref().map(|_| "other".to_string())),
        error: routed.answer.backend_error,
        violation,
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        cost_usd: routed.answer.billing.and_then(|b| b.usd),
    })
}

/// Runs the futures `limit` at a time on the current task, handing each output to `done` as it
/// finishes; stops at the first error `done` returns.
async fn buffered<'f, T>(
    jobs: impl Iterator<Item = Pin<Box<dyn Future<Output = T> + 'f>>>,
    limit: usize,
    mut done: impl FnMut(T) -> Result<(), AbError>,
) -> Result<(), AbError> {
    let mut jobs = jobs.peekable();
    let mut running: Vec<Pin<Box<dyn Future<Output = T> + 'f>>> = Vec::with_capacity(limit);
    loop {
        while running.len() < limit {
            match jobs.next() {
                Some(job) => running.push(job),
                None => break,
            }
        }
        if running.is_empty() {
            return Ok(());
        }
        let out = std::future::poll_fn(|cx| {
            for i in 0..running.len() {
                if let Poll::Ready(v) = running[i].as_mut().poll(cx) {
                    drop(running.swap_remove(i));
                    return Poll::Ready(v);
                }
            }
            Poll::Pending
        })
        .await;
        done(out)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_change_with_any_part() {
        let k = run_key(&[b"config", b"csv", b"local", b"examples"]);
        assert_eq!(k.len(), 16);
        assert_eq!(k, run_key(&[b"config", b"csv", b"local", b"examples"]));
        assert_ne!(k, run_key(&[b"config", b"csv", b"examples", b"local"]));
        // Length-prefixed: moving a byte from one part to the next changes the key.
        assert_ne!(run_key(&[b"ab", b"c"]), run_key(&[b"a", b"bc"]));
    }

    /// At most `limit` jobs run at once, and every job's output arrives.
    #[test]
    fn buffered_bounds_the_jobs_in_flight() {
        use std::cell::Cell;
        let (running, most) = (Cell::new(0usize), Cell::new(0usize));
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let mut outputs = Vec::new();
        rt.block_on(async {
            let jobs = (0..10u64).map(|i| -> Pin<Box<dyn Future<Output = u64> + '_>> {
                let (running, most) = (&running, &most);
                Box::pin(async move {
                    running.set(running.get() + 1);
                    most.set(most.get().max(running.get()));
                    tokio::time::sleep(std::time::Duration::from_millis(1 + (i * 7) % 5)).await;
                    running.set(running.get() - 1);
                    i
                })
            });
            buffered(jobs, 3, |v| {
                outputs.push(v);
                Ok(())
            })
            .await
            .unwrap();
        });
        outputs.sort();
        assert_eq!(outputs, (0..10).collect::<Vec<_>>());
        assert_eq!(most.get(), 3);
    }
}
