//! Routes one message: `strictly route`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::args::{BackendArgs, MatchArgs, ModelArgs};

/// The flags of `strictly route`.
#[derive(clap::Args)]
pub struct RouteArgs {
    /// The customer's message.
    pub message: String,
    /// Routing config (TOML).
    #[arg(long, default_value = "config/routing.example.toml")]
    pub config: PathBuf,
    /// Add the reason, the confidences and the rules that fired.
    #[arg(long)]
    pub explain: bool,
    /// Print the whole routing record as JSON.
    #[arg(long)]
    pub json: bool,
    /// Message id for the audit log (generated when absent).
    #[arg(long)]
    pub id: Option<String>,
    #[command(flatten)]
    pub backend: BackendArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub matching: MatchArgs,
}

/// Runs the command.
pub fn run(args: RouteArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let RouteArgs { message, config, explain, json, id, backend, model, matching } = args;
    let config = strictly::routing::RoutingConfig::load(&config)?;
    let backend = backend.build(&config, &model)?;
    let audit = config.audit.path.clone();
    let router = matching.apply(strictly::routing::Router::builder(config).backend(backend).audit(audit))?.build()?;
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
        let model = match (&routed.answer.verdict.output, &d.model_action) {
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
        let alts: Vec<String> =
            routed.answer.verdict.action_alternatives.iter().filter(|(_, p)| *p > 0.005).map(|(a, p)| format!("{a} {p:.2}")).collect();
        eprintln!("alternatives: {}", if alts.is_empty() { "-".into() } else { alts.join(", ") });
        let rules: Vec<&str> = d.rules.iter().map(|r| r.as_str()).collect();
        eprintln!("rules fired: {}", if rules.is_empty() { "none".into() } else { rules.join(", ") });
        if let Some(e) = &routed.answer.backend_error {
            eprintln!("backend error: {e}");
        }
        eprintln!("latency: {:.0} ms; audit id {}", routed.latency_ms, routed.message_id);
    }
    Ok(ExitCode::SUCCESS)
}
