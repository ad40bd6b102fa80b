//! Learned phrases: customer messages a reviewer corrected, voted with the configured phrases.
//!
//! When the routing config's `[learning]` is on, a correction turns the corrected decision's
//! text (as the audit kept it: under `[audit] redact`, digits masked by default; nothing under
//! `full`) into a [`LearnedPhrase`] of the route the correction names. The store keeps them,
//! so every replica votes with the same phrases; [`RoutingConfig::with_learned`] adds them to
//! the configured ones.
//!
//! Two rules keep them few ([`plan`]):
//! - a new phrase whose similarity to a learned phrase is at least `near_duplicate` replaces
//!   it, whatever the old one's route (the newer correction wins);
//! - a route keeps at most `max_per_route` learned phrases; past it the oldest goes.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use super::classification::{Action, Target};
use super::config::{ExampleRoute, RoutingConfig};

/// `[learning]`: whether corrections become phrases, and how many are kept.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LearningSettings {
    /// Corrections become learned phrases (and their text is kept in the store). Default false.
    pub enabled: bool,
    /// Learned phrases kept per route; the oldest goes first. Default 50.
    pub max_per_route: usize,
    /// A new phrase at least this similar to a learned one (cosine of the sentence embeddings,
    /// or of words and trigrams without an encoder) replaces it. In `(0, 1]`; default 0.95.
    pub near_duplicate: f32,
    /// How often `strictly serve` asks the store whether another replica changed the learned
    /// phrases (one cheap query), and reloads them if so. Unset (the default): only on reload.
    #[serde(deserialize_with = "opt_duration")]
    pub check_every: Option<Duration>,
}

impl Default for LearningSettings {
    fn default() -> Self {
        LearningSettings { enabled: false, max_per_route: 50, near_duplicate: 0.95, check_every: None }
    }
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map(Some).map_err(serde::de::Error::custom)
}

impl LearningSettings {
    /// Why the settings cannot be used, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.max_per_route == 0 {
            return Err("[learning] max_per_route must be at least 1".into());
        }
        if !(self.near_duplicate > 0.0 && self.near_duplicate <= 1.0) {
            return Err(format!("[learning] near_duplicate {} is outside (0, 1]", self.near_duplicate));
        }
        if self.check_every.is_some_and(|d| d.is_zero()) {
            return Err("[learning] check_every must be more than 0".into());
        }
        Ok(())
    }
}

/// A phrase learned from a correction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedPhrase {
    /// `p-...`, unique.
    pub id: String,
    /// When it was learned, RFC 3339 UTC.
    pub time: String,
    /// The route's action.
    pub action: Action,
    /// The team id or agent email, as the config spells it; none for `answer` and
    /// `default_fallback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The customer's text, as the audit kept it.
    pub text: String,
    /// The correction it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction_id: Option<String>,
    /// The decision that correction corrected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<String>,
}

impl LearnedPhrase {
    /// A new phrase for `route`, stamped now.
    pub fn new(route: &Target, text: &str, correction_id: Option<&str>, decision_id: Option<&str>) -> Self {
        LearnedPhrase {
            id: format!("p-{}", super::audit::new_decision_id()),
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            action: route.action(),
            target: route.name().map(str::to_owned),
            text: text.to_owned(),
            correction_id: correction_id.map(str::to_owned),
            decision_id: decision_id.map(str::to_owned),
        }
    }

    /// The route it votes for.
    pub fn route(&self) -> Target {
        Target::from_parts(self.action, self.target.as_deref())
    }

    fn same_route(&self, other: &LearnedPhrase) -> bool {
        self.action == other.action && self.target == other.target
    }
}

/// The learned phrases a new one removes: those it near-duplicates (similarity at least
/// `near_duplicate`; `similar(text)` is a text's similarity to the new phrase's), then the
/// oldest of its route past `max_per_route`. `existing` is oldest first.
///
/// ```
/// use strictly::routing::learning::{plan, LearnedPhrase, LearningSettings};
/// use strictly::routing::Target;
/// let team = Target::Team("7".into());
/// let old: Vec<LearnedPhrase> = ["a", "b", "c"].iter().map(|t| LearnedPhrase::new(&team, t, None, None)).collect();
/// let settings = LearningSettings { max_per_route: 3, ..LearningSettings::default() };
/// let like = |new: &'static str| move |old: &str| if old == new { 1.0 } else { 0.0 };
/// // "b" again replaces "b"; a fourth phrase pushes the oldest, "a", out.
/// assert_eq!(plan(&old, &LearnedPhrase::new(&team, "b", None, None), &settings, like("b")), vec![old[1].id.clone()]);
/// assert_eq!(plan(&old, &LearnedPhrase::new(&team, "d", None, None), &settings, like("d")), vec![old[0].id.clone()]);
/// ```
pub fn plan(existing: &[LearnedPhrase], new: &LearnedPhrase, settings: &LearningSettings, similar: impl Fn(&str) -> f32) -> Vec<String> {
    let mut removed: Vec<String> = existing.iter().filter(|p| similar(&p.text) >= settings.near_duplicate).map(|p| p.id.clone()).collect();
    let kept: Vec<&LearnedPhrase> = existing.iter().filter(|p| p.same_route(new) && !removed.contains(&p.id)).collect();
    let over = (kept.len() + 1).saturating_sub(settings.max_per_route.max(1));
    removed.extend(kept.iter().take(over).map(|p| p.id.clone()));
    removed
}

/// Why a learned phrase takes no part in the vote: its route is no longer in the config.
fn missing_route(cfg: &RoutingConfig, p: &LearnedPhrase) -> bool {
    match p.route() {
        Target::Team(id) => cfg.team(&id).is_none(),
        Target::Agent(email) => !cfg.agents.iter().any(|a| a.email == email),
        Target::None | Target::DefaultRouting => false,
    }
}

/// The reason a learned phrase's few-shot answer gives: that of the route's first configured
/// example, else a generic one.
fn reason_for(cfg: &RoutingConfig, p: &LearnedPhrase) -> String {
    cfg.examples
        .iter()
        .find(|e| e.action == p.action && e.target == p.target)
        .map_or_else(|| "Routed as a reviewer corrected a similar message".to_owned(), |e| e.reason.clone())
}

impl RoutingConfig {
    /// This config with `learned` added to its example phrases (after the configured ones, in
    /// the order given), one `[[examples]]` entry per phrase. A phrase whose team or agent the
    /// config no longer has is left out (and logged).
    pub fn with_learned(&self, learned: &[LearnedPhrase]) -> RoutingConfig {
        let mut cfg = self.clone();
        for p in learned {
            if missing_route(self, p) {
                tracing::warn!(phrase = %p.id, target = p.target.as_deref().unwrap_or_default(), "a learned phrase's route is not in the config; it does not vote");
                continue;
            }
            cfg.examples.push(ExampleRoute {
                action: p.action,
                target: p.target.clone(),
                reason: reason_for(self, p),
                phrases: vec![p.text.clone()],
            });
        }
        cfg
    }
}

/// `text`, a routing config's TOML, with `phrase` added to the phrases of the first
/// `[[examples]]` entry of its route (or to a new entry at the end when there is none). The
/// rest of the file, comments included, is kept as it is; the result is checked to load.
///
/// ```
/// use strictly::routing::learning::{promote_into_toml, LearnedPhrase};
/// use strictly::routing::{RoutingConfig, Target};
/// let text = std::fs::read_to_string("config/routing.example.toml").unwrap();
/// let phrase = LearnedPhrase::new(&Target::Team("54515931".into()), "my bill shows a \"#\" fee", None, None);
/// let edited = promote_into_toml(&text, &phrase).unwrap();
/// let cfg = RoutingConfig::from_toml_str(&edited).unwrap();
/// assert!(cfg.examples.iter().any(|e| e.target.as_deref() == Some("54515931") && e.phrases.iter().any(|p| p == "my bill shows a \"#\" fee")));
/// // One line more; every other line as it was.
/// assert_eq!(edited.lines().count(), text.lines().count() + 1);
/// ```
pub fn promote_into_toml(text: &str, phrase: &LearnedPhrase) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        examples: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        action: Action,
        #[serde(default)]
        target: Option<String>,
        phrases: toml::Spanned<Vec<String>>,
    }
    let doc: Doc = toml::from_str(text).map_err(|e| format!("invalid routing config: {e}"))?;
    let quoted = toml::Value::String(phrase.text.clone()).to_string();
    let entry = doc.examples.iter().find(|e| e.action == phrase.action && e.target == phrase.target);
    let edited = match entry {
        Some(e) => {
            let span = e.phrases.span();
            let (open, close) = (span.start, span.end.saturating_sub(1));
            let inner = text.get(open + 1..close).ok_or("the phrases array is not where the parser says")?;
            let last = inner.trim_end();
            let (at, insert) = if last.is_empty() {
                (open + 1, quoted.clone())
            } else if last.ends_with(',') {
                (open + 1 + last.len(), format!("\n    {quoted},"))
            } else if last.ends_with('"') || last.ends_with('\'') {
                (open + 1 + last.len(), format!(",\n    {quoted},"))
            } else {
                // The last phrase is followed by a comment: the new one goes first.
                (open + 1, format!("\n    {quoted},"))
            };
            format!("{}{insert}{}", &text[..at], &text[at..])
        }
        None => {
            let target = phrase.target.as_ref().map(|t| format!("target = {}\n", toml::Value::String(t.clone()))).unwrap_or_default();
            let reason = toml::Value::String("Routed as a reviewer corrected a similar message".into());
            let sep = if text.ends_with('\n') { "" } else { "\n" };
            format!(
                "{text}{sep}\n[[examples]]\naction = \"{}\"\n{target}reason = {reason}\nphrases = [\n    {quoted},\n]\n",
                phrase.action.as_str()
            )
        }
    };
    let cfg = RoutingConfig::from_toml_str(&edited).map_err(|e| format!("the edited config does not load: {e}"))?;
    let route = phrase.route();
    let has = cfg.examples.iter().any(|e| Target::from_parts(e.action, e.target.as_deref()) == route && e.phrases.contains(&phrase.text));
    if !has {
        return Err("the edited config does not hold the phrase".into());
    }
    Ok(edited)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phrase(route: &Target, text: &str) -> LearnedPhrase {
        LearnedPhrase::new(route, text, None, None)
    }

    #[test]
    fn the_cap_drops_the_oldest_of_the_route_only() {
        let (a, b) = (Target::Team("1".into()), Target::Team("2".into()));
        let existing = vec![phrase(&a, "a1"), phrase(&b, "b1"), phrase(&a, "a2")];
        let settings = LearningSettings { max_per_route: 2, ..LearningSettings::default() };
        let never = |_: &str| 0.0;
        assert_eq!(plan(&existing, &phrase(&a, "a3"), &settings, never), vec![existing[0].id.clone()]);
        assert!(plan(&existing, &phrase(&b, "b2"), &settings, never).is_empty());
    }

    #[test]
    fn a_near_duplicate_replaces_across_routes() {
        let (a, b) = (Target::Team("1".into()), Target::None);
        let existing = vec![phrase(&a, "where is my parcel"), phrase(&a, "refund please")];
        let settings = LearningSettings::default();
        let similar = |old: &str| if old.starts_with("where") { 0.97 } else { 0.2 };
        let removed = plan(&existing, &phrase(&b, "where is my parcel??"), &settings, similar);
        assert_eq!(removed, vec![existing[0].id.clone()]);
    }
}
