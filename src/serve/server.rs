//! Running the service: bind, accept (at most `max_connections` at once), serve each
//! connection with hyper's HTTP/1 server (header-read timeout), and shut down gracefully on a
//! signal or on request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::reload::Reloaded;
use super::{openai, routes, App, ServeConfig};
use crate::backend::Backend;
use crate::routing::router::Router;

/// A running server (for tests and embedding): its address, and how to stop it.
pub struct Server {
    /// The bound address.
    pub addr: SocketAddr,
    stop: Box<dyn Fn() + Send + Sync>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
    control: Arc<dyn Control>,
}

type Boxed<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// What a [`Server`] can ask of its app without knowing the backend's type.
trait Control: Send + Sync {
    fn reload(&self) -> Boxed<Result<Reloaded, String>>;
    fn on_hangup(&self) -> Boxed<()>;
}

impl<B: Backend + Send + Sync + 'static> Control for Arc<App<B>> {
    fn reload(&self) -> Boxed<Result<Reloaded, String>> {
        let app = self.clone();
        Box::pin(async move { app.reload(true).await })
    }
    fn on_hangup(&self) -> Boxed<()> {
        #[cfg(unix)]
        return Box::pin(super::reload::reload_on_hangup(self.clone()));
        #[cfg(not(unix))]
        return Box::pin(async {});
    }
}

impl Server {
    /// Reloads the routing config file and the learned phrases (as SIGHUP and
    /// `POST /admin/reload` do); the error says why the running config stays.
    pub async fn reload(&self) -> Result<Reloaded, String> {
        self.control.reload().await
    }

    /// Stops accepting, closes idle and half-sent connections at once, lets requests in flight
    /// finish (within the grace), and waits.
    pub async fn shutdown(self) -> std::io::Result<()> {
        (self.stop)();
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
    super::alloc::hold_thresholds();
    let recorder = super::open_recorder(&config, router.config()).await.map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    let addr = listener.local_addr()?;
    let app = App::new(router, chat, config, recorder);
    // The learned phrases join the config's before the first request.
    if let Err(e) = app.reload(false).await {
        tracing::error!(error = %e, "the learned phrases could not be loaded; routing by the config's phrases");
        app.generation.store(1, Ordering::SeqCst);
        app.metrics.set_config_generation(1);
    }
    tokio::spawn(app.clone().watch_phrases());
    let control: Arc<dyn Control> = Arc::new(app.clone());
    let stop: Box<dyn Fn() + Send + Sync> = {
        let app = app.clone();
        Box::new(move || {
            app.shutdown.send_replace(true);
        })
    };
    let done = tokio::spawn(serve_until(app, listener));
    Ok(Server { addr, stop, done, control })
}

/// Serves until the app's shutdown signal; then stops accepting, closes the connections that
/// have no request in the handlers, and waits for the others, at most `shutdown_grace`.
async fn serve_until<B: Backend + Send + Sync + 'static>(app: Arc<App<B>>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let grace = app.config.shutdown_grace;
    let permits = Arc::new(Semaphore::new(app.config.max_connections.max(1)));
    let router = routes(app.clone());
    let mut stop = app.shutdown.subscribe();
    let mut connections = JoinSet::new();
    loop {
        // A connection over the cap waits in the listen backlog until one closes.
        let permit = tokio::select! {
            () = async { drop(stop.wait_for(|s| *s).await) } => break,
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            () = async { drop(stop.wait_for(|s| *s).await) } => break,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(connection(stream, router.clone(), app.config.header_read_timeout, app.shutdown.subscribe(), permit));
    }
    app.stopping.store(true, Ordering::SeqCst);
    drop(listener);
    tracing::info!(open = connections.len(), "shutting down: no new connections; finishing requests in flight");
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drain).await.is_err() {
        tracing::warn!(grace = ?grace, open = connections.len(), "shutdown grace over with requests in flight");
        connections.abort_all();
    }
    Ok(())
}

/// Requests of one connection now in the handlers (or streaming their answer).
#[derive(Clone, Default)]
struct Busy(Arc<AtomicUsize>);

/// Held while a request is in the handlers and its answer's body is being sent.
struct Working(Arc<AtomicUsize>);

impl Busy {
    fn enter(&self) -> Working {
        self.0.fetch_add(1, Ordering::SeqCst);
        Working(self.0.clone())
    }

    fn idle(&self) -> bool {
        self.0.load(Ordering::SeqCst) == 0
    }
}

impl Drop for Working {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An answer's body that keeps its connection counted as working until it is sent.
struct Guarded {
    body: Body,
    _working: Working,
}

impl http_body::Body for Guarded {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// One HTTP/1 connection: hyper with its header-read timer over the axum routes. At shutdown
/// a connection with no request in the handlers (idle, or its head not yet whole) is closed
/// at once; a request whose body is still arriving is answered 503 by the body reader
/// (see [`super::limits`]); the others finish, then the connection closes.
async fn connection(
    stream: tokio::net::TcpStream,
    router: axum::Router,
    header_read_timeout: Duration,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let busy = Busy::default();
    let counted = busy.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let working = counted.enter();
        let mut router = router.clone();
        async move {
            let res = tower_service::Service::call(&mut router, req.map(Body::new)).await?;
            Ok::<_, Infallible>(res.map(|body| Body::new(Guarded { body, _working: working })))
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    // Past hyper's own limit (100) a request would get a bare 431; ours answers in JSON first.
    http.timer(TokioTimer::new()).header_read_timeout(header_read_timeout).max_headers(super::limits::MAX_HEADERS * 2);
    let conn = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        }
        () = async { drop(stop.wait_for(|s| *s).await) } => {
            if busy.idle() {
                return;
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// `strictly serve`: serves until SIGTERM or SIGINT, then shuts down gracefully. Every
/// decision was synced to the audit log before its reply, so nothing is left to flush.
pub async fn run<B: Backend + Send + Sync + 'static>(
    router: Router<B>,
    chat: Option<openai::ChatModel>,
    config: ServeConfig,
) -> std::io::Result<()> {
    if config.api_keys.is_empty() {
        tracing::warn!("no API keys configured: /v1/* is open to anyone who can reach {}", config.listen);
    }
    if config.webhook_secret.is_none() {
        tracing::warn!("no webhook secret configured: /kommunicate/webhook is open to anyone who can reach {}", config.listen);
    }
    let server = start_with(router, chat, config).await?;
    tokio::spawn(server.control.on_hangup());
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
