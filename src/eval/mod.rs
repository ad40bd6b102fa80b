//! `strictly eval`: routing accuracy on a labelled CSV.
//!
//! The CSV has the columns `id,source,text,intent,category,expected_action,
//! expected_team,expected_agent`. Every message goes through the same
//! [`Router`] a deployment uses (its audit log goes to the output folder), and
//! every model output is checked against the deployment schema by the
//! independent `jsonschema` crate.
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | the labelled rows: reading, halves, even samples |
//! | `run.rs` | routing each row through the [`Router`](crate::routing::Router) |
//! | `score.rs` | scoring: accuracy, recall, latency, calibration |
//! | `render.rs` | the reports: Markdown, SVG pictures, JSON |

mod render;
mod run;
mod score;

pub use render::{confusion_svg, confusion_svg_titled, markdown, reliability_svg, total_line, write_reports};
pub use run::{evaluate, route_row};
pub use score::{quantile, score, ActionScore, EvalReport, ReliabilityBin, RowResult};

use std::path::Path;

use serde::Deserialize;

/// One labelled row.
#[derive(Debug, Clone, Deserialize)]
pub struct Row {
    /// The row's identifier, also the conversation id given to the router.
    pub id: String,
    /// Where the message comes from; the report breaks exact routing down by it.
    pub source: String,
    /// The customer's message.
    pub text: String,
    /// The labelled intent (empty when the CSV leaves it out).
    #[serde(default)]
    pub intent: String,
    /// The labelled category (empty when the CSV leaves it out).
    #[serde(default)]
    pub category: String,
    /// The action the message should get, e.g. `handoff_team` or `default_fallback`.
    pub expected_action: String,
    /// The team for a `handoff_team` row (empty otherwise).
    #[serde(default)]
    pub expected_team: String,
    /// The agent for a `handoff_agent` row (empty otherwise).
    #[serde(default)]
    pub expected_agent: String,
}

impl Row {
    /// The expected target in the rules' terms.
    pub fn expected_target(&self) -> String {
        match self.expected_action.as_str() {
            "handoff_team" => format!("team:{}", self.expected_team),
            "handoff_agent" => format!("agent:{}", self.expected_agent),
            "default_fallback" => "default".into(),
            _ => "none".into(),
        }
    }
}

/// Errors of an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The CSV cannot be read or a row does not parse.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The CSV's path.
        path: String,
        /// The CSV reader's error.
        #[source]
        source: csv::Error,
    },
    /// An output file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The output file's path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The router failed on a message.
    #[error("routing failed: {0}")]
    Route(#[from] crate::routing::RouteError),
}

/// Reads the labelled CSV.
pub fn read_rows(path: &Path) -> Result<Vec<Row>, EvalError> {
    let err = |source: csv::Error| EvalError::Read { path: path.display().to_string(), source };
    let mut reader = csv::Reader::from_path(path).map_err(err)?;
    reader.deserialize().collect::<Result<Vec<Row>, _>>().map_err(err)
}

/// One half of a file's rows, by position: tune on one, check on the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Half {
    /// Rows 0, 2, 4, ... (the first data row is row 0).
    Even,
    /// Rows 1, 3, 5, ...
    Odd,
}

/// The rows of one half (all of them for `None`).
pub fn half(rows: Vec<Row>, half: Option<Half>) -> Vec<Row> {
    let Some(half) = half else { return rows };
    let parity = (half == Half::Odd) as usize;
    rows.into_iter().enumerate().filter(|(i, _)| i % 2 == parity).map(|(_, r)| r).collect()
}

/// `n` rows spread evenly over the file (all of them when `n` is larger).
pub fn sample(rows: Vec<Row>, n: Option<usize>) -> Vec<Row> {
    match n {
        Some(n) if n < rows.len() => (0..n).map(|i| rows[i * rows.len() / n].clone()).collect(),
        _ => rows,
    }
}
