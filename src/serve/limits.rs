//! What a request may cost before any handler sees it: the URI's length, the headers' count
//! and size, and its body, read whole within `body_read_timeout` and `max_body_bytes`.
//!
//! Every refusal here is the API's JSON error. hyper keeps its own, higher limits (a bare 414
//! or 431), so an ordinary oversized request meets these first.
//!
//! | limit | answer |
//! |---|---|
//! | URI over [`MAX_URI_BYTES`] | 414 |
//! | over [`MAX_HEADERS`] headers, or over [`MAX_HEADER_BYTES`] of them | 431 |
//! | `Content-Length` over `max_body_bytes`, with `Expect: 100-continue` | 413 at once (the client never gets `100 Continue`) |
//! | `Content-Length` over `max_body_bytes` + [`MAX_DISCARD_BYTES`] | 413 at once |
//! | a body over `max_body_bytes`, declared or as it arrives | 413 once the body ends, after reading and dropping up to [`MAX_DISCARD_BYTES`] more |
//! | a body not whole within `body_read_timeout` | 408, connection closed |
//! | a body still arriving at shutdown | 503, connection closed |
//!
//! A client that sends its whole body before reading the answer would meet a closed socket (a
//! broken pipe, and often no answer at all) if the server closed the connection with the body
//! half read. So an oversized body is read to its end and thrown away, as RFC 9112 §9.6 advises,
//! up to [`MAX_DISCARD_BYTES`]; past that bound the connection is closed at once.

use std::pin::Pin;
use std::sync::Arc;

use http_body::Body as _;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, App};
use crate::backend::Backend;

/// Longest request URI (path and query), in bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most headers in one request.
pub const MAX_HEADERS: usize = 100;
/// Most bytes of headers (names and values) in one request.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Most bytes read and dropped past `max_body_bytes` before a 413, so that the client reads it.
pub const MAX_DISCARD_BYTES: usize = 8 << 20;

fn refuse(status: StatusCode, message: String) -> Response {
    ApiError::invalid_request(message).with_status(status).into_response()
}

/// The answer, with the connection closed after it (the rest of the body is never read).
fn closing(error: ApiError) -> Response {
    let mut res = error.into_response();
    res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// The request's head within the limits and its body read whole, or the JSON refusal.
pub(super) async fn limits<B: Backend + Send + Sync + 'static>(State(app): State<Arc<App<B>>>, req: Request, next: Next) -> Response {
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return refuse(StatusCode::URI_TOO_LONG, format!("the URI is {uri} bytes; the limit is {MAX_URI_BYTES}"));
    }
    let headers = req.headers();
    if headers.len() > MAX_HEADERS {
        return refuse(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, format!("{} headers; the limit is {MAX_HEADERS}", headers.len()));
    }
    let bytes: usize = headers.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    if bytes > MAX_HEADER_BYTES {
        return refuse(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, format!("{bytes} bytes of headers; the limit is {MAX_HEADER_BYTES}"));
    }
    let limit = app.config.max_body_bytes;
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let expects_continue = headers.get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let over = |bound: usize| declared.is_some_and(|n| n > bound as u64);
    if over(limit.saturating_add(MAX_DISCARD_BYTES)) || (expects_continue && over(limit)) {
        return closing(ApiError::payload_too_large(limit));
    }
    let (parts, body) = req.into_parts();
    let mut stop = app.shutdown.subscribe();
    let timeout = app.config.body_read_timeout;
    let body = tokio::select! {
        r = tokio::time::timeout(timeout, read_whole(body, limit)) => match r {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(Unread::TooLarge)) => {
                return closing(ApiError::payload_too_large(limit));
            }
            Ok(Err(Unread::Broken(e))) => {
                return closing(ApiError::invalid_request(format!("cannot read the request body: {e}")));
            }
            Err(_) => {
                return closing(ApiError::invalid_request(format!("the request body did not arrive within {timeout:?}")).with_status(StatusCode::REQUEST_TIMEOUT));
            }
        },
        _ = stop.wait_for(|s| *s) => {
            return closing(ApiError::unavailable("the server is shutting down"));
        }
    };
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// Why a body was not read.
enum Unread {
    TooLarge,
    Broken(axum::Error),
}

/// The whole body, or `TooLarge` once a body past `limit` bytes has ended or passed
/// [`MAX_DISCARD_BYTES`] more (held in memory: at most `limit` bytes).
async fn read_whole(mut body: Body, limit: usize) -> Result<Bytes, Unread> {
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(data) = frame.map_err(Unread::Broken)?.into_data() else { continue };
        seen = seen.saturating_add(data.len());
        if seen > limit.saturating_add(MAX_DISCARD_BYTES) {
            return Err(Unread::TooLarge);
        }
        if seen <= limit {
            buf.extend_from_slice(&data);
        } else if !buf.is_empty() {
            buf = Vec::new();
        }
    }
    if seen > limit {
        return Err(Unread::TooLarge);
    }
    Ok(Bytes::from(buf))
}
