//! Evaluates routing on a labelled CSV: `strictly eval`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::args::{BackendArgs, MatchArgs, ModelArgs};

/// The flags of `strictly eval`.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// `id,source,text,intent,category,expected_action,expected_team,expected_agent`
    pub csv: PathBuf,
    /// Routing config (TOML).
    #[arg(long, default_value = "config/routing.example.toml")]
    pub config: PathBuf,
    /// Only N rows, spread evenly over the file (or over the --half).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Only the rows at even (0, 2, 4, ...) or odd positions in the file: tune on one half,
    /// check on the other.
    #[arg(long, value_enum)]
    pub half: Option<strictly::eval::Half>,
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Output folder (the audit log of the run goes there too).
    #[arg(long, default_value = "out/eval")]
    pub out: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub matching: MatchArgs,
}

/// Runs the command.
pub fn run(args: EvalArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let EvalArgs { csv, config, limit, half, backend, out, json, model, matching } = args;
    let rows = strictly::eval::read_rows(&csv)?;
    let rows = strictly::eval::sample(strictly::eval::half(rows, half), limit);
    let mut config = strictly::routing::RoutingConfig::load(&config)?;
    config.audit.path = out.join("audit.jsonl");
    let backend = backend.build(&config, &model)?;
    let audit = config.audit.path.clone();
    let router = matching.apply(strictly::routing::Router::builder(config).backend(backend).audit(audit))?.build()?;
    let report = evaluate(&router, &rows)?;
    strictly::eval::write_reports(&report, &out)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", strictly::eval::markdown(&report));
        println!("\nreports in {}", out.display());
    }
    println!("{}", strictly::eval::total_line(&report));
    Ok(ExitCode::SUCCESS)
}

/// Routes every row with a progress bar.
fn evaluate<B: strictly::backend::Backend + Send + Sync + 'static>(
    router: &strictly::routing::Router<B>,
    rows: &[strictly::eval::Row],
) -> Result<strictly::eval::EvalReport, Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let progress = indicatif::ProgressBar::new(rows.len() as u64);
    progress.set_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} messages {elapsed} (eta {eta}) {msg}")?);
    let mut exact = 0;
    let report = runtime.block_on(strictly::eval::evaluate(router, rows, |i, r| {
        exact += r.exact as usize;
        progress.set_message(format!("exact {:.1}%", 100.0 * exact as f64 / (i + 1) as f64));
        progress.inc(1);
    }))?;
    progress.finish_and_clear();
    Ok(report)
}
