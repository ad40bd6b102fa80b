//! Who may call: bearer keys for `/v1/*`, the shared secret for the webhook, both compared
//! in constant time; for the review page and the calls it makes, also the sign-in cookie
//! ([`REVIEW_COOKIE`]), which holds a digest of a key.

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};

use super::{ApiError, App};
use crate::backend::Backend;

/// Equal in time independent of where the inputs differ (and of their lengths): both are
/// hashed first, then every byte of the digests is compared.
fn same_secret(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    std::hint::black_box(x.iter().zip(y.iter()).fold(0u8, |acc, (p, q)| acc | (p ^ q))) == 0
}

/// The review page's sign-in cookie.
pub(super) const REVIEW_COOKIE: &str = "strictly_review";

/// What the sign-in cookie holds for a key: a SHA-256 digest of it (hex), so the browser
/// never stores the key itself.
fn cookie_token(key: &str) -> String {
    let digest = Sha256::new().chain_update(b"strictly review cookie\0").chain_update(key.as_bytes()).finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// How a caller was let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// No keys are configured.
    Open,
    /// `Authorization: Bearer` with a configured key.
    Bearer,
    /// The review page's sign-in cookie.
    Cookie,
}

/// The sign-in cookie's value, when the request carries one.
fn review_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REVIEW_COOKIE)
        .map(|(_, value)| value.trim())
}

/// A browser's `Origin`, when it sent one, names this server (`Host`): a cookie from another
/// site's request is not accepted even where a browser ignores `SameSite`.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_host = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    !host.is_empty() && origin_host == Some(host)
}

impl<B: Backend + Send + Sync + 'static> App<B> {
    /// The bearer key, or the review page's cookie (same-origin only).
    pub(super) fn check_key(&self, headers: &HeaderMap) -> Result<Access, ApiError> {
        if self.config.api_keys.is_empty() {
            return Ok(Access::Open);
        }
        if headers.contains_key(header::AUTHORIZATION) {
            return self.check_bearer(headers).map(|()| Access::Bearer);
        }
        let refused = |m: &str| Err(ApiError::unauthorized(m));
        let Some(presented) = review_cookie(headers) else {
            return refused("missing bearer API key (Authorization: Bearer <key>) or review sign-in");
        };
        if !same_origin(headers) {
            return refused("the review sign-in is accepted from this server's own pages only");
        }
        let ok = self.config.api_keys.iter().fold(false, |ok, k| ok | same_secret(&cookie_token(k), presented));
        if ok {
            Ok(Access::Cookie)
        } else {
            refused("the review sign-in is not valid (any more); sign in again at /review")
        }
    }

    /// The sign-in cookie's value for a presented key, when it is a configured one (`None`
    /// when no keys are configured: there is nothing to sign in to).
    pub(super) fn cookie_for(&self, presented: &str) -> Option<String> {
        let ok = self.config.api_keys.iter().fold(false, |ok, k| ok | same_secret(k, presented));
        ok.then(|| cookie_token(presented))
    }

    pub(super) fn check_bearer(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.config.api_keys.is_empty() {
            return Ok(());
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            // The scheme is case-insensitive (RFC 9110 §11.1): `Bearer`, `bearer`, `BEARER`.
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim());
        let Some(presented) = presented else {
            return Err(ApiError::unauthorized("missing bearer API key (Authorization: Bearer <key>)"));
        };
        // Every key is compared, whichever matches.
        let ok = self.config.api_keys.iter().fold(false, |ok, k| ok | same_secret(k, presented));
        if ok {
            Ok(())
        } else {
            Err(ApiError::unauthorized("invalid API key"))
        }
    }

    pub(super) fn check_webhook_secret(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(secret) = &self.config.webhook_secret else { return Ok(()) };
        let name = &self.config.webhook_secret_header;
        match headers.get(name.as_str()).and_then(|v| v.to_str().ok()) {
            Some(v) if same_secret(secret, v.trim()) => Ok(()),
            Some(_) => Err(ApiError::unauthorized(format!("wrong webhook secret in header {name}"))),
            None => Err(ApiError::unauthorized(format!("missing webhook secret header {name}"))),
        }
    }
}
