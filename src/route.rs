//! The main job: one support message in, one Kommunicate action out.
//!
//! [`Router::route`] builds the prompt from the config, asks a [`Backend`]
//! for a value matching the deployment schema, turns the decoder's branch
//! probabilities into a confidence, lets the rules decide, maps the decision
//! to a Kommunicate payload, and appends an audit line (flushed) before it
//! returns. A backend failure is not lost: it becomes a default-routing
//! decision with the rule `malformed_output`, and is audited like any other.

use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use crate::audit::{AuditError, AuditLog, AuditRecord};
use crate::backend::{Backend, BranchPoint, Reply, SchemaSpec};
use crate::kommunicate::KommunicatePayload;
use crate::routing::{deployment_schema, sanitize_message, Action, PromptBuilder, RoutingConfig};
use crate::rules::{decide, looks_like_injection, Decision, ModelVerdict, Rule, Target};

/// Errors that stop a message from being routed at all.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("audit log: {0}")]
    Audit(#[from] AuditError),
}

/// The outcome of routing one message.
#[derive(Debug, Clone, Serialize)]
pub struct Routed {
    pub message_id: String,
    pub decision: Decision,
    pub payload: KommunicatePayload,
    /// The model's raw output, when there was one.
    pub output: Option<Value>,
    /// Probability of each action at the decoder's branch points.
    pub action_alternatives: Vec<(String, f32)>,
    /// The backend's error, when it failed.
    pub backend_error: Option<String>,
    pub latency_ms: f64,
}

/// Routes messages for one deployment.
pub struct Router<B: Backend> {
    config: RoutingConfig,
    prompt: PromptBuilder,
    schema: SchemaSpec,
    backend: B,
    audit: Option<AuditLog>,
}

impl<B: Backend> Router<B> {
    /// A router over a backend; opens the config's audit log unless `audit` is false.
    pub fn new(config: RoutingConfig, backend: B, audit: bool) -> Result<Self, RouteError> {
        let prompt = PromptBuilder::new(&config);
        let schema = SchemaSpec { name: "support_route".into(), schema: deployment_schema(&config) };
        let audit = if audit { Some(AuditLog::open(&config.audit.path)?) } else { None };
        Ok(Self { config, prompt, schema, backend, audit })
    }

    /// The deployment schema the backend must follow.
    pub fn schema(&self) -> &SchemaSpec {
        &self.schema
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The config.
    pub fn config(&self) -> &RoutingConfig {
        &self.config
    }

    /// Routes one message; `message_id` is generated when absent.
    pub async fn route(&self, message: &str, message_id: Option<&str>) -> Result<Routed, RouteError> {
        let started = Instant::now();
        let mut backend_error = None;
        let mut alternatives = Vec::new();
        let verdict = if self.config.rules.prompt_injection && looks_like_injection(message) {
            // Injection attempts are refused without asking the model.
            ModelVerdict {
                refusal: Some("prompt injection suspected".into()),
                backend: self.backend.name().into(),
                model: self.backend.model().into(),
                ..ModelVerdict::default()
            }
        } else {
            let text = sanitize_message(message, self.config.prompt.max_message_chars);
            let messages = self.prompt.build(&text);
            match self.backend.complete(&messages, &self.schema).await {
                Ok(reply) => {
                    let v = verdict_from_reply(&reply, self.backend.name(), self.backend.model());
                    alternatives = v.action_alternatives.clone();
                    v
                }
                Err(e) => {
                    backend_error = Some(e.to_string());
                    ModelVerdict {
                        backend: self.backend.name().into(),
                        model: self.backend.model().into(),
                        latency_ms: started.elapsed().as_secs_f64() * 1e3,
                        ..ModelVerdict::default()
                    }
                }
            }
        };
        let mut decision = decide(&self.config, message, &verdict);
        if self.config.rules.low_confidence_uses_examples && decision.rules.contains(&Rule::LowConfidence) {
            self.apply_examples_vote(message, &mut decision);
        }
        let record = AuditRecord::new(message_id, message, self.config.audit.redact, &decision, &verdict);
        if let Some(log) = &self.audit {
            log.append(&record)?;
        }
        Ok(Routed {
            message_id: record.id.clone(),
            payload: KommunicatePayload::from(&decision),
            output: verdict.output.clone(),
            decision,
            action_alternatives: alternatives,
            backend_error,
            latency_ms: started.elapsed().as_secs_f64() * 1e3,
        })
    }
}

impl<B: Backend> Router<B> {
    /// Replaces a low-confidence decision's target with the route the five
    /// most similar example phrases vote for (weighted by similarity).
    fn apply_examples_vote(&self, message: &str, decision: &mut Decision) {
        let mut votes: Vec<(Target, f32)> = Vec::new();
        for (answer, score) in self.prompt.nearest(message, 5) {
            let Ok(v) = serde_json::from_str::<Value>(answer) else { continue };
            let target = match v["action"].as_str() {
                Some("handoff_team") => Target::Team(v["assignTeam"].as_str().unwrap_or_default().into()),
                Some("handoff_agent") => Target::Agent(v["assignTo"].as_str().unwrap_or_default().into()),
                Some("answer") => Target::None,
                _ => Target::DefaultRouting,
            };
            match votes.iter_mut().find(|(t, _)| *t == target) {
                Some(entry) => entry.1 += score,
                None => votes.push((target, score)),
            }
        }
        if let Some((target, _)) = votes.into_iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
            decision.action = target.action();
            decision.reply = self.config.replies.for_action(decision.action).to_string();
            decision.target = target;
            decision.rules.push(Rule::ExamplesVote);
        }
    }
}

/// A backend reply as the rules see it, with confidences from the branch points.
pub fn verdict_from_reply(reply: &Reply, backend: &str, model: &str) -> ModelVerdict {
    match reply {
        Reply::Refusal { message, latency_ms } => ModelVerdict {
            refusal: Some(message.clone()),
            backend: backend.into(),
            model: model.into(),
            latency_ms: *latency_ms,
            ..ModelVerdict::default()
        },
        Reply::Json { value, text, latency_ms, branches, .. } => {
            let masses = action_masses(text, branches);
            let chosen = value.get("action").and_then(Value::as_str);
            ModelVerdict {
                output: Some(value.clone()),
                refusal: None,
                action_probability: chosen.and_then(|c| masses.iter().find(|(a, _)| a == c).map(|(_, p)| *p)),
                action_alternatives: masses,
                target_probability: target_probability(value, text, branches),
                backend: backend.into(),
                model: model.into(),
                latency_ms: *latency_ms,
            }
        }
    }
}

/// The outputs' openings that decide the action (and the refusal branch).
fn openings() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Action::ALL
        .into_iter()
        .map(|a| (a.as_str().to_string(), format!("{{\"action\":\"{}\"", a.as_str())))
        .collect();
    v.push(("refusal".into(), "{\"refusal\"".into()));
    v
}

/// Probability of each action, from the branch points up to where the
/// chosen output's action is settled. An alternative token that fits several
/// actions (not on the chosen path) shares its mass evenly among them.
pub fn action_masses(text: &str, branches: &[BranchPoint]) -> Vec<(String, f32)> {
    let openings = openings();
    let fits = |s: &str| -> Vec<usize> {
        openings.iter().enumerate().filter(|(_, (_, o))| o.starts_with(s) || s.starts_with(o.as_str())).map(|(i, _)| i).collect()
    };
    let mut mass = vec![0f32; openings.len()];
    let mut prefix = 1f32;
    let settled = |s: &str| fits(s).len() == 1;
    for b in branches {
        let Some(before) = text.get(..b.offset) else { break };
        if settled(before) {
            break;
        }
        let mut chosen_p = None;
        for (alt, p) in &b.alternatives {
            if alt == &b.chosen && chosen_p.is_none() {
                chosen_p = Some(*p);
                continue;
            }
            let cands = fits(&format!("{before}{alt}"));
            for &c in &cands {
                mass[c] += prefix * p / cands.len() as f32;
            }
        }
        prefix *= chosen_p.unwrap_or(0.0);
        let after = format!("{before}{}", b.chosen);
        if let [only] = fits(&after)[..] {
            mass[only] += prefix;
            prefix = 0.0;
            break;
        }
    }
    // Nothing branched: the action was forced.
    if prefix > 0.0 {
        if let [only] = fits(text)[..] {
            mass[only] += prefix;
        }
    }
    openings.into_iter().zip(mass).map(|((name, _), m)| (name, m)).collect()
}

/// Probability of the chosen target's value: the product of the chosen
/// tokens' probabilities at the branch points inside it.
fn target_probability(value: &Value, text: &str, branches: &[BranchPoint]) -> Option<f32> {
    let (key, target) = ["assignTo", "assignTeam"]
        .into_iter()
        .find_map(|k| value.get(k).and_then(Value::as_str).map(|t| (k, t)))?;
    let needle = format!("\"{key}\":{}", serde_json::to_string(target).ok()?);
    let start = text.find(&needle)? + key.len() + 3;
    let end = start + needle.len() - key.len() - 3;
    let mut p = 1f32;
    for b in branches.iter().filter(|b| b.offset >= start && b.offset < end) {
        p *= b.alternatives.iter().find(|(t, _)| t == &b.chosen).map_or(0.0, |(_, p)| *p);
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bp(offset: usize, chosen: &str, alts: &[(&str, f32)]) -> BranchPoint {
        BranchPoint { offset, chosen: chosen.into(), alternatives: alts.iter().map(|(t, p)| (t.to_string(), *p)).collect() }
    }

    #[test]
    fn masses_follow_the_branch_tree() {
        let text = r#"{"action":"handoff_team","assignTo":null}"#;
        let open = r#"{"action":""#.len();
        let branches = [
            bp(2, "action", &[("action", 0.9), ("refusal", 0.1)]),
            bp(open, "hand", &[("hand", 0.6), ("answer", 0.3), ("default", 0.1)]),
            bp(open + 8, "team", &[("team", 0.75), ("agent", 0.25)]),
        ];
        let m: std::collections::HashMap<String, f32> = action_masses(text, &branches).into_iter().collect();
        assert!((m["refusal"] - 0.1).abs() < 1e-6);
        assert!((m["answer"] - 0.27).abs() < 1e-6);
        assert!((m["default_fallback"] - 0.09).abs() < 1e-6);
        assert!((m["handoff_agent"] - 0.9 * 0.6 * 0.25).abs() < 1e-6);
        assert!((m["handoff_team"] - 0.9 * 0.6 * 0.75).abs() < 1e-6);
        let total: f32 = m.values().sum();
        assert!((total - 1.0).abs() < 1e-5);
    }
}
