//! Serves routing over HTTP: `strictly serve`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::args::{BackendArgs, MatchArgs, ModelArgs};

/// The flags of `strictly serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Routing config (TOML), as for `route`.
    #[arg(long, default_value = "config/routing.example.toml")]
    pub config: PathBuf,
    /// Server settings (TOML; see config/serve.example.toml). Defaults when absent.
    #[arg(long, env = "STRICTLY_SERVER_CONFIG")]
    pub server_config: Option<PathBuf>,
    /// Address to listen on (overrides the server config).
    #[arg(long)]
    pub listen: Option<String>,
    /// Log format: text or json (one JSON object per line).
    #[arg(long, env = "STRICTLY_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    #[command(flatten)]
    pub backend: BackendArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub matching: MatchArgs,
}

/// Runs the command.
pub fn run(args: ServeArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let ServeArgs { config, server_config, listen, log_format: _, backend, model, matching } = args;
    let config_path = config;
    let config = strictly::routing::RoutingConfig::load(&config_path)?;
    let mut server = match server_config {
        Some(path) => strictly::serve::ServeConfig::load(&path)?,
        None => strictly::serve::ServeConfig::default(),
    };
    server.apply_env();
    if let Some(listen) = listen {
        server.listen = listen;
    }
    server.routing_config = Some(config_path);
    let (backend, chat) = match backend.kind(&config) {
        strictly::backend::BackendKind::Local => {
            let (model, options) = model.load()?;
            // The OpenAI endpoints get their own backend over the same weights: their own
            // system-prompt cache, so chat traffic does not evict the router's. Both keep
            // their compiled schemas in one cache, capped by memory.
            let cache = std::sync::Arc::new(strictly::constraint::AutomatonCache::new(server.schema_cache_bytes));
            let chat = strictly::serve::openai::ChatModel::new(
                strictly::backend::local::LocalBackend::new(model.clone(), options.clone()).with_cache(cache.clone()),
                options.clone(),
            )
            .with_model_refusals(server.model_refusals);
            let routing = strictly::backend::local::LocalBackend::new(model, options).with_cache(cache);
            (strictly::backend::AnyBackend::Local(routing), Some(chat))
        }
        // No local model: no OpenAI-compatible endpoints either.
        _ => (backend.build(&config, &model)?, None),
    };
    let router = matching.apply(strictly::serve::router_builder(config, backend))?.build()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(strictly::serve::run(router, chat, server))?;
    // Requests still running past the grace are not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(ExitCode::SUCCESS)
}
