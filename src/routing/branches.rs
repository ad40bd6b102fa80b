//! The model's confidence, read off the decoder's branch points: the probability of each
//! action (the mass of the outputs' openings that lead to it) and of the chosen target.
//!
//! At each branch point the mask allowed several tokens; the decoder reports the likeliest
//! with their probabilities. The action is settled once the output's opening fits one action
//! only, so the masses come from the branch points before that offset; an alternative token
//! that fits several actions shares its mass evenly among them.

use serde_json::Value;

use super::classification::{keys, Action};
use super::decision::ModelVerdict;
use crate::backend::{BranchPoint, Reply};

/// A backend reply as the rules see it, with confidences from the branch points.
pub(crate) fn verdict_from_reply(reply: &Reply, backend: &str, model: &str) -> ModelVerdict {
    match reply {
        Reply::Refusal { message, latency_ms } => ModelVerdict {
            refusal: Some(message.clone()),
            backend: backend.into(),
            model: model.into(),
            latency_ms: *latency_ms,
            ..ModelVerdict::default()
        },
        Reply::Json { value, text, latency_ms, scores, .. } => {
            // No token probabilities (a remote backend that gives none), or an output whose
            // opening the branch points cannot place: the rules use the self-reported confidence.
            let branches: &[BranchPoint] = scores.as_ref().map_or(&[], |s| &s.branches);
            let masses = if scores.is_some() { action_masses(text, branches) } else { Vec::new() };
            let placed = masses.iter().map(|(_, p)| p).sum::<f32>() > 0.0;
            let masses = if placed { masses } else { Vec::new() };
            let chosen = value.get(keys::ACTION).and_then(Value::as_str);
            ModelVerdict {
                output: Some(value.clone()),
                refusal: None,
                action_probability: chosen.and_then(|c| masses.iter().find(|(a, _)| a == c).map(|(_, p)| *p)),
                action_alternatives: masses,
                target_probability: if placed { target_probability(value, text, branches) } else { None },
                backend: backend.into(),
                model: model.into(),
                latency_ms: *latency_ms,
            }
        }
    }
}

/// The outputs' openings that decide the action (and the refusal branch).
fn openings() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> =
        Action::ALL.into_iter().map(|a| (a.as_str().to_string(), format!("{{\"{}\":\"{}\"", keys::ACTION, a.as_str()))).collect();
    v.push((keys::REFUSAL.into(), format!("{{\"{}\"", keys::REFUSAL)));
    v
}

/// Probability of each action, from the branch points up to where the
/// chosen output's action is settled. An alternative token that fits several
/// actions (not on the chosen path) shares its mass evenly among them.
pub(crate) fn action_masses(text: &str, branches: &[BranchPoint]) -> Vec<(String, f32)> {
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
    let (key, target) =
        [keys::ASSIGN_TO, keys::ASSIGN_TEAM].into_iter().find_map(|k| value.get(k).and_then(Value::as_str).map(|t| (k, t)))?;
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

    /// OpenAI Chat logprobs become branch points read as the local decoder's are.
    #[cfg(feature = "openai")]
    #[test]
    fn logprobs_give_the_action_probability() {
        let t = |token: &str, top: &[(&str, f64)]| crate::backend::openai::wire::TokenLogprob {
            token: token.into(),
            logprob: top.iter().find(|(s, _)| *s == token).map_or(0.0, |(_, l)| *l),
            top: top.iter().map(|(s, l)| (s.to_string(), *l)).collect(),
        };
        let tokens = [
            t("{\"", &[("{\"", 0.0)]),
            t("action", &[("action", 0.0)]),
            t("\":\"", &[("\":\"", 0.0)]),
            t("hand", &[("hand", 0.7f64.ln()), ("answer", 0.2f64.ln()), ("default", 0.1f64.ln())]),
            t("off_team", &[("off_team", 0.0)]),
            t("\"}", &[("\"}", 0.0)]),
        ];
        let text: String = tokens.iter().map(|t| t.token.as_str()).collect();
        let branches = crate::backend::openai::branch_points(&tokens);
        assert_eq!(branches.len(), 1);
        assert_eq!(branches[0].offset, "{\"action\":\"".len());
        let masses: std::collections::HashMap<String, f32> = action_masses(&text, &branches).into_iter().collect();
        assert!((masses["answer"] - 0.2).abs() < 1e-5 && (masses["default_fallback"] - 0.1).abs() < 1e-5, "{masses:?}");
        assert!((masses["handoff_team"] + masses["handoff_agent"] - 0.7).abs() < 1e-5, "{masses:?}");
    }
}
