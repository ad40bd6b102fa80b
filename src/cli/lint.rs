//! Checks a schema against OpenAI's strict subset: `strictly lint`.

use std::path::PathBuf;
use std::process::ExitCode;

/// The flags of `strictly lint`.
#[derive(clap::Args)]
pub struct LintArgs {
    /// The JSON Schema file.
    pub schema: PathBuf,
    /// Whose subset: openai (the only one).
    #[arg(long, default_value = "openai")]
    pub target: String,
    /// Check the schema as the OpenAI backend sends it: a root that is not an object goes
    /// wrapped in one (the routers' deployment schema is a root `anyOf`).
    #[arg(long)]
    pub as_sent: bool,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(args: LintArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let LintArgs { schema, target, as_sent, json } = args;
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
