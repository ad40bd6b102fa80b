//! The model queue: one dedicated thread runs every model call, fed by a bounded channel.
//!
//! Model calls are seconds of CPU work; they never run on the async runtime's threads. One
//! worker is enough: candle already spreads one forward pass over every core, and the
//! system prompt's KV cache (in [`crate::backend::local::LocalBackend`]) is shared by all
//! calls. A call whose caller has gone (deadline passed, client gone) is skipped. A panic
//! inside a call is caught here: the thread lives on, and the caller sees its answer dropped.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::metrics::Metrics;

struct Job {
    run: Box<dyn FnOnce() + Send>,
    /// Whether anyone still waits for the answer.
    alive: Box<dyn Fn() -> bool + Send>,
    /// Past this instant nobody waits for the answer.
    expires: Instant,
}

/// The queue is full (or too slow for the caller's limit): the caller gets its overload
/// answer at once.
#[derive(Debug)]
pub struct QueueFull;

/// The sending side of the model queue.
pub struct ModelQueue {
    tx: SyncSender<Job>,
    metrics: Arc<Metrics>,
    /// Mean model-call time, for `Retry-After` and admission (exponentially weighted, in ms).
    mean_ms: Arc<AtomicU64>,
}

impl ModelQueue {
    /// Starts the worker thread; `capacity` calls may wait while one runs. The worker first
    /// runs `warm_up` (e.g. one call that fills the system prompt's KV cache), then sets `ready`.
    pub fn start(capacity: usize, metrics: Arc<Metrics>, warm_up: Box<dyn FnOnce() + Send>, ready: Arc<AtomicBool>) -> Self {
        let (tx, rx) = sync_channel::<Job>(capacity.max(1));
        let mean_ms = Arc::new(AtomicU64::new(1000));
        let (m, mean) = (metrics.clone(), mean_ms.clone());
        std::thread::Builder::new()
            .name("strictly-model".into())
            .spawn(move || {
                let started = Instant::now();
                if catch_unwind(AssertUnwindSafe(warm_up)).is_err() {
                    tracing::error!("the warm-up call panicked");
                }
                mean.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                tracing::info!(ms = started.elapsed().as_secs_f64() * 1e3, "model warmed up");
                ready.store(true, Ordering::SeqCst);
                for job in rx {
                    m.queue(-1);
                    if !(job.alive)() || Instant::now() >= job.expires {
                        m.model_call("skipped", None, None);
                        continue;
                    }
                    let started = Instant::now();
                    if catch_unwind(AssertUnwindSafe(job.run)).is_err() {
                        tracing::error!("a model call panicked; its caller gets an error, the server goes on");
                        m.model_call("panic", Some(started.elapsed().as_secs_f64()), None);
                    }
                    let old = mean.load(Ordering::Relaxed) as f64;
                    mean.store((0.8 * old + 0.2 * started.elapsed().as_secs_f64() * 1e3) as u64, Ordering::Relaxed);
                }
            })
            .expect("spawn the model thread");
        ModelQueue { tx, metrics, mean_ms }
    }

    /// Queues `f`; its value arrives on the receiver (dropped if `f` panics or is skipped).
    /// [`QueueFull`] at once when the queue is full, or when the calls ahead (at their recent
    /// mean time) would take it past `expires`: waiting for an answer that cannot come in time
    /// helps nobody.
    pub fn try_submit<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static, expires: Instant) -> Result<oneshot::Receiver<T>, QueueFull> {
        let ahead = self.metrics.queue_depth().max(0) as u64 + 1;
        let expected = Duration::from_millis(ahead * self.mean_ms.load(Ordering::Relaxed));
        if Instant::now() + expected > expires {
            return Err(QueueFull);
        }
        let (reply, rx) = oneshot::channel();
        let slot = Arc::new(Mutex::new(Some(reply)));
        let probe = slot.clone();
        let alive = Box::new(move || probe.lock().unwrap_or_else(PoisonError::into_inner).as_ref().is_some_and(|r| !r.is_closed()));
        let run = Box::new(move || {
            let value = f();
            if let Some(reply) = slot.lock().unwrap_or_else(PoisonError::into_inner).take() {
                let _ = reply.send(value);
            }
        });
        // Count before sending, so the worker's decrement can never come first.
        self.metrics.queue(1);
        match self.tx.try_send(Job { run, alive, expires }) {
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
