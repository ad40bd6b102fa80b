//! Corrects a recorded decision from the command line: `strictly feedback add`.

use std::path::PathBuf;
use std::process::ExitCode;

use strictly::routing::RoutingConfig;
use strictly::store::feedback::{correct, expected_route, learn, Corrections, Files};
use strictly::store::Store;

use super::args::MatchArgs;

/// The flags of `strictly feedback`.
#[derive(clap::Args)]
pub struct FeedbackArgs {
    #[command(subcommand)]
    pub command: FeedbackCommand,
}

/// What to do.
#[derive(clap::Subcommand)]
pub enum FeedbackCommand {
    /// Correct decision ID (its `decision_id`, or a message id: that message's newest
    /// decision) to the route given; prints the correction as JSON. With `[learning]` on, the
    /// decision's text becomes a learned phrase (servers pick it up on reload).
    Add(AddArgs),
}

/// Where the server keeps its record: the routing config (teams, agents, audit path,
/// `[learning]`) and the server settings (`[store]`).
#[derive(clap::Args)]
pub struct StoreArgs {
    /// The routing config the server runs.
    #[arg(long, global = true, default_value = "config/routing.example.toml")]
    pub config: PathBuf,
    /// The server's settings, for its `[store]` (PostgreSQL's URL also comes from
    /// STRICTLY_STORE_URL); without either, the embedded store beside the config's audit file.
    #[arg(long, global = true, env = "STRICTLY_SERVER_CONFIG")]
    pub server_config: Option<PathBuf>,
}

/// The store the flags name: PostgreSQL (opened and migrated as the server does), or the
/// embedded files, read and appended to without opening the store (a server may have them
/// open).
pub enum Opened {
    /// PostgreSQL.
    Pg(Store),
    /// The embedded store's files.
    Files(Files),
}

impl StoreArgs {
    /// The routing config and the store.
    pub async fn open(&self) -> Result<(RoutingConfig, Opened), Box<dyn std::error::Error>> {
        let config = RoutingConfig::load(&self.config)?;
        let mut server = match &self.server_config {
            Some(path) => strictly::serve::ServeConfig::load(path)?,
            None => strictly::serve::ServeConfig::default(),
        };
        server.apply_env();
        let opened = match &server.store.url {
            Some(_) => Opened::Pg(Store::open(&server.store, &config.audit.path, 1).await?),
            None => Opened::Files(Files { audit: config.audit.path.clone() }),
        };
        Ok((config, opened))
    }
}

/// The flags of `strictly feedback add`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("route").required(true).args(["team", "agent", "answer", "fallback"])))]
pub struct AddArgs {
    /// The decision to correct.
    pub id: String,
    /// It should have gone to this team (id, or name as the config has it).
    #[arg(long)]
    pub team: Option<String>,
    /// It should have gone to this agent (email).
    #[arg(long)]
    pub agent: Option<String>,
    /// The bot should have answered.
    #[arg(long)]
    pub answer: bool,
    /// It should have gone to default routing.
    #[arg(long)]
    pub fallback: bool,
    /// Why, in the reviewer's words.
    #[arg(long)]
    pub note: Option<String>,
    /// Who corrects it.
    #[arg(long)]
    pub author: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// How a learned phrase is compared with the others (near-duplicates replace them).
    #[command(flatten)]
    pub matching: MatchArgs,
}

async fn add(store: &impl Corrections, config: &RoutingConfig, args: &AddArgs) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let (action, target) = match (&args.team, &args.agent, args.answer) {
        (Some(team), _, _) => ("handoff_team", Some(team.as_str())),
        (_, Some(agent), _) => ("handoff_agent", Some(agent.as_str())),
        (_, _, true) => ("answer", None),
        _ => ("default_fallback", None),
    };
    let expected = expected_route(config, action, target)?;
    let (correction, record) = correct(store, &args.id, &expected, args.note.clone(), args.author.clone()).await?;
    let mut learned = false;
    if config.learning.enabled {
        // The vote's view of the phrases, to find the near-duplicates a new phrase replaces.
        let (existing, _) = store.phrases().await?;
        let builder = strictly::routing::Router::builder(config.with_learned(&existing)).backend(strictly::backend::NoModel).no_audit();
        let router = args.matching.apply(builder)?.build()?;
        learned = learn(store, &config.learning, &correction, &record, &router).await?.is_some();
    }
    Ok(serde_json::json!({
        "id": correction.id,
        "decision": correction.decision_id,
        "expected": {"action": expected.action().as_str(), "target": expected.name()},
        "learned": learned,
    }))
}

/// Runs the command.
pub fn run(args: FeedbackArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let FeedbackCommand::Add(args) = args.command;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let reply = runtime.block_on(async {
        let (config, store) = args.store.open().await?;
        match &store {
            Opened::Pg(s) => add(s, &config, &args).await,
            Opened::Files(f) => add(f, &config, &args).await,
        }
    })?;
    println!("{reply}");
    Ok(ExitCode::SUCCESS)
}
