//! The model queue: one dedicated thread owns the model calls, fed by a bounded channel.
//!
//! Model calls are seconds of CPU work; they never run on the async runtime's threads. One
//! worker is enough: candle already spreads one forward pass over every core, and the
//! system prompt's KV cache (in [`crate::backend::local::LocalBackend`]) is shared by all
//! calls. A call whose caller has gone (deadline passed, client gone) is skipped. A panic
//! inside a call becomes that call's error (`malformed_output` routing), never the process's.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::metrics::Metrics;
use crate::backend::Backend;
use crate::route::{ModelAnswer, ModelJob, Router};

struct Job {
    job: ModelJob,
    reply: oneshot::Sender<ModelAnswer>,
    /// Past this instant nobody waits for the answer.
    expires: Instant,
}

/// The queue is full: the caller gets its overload answer at once.
#[derive(Debug)]
pub struct QueueFull;

/// The sending side of the model queue.
pub struct ModelQueue {
    tx: SyncSender<Job>,
    metrics: Arc<Metrics>,
    /// Mean model-call time, for `Retry-After` (exponentially weighted, in ms).
    mean_ms: Arc<AtomicU64>,
}

impl ModelQueue {
    /// Starts the worker thread; `capacity` calls may wait while one runs. The worker first
    /// makes one call to fill the system prompt's KV cache, then sets `ready`.
    pub fn start<B>(
        router: Arc<Router<B>>,
        capacity: usize,
        metrics: Arc<Metrics>,
        runtime: tokio::runtime::Handle,
        ready: Arc<AtomicBool>,
    ) -> Self
    where
        B: Backend + Send + Sync + 'static,
    {
        let (tx, rx) = sync_channel::<Job>(capacity.max(1));
        let mean_ms = Arc::new(AtomicU64::new(1000));
        let (m, mean) = (metrics.clone(), mean_ms.clone());
        std::thread::Builder::new()
            .name("strictly-model".into())
            .spawn(move || {
                let call = |job: &ModelJob| {
                    let started = Instant::now();
                    let result = catch_unwind(AssertUnwindSafe(|| runtime.block_on(router.ask_model(job))));
                    let seconds = started.elapsed().as_secs_f64();
                    match result {
                        Ok(answer) => {
                            let outcome = if answer.backend_error.is_some() { "error" } else { "ok" };
                            m.model_call(outcome, Some(seconds), answer.usage.as_ref());
                            (answer, seconds)
                        }
                        Err(panic) => {
                            let what = panic
                                .downcast_ref::<&str>()
                                .map(|s| s.to_string())
                                .or_else(|| panic.downcast_ref::<String>().cloned())
                                .unwrap_or_else(|| "unknown panic".into());
                            tracing::error!(panic = %what, "a model call panicked; the message gets default routing");
                            m.model_call("panic", Some(seconds), None);
                            (router.model_failed(format!("the model call panicked: {what}"), seconds * 1e3), seconds)
                        }
                    }
                };
                // Warm-up: prefill the system prompt once, so the first customer does not pay it.
                let (warm, seconds) = call(&router.model_job("hello"));
                mean.store((seconds * 1e3) as u64, Ordering::Relaxed);
                tracing::info!(ms = seconds * 1e3, error = warm.backend_error.as_deref(), "model warmed up");
                ready.store(true, Ordering::SeqCst);
                for job in rx {
                    m.queue(-1);
                    if job.reply.is_closed() || Instant::now() >= job.expires {
                        m.model_call("skipped", None, None);
                        continue;
                    }
                    let (answer, seconds) = call(&job.job);
                    let old = mean.load(Ordering::Relaxed) as f64;
                    mean.store((0.8 * old + 0.2 * seconds * 1e3) as u64, Ordering::Relaxed);
                    let _ = job.reply.send(answer);
                }
            })
            .expect("spawn the model thread");
        ModelQueue { tx, metrics, mean_ms }
    }

    /// Queues a call; its answer arrives on the receiver. [`QueueFull`] at once when the queue
    /// is full, or when the calls ahead of it (at their recent mean time) would take it past
    /// `expires`: waiting for an answer that cannot come in time helps nobody.
    pub fn try_submit(&self, job: ModelJob, expires: Instant) -> Result<oneshot::Receiver<ModelAnswer>, QueueFull> {
        let ahead = self.metrics.queue_depth().max(0) as u64 + 1;
        let expected = Duration::from_millis(ahead * self.mean_ms.load(Ordering::Relaxed));
        if Instant::now() + expected > expires {
            return Err(QueueFull);
        }
        let (reply, rx) = oneshot::channel();
        // Count before sending, so the worker's decrement can never come first.
        self.metrics.queue(1);
        match self.tx.try_send(Job { job, reply, expires }) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.metrics.queue(-1);
                Err(QueueFull)
            }
        }
    }

    /// Seconds a caller refused with 429 should wait: the queue's expected drain time.
    pub fn retry_after_secs(&self) -> u64 {
        let depth = self.metrics.queue_depth().max(0) as u64 + 1;
        (depth * self.mean_ms.load(Ordering::Relaxed)).div_ceil(1000).clamp(1, 60)
    }
}
