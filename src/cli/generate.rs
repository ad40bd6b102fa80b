//! Generates JSON that matches a schema: `strictly generate`.

use std::path::PathBuf;
use std::process::ExitCode;

use strictly::schema::{CompileOptions, UnknownKeywords};

use super::args::ModelArgs;

/// The flags of `strictly generate`.
#[derive(clap::Args)]
pub struct GenerateArgs {
    /// The JSON Schema file.
    #[arg(long)]
    pub schema: PathBuf,
    /// System prompt.
    #[arg(long)]
    pub system: Option<String>,
    /// The user's message.
    #[arg(long)]
    pub prompt: String,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Print the whole generation record as JSON.
    #[arg(long)]
    pub json: bool,
    /// Add timings, the share of forced tokens, and the keywords read as annotations.
    #[arg(long)]
    pub verbose: bool,
    /// Refuse a schema with keywords (or `format` names) no JSON Schema draft defines.
    #[arg(long)]
    pub deny_unknown_keywords: bool,
}

/// Runs the command.
pub fn run(args: GenerateArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let GenerateArgs { schema, system, prompt, model, json, verbose, deny_unknown_keywords } = args;
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
