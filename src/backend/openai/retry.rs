//! Sending one request with retries: exponential backoff with full jitter on 429, 5xx,
//! timeouts and connection errors, `Retry-After` (or `retry-after-ms`) honoured, no retry on
//! other 4xx, and a bound on the whole call.

use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::Value;

use super::wire::error_message;
use crate::backend::BackendError;

/// How a call is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// The first backoff; attempt `n` waits up to `backoff * 2^n` (full jitter).
    pub backoff: Duration,
    /// Time bound of one attempt.
    pub timeout: Duration,
    /// Time bound of the whole call, waits included.
    pub total: Duration,
}

/// The delay before retry `n` (0-based): uniform in `[0, backoff * 2^n]`, at least what the
/// server asked for, at most 60 s.
///
/// ```
/// # use std::time::Duration;
/// use strictly::backend::openai::retry::backoff_delay;
/// let d = backoff_delay(Duration::from_millis(100), 3, None);
/// assert!(d <= Duration::from_millis(800));
/// assert_eq!(backoff_delay(Duration::from_millis(100), 0, Some(Duration::from_secs(2))), Duration::from_secs(2));
/// ```
pub fn backoff_delay(backoff: Duration, n: u32, retry_after: Option<Duration>) -> Duration {
    let cap = backoff.saturating_mul(1u32 << n.min(16)).min(Duration::from_secs(60));
    let jittered = cap.mul_f64(rand::rng().random::<f64>());
    retry_after.map_or(jittered, |r| r.max(jittered)).min(Duration::from_secs(60))
}

/// `retry-after-ms` (OpenAI) or `Retry-After` in seconds.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let read = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|s| s.trim().parse::<f64>().ok());
    if let Some(ms) = read("retry-after-ms").filter(|ms| ms.is_finite() && *ms >= 0.0) {
        return Some(Duration::from_secs_f64(ms / 1e3));
    }
    read("retry-after").filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64)
}

/// One attempt's failure, and whether another attempt may help.
struct Failure {
    error: BackendError,
    retry: bool,
    retry_after: Option<Duration>,
}

/// POSTs `body` to `url` until it succeeds, a non-retryable error comes, the retries run out
/// or the total time bound would be passed. The reply body of a 2xx, parsed as JSON.
pub async fn post_json(request: impl Fn() -> reqwest::RequestBuilder, body: &Value, policy: &RetryPolicy) -> Result<Value, BackendError> {
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let left = policy.total.saturating_sub(started.elapsed());
        let timeout = policy.timeout.min(left);
        let failure = match send_once(request().json(body).timeout(timeout), attempt, started).await {
            Ok(v) => return Ok(v),
            Err(f) => f,
        };
        if !failure.retry || attempt > policy.retries {
            return Err(failure.error);
        }
        let wait = backoff_delay(policy.backoff, attempt - 1, failure.retry_after);
        // Not enough time left for the wait and a useful attempt: give up now, with the reason.
        if started.elapsed() + wait >= policy.total {
            return Err(failure.error);
        }
        tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, error = %failure.error, "retrying the OpenAI request");
        tokio::time::sleep(wait).await;
    }
}

async fn send_once(request: reqwest::RequestBuilder, attempts: u32, started: Instant) -> Result<Value, Failure> {
    let elapsed_ms = || started.elapsed().as_millis() as u64;
    let transport = |e: reqwest::Error| {
        if e.is_timeout() {
            Failure { error: BackendError::Timeout { attempts, elapsed_ms: elapsed_ms() }, retry: true, retry_after: None }
        } else {
            // The key is only in a header, which reqwest's errors never print.
            Failure {
                error: BackendError::Transport { attempts, message: error_chain(&e), source: e.into() },
                retry: true,
                retry_after: None,
            }
        }
    };
    let response = request.send().await.map_err(transport)?;
    let status = response.status().as_u16();
    let after = retry_after(response.headers());
    let text = response.text().await.map_err(transport)?;
    if (200..300).contains(&status) {
        return serde_json::from_str(&text).map_err(|e| Failure {
            error: BackendError::Protocol { message: format!("the reply is not JSON ({e})"), source: Some(e) },
            retry: false,
            retry_after: None,
        });
    }
    let (message, param) = error_message(&text);
    let (error, retry) = match status {
        401 | 403 => (BackendError::Auth { status, message }, false),
        429 => (BackendError::RateLimit { attempts, retry_after_ms: after.map(|d| d.as_millis() as u64), message }, true),
        408 => (BackendError::Timeout { attempts, elapsed_ms: elapsed_ms() }, true),
        500..=599 => (BackendError::Server { status, attempts, message }, true),
        _ => (BackendError::BadRequest { status, message, param }, false),
    };
    Err(Failure { error, retry, retry_after: after })
}

/// An error and its sources on one line ("error sending request: ...: Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}
