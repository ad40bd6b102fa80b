//! The `strictly` command line: flags in, exit codes out; logic lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

#[cfg(feature = "harness")]
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
    #[cfg(feature = "harness")]
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
        /// Refuse schemas with keywords (or `format` names) no JSON Schema draft defines;
        /// by default they are annotations, as JSON Schema says.
        #[arg(long)]
        deny_unknown_keywords: bool,
        /// Accepted for old scripts: ignoring unknown keywords is now the default.
        #[arg(long, hide = true, conflicts_with = "deny_unknown_keywords")]
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
    /// Route one support message: prints the Kommunicate payload.
    Route {
        /// The customer's message.
        message: String,
        /// Routing config (TOML).
        #[arg(long, default_value = "config/routing.example.toml")]
        config: PathBuf,
        /// Add the reason, the confidences and the rules that fired.
        #[arg(long)]
        explain: bool,
        /// Print the whole routing record as JSON.
        #[arg(long)]
        json: bool,
        /// Message id for the audit log (generated when absent).
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        backend: BackendArgs,
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        matching: MatchArgs,
    },
    #[cfg(feature = "harness")]
    /// Evaluate routing on a labelled CSV; writes report.md, report.json and confusion.svg.
    Eval {
        /// `id,source,text,intent,category,expected_action,expected_team,expected_agent`
        csv: PathBuf,
        /// Routing config (TOML).
        #[arg(long, default_value = "config/routing.example.toml")]
        config: PathBuf,
        /// Only N rows, spread evenly over the file (or over the --half).
        #[arg(long)]
        limit: Option<usize>,
        /// Only the rows at even (0, 2, 4, ...) or odd positions in the file: tune on one half,
        /// check on the other.
        #[arg(long, value_enum)]
        half: Option<strictly::eval::Half>,
        #[command(flatten)]
        backend: BackendArgs,
        /// Output folder (the audit log of the run goes there too).
        #[arg(long, default_value = "out/eval")]
        out: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        matching: MatchArgs,
    },
    /// The same labelled CSV through two routers, side by side: accuracy, schema violations,
    /// refusals, errors, latency, tokens and cost, a paired significance test, and the rows
    /// where they disagree. Writes report.md, report.json and pictures into --out; resumable.
    #[cfg(feature = "harness")]
    Ab {
        /// `id,source,text,intent,category,expected_action,expected_team,expected_agent`
        csv: PathBuf,
        /// Side A's backend: local, openai or examples (see `eval --backend`).
        #[arg(long)]
        a: strictly::backend::BackendKind,
        /// Side B's backend.
        #[arg(long)]
        b: strictly::backend::BackendKind,
        /// Routing config (TOML), the same for both sides.
        #[arg(long, default_value = "config/routing.example.toml")]
        config: PathBuf,
        /// Only N rows, spread evenly over the file.
        #[arg(long)]
        limit: Option<usize>,
        /// Output folder: reports, the audit logs, and the finished rows (a rerun resumes).
        #[arg(long, default_value = "out/ab")]
        out: PathBuf,
        /// Rows in flight at once on a remote backend (the local model and the examples route
        /// one row at a time).
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Ask the model about every in-scope message (clears the config's `[vote] decide_at`):
        /// compares the backends themselves, where the cascade would let the examples decide
        /// most messages on both sides alike.
        #[arg(long)]
        no_cascade: bool,
        #[command(flatten)]
        openai: OpenAiArgs,
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        matching: MatchArgs,
    },
    /// Serve routing over HTTP: the Kommunicate webhook, /v1/route, health and metrics.
    #[cfg(feature = "serve")]
    Serve {
        /// Routing config (TOML), as for `route`.
        #[arg(long, default_value = "config/routing.example.toml")]
        config: PathBuf,
        /// Server settings (TOML; see config/serve.example.toml). Defaults when absent.
        #[arg(long, env = "STRICTLY_SERVER_CONFIG")]
        server_config: Option<PathBuf>,
        /// Address to listen on (overrides the server config).
        #[arg(long)]
        listen: Option<String>,
        /// Log format: text or json (one JSON object per line).
        #[arg(long, env = "STRICTLY_LOG_FORMAT", default_value = "text")]
        log_format: String,
        #[command(flatten)]
        backend: BackendArgs,
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        matching: MatchArgs,
    },
    /// Check a JSON Schema against OpenAI's strict structured-output subset: every rule it
    /// breaks, with its JSON pointer and what OpenAI does (rejects, or narrows in silence).
    /// Exit code 1 when a rule is broken.
    Lint {
        /// The JSON Schema file.
        schema: PathBuf,
        /// Whose subset: openai (the only one).
        #[arg(long, default_value = "openai")]
        target: String,
        /// Check the schema as the OpenAI backend sends it: a root that is not an object goes
        /// wrapped in one (the routers' deployment schema is a root `anyOf`).
        #[arg(long)]
        as_sent: bool,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Generate JSON that matches a schema, with the local model.
    Generate {
        /// The JSON Schema file.
        #[arg(long)]
        schema: PathBuf,
        /// System prompt.
        #[arg(long)]
        system: Option<String>,
        /// The user's message.
        #[arg(long)]
        prompt: String,
        #[command(flatten)]
        model: ModelArgs,
        /// Print the whole generation record as JSON.
        #[arg(long)]
        json: bool,
        /// Add timings, the share of forced tokens, and the keywords read as annotations.
        #[arg(long)]
        verbose: bool,
        /// Refuse a schema with keywords (or `format` names) no JSON Schema draft defines.
        #[arg(long)]
        deny_unknown_keywords: bool,
    },
}

/// Which backend routes, and the OpenAI backend's settings that flags override.
#[derive(clap::Args, Clone)]
struct BackendArgs {
    /// `local`: the GGUF model under the token mask, then the rules (the examples screen
    /// out-of-scope messages and vote at low confidence, if the config says so). `openai`: an
    /// OpenAI-compatible server (`[backend.openai]` in the config, `OPENAI_API_KEY`,
    /// `OPENAI_BASE_URL`). `examples`: no model; the examples' vote routes every message
    /// (3,594 rows in seconds, mostly fsyncing the audit log). Default: the config's
    /// `[backend] kind`, else local.
    #[arg(long)]
    backend: Option<strictly::backend::BackendKind>,
    #[command(flatten)]
    openai: OpenAiArgs,
}

/// The OpenAI backend's settings that flags override.
#[derive(clap::Args, Clone, Default)]
struct OpenAiArgs {
    /// The OpenAI backend's model (overrides `[backend.openai] model`).
    #[arg(long)]
    openai_model: Option<String>,
    /// The OpenAI backend's wire mode: responses, chat, tool or compat (llama-cpp-python).
    #[arg(long)]
    openai_mode: Option<strictly::backend::WireMode>,
    /// The OpenAI backend's base URL, ending in /v1 (overrides the config and OPENAI_BASE_URL).
    #[arg(long)]
    openai_base_url: Option<String>,
}

impl BackendArgs {
    /// The backend kind: the flag, else the config's.
    fn kind(&self, config: &strictly::routing::RoutingConfig) -> strictly::backend::BackendKind {
        self.backend.unwrap_or(config.backend.kind)
    }

    /// The config's OpenAI settings with the flags applied.
    #[cfg_attr(not(feature = "openai"), allow(dead_code))]
    fn openai_settings(&self, config: &strictly::routing::RoutingConfig) -> strictly::backend::OpenAiSettings {
        let mut s = config.backend.openai.clone();
        if let Some(m) = &self.openai.openai_model {
            s.model = m.clone();
        }
        if let Some(m) = self.openai.openai_mode {
            s.mode = m;
        }
        if let Some(u) = &self.openai.openai_base_url {
            s.base_url = Some(u.clone());
        }
        s
    }

    /// The chosen backend; the local model is loaded only when it is the one.
    fn build(&self, config: &strictly::routing::RoutingConfig, model: &ModelArgs) -> Result<strictly::backend::AnyBackend, Box<dyn std::error::Error>> {
        use strictly::backend::{AnyBackend, BackendKind, NoModel};
        match self.kind(config) {
            BackendKind::Local => {
                let (model, options) = model.load()?;
                Ok(AnyBackend::Local(strictly::backend::local::LocalBackend::new(model, options)))
            }
            #[cfg(feature = "openai")]
            BackendKind::OpenAi => Ok(AnyBackend::OpenAi(strictly::backend::openai::OpenAiBackend::from_env(self.openai_settings(config))?)),
            #[cfg(not(feature = "openai"))]
            BackendKind::OpenAi => Err("this strictly was built without the `openai` feature".into()),
            BackendKind::Examples => Ok(AnyBackend::None(NoModel)),
        }
    }
}

/// How the example phrases are matched to a message.
#[derive(clap::Args, Clone)]
struct MatchArgs {
    /// Sentence encoder folder (default: the resolved all-MiniLM-L6-v2).
    #[arg(long, env = "STRICTLY_ENCODER")]
    encoder: Option<PathBuf>,
    /// Match example phrases by shared words only, without the sentence encoder.
    #[arg(long)]
    words_only: bool,
}

impl MatchArgs {
    /// The router, matching by meaning unless asked not to.
    fn apply<B: strictly::backend::Backend>(&self, router: strictly::routing::Router<B>) -> Result<strictly::routing::Router<B>, Box<dyn std::error::Error>> {
        if self.words_only {
            return Ok(router);
        }
        let dir = strictly::model::resolve::resolve_encoder(self.encoder.as_deref())?;
        let encoder = std::sync::Arc::new(strictly::encoder::SentenceEncoder::load(&dir)?);
        Ok(router.with_encoder(encoder)?)
    }
}

/// Options shared by the commands that run the local model.
#[derive(clap::Args, Clone)]
struct ModelArgs {
    /// GGUF model (default: the resolved default model).
    #[arg(long, env = "STRICTLY_MODEL")]
    model: Option<PathBuf>,
    /// Token cap of the output.
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Sampler seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// CPU threads for the model (default: the machine's cores).
    #[arg(long, env = "STRICTLY_THREADS")]
    threads: Option<usize>,
    /// Re-quantize weights at load: keep, q8-0 (fastest) or q4-0 (smallest).
    #[arg(long, default_value = "q8-0")]
    requantize: String,
    /// Disable batched fast-forward of forced tokens.
    #[arg(long)]
    no_fast_forward: bool,
    /// Tokens guessed ahead from earlier text and checked in one pass (greedy only; 0: off).
    #[arg(long, default_value_t = 8)]
    lookahead: usize,
}

impl ModelArgs {
    fn load(&self) -> Result<(Arc<strictly::model::local::LocalModel>, strictly::decode::DecodeOptions), Box<dyn std::error::Error>> {
        if let Some(n) = self.threads {
            // candle reads these when its thread pool starts.
            std::env::set_var("RAYON_NUM_THREADS", n.to_string());
            std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
        }
        let requantize = match self.requantize.as_str() {
            "keep" => strictly::model::local::Requantize::Keep,
            "q8-0" | "q8_0" => strictly::model::local::Requantize::Q8_0,
            "q4-0" | "q4_0" => strictly::model::local::Requantize::Q4_0,
            other => return Err(format!("--requantize must be keep, q8-0 or q4-0, not {other}").into()),
        };
        let path = strictly::model::resolve::resolve(self.model.as_deref())?;
        let model = strictly::model::local::LocalModel::load(&path, &strictly::model::local::LoadOptions { requantize })?;
        let options = strictly::decode::DecodeOptions {
            max_tokens: self.max_tokens,
            temperature: self.temperature,
            top_p: self.top_p,
            seed: self.seed,
            fast_forward: !self.no_fast_forward,
            lookahead: self.lookahead,
            ..Default::default()
        };
        Ok((Arc::new(model), options))
    }
}

#[cfg(feature = "harness")]
/// Routes every row with a progress bar.
fn evaluate<B: strictly::backend::Backend>(
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
    if let Command::Serve { log_format, .. } = &cli.command {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
        if log_format == "json" {
            logs.json().init();
        } else {
            logs.init();
        }
        return;
    }
    let _ = cli;
    tracing_subscriber::fmt().with_env_filter(EnvFilter::from_default_env()).with_writer(std::io::stderr).init();
}

fn run(cli: Cli) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match cli.command {
        #[cfg(feature = "serve")]
        Command::Serve { config, server_config, listen, log_format: _, backend, model, matching } => {
            let config = strictly::routing::RoutingConfig::load(&config)?;
            let mut server = match server_config {
                Some(path) => strictly::serve::ServeConfig::load(&path)?,
                None => strictly::serve::ServeConfig::default(),
            };
            server.apply_env();
            if let Some(listen) = listen {
                server.listen = listen;
            }
            let (backend, chat) = match backend.kind(&config) {
                strictly::backend::BackendKind::Local => {
                    let (model, options) = model.load()?;
                    // The OpenAI endpoints get their own backend over the same weights: their own
                    // system-prompt cache, so chat traffic does not evict the router's.
                    let chat = strictly::serve::openai::ChatModel::new(
                        strictly::backend::local::LocalBackend::new(model.clone(), options.clone()),
                        options.clone(),
                    )
                    .with_model_refusals(server.model_refusals);
                    (strictly::backend::AnyBackend::Local(strictly::backend::local::LocalBackend::new(model, options)), Some(chat))
                }
                // No local model: no OpenAI-compatible endpoints either.
                _ => (backend.build(&config, &model)?, None),
            };
            let router = matching.apply(strictly::serve::build_router(config, backend)?)?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(strictly::serve::run(router, chat, server))?;
            // Requests still running past the grace are not waited for.
            runtime.shutdown_timeout(std::time::Duration::from_millis(100));
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "harness")]
        Command::Coverage { file, walks, walk_tokens, limit, deny_unknown_keywords, ignore_unknown_keywords: _, threads, model, json } => {
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
        Command::Route { message, config, explain, json, id, backend, model, matching } => {
            let config = strictly::routing::RoutingConfig::load(&config)?;
            let backend = backend.build(&config, &model)?;
            let router = matching.apply(strictly::routing::Router::new(config, backend, true)?)?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let routed = runtime.block_on(router.route(&message, id.as_deref()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&routed)?);
            } else {
                println!("{}", serde_json::to_string_pretty(&routed.payload)?);
            }
            if explain && !json {
                let d = &routed.decision;
                let fmt = |p: Option<f32>| p.map_or("-".to_string(), |p| format!("{p:.2}"));
                let model = match (&routed.output, &d.model_action) {
                    (None, _) => "not asked".to_string(),
                    (Some(_), Some(action)) => format!("chose {action}"),
                    (Some(_), None) => "gave no action".to_string(),
                };
                eprintln!("action: {} (model: {model})", d.action.as_str());
                eprintln!("reason: {}", d.reason.as_deref().unwrap_or("-"));
                eprintln!(
                    "confidence: {} from token probabilities, {} self-reported, {} from the example phrases' vote",
                    fmt(d.model_confidence),
                    fmt(d.reported_confidence),
                    fmt(d.examples_confidence)
                );
                let alts: Vec<String> = routed.action_alternatives.iter().filter(|(_, p)| *p > 0.005).map(|(a, p)| format!("{a} {p:.2}")).collect();
                eprintln!("alternatives: {}", if alts.is_empty() { "-".into() } else { alts.join(", ") });
                let rules: Vec<&str> = d.rules.iter().map(|r| r.as_str()).collect();
                eprintln!("rules fired: {}", if rules.is_empty() { "none".into() } else { rules.join(", ") });
                if let Some(e) = &routed.backend_error {
                    eprintln!("backend error: {e}");
                }
                eprintln!("latency: {:.0} ms; audit id {}", routed.latency_ms, routed.message_id);
            }
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "harness")]
        Command::Eval { csv, config, limit, half, backend, out, json, model, matching } => {
            let rows = strictly::eval::read_rows(&csv)?;
            let rows = strictly::eval::sample(strictly::eval::half(rows, half), limit);
            let mut config = strictly::routing::RoutingConfig::load(&config)?;
            config.audit.path = out.join("audit.jsonl");
            let backend = backend.build(&config, &model)?;
            let report = evaluate(&matching.apply(strictly::routing::Router::new(config, backend, true)?)?, &rows)?;
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
        #[cfg(feature = "harness")]
        Command::Ab { csv, a, b, config, limit, out, concurrency, no_cascade, openai, model, matching } => {
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
                sides.push((matching.apply(strictly::routing::Router::new(side_config, backend, true)?)?, label, if remote { concurrency } else { 1 }, desc));
            }
            let key = strictly::ab::run_key(&[&config_bytes, &csv_bytes, sides[0].3.as_bytes(), sides[1].3.as_bytes()]);
            let side = |i: usize| strictly::ab::Side { router: &sides[i].0, label: sides[i].1.clone(), concurrency: sides[i].2 };
            let report = runtime.block_on(strictly::ab::run(&side(0), &side(1), &rows, &out, &key))?;
            print!("{}", strictly::ab::report::markdown(&report));
            println!("\nreports in {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Lint { schema, target, as_sent, json } => {
            if target != "openai" {
                return Err(format!("--target must be openai, not {target}").into());
            }
            let text = std::fs::read_to_string(&schema).map_err(|e| format!("cannot read {}: {e}", schema.display()))?;
            #[allow(unused_mut)]
            let mut value: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", schema.display()))?;
            if as_sent {
                #[cfg(feature = "openai")]
                if let Some(wrapped) = strictly::backend::openai::wire::wire_schema(&value) {
                    value = wrapped;
                }
                #[cfg(not(feature = "openai"))]
                return Err("--as-sent needs the `openai` feature".into());
            }
            let findings = strictly::schema::lint::lint(&value, strictly::schema::lint::Target::OpenAi);
            if json {
                println!("{}", serde_json::to_string_pretty(&findings)?);
            } else if findings.is_empty() {
                println!("{}: no rule of OpenAI's strict subset is broken", schema.display());
            } else {
                for f in &findings {
                    println!("{f}");
                }
                eprintln!("{} rule(s) broken", findings.len());
            }
            Ok(if findings.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Generate { schema, system, prompt, model, json, verbose, deny_unknown_keywords } => {
            let text = std::fs::read_to_string(&schema).map_err(|e| format!("cannot read {}: {e}", schema.display()))?;
            let schema_value: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", schema.display()))?;
            let (model, options) = model.load()?;
            let mut compile = CompileOptions::default();
            if deny_unknown_keywords {
                compile.unknown_keywords = UnknownKeywords::Deny;
            }
            let backend = strictly::backend::local::LocalBackend::new(model, options).with_compile_options(compile);
            let mut messages = Vec::new();
            if let Some(system) = system {
                messages.push(strictly::chat::ChatMessage { role: strictly::chat::Role::System, content: system });
            }
            messages.push(strictly::chat::ChatMessage { role: strictly::chat::Role::User, content: prompt });
            let spec = strictly::backend::SchemaSpec { name: "output".into(), schema: schema_value };
            if verbose {
                for ignored in backend.automaton(&spec)?.grammar().ignored_keywords() {
                    eprintln!("ignored (no JSON Schema draft defines it): {ignored}");
                }
            }
            let started = std::time::Instant::now();
            let generation = backend.generate(&messages, &spec)?;
            let total_ms = started.elapsed().as_secs_f64() * 1e3;
            if json {
                println!("{}", serde_json::to_string_pretty(&generation)?);
            } else {
                println!("{}", generation.text);
            }
            if verbose {
                let t = &generation.timings;
                let n = generation.tokens.len();
                eprintln!(
                    "prompt {} tokens, output {} tokens ({} forced, {:.0}%), stop {:?}; prefill {:.0} ms, decode {:.0} ms ({:.1} ms/token, mask {:.2} ms total), {} forward passes, lookahead kept {} of {} guessed tokens, total {:.0} ms",
                    generation.prompt_tokens, n, generation.forced_tokens(),
                    100.0 * generation.forced_tokens() as f64 / n.max(1) as f64, generation.stop,
                    t.prefill_ms, t.decode_ms, t.decode_ms / n.max(1) as f64, t.mask_ms, t.forward_passes, t.accepted, t.drafted, total_ms
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
