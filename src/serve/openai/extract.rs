//! [`OpenAiJson`]: a request body read, parsed and typed, every rejection an [`ApiError`] in
//! OpenAI's shape (never axum's plain-text 4xx).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::types::from_value;
use crate::backend::Backend;
use crate::serve::{body_bytes, parse_json, ApiError, App};

/// A JSON body as `T` and as sent. Rejected, as the API's errors: a body over
/// `max_body_bytes` (413), one that cannot be read, empty, not JSON or not an object (400),
/// and a field of the wrong type (400 naming the field). The `Content-Type` is not checked:
/// a client that sends JSON without it is served.
///
/// Take it as `Result<OpenAiJson<T>, ApiError>` to check the API key before the body.
pub(in crate::serve) struct OpenAiJson<T> {
    /// The typed body.
    pub body: T,
    /// The body as sent (what a response echoes of its request).
    pub raw: Value,
}

impl<B, T> FromRequest<Arc<App<B>>> for OpenAiJson<T>
where
    B: Backend + Send + Sync + 'static,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &Arc<App<B>>) -> Result<Self, ApiError> {
        let bytes = body_bytes(Bytes::from_request(req, app).await, app.config.max_body_bytes)?;
        let raw: Value = parse_json(&bytes)?;
        let body = from_value(&raw)?;
        Ok(OpenAiJson { body, raw })
    }
}
