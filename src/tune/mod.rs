//! `strictly tune`: the examples' vote fitted to a shop's own labelled messages.
//!
//! The `[vote]` values (`k`, `power`, `min_similarity`, `lexical_weight`) decide how the
//! configured phrases route a message. Tuning chooses them on a labelled CSV (the columns of
//! `strictly eval`) by k-fold cross-validation:
//!
//! 1. every message is compared with every phrase once, by words and by meaning (the encoder
//!    runs over batches of messages): [`ExampleVote::similarities_of_many`];
//! 2. every candidate of a [`Grid`] is replayed on every row in memory, through the router's
//!    own vote and rules ([`Replay`]), so a replayed decision is the one `strictly route
//!    --backend examples` makes, not an imitation of it;
//! 3. the rows are dealt into folds (stratified by label, shuffled by the seed); for each fold
//!    the [`Objective`] chooses a candidate on the other folds, and the fold scores it: the
//!    pooled held-out figures estimate what tuning is worth, beside the current values' figures
//!    on the same folds;
//! 4. the values chosen on all rows are the result: a report and a TOML patch for review
//!    ([`markdown`], [`patch_toml`]); [`apply_patch`] writes them into the config, keeping its
//!    comments.
//!
//! `decide_at` and `shortlist` are left alone: they only matter when a model is asked, and
//! replaying a model is not seconds' work.
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | the labelled rows, the folds, the cross-validation |
//! | `objective.rs` | what is maximised, within which bounds |
//! | `replay.rs` | the grid and its replay; the figures |
//! | `report.rs` | the Markdown and JSON reports, the patch, writing it |
//!
//! Cost: the encoder dominates: a run on 4,605 messages and 565 phrases took 88 CPU-seconds,
//! of which replaying the 1,000 candidates of the default grid and cross-validating took about
//! 4 (a debug build, with the dependencies optimised).

mod objective;
mod replay;
mod report;

pub use objective::{Bound, Constraint, Metric, Objective, ObjectiveError, DEFAULT_OBJECTIVE};
pub use replay::{Choice, Grid, Metrics, Replay};
pub use report::{apply_patch, markdown, patch_toml, route_label, to_json, Applied, Report, RouteLine, Values, WrongRow};

use std::path::Path;

use serde::Serialize;

use crate::eval::Row;
use crate::routing::{Action, RoutingConfig, Target};

/// Why tuning could not run.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    /// The CSV cannot be read or a row does not parse.
    #[error("cannot read {path}: {why}")]
    Read {
        /// The CSV's path.
        path: String,
        /// What went wrong.
        why: String,
    },
    /// The CSV lacks columns tuning needs.
    #[error("{path} has no column {missing} (the columns are id,source,text,intent,category,expected_action,expected_team,expected_agent; the team and agent columns may be empty except on handoff rows)")]
    MissingColumns {
        /// The CSV's path.
        path: String,
        /// The missing columns, quoted and comma-separated.
        missing: String,
    },
    /// The CSV has no data rows.
    #[error("{0} has no labelled rows")]
    Empty(String),
    /// A row's label names no action, team or agent of the config.
    #[error("{path}, line {line} (id `{id}`): {why}")]
    Label {
        /// The CSV's path.
        path: String,
        /// The row's line in the file (the header is line 1).
        line: u64,
        /// The row's id.
        id: String,
        /// What is wrong with the label.
        why: String,
    },
    /// More folds than rows, or fewer than 2.
    #[error("--folds must be at least 2 and at most the number of rows ({rows}), got {folds}")]
    Folds {
        /// The folds asked for.
        folds: usize,
        /// The rows there are.
        rows: usize,
    },
    /// The config has no example phrases: there is no vote to tune.
    #[error("the routing config has no [[examples]] phrases: there is no vote to tune")]
    NoPhrases,
    /// The sentence encoder failed on a message.
    #[error("sentence encoder: {0}")]
    Encoder(#[from] crate::encoder::EncoderError),
    /// The config cannot be patched in place, or a report cannot be written.
    #[error("{message}")]
    Write {
        /// The file, and what went wrong.
        message: String,
        /// The error behind it (the file system's, the patched config's), when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

const REQUIRED: [&str; 4] = ["id", "source", "text", "expected_action"];

/// Reads a labelled CSV and checks each row's label against the config: the action must be one
/// of the four, a team or agent must be configured (agents compare case-insensitively, as the
/// router does). Returns the rows and their expected routes.
pub fn read_labelled(path: &Path, cfg: &RoutingConfig) -> Result<(Vec<Row>, Vec<Target>), TuneError> {
    let name = path.display().to_string();
    let read_err = |why: String| TuneError::Read { path: name.clone(), why };
    let mut reader = csv::Reader::from_path(path).map_err(|e| read_err(e.to_string()))?;
    let headers = reader.headers().map_err(|e| read_err(e.to_string()))?.clone();
    let missing: Vec<String> = REQUIRED.iter().filter(|c| !headers.iter().any(|h| h == **c)).map(|c| format!("`{c}`")).collect();
    if headers.is_empty() || (headers.len() == 1 && headers.get(0) == Some("")) {
        return Err(TuneError::Empty(name));
    }
    if !missing.is_empty() {
        return Err(TuneError::MissingColumns { path: name, missing: missing.join(", ") });
    }
    let (mut rows, mut expected) = (Vec::new(), Vec::new());
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(|e| read_err(e.to_string()))? {
        let line = record.position().map_or(0, |p| p.line());
        let row: Row = record.deserialize(Some(&headers)).map_err(|e| read_err(format!("line {line}: {e}")))?;
        let target = expected_target(&row, cfg).map_err(|why| TuneError::Label { path: name.clone(), line, id: row.id.clone(), why })?;
        rows.push(row);
        expected.push(target);
    }
    if rows.is_empty() {
        return Err(TuneError::Empty(name));
    }
    Ok((rows, expected))
}

/// A row's expected route in the config's terms, or why it has none.
fn expected_target(row: &Row, cfg: &RoutingConfig) -> Result<Target, String> {
    if row.text.trim().is_empty() {
        return Err("the text is empty".into());
    }
    let action = Action::ALL.into_iter().find(|a| a.as_str() == row.expected_action).ok_or_else(|| {
        format!("expected_action `{}` is not one of answer, handoff_team, handoff_agent, default_fallback", row.expected_action)
    })?;
    match action {
        Action::Answer => Ok(Target::None),
        Action::DefaultFallback => Ok(Target::DefaultRouting),
        Action::HandoffTeam => cfg.team(&row.expected_team).map(|t| Target::Team(t.id.clone())).ok_or_else(|| {
            let ids: Vec<&str> = cfg.teams.iter().map(|t| t.id.as_str()).collect();
            format!("expected_team `{}` is not a team of the config ({})", row.expected_team, ids.join(", "))
        }),
        Action::HandoffAgent => cfg.agent(&row.expected_agent).map(|a| Target::Agent(a.email.clone())).ok_or_else(|| {
            let emails: Vec<&str> = cfg.agents.iter().map(|a| a.email.as_str()).collect();
            format!("expected_agent `{}` is not an agent of the config ({})", row.expected_agent, emails.join(", "))
        }),
    }
}

/// SplitMix64: a fixed, documented shuffle key, the same on every platform and version.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The fold of each of `rows`: rows are grouped by label, each group is shuffled by `seed`
/// (SplitMix64 of the seed and the row's index), and the groups are dealt round the folds in
/// turn, so every fold holds each label in proportion. The same rows and seed always give the
/// same folds.
pub fn deal_folds(replay: &Replay, rows: &[usize], folds: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<(usize, u64, usize)> = rows
        .iter()
        .enumerate()
        .map(|(pos, &r)| {
            let label = replay.label_id(r);
            (label, splitmix64(seed ^ splitmix64(r as u64)), pos)
        })
        .collect();
    order.sort_unstable();
    let mut fold_of = vec![0; rows.len()];
    for (dealt, &(_, _, pos)) in order.iter().enumerate() {
        fold_of[pos] = dealt % folds;
    }
    fold_of
}

/// One fold of the cross-validation.
#[derive(Debug, Clone, Serialize)]
pub struct Fold {
    /// Held-out rows.
    pub rows: usize,
    /// What the objective chose on the other folds.
    pub choice: Choice,
    /// The chosen candidate's figures on this fold.
    pub tuned: Metrics,
    /// The current values' figures on this fold.
    pub current: Metrics,
}

/// The outcome of tuning on some rows.
#[derive(Debug, Clone, Serialize)]
pub struct Tuning {
    /// The objective.
    pub objective: String,
    /// The seed of the folds.
    pub seed: u64,
    /// Rows tuned on (indices into the replay's rows).
    #[serde(skip)]
    pub rows: Vec<usize>,
    /// For each of the replay's rows that was tuned on, the candidate that decided it in the
    /// cross-validation: the one chosen without the row's fold.
    #[serde(skip)]
    pub held_out: Vec<Option<usize>>,
    /// Per fold: the choice on the other folds and the held-out figures.
    pub folds: Vec<Fold>,
    /// Every row decided by the values chosen without it (pooled held-out figures).
    pub cv_tuned: Metrics,
    /// The current values on the same rows.
    pub cv_current: Metrics,
    /// The values chosen on all the rows: the result.
    pub chosen: Choice,
    /// Whether the result is worth applying: it differs from the current values, and on the
    /// held-out folds it scores better on the objective's metric while keeping its bounds.
    pub better: bool,
}

/// Cross-validates `objective` on `rows` of `replay` with `folds` folds dealt by `seed`, then
/// chooses on all of `rows`.
pub fn cross_validate(replay: &Replay, rows: &[usize], folds: usize, seed: u64, objective: &Objective) -> Result<Tuning, TuneError> {
    if folds < 2 || folds > rows.len() {
        return Err(TuneError::Folds { folds, rows: rows.len() });
    }
    let fold_of = deal_folds(replay, rows, folds, seed);
    let mut held_out = vec![None; replay.rows()];
    let folds: Vec<Fold> = (0..folds)
        .map(|f| {
            let of_fold =
                |inside: bool| -> Vec<usize> { rows.iter().zip(&fold_of).filter(|(_, &g)| (g == f) == inside).map(|(&r, _)| r).collect() };
            let (held, train) = (of_fold(true), of_fold(false));
            let choice = replay.choose(objective, &train);
            held.iter().for_each(|&r| held_out[r] = Some(choice.candidate));
            Fold { rows: held.len(), tuned: replay.metrics(choice.candidate, &held), current: replay.metrics(0, &held), choice }
        })
        .collect();
    let cv_tuned = replay.metrics_by(rows, |r| held_out[r].unwrap_or(0));
    let cv_current = replay.metrics(0, rows);
    let chosen = replay.choose(objective, rows);
    let keeps_bounds = objective.constraints.iter().all(|c| {
        let (Some(tuned), Some(current)) = (cv_tuned.get(c.metric), cv_current.get(c.metric)) else { return true };
        let bound = c.bound.resolve(current);
        if c.at_least {
            tuned >= bound
        } else {
            tuned <= bound
        }
    });
    let value = |m: &Metrics| m.get(objective.metric).unwrap_or(0.0);
    let gain = if objective.maximise { value(&cv_tuned) - value(&cv_current) } else { value(&cv_current) - value(&cv_tuned) };
    let better = chosen.candidate != 0 && keeps_bounds && gain > 0.0;
    Ok(Tuning { objective: objective.to_string(), seed, rows: rows.to_vec(), held_out, folds, cv_tuned, cv_current, chosen, better })
}
