//! The example phrases and where they came from: `strictly phrases list | remove | promote`.

use std::io::Write;
use std::process::ExitCode;

use strictly::routing::learning::{promote_into_toml, LearnedPhrase};
use strictly::store::feedback::Corrections;

use super::feedback::{Opened, StoreArgs};

/// The flags of `strictly phrases`.
#[derive(clap::Args)]
pub struct PhrasesArgs {
    #[command(subcommand)]
    pub command: PhrasesCommand,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// What to do.
#[derive(clap::Subcommand)]
pub enum PhrasesCommand {
    /// Every phrase with its route and origin: the config, or the correction it was learned
    /// from and when.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Only the learned phrases.
        #[arg(long)]
        learned: bool,
    },
    /// Remove a learned phrase (servers drop it on reload).
    Remove {
        /// The phrase's id (`p-...`, from `list`).
        id: String,
    },
    /// Move a learned phrase into the config file, beside its route's phrases (the file is
    /// edited in place, comments kept, the old one saved as `<file>.bak`), and remove it from
    /// the learned ones.
    Promote {
        /// The phrase's id (`p-...`, from `list`).
        id: String,
    },
}

fn route_name(action: strictly::routing::Action, target: Option<&str>) -> String {
    match target {
        Some(t) => format!("{action}:{t}"),
        None => action.to_string(),
    }
}

fn find(phrases: &[LearnedPhrase], id: &str) -> Result<LearnedPhrase, String> {
    phrases.iter().find(|p| p.id == id).cloned().ok_or_else(|| format!("no learned phrase {id:?} (see `strictly phrases list --learned`)"))
}

async fn run_on(
    store: &impl Corrections,
    args: &PhrasesArgs,
    config: &strictly::routing::RoutingConfig,
) -> Result<(), Box<dyn std::error::Error>> {
    let (learned, generation) = store.phrases().await?;
    let mut out = std::io::stdout().lock();
    match &args.command {
        PhrasesCommand::List { json, learned: only_learned } => {
            if !only_learned {
                for e in &config.examples {
                    for p in &e.phrases {
                        let route = route_name(e.action, e.target.as_deref());
                        if *json {
                            writeln!(out, "{}", serde_json::json!({"origin": "config", "route": route, "text": p}))?;
                        } else {
                            writeln!(out, "config\t{route}\t{p}")?;
                        }
                    }
                }
            }
            for p in &learned {
                let route = route_name(p.action, p.target.as_deref());
                if *json {
                    let mut v = serde_json::to_value(p)?;
                    v["origin"] = "learned".into();
                    v["route"] = route.into();
                    writeln!(out, "{v}")?;
                } else {
                    let from = p.correction_id.as_deref().unwrap_or("?");
                    writeln!(out, "{}\t{route}\t{}\tlearned from correction {from} at {}", p.id, p.text, p.time)?;
                }
            }
            if !json {
                eprintln!("{} learned phrase(s), generation {generation}", learned.len());
            }
        }
        PhrasesCommand::Remove { id } => {
            let p = find(&learned, id)?;
            store.change_phrases(None, std::slice::from_ref(&p.id)).await?;
            writeln!(out, "removed {} ({})", p.id, route_name(p.action, p.target.as_deref()))?;
        }
        PhrasesCommand::Promote { id } => {
            let p = find(&learned, id)?;
            let path = &args.store.config;
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let edited = promote_into_toml(&text, &p)?;
            let mut backup = path.as_os_str().to_owned();
            backup.push(".bak");
            std::fs::write(&backup, &text).map_err(|e| format!("cannot write the backup {}: {e}", backup.to_string_lossy()))?;
            let mut tmp = path.as_os_str().to_owned();
            tmp.push(".tmp");
            std::fs::write(&tmp, &edited)
                .and_then(|()| std::fs::rename(&tmp, path))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            store.change_phrases(None, std::slice::from_ref(&p.id)).await?;
            writeln!(
                out,
                "promoted {} into {} ({}); backup at {}",
                p.id,
                path.display(),
                route_name(p.action, p.target.as_deref()),
                backup.to_string_lossy()
            )?;
        }
    }
    Ok(())
}

/// Runs the command.
pub fn run(args: PhrasesArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let (config, store) = args.store.open().await?;
        match &store {
            Opened::Pg(s) => run_on(s, &args, &config).await,
            Opened::Files(f) => run_on(f, &args, &config).await,
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
