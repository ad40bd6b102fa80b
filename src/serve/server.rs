//! Running the service: bind, serve, and shut down gracefully on a signal or on request.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::watch;

use super::{openai, routes, App, ServeConfig};
use crate::backend::Backend;
use crate::routing::router::Router;


/// A running server (for tests and embedding): its address, and how to stop it.
pub struct Server {
    /// The bound address.
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Stops accepting, lets in-flight requests finish (within the grace), and waits.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        self.done.await.map_err(std::io::Error::other)?
    }
}

/// Binds `config.listen` and serves `router` until [`Server::shutdown`].
pub async fn start<B: Backend + Send + Sync + 'static>(router: Router<B>, config: ServeConfig) -> std::io::Result<Server> {
    start_with(router, None, config).await
}

/// [`start`], with a chat model for the OpenAI-compatible endpoints.
pub async fn start_with<B: Backend + Send + Sync + 'static>(
    router: Router<B>,
    chat: Option<openai::ChatModel>,
    config: ServeConfig,
) -> std::io::Result<Server> {
    let recorder = super::open_recorder(&config, router.config()).await.map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    let addr = listener.local_addr()?;
    let (stop, rx) = watch::channel(false);
    let app = App::new(router, chat, config, recorder);
    let done = tokio::spawn(serve_until(app, listener, rx));
    Ok(Server { addr, stop, done })
}

/// Serves until `stop` turns true; then stops accepting and waits for in-flight requests,
/// at most `shutdown_grace`.
async fn serve_until<B: Backend + Send + Sync + 'static>(
    app: Arc<App<B>>,
    listener: tokio::net::TcpListener,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let grace = app.config.shutdown_grace;
    let (mut a, mut b) = (stop.clone(), stop);
    let state = app.clone();
    let graceful = async move {
        let _ = a.wait_for(|s| *s).await;
        state.stopping.store(true, Ordering::SeqCst);
        tracing::info!("shutting down: no new connections; finishing requests in flight");
    };
    let server = axum::serve(listener, routes(app)).with_graceful_shutdown(graceful).into_future();
    let timer = async move {
        let _ = b.wait_for(|s| *s).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        r = server => r,
        () = timer => {
            tracing::warn!(grace = ?grace, "shutdown grace over with requests in flight");
            Ok(())
        }
    }
}

/// `strictly serve`: serves until SIGTERM or SIGINT, then shuts down gracefully. Every
/// decision was synced to the audit log before its reply, so nothing is left to flush.
pub async fn run<B: Backend + Send + Sync + 'static>(router: Router<B>, chat: Option<openai::ChatModel>, config: ServeConfig) -> std::io::Result<()> {
    if config.api_keys.is_empty() {
        tracing::warn!("no API keys configured: /v1/* is open to anyone who can reach {}", config.listen);
    }
    if config.webhook_secret.is_none() {
        tracing::warn!("no webhook secret configured: /kommunicate/webhook is open to anyone who can reach {}", config.listen);
    }
    let server = start_with(router, chat, config).await?;
    // Scripts (and the tests) read the bound address from this line.
    println!("listening on http://{}", server.addr);
    tracing::info!(addr = %server.addr, "listening");
    shutdown_signal().await;
    let r = server.shutdown().await;
    tracing::info!("stopped");
    r
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            },
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
