//! The `strictly` command line: flags in, exit codes out; logic lives in the library.
//! `main.rs` parses and dispatches; each command is a file in `src/cli/`.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "strictly", version, about = "Schema-constrained local LLM routing for customer support")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[cfg(feature = "harness")]
    /// Run the schema compiler over a MaskBench-format file.
    Coverage(cli::coverage::CoverageArgs),
    /// Route one support message: prints the Kommunicate payload.
    Route(cli::route::RouteArgs),
    #[cfg(feature = "harness")]
    /// Evaluate routing on a labelled CSV; writes report.md, report.json and confusion.svg.
    Eval(cli::eval::EvalArgs),
    /// The same labelled CSV through two routers, side by side: accuracy, schema violations,
    /// refusals, errors, latency, tokens and cost, a paired significance test, and the rows
    /// where they disagree. Writes report.md, report.json and pictures into --out; resumable.
    #[cfg(feature = "harness")]
    Ab(cli::ab::AbArgs),
    /// Fit the examples' vote (`[vote]` k, power, min_similarity, lexical_weight) to a labelled
    /// CSV by cross-validation; writes report.md, report.json and patch.toml into --out, and the
    /// config only with --write.
    #[cfg(feature = "harness")]
    Tune(cli::tune::TuneArgs),
    /// Serve routing over HTTP: the Kommunicate webhook, /v1/route, health and metrics.
    #[cfg(feature = "serve")]
    Serve(cli::serve::ServeArgs),
    /// Read the decision record, from the embedded store or PostgreSQL: `tail`, `stats`
    /// (by action, route, rule and path; model share, latency, correction rate), `export`.
    #[cfg(feature = "store")]
    Audit(cli::audit::AuditArgs),
    /// Correct a recorded decision (`add ID --team T | --agent A | --answer | --fallback`), in
    /// the store the server uses: the embedded files or PostgreSQL.
    #[cfg(feature = "serve")]
    Feedback(cli::feedback::FeedbackArgs),
    /// The example phrases and where they came from (`list`); remove a learned one, or
    /// `promote` it into the config file.
    #[cfg(feature = "serve")]
    Phrases(cli::phrases::PhrasesArgs),
    /// Check a JSON Schema against OpenAI's strict structured-output subset: every rule it
    /// breaks, with its JSON pointer and what OpenAI does (rejects, or narrows in silence).
    /// Exit code 1 when a rule is broken.
    Lint(cli::lint::LintArgs),
    /// Generate JSON that matches a schema, with the local model.
    Generate(cli::generate::GenerateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(&cli);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Logs on stderr. `serve` logs requests at `info` unless `RUST_LOG` says otherwise, as text or JSON.
fn init_logs(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    #[cfg(feature = "serve")]
    if let Command::Serve(cli::serve::ServeArgs { log_format, .. }) = &cli.command {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
        if log_format == "json" {
            logs.json().init();
        } else {
            logs.fmt_fields(strictly::serve::text_fields()).init();
        }
        return;
    }
    let _ = cli;
    tracing_subscriber::fmt().with_env_filter(EnvFilter::from_default_env()).with_writer(std::io::stderr).init();
}

fn run(cli: Cli) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match cli.command {
        #[cfg(feature = "serve")]
        Command::Serve(args) => cli::serve::run(args),
        #[cfg(feature = "harness")]
        Command::Coverage(args) => cli::coverage::run(args),
        Command::Route(args) => cli::route::run(args),
        #[cfg(feature = "harness")]
        Command::Eval(args) => cli::eval::run(args),
        #[cfg(feature = "harness")]
        Command::Ab(args) => cli::ab::run(args),
        #[cfg(feature = "harness")]
        Command::Tune(args) => cli::tune::run(args),
        #[cfg(feature = "store")]
        Command::Audit(args) => cli::audit::run(args),
        #[cfg(feature = "serve")]
        Command::Feedback(args) => cli::feedback::run(args),
        #[cfg(feature = "serve")]
        Command::Phrases(args) => cli::phrases::run(args),
        Command::Lint(args) => cli::lint::run(args),
        Command::Generate(args) => cli::generate::run(args),
    }
}
