//! Runs the schema compiler over a MaskBench file: `strictly coverage`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use strictly::coverage::{self, CoverageConfig};
use strictly::schema::{CompileOptions, UnknownKeywords};
use strictly::tokenizer::GgufTokenizer;

/// The flags of `strictly coverage`.
#[derive(clap::Args)]
pub struct CoverageArgs {
    /// `.jsonl` or `.jsonl.gz`, one `{id, category, schema, tests}` per line.
    pub file: PathBuf,
    /// Random walks per accepted schema.
    #[arg(long, default_value_t = 1)]
    pub walks: usize,
    /// Token budget per walk.
    #[arg(long, default_value_t = 300)]
    pub walk_tokens: usize,
    /// Only the first N schemas.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Refuse schemas with keywords (or `format` names) no JSON Schema draft defines;
    /// by default they are annotations, as JSON Schema says.
    #[arg(long)]
    pub deny_unknown_keywords: bool,
    /// Accepted for old scripts: ignoring unknown keywords is now the default.
    #[arg(long, hide = true, conflicts_with = "deny_unknown_keywords")]
    pub ignore_unknown_keywords: bool,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// GGUF whose vocabulary the walks use (default: the resolved default model).
    #[arg(long, env = "STRICTLY_MODEL")]
    pub model: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(args: CoverageArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let CoverageArgs { file, walks, walk_tokens, limit, deny_unknown_keywords, ignore_unknown_keywords: _, threads, model, json } = args;
    let mut records = coverage::read_records(&file)?;
    if let Some(n) = limit {
        records.truncate(n);
    }
    let model = strictly::model::resolve::resolve(model.as_deref())?;
    let tokenizer = GgufTokenizer::from_gguf(&model)?;
    let mut options = CompileOptions::default();
    if deny_unknown_keywords {
        options.unknown_keywords = UnknownKeywords::Deny;
    }
    let config = CoverageConfig { options, walks, walk_tokens, threads, ..CoverageConfig::default() };
    let report = coverage::run(&records, Arc::clone(tokenizer.vocab()), &config);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", coverage::render(&report));
    }
    let ok = report.total.false_accepts == 0 && report.total.walks_valid + report.total.walks_unchecked == report.total.walks;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
