//! Kommunicate payloads match the documented shapes byte for byte; the audit log writes one
//! parseable line per decision.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Value};
use strictly::routing::audit::{new_message_id, AuditError, AuditLog, AuditRecord, LoggedText, Redaction};
use strictly::routing::kommunicate::{BotMessage, Handoff, KommunicatePayload, WebhookRequest};
use strictly::routing::RoutingConfig;
use strictly::routing::{decide, Decision, ModelVerdict};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/routing.example.toml");

fn config() -> RoutingConfig {
    RoutingConfig::load(EXAMPLE).unwrap()
}

fn verdict(output: Value) -> ModelVerdict {
    ModelVerdict {
        output: Some(output),
        action_probability: Some(0.9),
        backend: "local".into(),
        model: "smollm2-135m".into(),
        latency_ms: 41.5,
        ..Default::default()
    }
}

fn classification(action: &str, to: Value, team: Value) -> Value {
    json!({"action": action, "assignTo": to, "assignTeam": team, "reason": "r", "confidence": 0.8})
}

fn decision(cfg: &RoutingConfig, output: Value) -> Decision {
    decide(cfg, "message", &verdict(output))
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("strictly-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn payloads_match_the_documented_shapes() {
    let cfg = config();
    let n = Value::Null;
    let cases = [
        (
            classification("handoff_agent", json!("senior@company.com"), n.clone()),
            r#"{"platform":"kommunicate","message":"I'm connecting you with a member of our team, who will take it from here.","metadata":{"KM_ASSIGN_TO":"senior@company.com"}}"#,
        ),
        (
            classification("handoff_team", n.clone(), json!("54515931")),
            r#"{"platform":"kommunicate","message":"I'm passing this to the right team; they'll get back to you shortly.","metadata":{"KM_ASSIGN_TEAM":"54515931"}}"#,
        ),
        (
            classification("default_fallback", n.clone(), n.clone()),
            r#"{"platform":"kommunicate","message":"Our agents will get back to you.","metadata":{"KM_ASSIGN_TO":""}}"#,
        ),
        (
            json!({"refusal": "abuse"}),
            r#"{"platform":"kommunicate","message":"Our agents will get back to you.","metadata":{"KM_ASSIGN_TO":""}}"#,
        ),
        (classification("answer", n.clone(), n.clone()), r#"{"platform":"kommunicate","message":"I can help you with that right here."}"#),
    ];
    for (output, expected) in cases {
        let payload = KommunicatePayload::from(&decision(&cfg, output));
        assert_eq!(serde_json::to_string(&payload).unwrap(), expected);
    }
}

#[test]
fn webhook_reply_matches_the_docs_sample() {
    // The sample from Kommunicate's custom bot integration docs, compacted.
    let sample: Value = serde_json::from_str(
        r#"[{
            "message": "our agents will get back to you",
            "metadata": {
                "KM_ASSIGN_TO": ""
            }
        }]"#,
    )
    .unwrap();
    let payload = KommunicatePayload::new(BotMessage {
        message: "our agents will get back to you".into(),
        metadata: Some(Handoff::AssignTo(String::new())),
    });
    let reply = serde_json::to_string(&payload.webhook_reply()).unwrap();
    assert_eq!(reply, serde_json::to_string(&sample).unwrap());
    assert_eq!(reply, r#"[{"message":"our agents will get back to you","metadata":{"KM_ASSIGN_TO":""}}]"#);

    let answer = KommunicatePayload::new(BotMessage { message: "hi".into(), metadata: None });
    assert_eq!(serde_json::to_string(&answer.webhook_reply()).unwrap(), r#"[{"message":"hi"}]"#);
    assert_eq!(answer.body().message, "hi");
}

#[test]
fn webhook_request_tolerates_real_world_input() {
    let full: WebhookRequest = serde_json::from_value(json!({
        "botId": "router-bot", "key": "5-abc", "from": "user-1", "message": "refund please",
        "groupId": "78123", "metadata": {"KM_CHAT_CONTEXT": {"x": 1}}, "contentType": 0,
        "applicationKey": "app", "source": "web", "eventName": null, "createdAt": 1_457_958_424_000u64,
        "clientGroupId": "78123", "receiverConnected": true
    }))
    .unwrap();
    assert_eq!(full.bot_id.as_deref(), Some("router-bot"));
    assert_eq!(full.key.as_deref(), Some("5-abc"));
    assert_eq!(full.from.as_deref(), Some("user-1"));
    assert_eq!(full.message, "refund please");
    assert_eq!(full.group_id.as_deref(), Some("78123"));
    assert_eq!(full.metadata, json!({"KM_CHAT_CONTEXT": {"x": 1}}));
    assert_eq!(full.content_type.as_deref(), Some("0"));
    assert_eq!((full.application_key.as_deref(), full.source.as_deref()), (Some("app"), Some("web")));
    assert_eq!(full.event_name, None);
    assert_eq!(full.created_at.as_deref(), Some("1457958424000"));

    let welcome: WebhookRequest = serde_json::from_str(r#"{"eventName":"WELCOME","groupId":123456}"#).unwrap();
    assert_eq!((welcome.event_name.as_deref(), welcome.group_id.as_deref()), (Some("WELCOME"), Some("123456")));
    assert_eq!(welcome.message, "");

    let odd: WebhookRequest = serde_json::from_str(r#"{"botId":true,"message":null,"key":[1],"metadata":"text"}"#).unwrap();
    assert_eq!((odd.bot_id, odd.key, odd.message.as_str()), (None, None, ""));
    assert_eq!(odd.metadata, json!("text"));

    assert_eq!(serde_json::from_str::<WebhookRequest>("{}").unwrap(), WebhookRequest::default());
    assert!(serde_json::from_str::<WebhookRequest>(r#"{"message": "unterminated"#).is_err());
}

#[test]
fn one_audit_line_per_decision_and_it_parses_back() {
    let cfg = config();
    let dir = TempDir::new("audit-lines");
    let path = dir.0.join("nested/deeper/audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    assert_eq!(log.path(), path);
    let outputs = [
        classification("handoff_team", Value::Null, json!("77120034")),
        classification("handoff_agent", json!("senior@company.com"), Value::Null),
        classification("answer", Value::Null, Value::Null),
        json!({"refusal": "no"}),
        json!({"garbage": true}),
    ];
    let mut decisions = Vec::new();
    for (i, output) in outputs.iter().enumerate() {
        let v = verdict(output.clone());
        let d = decide(&cfg, "order 1234 please", &v);
        let id = format!("msg-{i}");
        log.append(&AuditRecord::new(Some(&id), "order 1234 please", cfg.audit.redact, &d, &v)).unwrap();
        decisions.push(d);
    }
    drop(log);
    // Reopening appends rather than truncating.
    let log = AuditLog::open(&path).unwrap();
    let v = verdict(outputs[0].clone());
    log.append(&AuditRecord::new(None, "again", Redaction::None, &decisions[0], &v)).unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'));
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), outputs.len() + 1);
    for (i, (line, d)) in lines.iter().zip(&decisions).enumerate() {
        assert_eq!(line["id"], format!("msg-{i}"));
        humantime::parse_rfc3339(line["time"].as_str().unwrap()).unwrap();
        assert!(line["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(line["text"], "order # please");
        assert_eq!(line["action"], serde_json::to_value(d.action).unwrap());
        assert_eq!(line["target"], serde_json::to_value(&d.target).unwrap());
        assert_eq!(line["rules"], serde_json::to_value(&d.rules).unwrap());
        assert_eq!(line["payload"], serde_json::to_value(KommunicatePayload::from(d)).unwrap());
        assert_eq!((line["backend"].as_str(), line["model"].as_str()), (Some("local"), Some("smollm2-135m")));
        assert_eq!(line["latency_ms"], 41.5);
        assert!((line["model_confidence"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    }
    assert_eq!(lines[0]["target"], json!({"kind": "team", "id": "77120034"}));
    assert_eq!(lines[0]["reported_confidence"].as_f64().map(|c| (c * 10.0).round()), Some(8.0));
    assert_eq!(lines[2]["target"], json!({"kind": "none"}));
    assert_eq!(lines[3]["rules"], json!(["refusal"]));
    assert_eq!(lines[3]["reported_confidence"], Value::Null);
    assert_eq!(lines[4]["rules"], json!(["malformed_output"]));
    assert_eq!(lines[5]["text"], "again");
    assert!(!lines[5]["id"].as_str().unwrap().is_empty());
}

#[test]
fn concurrent_appends_never_interleave() {
    let cfg = config();
    let dir = TempDir::new("audit-threads");
    let log = Arc::new(AuditLog::open(dir.0.join("audit.jsonl")).unwrap());
    let v = verdict(classification("answer", Value::Null, Value::Null));
    let d = decide(&cfg, "x", &v);
    let long = "a long message ".repeat(500);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..25 {
                    log.append(&AuditRecord::new(None, &long, Redaction::None, &d, &v)).unwrap();
                }
            });
        }
    });
    let text = std::fs::read_to_string(log.path()).unwrap();
    let ids: std::collections::HashSet<String> = text
        .lines()
        .map(|l| {
            let line: Value = serde_json::from_str(l).unwrap();
            assert_eq!(line["text"], long);
            line["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 100, "one line and one distinct id per append");
}

#[test]
fn redaction_modes() {
    let text = "Card 4111 1111 1111 1111, mail me at Jo.Doe+x@mail.example.com or call +1 (555) 123-4567. Ünïcode ok";
    assert_eq!(Redaction::None.apply(text), LoggedText::Text(text.into()));
    assert_eq!(Redaction::Digits.apply(text), LoggedText::Text("Card # # # #, mail me at [email] or call +# (#) #-#. Ünïcode ok".into()));
    assert_eq!(Redaction::Digits.apply("<jo@mail.com>"), LoggedText::Text("<[email]>".into()));
    assert_eq!(Redaction::Digits.apply("order ٣٤٥ and 12b3"), LoggedText::Text("order # and #b#".into()));
    let full = Redaction::Full.apply(text);
    assert_eq!(full, Redaction::Full.apply(text), "hash is deterministic");
    assert_ne!(full, Redaction::Full.apply("another text"));
    let json = serde_json::to_value(&full).unwrap();
    assert_eq!(json["chars"], text.chars().count());
    assert_eq!(json["fnv1a64"].as_str().unwrap().len(), 16);
    assert!(!json.to_string().contains("4111"));
    // FNV-1a 64 reference values.
    assert_eq!(serde_json::to_value(Redaction::Full.apply("")).unwrap()["fnv1a64"], "cbf29ce484222325");
    assert_eq!(serde_json::to_value(Redaction::Full.apply("a")).unwrap()["fnv1a64"], "af63dc4c8601ec8c");
}

#[test]
fn io_failures_are_typed_errors() {
    let dir = TempDir::new("audit-errors");
    std::fs::create_dir_all(&dir.0).unwrap();
    let file = dir.0.join("a-file");
    std::fs::write(&file, "").unwrap();
    let err = AuditLog::open(file.join("audit.jsonl")).unwrap_err();
    assert!(matches!(err, AuditError::Open { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&format!("cannot open audit log {}: ", file.join("audit.jsonl").display())));

    #[cfg(target_os = "linux")]
    {
        let cfg = config();
        let log = AuditLog::open("/dev/full").unwrap();
        let v = verdict(classification("answer", Value::Null, Value::Null));
        let d = decide(&cfg, "x", &v);
        let err = log.append(&AuditRecord::new(None, "x", Redaction::None, &d, &v)).unwrap_err();
        assert!(matches!(err, AuditError::Write { .. }), "{err:?}");
        assert!(err.to_string().starts_with("cannot write audit log /dev/full: "), "{err}");
    }
}

#[test]
fn generated_ids_are_unique() {
    let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_message_id()).collect();
    assert_eq!(ids.len(), 1000);
}
