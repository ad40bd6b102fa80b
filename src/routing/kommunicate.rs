//! Kommunicate wire types: the bot's custom payload, and the custom-bot webhook.
//!
//! A [`Decision`] becomes one [`KommunicatePayload`]:
//!
//! | final target | JSON |
//! |---|---|
//! | agent | `{"platform":"kommunicate","message":"…","metadata":{"KM_ASSIGN_TO":"senior@company.com"}}` |
//! | team | `{"platform":"kommunicate","message":"…","metadata":{"KM_ASSIGN_TEAM":"54515931"}}` |
//! | default routing | `{"platform":"kommunicate","message":"…","metadata":{"KM_ASSIGN_TO":""}}` |
//! | none (answer) | `{"platform":"kommunicate","message":"…"}` |
//!
//! `KM_ASSIGN_TO` is documented by Kommunicate (an agent's user id, or `""` for the dashboard's
//! conversation rules). `KM_ASSIGN_TEAM` is only known from the Web SDK's code, which reads it
//! from bot messages as the new team id; treat that shape as unverified until tested against a
//! live workspace.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::classification::Target;
use super::decision::Decision;

/// The handoff metadata of a bot message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Handoff {
    /// Assign to an agent by user id; `""` applies the conversation routing rules.
    #[serde(rename = "KM_ASSIGN_TO")]
    AssignTo(String),
    /// Assign to a team by id.
    #[serde(rename = "KM_ASSIGN_TEAM")]
    AssignTeam(String),
}

/// One bot message as the webhook returns it: `{"message": "...", "metadata"?: {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BotMessage {
    /// Text shown to the customer.
    pub message: String,
    /// Handoff instruction; absent when the bot keeps the conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Handoff>,
}

impl From<&Decision> for BotMessage {
    fn from(d: &Decision) -> Self {
        let metadata = match &d.target {
            Target::None => None,
            Target::Agent(email) => Some(Handoff::AssignTo(email.clone())),
            Target::Team(id) => Some(Handoff::AssignTeam(id.clone())),
            Target::DefaultRouting => Some(Handoff::AssignTo(String::new())),
        };
        BotMessage { message: d.reply.clone(), metadata }
    }
}

/// The custom payload envelope used by Dialogflow and Kompose intents:
/// `{"platform":"kommunicate","message":"...","metadata":{...}}`.
///
/// ```
/// # use strictly::routing::kommunicate::{BotMessage, Handoff, KommunicatePayload};
/// let payload = KommunicatePayload::new(BotMessage {
///     message: "our agents will get back to you".into(),
///     metadata: Some(Handoff::AssignTo(String::new())),
/// });
/// assert_eq!(
///     serde_json::to_string(&payload).unwrap(),
///     r#"{"platform":"kommunicate","message":"our agents will get back to you","metadata":{"KM_ASSIGN_TO":""}}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KommunicatePayload {
    platform: &'static str,
    #[serde(flatten)]
    body: BotMessage,
}

impl KommunicatePayload {
    /// Wraps a bot message in the envelope.
    pub fn new(body: BotMessage) -> Self {
        KommunicatePayload { platform: "kommunicate", body }
    }

    /// The message inside the envelope.
    pub fn body(&self) -> &BotMessage {
        &self.body
    }

    /// The custom-bot webhook reply: an array of one message, without the envelope.
    pub fn webhook_reply(&self) -> Vec<BotMessage> {
        vec![self.body.clone()]
    }
}

impl From<&Decision> for KommunicatePayload {
    fn from(d: &Decision) -> Self {
        KommunicatePayload::new(BotMessage::from(d))
    }
}

/// What Kommunicate POSTs to a custom bot's webhook.
///
/// This is external input, so every field is optional, unknown fields are ignored, and ids and
/// times are accepted as strings or numbers (the docs show strings, some payloads use numbers)
/// and kept as strings. Any other type for those fields reads as absent.
///
/// ```
/// # use strictly::routing::kommunicate::WebhookRequest;
/// let req: WebhookRequest = serde_json::from_str(
///     r#"{"botId":"router","message":"where is my refund?","groupId":123456,"createdAt":1457958424000,"extra":true}"#,
/// ).unwrap();
/// assert_eq!(req.group_id.as_deref(), Some("123456"));
/// assert_eq!(req.message, "where is my refund?");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WebhookRequest {
    /// Bot that received the message.
    #[serde(deserialize_with = "lenient_string")]
    pub bot_id: Option<String>,
    /// Unique message id.
    #[serde(deserialize_with = "lenient_string")]
    pub key: Option<String>,
    /// User id of the sender.
    #[serde(deserialize_with = "lenient_string")]
    pub from: Option<String>,
    /// The customer's text; empty for events without text.
    #[serde(deserialize_with = "lenient_text")]
    pub message: String,
    /// Conversation id.
    #[serde(deserialize_with = "lenient_string")]
    pub group_id: Option<String>,
    /// Extra information with the message, as sent.
    pub metadata: Value,
    /// Content type (text, html, location, …).
    #[serde(deserialize_with = "lenient_string")]
    pub content_type: Option<String>,
    /// The workspace's APP_ID.
    #[serde(deserialize_with = "lenient_string")]
    pub application_key: Option<String>,
    /// Web or mobile.
    #[serde(deserialize_with = "lenient_string")]
    pub source: Option<String>,
    /// Event such as `WELCOME` or `KOMMUNICATE_MEDIA_EVENT`; absent for ordinary messages.
    #[serde(deserialize_with = "lenient_string")]
    pub event_name: Option<String>,
    /// When the message was sent.
    #[serde(deserialize_with = "lenient_string")]
    pub created_at: Option<String>,
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn lenient_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(lenient_string(d)?.unwrap_or_default())
}
