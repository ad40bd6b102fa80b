//! Reads the decision record, from either store: `strictly audit tail | stats | export`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use strictly::store::report::Stats;
use strictly::store::{EmbeddedStore, Store, StoreConfig};

/// The flags of `strictly audit`.
#[derive(clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
    /// The PostgreSQL store (as `[store] url`); without it, the embedded store's audit file.
    #[arg(long, env = "STRICTLY_STORE_URL", global = true)]
    pub store_url: Option<String>,
    /// The embedded store's audit file.
    #[arg(long, default_value = "logs/audit.jsonl", global = true)]
    pub audit: PathBuf,
    /// Only records made at or after this time: RFC 3339 (`2026-05-01T00:00:00Z`) or a
    /// duration before now (`1h`, `7days`).
    #[arg(long, global = true)]
    pub since: Option<String>,
}

/// What to read.
#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// The last records, one JSON line each.
    Tail {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
    },
    /// Decisions by action, route, rule and path; the model's share, p50/p95 latency and the
    /// correction rate.
    Stats {
        /// As one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Every record, one JSON line each.
    Export,
}

fn since(text: &str) -> Result<SystemTime, String> {
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(t);
    }
    let ago = humantime::parse_duration(text).map_err(|_| format!("--since {text:?}: neither an RFC 3339 time nor a duration"))?;
    SystemTime::now().checked_sub(ago).ok_or_else(|| format!("--since {text:?}: too far back"))
}

/// Runs the command.
pub fn run(args: AuditArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let since = args.since.as_deref().map(since).transpose()?;
    let config = StoreConfig { url: args.store_url.clone(), ..StoreConfig::default() };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        if config.url.is_none() && !args.audit.exists() {
            return Err(format!("no audit file at {} (use --audit, or --store-url for PostgreSQL)", args.audit.display()).into());
        }
        // The embedded files are only read (a server may be writing them); PostgreSQL is
        // opened as the server opens it.
        let store = match &config.url {
            Some(_) => Some(Store::open(&config, &args.audit, 1).await?),
            None => None,
        };
        let (store_ref, audit) = (&store, &args.audit);
        let records = |limit| async move {
            match store_ref {
                Some(s) => s.records(since, limit).await,
                None => EmbeddedStore::read_records(audit, since, limit),
            }
        };
        let mut out = std::io::stdout().lock();
        match args.command {
            AuditCommand::Tail { lines } => {
                for r in records(Some(lines)).await? {
                    writeln!(out, "{r}")?;
                }
            }
            AuditCommand::Export => {
                for r in records(None).await? {
                    writeln!(out, "{r}")?;
                }
            }
            AuditCommand::Stats { json } => {
                let corrections = match &store {
                    Some(s) => s.corrections(since).await?,
                    None => EmbeddedStore::read_corrections(&args.audit, since)?,
                };
                let stats = Stats::new(&records(None).await?, &corrections);
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&stats)?)?;
                } else {
                    print_stats(&mut out, &stats)?;
                }
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(ExitCode::SUCCESS)
    })
}

fn print_stats(out: &mut impl Write, s: &Stats) -> std::io::Result<()> {
    writeln!(out, "decisions      {}", s.decisions)?;
    writeln!(out, "model share    {:.1}%", s.model_share * 100.0)?;
    writeln!(out, "latency        p50 {:.1} ms, p95 {:.1} ms", s.p50_ms, s.p95_ms)?;
    writeln!(out, "corrections    {} ({:.1}%)", s.corrected, s.correction_rate * 100.0)?;
    for (title, counts) in [("action", &s.by_action), ("route", &s.by_route), ("rule", &s.by_rule), ("path", &s.by_path)] {
        writeln!(out, "\nby {title}")?;
        let mut rows: Vec<_> = counts.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (name, n) in rows {
            writeln!(out, "  {n:>8}  {name}")?;
        }
    }
    Ok(())
}
