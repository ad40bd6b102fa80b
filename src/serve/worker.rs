//! The model queue: one dedicated thread runs every model call, fed by two bounded lanes.
//!
//! Model calls are seconds of CPU work; they never run on the async runtime's threads. One
//! worker is enough: candle already spreads one forward pass over every core, and each
//! backend keeps its system prompt's KV cache (in [`crate::backend::local::LocalBackend`]).
//!
//! **Two lanes, routing first.** Routing calls ([`Lane::Route`]) and the OpenAI endpoints'
//! generations ([`Lane::Chat`]) wait in separate queues. The worker always takes a waiting
//! routing call first, and a generation hands the thread back between tokens: it calls
//! [`Pause::let_routing_in`] after each token, which runs every routing call waiting at that
//! moment before the generation goes on with its own KV cache. A routing call therefore waits
//! for the routing calls ahead of it and at most one token of a generation, never for a
//! generation to finish (a generation's prompt is the one step that is not cut: its prefill
//! runs whole). Two model threads over the same weights would give the same order but make the
//! two lanes share the cores during a routing call; pausing keeps a routing call as fast as on
//! an idle server.
//!
//! **Admission in work.** A call is refused at once ([`QueueFull`]) when its lane is full, or
//! when the work ahead of it and its own would take it past its deadline. A routing call costs
//! the recent mean of routing calls; a generation costs its `max_tokens` (what it may decode)
//! at the recent mean time per decoded token. The work ahead of a routing call is the routing
//! calls waiting and running, never a generation.
//!
//! A call whose caller has gone (deadline passed, client gone) is skipped. A panic inside a
//! call is caught here: the thread lives on, and the caller sees its answer dropped.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::metrics::Metrics;

/// Which queue a call waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Routing calls: taken first, and let in between a generation's tokens.
    Route,
    /// The OpenAI endpoints' generations.
    Chat,
}

/// What a running call may do with the thread it runs on.
pub struct Pause<'a> {
    shared: &'a Shared,
}

impl Pause<'_> {
    /// Runs every routing call waiting now, then returns (a generation calls this between
    /// tokens). Does nothing inside a routing call.
    pub fn let_routing_in(&self) {
        self.shared.run_waiting_routes();
    }
}

struct Job {
    /// Runs the call; returns the tokens it decoded.
    run: Box<dyn FnOnce(&Pause) -> usize + Send>,
    /// Whether anyone still waits for the answer.
    alive: Box<dyn Fn() -> bool + Send>,
    /// Past this instant nobody waits for the answer.
    expires: Instant,
    lane: Lane,
    /// The call's expected cost, in µs.
    cost: u64,
}

/// The queue is full (or too slow for the caller's limit): the caller gets its overload
/// answer at once.
#[derive(Debug)]
pub struct QueueFull;

#[derive(Default)]
struct Lanes {
    route: VecDeque<Job>,
    chat: VecDeque<Job>,
    /// Expected cost of the waiting generations, in µs.
    chat_cost: u64,
    /// Expected cost of the call running now, per lane, in µs.
    running_route: u64,
    running_chat: u64,
    closed: bool,
}

struct Shared {
    lanes: Mutex<Lanes>,
    wake: Condvar,
    metrics: Arc<Metrics>,
    /// Mean time per decoded token, in µs (exponentially weighted; 0 until measured).
    token_us: AtomicU64,
    /// Mean time of a routing call, in µs (exponentially weighted; 0 until measured).
    route_us: AtomicU64,
    /// Time spent in routing calls let in during the running generation, in µs.
    paused_us: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Lanes> {
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs the waiting routing calls (never re-entered: a routing call does not pause).
    fn run_waiting_routes(&self) {
        let started = Instant::now();
        let mut ran = false;
        loop {
            let job = {
                let mut lanes = self.lock();
                let Some(job) = lanes.route.pop_front() else { break };
                lanes.running_route = job.cost;
                job
            };
            ran = true;
            self.run(job);
            self.lock().running_route = 0;
        }
        if ran {
            self.paused_us.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
    }

    /// Runs one call (or skips it when nobody waits) and learns its time per token.
    fn run(&self, job: Job) {
        self.metrics.queue(-1);
        if !(job.alive)() || Instant::now() >= job.expires {
            self.metrics.model_call("skipped", None, None);
            return;
        }
        let lane = job.lane;
        if lane == Lane::Chat {
            self.paused_us.store(0, Ordering::Relaxed);
        }
        let started = Instant::now();
        let pause = Pause { shared: self };
        let tokens = match catch_unwind(AssertUnwindSafe(|| (job.run)(&pause))) {
            Ok(tokens) => tokens,
            Err(_) => {
                tracing::error!("a model call panicked; its caller gets an error, the server goes on");
                self.metrics.model_call("panic", Some(started.elapsed().as_secs_f64()), None);
                return;
            }
        };
        let paused = if lane == Lane::Chat { self.paused_us.swap(0, Ordering::Relaxed) } else { 0 };
        let own_us = (started.elapsed().as_micros() as u64).saturating_sub(paused);
        self.learn(lane, own_us, tokens as u64);
    }

    fn learn(&self, lane: Lane, us: u64, tokens: u64) {
        // The first measure replaces the unknown (0); later ones move the mean by a fifth.
        let mean = |a: &AtomicU64, x: u64| {
            let old = a.load(Ordering::Relaxed);
            a.store(if old == 0 { x.max(1) } else { (old * 4 + x) / 5 }, Ordering::Relaxed);
        };
        if tokens > 0 {
            // The prompt's prefill is counted as one more token.
            mean(&self.token_us, us / (tokens + 1));
        }
        if lane == Lane::Route {
            mean(&self.route_us, us);
        }
    }

    /// The next call: routing first.
    fn next(&self) -> Option<Job> {
        let mut lanes = self.lock();
        loop {
            if let Some(job) = lanes.route.pop_front() {
                lanes.running_route = job.cost;
                return Some(job);
            }
            if let Some(job) = lanes.chat.pop_front() {
                lanes.chat_cost -= job.cost;
                lanes.running_chat = job.cost;
                return Some(job);
            }
            if lanes.closed {
                return None;
            }
            lanes = self.wake.wait(lanes).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// The sending side of the model queue.
pub struct ModelQueue {
    shared: Arc<Shared>,
    /// Calls that may wait in each lane while one runs.
    capacity: usize,
}

impl ModelQueue {
    /// Starts the worker thread; `capacity` calls may wait in each lane while one runs. The
    /// worker first runs `warm_up` (e.g. one call that fills the system prompt's KV cache;
    /// it returns the tokens it decoded), then sets `ready`.
    pub fn start(capacity: usize, metrics: Arc<Metrics>, warm_up: Box<dyn FnOnce() -> usize + Send>, ready: Arc<AtomicBool>) -> Self {
        let shared = Arc::new(Shared {
            lanes: Mutex::new(Lanes::default()),
            wake: Condvar::new(),
            metrics,
            token_us: AtomicU64::new(0),
            route_us: AtomicU64::new(0),
            paused_us: AtomicU64::new(0),
        });
        let worker = shared.clone();
        std::thread::Builder::new()
            .name("strictly-model".into())
            .spawn(move || {
                let started = Instant::now();
                match catch_unwind(AssertUnwindSafe(warm_up)) {
                    Ok(tokens) => {
                        worker.learn(Lane::Route, started.elapsed().as_micros() as u64, tokens as u64);
                        tracing::info!(ms = started.elapsed().as_secs_f64() * 1e3, tokens, "model warmed up");
                    }
                    Err(_) => tracing::error!("the warm-up call panicked"),
                }
                ready.store(true, Ordering::SeqCst);
                while let Some(job) = worker.next() {
                    worker.run(job);
                    let mut lanes = worker.lock();
                    lanes.running_route = 0;
                    lanes.running_chat = 0;
                }
            })
            .expect("spawn the model thread");
        ModelQueue { shared, capacity: capacity.max(1) }
    }

    /// Queues a routing call; its value arrives on the receiver (dropped if `f` panics or is
    /// skipped). [`QueueFull`] at once when the routing lane is full, or when the routing
    /// calls ahead and this one (at their recent mean) would take it past `expires`: waiting
    /// for an answer that cannot come in time helps nobody. `tokens` reads the tokens a call
    /// decoded from its value.
    pub fn try_submit<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
        tokens: fn(&T) -> usize,
        expires: Instant,
    ) -> Result<oneshot::Receiver<T>, QueueFull> {
        let cost = self.shared.route_us.load(Ordering::Relaxed);
        self.submit(Lane::Route, cost, expires, move |_: &Pause| {
            let value = f();
            let n = tokens(&value);
            (value, n)
        })
    }

    /// Queues a generation that may decode up to `max_tokens`; `f` gets a [`Pause`] to call
    /// between tokens and returns its value with the tokens it decoded. [`QueueFull`] when the
    /// chat lane is full, or when there is work ahead and it would take this call past
    /// `expires` (a call alone in the queue is always taken: its own limit cuts it).
    pub fn try_submit_chat<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Pause) -> (T, usize) + Send + 'static,
        max_tokens: usize,
        expires: Instant,
    ) -> Result<oneshot::Receiver<T>, QueueFull> {
        let cost = max_tokens as u64 * self.shared.token_us.load(Ordering::Relaxed);
        self.submit(Lane::Chat, cost, expires, f)
    }

    /// The work ahead of a call in `lane`, in µs.
    fn ahead(&self, lanes: &Lanes, lane: Lane) -> u64 {
        let route = lanes.route.iter().map(|j| j.cost).sum::<u64>() + lanes.running_route;
        match lane {
            Lane::Route => route,
            Lane::Chat => route + lanes.chat_cost + lanes.running_chat,
        }
    }

    fn submit<T: Send + 'static>(
        &self,
        lane: Lane,
        cost: u64,
        expires: Instant,
        f: impl FnOnce(&Pause) -> (T, usize) + Send + 'static,
    ) -> Result<oneshot::Receiver<T>, QueueFull> {
        let (reply, rx) = oneshot::channel();
        let slot = Arc::new(Mutex::new(Some(reply)));
        let probe = slot.clone();
        let alive = Box::new(move || probe.lock().unwrap_or_else(PoisonError::into_inner).as_ref().is_some_and(|r| !r.is_closed()));
        let run = Box::new(move |pause: &Pause| {
            let (value, n) = f(pause);
            if let Some(reply) = slot.lock().unwrap_or_else(PoisonError::into_inner).take() {
                let _ = reply.send(value);
            }
            n
        });
        let mut lanes = self.shared.lock();
        let ahead = self.ahead(&lanes, lane);
        let waiting = match lane {
            Lane::Route => lanes.route.len(),
            Lane::Chat => lanes.chat.len(),
        };
        let expected = Duration::from_micros(ahead + cost);
        let late = Instant::now() + expected > expires && (lane == Lane::Route || ahead > 0);
        if lanes.closed || waiting >= self.capacity || late {
            return Err(QueueFull);
        }
        self.shared.metrics.queue(1);
        let job = Job { run, alive, expires, lane, cost };
        match lane {
            Lane::Route => lanes.route.push_back(job),
            Lane::Chat => {
                lanes.chat_cost += cost;
                lanes.chat.push_back(job);
            }
        }
        drop(lanes);
        self.shared.wake.notify_one();
        Ok(rx)
    }

    /// Seconds a call of `lane` refused with 429 should wait: the expected time of the work
    /// queued ahead of it.
    pub fn retry_after_secs(&self, lane: Lane) -> u64 {
        let ahead = {
            let lanes = self.shared.lock();
            self.ahead(&lanes, lane)
        };
        ahead.div_ceil(1_000_000).clamp(1, 60)
    }
}

impl Drop for ModelQueue {
    /// The worker finishes what is queued, then ends.
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
    }
}
