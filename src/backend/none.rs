//! The backend of a router that asks no model: the examples' vote routes every message.

use super::{Backend, BackendError, Reply, SchemaSpec};
use crate::chat::ChatMessage;

/// Asks no model ([`Backend::asks_model`] is `false`): a router over it routes every message
/// by the examples' vote (`--backend examples`). Asked anyway, it answers with an error.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoModel;

impl Backend for NoModel {
    fn name(&self) -> &str {
        "examples"
    }

    fn model(&self) -> &str {
        "none"
    }

    fn asks_model(&self) -> bool {
        false
    }

    fn runs_inline(&self) -> bool {
        true
    }

    async fn complete(&self, _: &[ChatMessage], _: &SchemaSpec) -> Result<Reply, BackendError> {
        Err(BackendError::Model("an examples-only router asks no model".into()))
    }
}
