//! The `strictly` command line: flags in, exit codes out; logic lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use strictly::coverage::{self, CoverageConfig};
use strictly::schema::{CompileOptions, UnknownKeywords};
use strictly::tokenizer::GgufTokenizer;

#[derive(Parser)]
#[command(name = "strictly", version, about = "Schema-constrained local LLM routing for customer support")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the schema compiler over a MaskBench-format file.
    Coverage {
        /// `.jsonl` or `.jsonl.gz`, one `{id, category, schema, tests}` per line.
        file: PathBuf,
        /// Random walks per accepted schema.
        #[arg(long, default_value_t = 1)]
        walks: usize,
        /// Token budget per walk.
        #[arg(long, default_value_t = 300)]
        walk_tokens: usize,
        /// Only the first N schemas.
        #[arg(long)]
        limit: Option<usize>,
        /// Treat keywords outside JSON Schema as annotations.
        #[arg(long)]
        ignore_unknown_keywords: bool,
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// GGUF whose vocabulary the walks use (default: the resolved default model).
        #[arg(long, env = "STRICTLY_MODEL")]
        model: Option<PathBuf>,
        /// Print machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match cli.command {
        Command::Coverage { file, walks, walk_tokens, limit, ignore_unknown_keywords, threads, model, json } => {
            let mut records = coverage::read_records(&file)?;
            if let Some(n) = limit {
                records.truncate(n);
            }
            let model = strictly::model::resolve::resolve(model.as_deref())?;
            let tokenizer = GgufTokenizer::from_gguf(&model)?;
            let mut options = CompileOptions::default();
            if ignore_unknown_keywords {
                options.unknown_keywords = UnknownKeywords::Ignore;
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
    }
}
