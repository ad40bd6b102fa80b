//! Two routers over one labelled CSV: `strictly ab`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::args::{BackendArgs, MatchArgs, ModelArgs, OpenAiArgs};

/// The flags of `strictly ab`.
#[derive(clap::Args)]
pub struct AbArgs {
    /// `id,source,text,intent,category,expected_action,expected_team,expected_agent`
    pub csv: PathBuf,
    /// Side A's backend: local, openai or examples (see `eval --backend`).
    #[arg(long)]
    pub a: strictly::backend::BackendKind,
    /// Side B's backend.
    #[arg(long)]
    pub b: strictly::backend::BackendKind,
    /// Routing config (TOML), the same for both sides.
    #[arg(long, default_value = "config/routing.example.toml")]
    pub config: PathBuf,
    /// Only N rows, spread evenly over the file.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Output folder: reports, the audit logs, and the finished rows (a rerun resumes).
    #[arg(long, default_value = "out/ab")]
    pub out: PathBuf,
    /// Rows in flight at once on a remote backend (the local model and the examples route
    /// one row at a time).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Ask the model about every in-scope message (clears the config's `[vote] decide_at`):
    /// compares the backends themselves, where the cascade would let the examples decide
    /// most messages on both sides alike.
    #[arg(long)]
    pub no_cascade: bool,
    #[command(flatten)]
    pub openai: OpenAiArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub matching: MatchArgs,
}

/// Runs the command.
pub fn run(args: AbArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let AbArgs { csv, a, b, config, limit, out, concurrency, no_cascade, openai, model, matching } = args;
    let rows = strictly::eval::sample(strictly::eval::read_rows(&csv)?, limit);
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let (config_bytes, csv_bytes) = (read(&config)?, read(&csv)?);
    let mut config = strictly::routing::RoutingConfig::load(&config)?;
    if no_cascade {
        config.vote.decide_at = None;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut sides = Vec::new();
    for (name, kind) in [("a", a), ("b", b)] {
        let args = BackendArgs { backend: Some(kind), openai: openai.clone() };
        let mut side_config = config.clone();
        side_config.audit.path = out.join(format!("audit-{name}.jsonl"));
        // What decides this side's answers, for the run's key (never the API key).
        let matching_desc = format!("words_only={} encoder={:?} no_cascade={no_cascade}", matching.words_only, matching.encoder);
        let desc = match kind {
            strictly::backend::BackendKind::Local => format!(
                "local model={:?} max_tokens={} temperature={} top_p={} seed={} requantize={} {matching_desc}",
                model.model, model.max_tokens, model.temperature, model.top_p, model.seed, model.requantize
            ),
            strictly::backend::BackendKind::OpenAi => format!("openai {:?} {matching_desc}", args.openai_settings(&config)),
            strictly::backend::BackendKind::Examples => format!("examples {matching_desc}"),
        };
        let backend = args.build(&side_config, &model)?;
        let label = match kind {
            strictly::backend::BackendKind::Examples => "examples only".to_string(),
            _ => format!("{kind} ({})", strictly::backend::Backend::model(&backend)),
        };
        let remote = kind == strictly::backend::BackendKind::OpenAi;
        sides.push((
            matching
                .apply(strictly::routing::Router::builder(side_config.clone()).backend(backend).audit(side_config.audit.path))?
                .build()?,
            label,
            if remote { concurrency } else { 1 },
            desc,
        ));
    }
    let key = strictly::ab::run_key(&[&config_bytes, &csv_bytes, sides[0].3.as_bytes(), sides[1].3.as_bytes()]);
    let side = |i: usize| strictly::ab::Side { router: &sides[i].0, label: sides[i].1.clone(), concurrency: sides[i].2 };
    let report = runtime.block_on(strictly::ab::run(&side(0), &side(1), &rows, &out, &key))?;
    print!("{}", strictly::ab::report::markdown(&report));
    println!("\nreports in {}", out.display());
    Ok(ExitCode::SUCCESS)
}
