//! Who may call: bearer keys for `/v1/*`, the shared secret for the webhook, both compared
//! in constant time.

use axum::http::{header, HeaderMap, StatusCode};
use sha2::{Digest, Sha256};

use super::{ApiError, App};
use crate::backend::Backend;

/// Equal in time independent of where the inputs differ (and of their lengths): both are
/// hashed first, then every byte of the digests is compared.
fn same_secret(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    std::hint::black_box(x.iter().zip(y.iter()).fold(0u8, |acc, (p, q)| acc | (p ^ q))) == 0
}

impl<B: Backend + Send + Sync + 'static> App<B> {
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
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", "missing bearer API key (Authorization: Bearer <key>)"));
        };
        // Every key is compared, whichever matches.
        let ok = self.config.api_keys.iter().fold(false, |ok, k| ok | same_secret(k, presented));
        if ok {
            Ok(())
        } else {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", "invalid API key"))
        }
    }

    pub(super) fn check_webhook_secret(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(secret) = &self.config.webhook_secret else { return Ok(()) };
        let name = &self.config.webhook_secret_header;
        match headers.get(name.as_str()).and_then(|v| v.to_str().ok()) {
            Some(v) if same_secret(secret, v.trim()) => Ok(()),
            Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", format!("wrong webhook secret in header {name}"))),
            None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", format!("missing webhook secret header {name}"))),
        }
    }

}
