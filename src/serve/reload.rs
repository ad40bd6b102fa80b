//! Reloading the routing config and the learned phrases without a restart: SIGHUP,
//! `POST /admin/reload`, a reviewer's correction (`POST /v1/feedback`, when `[learning]` is
//! on) and, with `[learning] check_every`, a change another replica made to the phrases.
//!
//! A reload reads the config file (SIGHUP and `/admin/reload` only) and the store's learned
//! phrases, builds a router over them with the running one's backend and encoder (only
//! phrases not embedded before are embedded), and swaps it in. A request reads the router once
//! and keeps it to its end, so requests in flight finish on the old one. A config that fails
//! to load (or changes `[audit] path`, which takes a restart) is refused with its error and the
//! old router keeps serving. The model, the backend, the store and the server settings are not
//! reloaded.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Serialize;
use serde_json::Value;

use super::{ApiError, App};
use crate::backend::Backend;
use crate::routing::RoutingConfig;
use crate::store::Correction;

/// What a reload did.
#[derive(Debug, Clone, Serialize)]
pub struct Reloaded {
    /// The new router's generation (`strictly_config_generation`).
    pub generation: u64,
    /// Phrases from the config file.
    pub config_phrases: usize,
    /// Learned phrases voting with them.
    pub learned_phrases: usize,
    /// Phrases embedded for this router (the others' embeddings were kept).
    pub embedded: usize,
}

fn phrases(cfg: &RoutingConfig) -> usize {
    cfg.examples.iter().map(|e| e.phrases.len()).sum()
}

impl<B: Backend + Send + Sync + 'static> App<B> {
    /// Builds a router over the routing config (re-read from its file when `file` and the
    /// server knows the file) and the store's learned phrases, and swaps it in; the error
    /// says why the old router stays.
    pub async fn reload(self: &Arc<Self>, file: bool) -> Result<Reloaded, String> {
        let _one = self.reloading.lock().await;
        let current_base = self.base.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let base = match (&self.config.routing_config, file) {
            (Some(path), true) => {
                let path = path.clone();
                let loaded = tokio::task::spawn_blocking(move || RoutingConfig::load(&path)).await.map_err(|e| e.to_string())?;
                loaded.map_err(|e| e.to_string())?
            }
            _ => current_base.clone(),
        };
        if base.audit.path != current_base.audit.path {
            return Err(format!(
                "[audit] path changed from {} to {}; the store is opened at start, so this takes a restart",
                current_base.audit.path.display(),
                base.audit.path.display()
            ));
        }
        let store = self.recorder.store();
        let (learned, phrase_generation) = if base.learning.enabled {
            store.phrases().await.map_err(|e| format!("cannot read the learned phrases: {e}"))?
        } else {
            (Vec::new(), store.phrase_generation().await.unwrap_or(0))
        };
        let effective = base.with_learned(&learned);
        let (config_phrases, learned_phrases) = (phrases(&base), phrases(&effective) - phrases(&base));
        let current = self.router();
        let (router, embedded) =
            tokio::task::spawn_blocking(move || current.rebuild(effective)).await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
        *self.router.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(router);
        *self.base.lock().unwrap_or_else(PoisonError::into_inner) = base;
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.phrases_seen.store(phrase_generation, Ordering::SeqCst);
        self.metrics.set_config_generation(generation);
        self.metrics.set_learned_phrases(learned_phrases);
        tracing::info!(generation, config_phrases, learned_phrases, embedded, "routing config loaded");
        Ok(Reloaded { generation, config_phrases, learned_phrases, embedded })
    }

    /// Makes a stored correction a learned phrase when the config's `[learning]` is on, and
    /// reloads this server's phrases at once; whether a phrase was learned.
    pub(super) async fn learn(self: &Arc<Self>, correction: &Correction, record: &Value) -> bool {
        let settings = self.base.lock().unwrap_or_else(PoisonError::into_inner).learning.clone();
        if !settings.enabled {
            return false;
        }
        let router = self.router();
        let learned = crate::store::feedback::learn(self.recorder.store(), &settings, correction, record, &router).await;
        match learned {
            Ok(Some(phrase)) => {
                if let Err(e) = self.reload(false).await {
                    tracing::error!(phrase = %phrase.id, error = %e, "a phrase was learned but the router could not be rebuilt");
                }
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::error!(correction = %correction.id, error = %e, "the correction was stored but no phrase could be learned");
                false
            }
        }
    }

    /// Reloads the learned phrases when the store's generation is not the one this router was
    /// built at (another replica learned or removed one).
    pub(super) async fn check_phrases(self: &Arc<Self>) {
        match self.recorder.store().phrase_generation().await {
            Ok(g) if g != self.phrases_seen.load(Ordering::SeqCst) => {
                if let Err(e) = self.reload(false).await {
                    tracing::error!(error = %e, "the learned phrases changed but could not be loaded");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the learned phrases' generation"),
        }
    }

    /// Every `[learning] check_every`, [`check_phrases`](Self::check_phrases), until shutdown.
    pub(super) async fn watch_phrases(self: Arc<Self>) {
        let mut stop = self.shutdown.subscribe();
        loop {
            let every = self.base.lock().unwrap_or_else(PoisonError::into_inner).learning.check_every;
            let wait = every.unwrap_or(Duration::from_secs(30));
            tokio::select! {
                () = async { drop(stop.wait_for(|s| *s).await) } => return,
                () = tokio::time::sleep(wait) => {}
            }
            if every.is_some() {
                self.check_phrases().await;
            }
        }
    }
}

/// `POST /admin/reload`: 200 with [`Reloaded`], or 422 with the reason the old config stays.
pub(super) async fn admin_reload<B: Backend + Send + Sync + 'static>(
    State(app): State<Arc<App<B>>>,
    headers: HeaderMap,
) -> Result<Json<Reloaded>, ApiError> {
    app.check_bearer(&headers)?;
    match app.reload(true).await {
        Ok(r) => Ok(Json(r)),
        Err(e) => {
            tracing::error!(error = %e, "reload refused; the running config stays");
            Err(ApiError::unprocessable(e).code("config_rejected"))
        }
    }
}

/// SIGHUP reloads, until the server stops.
#[cfg(unix)]
pub(super) async fn reload_on_hangup<B: Backend + Send + Sync + 'static>(app: Arc<App<B>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reload with POST /admin/reload");
            return;
        }
    };
    let mut stop = app.shutdown.subscribe();
    loop {
        tokio::select! {
            () = async { drop(stop.wait_for(|s| *s).await) } => return,
            got = hup.recv() => {
                if got.is_none() {
                    return;
                }
                if let Err(e) = app.reload(true).await {
                    tracing::error!(error = %e, "SIGHUP: reload refused; the running config stays");
                }
            }
        }
    }
}
