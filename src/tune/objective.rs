//! What `strictly tune` maximises, and the bounds it must stay within.
//!
//! The syntax is one clause per `;`: first `max METRIC` (or `min METRIC`), then any number of
//! bounds `METRIC >= BOUND` or `METRIC <= BOUND`. A bound is a percentage, or `current`
//! (the current config's value on the same rows), optionally plus or minus a number of points:
//!
//! ```text
//! max exact; oos_recall >= current - 2; wrong_route <= current + 1     (the default)
//! max in_scope_exact; oos_recall >= 85
//! min wrong_route; exact >= current
//! ```
//!
//! The metrics, all in percent of the rows they are taken over:
//! - `exact`: rows routed exactly as labelled (action and target);
//! - `in_scope_exact`: the same, over the rows not labelled `default_fallback`;
//! - `oos_recall`: of the rows labelled `default_fallback`, the share sent to default routing
//!   (a bound on it holds trivially when there are none);
//! - `wrong_route`: rows sent to a team, an agent or the bot's own answer that is not theirs.
//!   Default routing is not counted: there a human picks, so nothing is sent the wrong way.
//!
//! ```
//! use strictly::tune::Objective;
//!
//! let o: Objective = "max exact; oos_recall >= current - 2".parse()?;
//! assert_eq!(o.to_string(), "max exact; oos_recall >= current - 2");
//! assert!("max accuracy".parse::<Objective>().unwrap_err().to_string().contains("unknown metric"));
//! # Ok::<(), strictly::tune::ObjectiveError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// The default objective.
pub const DEFAULT_OBJECTIVE: &str = "max exact; oos_recall >= current - 2; wrong_route <= current + 1";

/// A figure of a set of routed rows, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Rows routed exactly as labelled.
    Exact,
    /// Exact routing over the rows not labelled `default_fallback`.
    InScopeExact,
    /// The share of `default_fallback` rows sent to default routing.
    OosRecall,
    /// Rows sent to a team, agent or the bot's answer that is not theirs.
    WrongRoute,
}

impl Metric {
    /// Every metric, in the order reports show them.
    pub const ALL: [Metric; 4] = [Metric::Exact, Metric::InScopeExact, Metric::OosRecall, Metric::WrongRoute];

    /// The metric's name in the objective syntax.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Exact => "exact",
            Metric::InScopeExact => "in_scope_exact",
            Metric::OosRecall => "oos_recall",
            Metric::WrongRoute => "wrong_route",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One metric's side of a bound.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Bound {
    /// A fixed percentage.
    Fixed(f64),
    /// The current config's value on the same rows, plus this many points (may be negative).
    Current(f64),
}

impl Bound {
    /// The bound's value, given the current config's value of the metric.
    pub fn resolve(self, current: f64) -> f64 {
        match self {
            Bound::Fixed(v) => v,
            Bound::Current(d) => current + d,
        }
    }
}

/// `METRIC >= BOUND` (`at_least`) or `METRIC <= BOUND`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Constraint {
    /// The bounded metric.
    pub metric: Metric,
    /// `>=` when true, `<=` when false.
    pub at_least: bool,
    /// The bound.
    pub bound: Bound,
}

/// What tuning maximises (or minimises), and the bounds a candidate must stay within.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Objective {
    /// The metric to optimise.
    pub metric: Metric,
    /// Maximise when true, minimise when false.
    pub maximise: bool,
    /// The bounds.
    pub constraints: Vec<Constraint>,
}

impl Default for Objective {
    fn default() -> Self {
        DEFAULT_OBJECTIVE.parse().expect("the default objective parses")
    }
}

/// Why an objective did not parse; the message names the clause.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("objective `{clause}`: {why} (syntax: `max METRIC; METRIC >= BOUND; METRIC <= BOUND`, metrics exact, in_scope_exact, oos_recall, wrong_route; a bound is a percentage or `current` plus or minus points)")]
pub struct ObjectiveError {
    clause: String,
    why: String,
}

fn metric(name: &str, clause: &str) -> Result<Metric, ObjectiveError> {
    Metric::ALL
        .into_iter()
        .find(|m| m.as_str() == name)
        .ok_or_else(|| ObjectiveError { clause: clause.into(), why: format!("unknown metric `{name}`") })
}

fn bound(text: &str, clause: &str) -> Result<Bound, ObjectiveError> {
    let err = |why: String| ObjectiveError { clause: clause.into(), why };
    let number = |s: &str| -> Result<f64, ObjectiveError> {
        let s = s.trim();
        s.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| err(format!("`{s}` is not a number")))
    };
    let text = text.trim();
    let Some(rest) = text.strip_prefix("current") else {
        let v = number(text)?;
        return if (0.0..=100.0).contains(&v) { Ok(Bound::Fixed(v)) } else { Err(err(format!("{v} is not a percentage"))) };
    };
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(Bound::Current(0.0));
    }
    match (rest.strip_prefix('+'), rest.strip_prefix('-')) {
        (Some(d), _) => Ok(Bound::Current(number(d)?)),
        (_, Some(d)) => Ok(Bound::Current(-number(d)?)),
        _ => Err(err(format!("expected `+` or `-` after `current`, got `{rest}`"))),
    }
}

impl FromStr for Objective {
    type Err = ObjectiveError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut clauses = s.split(';').map(str::trim).filter(|c| !c.is_empty());
        let first = clauses.next().ok_or_else(|| ObjectiveError { clause: s.into(), why: "it is empty".into() })?;
        let (maximise, name) = match first.split_once(char::is_whitespace) {
            Some(("max", m)) => (true, m.trim()),
            Some(("min", m)) => (false, m.trim()),
            _ => return Err(ObjectiveError { clause: first.into(), why: "the first clause must be `max METRIC` or `min METRIC`".into() }),
        };
        let metric_ = metric(name, first)?;
        let constraints = clauses
            .map(|clause| {
                let (left, at_least, right) = if let Some((l, r)) = clause.split_once(">=") {
                    (l, true, r)
                } else if let Some((l, r)) = clause.split_once("<=") {
                    (l, false, r)
                } else {
                    return Err(ObjectiveError { clause: clause.into(), why: "a bound needs `>=` or `<=`".into() });
                };
                Ok(Constraint { metric: metric(left.trim(), clause)?, at_least, bound: bound(right, clause)? })
            })
            .collect::<Result<_, _>>()?;
        Ok(Objective { metric: metric_, maximise, constraints })
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Bound::Fixed(v) => write!(f, "{v}"),
            Bound::Current(0.0) => f.write_str("current"),
            Bound::Current(d) if d > 0.0 => write!(f, "current + {d}"),
            Bound::Current(d) => write!(f, "current - {}", -d),
        }
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.metric, if self.at_least { ">=" } else { "<=" }, self.bound)
    }
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", if self.maximise { "max" } else { "min" }, self.metric)?;
        for c in &self.constraints {
            write!(f, "; {c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_parses_and_prints_back() {
        let o = Objective::default();
        assert_eq!(o.to_string(), DEFAULT_OBJECTIVE);
        assert_eq!((o.metric, o.maximise), (Metric::Exact, true));
        assert_eq!(o.constraints[0], Constraint { metric: Metric::OosRecall, at_least: true, bound: Bound::Current(-2.0) });
        assert_eq!(o.constraints[1], Constraint { metric: Metric::WrongRoute, at_least: false, bound: Bound::Current(1.0) });
    }

    #[test]
    fn fixed_bounds_and_minimising() {
        let o: Objective = " min wrong_route ;exact>=90.5; ".parse().unwrap();
        assert_eq!(o.to_string(), "min wrong_route; exact >= 90.5");
        assert_eq!(o.constraints[0].bound.resolve(12.0), 90.5);
        let c: Objective = "max exact; oos_recall >= current".parse().unwrap();
        assert_eq!(c.constraints[0].bound.resolve(80.0), 80.0);
    }

    #[test]
    fn bad_objectives_say_what_is_wrong() {
        for (text, why) in [
            ("", "empty"),
            ("exact", "`max METRIC`"),
            ("max speed", "unknown metric `speed`"),
            ("max exact; oos_recall > 80", "`>=` or `<=`"),
            ("max exact; oos_recall >= eighty", "not a number"),
            ("max exact; oos_recall >= 180", "not a percentage"),
            ("max exact; oos_recall >= current * 2", "after `current`"),
        ] {
            let e = text.parse::<Objective>().unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
