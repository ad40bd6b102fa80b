//! The grid, replayed in memory: each candidate `[vote]` setting's decision on every row, from
//! similarities computed once, through the router's own vote ([`Similarities::nearest`],
//! [`Tally::count`](crate::routing::Tally::count)) and rules ([`rule_before_vote`],
//! [`examples_route`]).
//!
//! Cost: the nearest phrases are sorted once per row and `lexical_weight`; every other value
//! only recounts the `k` nearest. 4,605 rows against 565 phrases under 1,000 candidates take a
//! few CPU-seconds.

use serde::Serialize;

use super::objective::{Constraint, Metric, Objective};
use crate::routing::{examples_route, rule_before_vote, RoutingConfig, Similarities, Tally, Target, VoteSettings};

/// The values tried for each `[vote]` number; the current config's values are always tried too.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grid {
    /// Nearest phrases that vote.
    pub k: Vec<usize>,
    /// The power each voter's similarity is raised to.
    pub power: Vec<i32>,
    /// The nearest phrase's similarity below which a message is out of scope.
    pub min_similarity: Vec<f32>,
    /// The word similarity's share (with an encoder).
    pub lexical_weight: Vec<f32>,
}

impl Default for Grid {
    /// k 1, 3, 5, 7, 9; power 1, 2, 4, 6; min_similarity 0 and 0.2 to 0.6 by 0.05; lexical_weight
    /// 0, 0.1, 0.2, 0.3, 0.5: 1,000 candidates.
    fn default() -> Self {
        Grid {
            k: vec![1, 3, 5, 7, 9],
            power: vec![1, 2, 4, 6],
            min_similarity: std::iter::once(0.0).chain((4..=12).map(|i| i as f32 / 20.0)).collect(),
            lexical_weight: vec![0.0, 0.1, 0.2, 0.3, 0.5],
        }
    }
}

impl Grid {
    /// The candidates: `current` first, then every combination (without repeating `current`),
    /// in a fixed order. Other `[vote]` values (`min_support`, `decide_at`, `shortlist`) are the
    /// current ones.
    pub fn candidates(&self, current: &VoteSettings) -> Vec<VoteSettings> {
        let mut out = vec![current.clone()];
        for &lexical_weight in &self.lexical_weight {
            for &k in &self.k {
                for &power in &self.power {
                    for &min_similarity in &self.min_similarity {
                        let c = VoteSettings { k, power, min_similarity, lexical_weight, ..current.clone() };
                        if !same_values(&c, current) {
                            out.push(c);
                        }
                    }
                }
            }
        }
        out
    }
}

/// The four tuned values are equal.
pub(crate) fn same_values(a: &VoteSettings, b: &VoteSettings) -> bool {
    (a.k, a.power, a.min_similarity, a.lexical_weight) == (b.k, b.power, b.min_similarity, b.lexical_weight)
}

/// How many of the four tuned values differ.
pub(crate) fn changed_values(a: &VoteSettings, b: &VoteSettings) -> usize {
    (a.k != b.k) as usize
        + (a.power != b.power) as usize
        + (a.min_similarity != b.min_similarity) as usize
        + (a.lexical_weight != b.lexical_weight) as usize
}

/// The figures of one candidate on a set of rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Metrics {
    /// Rows scored.
    pub rows: usize,
    /// Rows labelled `default_fallback`.
    pub oos_rows: usize,
    /// Exact routing, in percent.
    pub exact: f64,
    /// Exact routing of the rows not labelled `default_fallback`, in percent.
    pub in_scope_exact: f64,
    /// Share of the `default_fallback` rows sent to default routing, in percent (`None`
    /// without such rows).
    pub oos_recall: Option<f64>,
    /// Rows sent to a route (team, agent, the bot's answer) that is not theirs, in percent.
    pub wrong_route: f64,
}

impl Metrics {
    /// One metric's value; `None` for out-of-scope recall without out-of-scope rows.
    pub fn get(&self, m: Metric) -> Option<f64> {
        match m {
            Metric::Exact => Some(self.exact),
            Metric::InScopeExact => Some(self.in_scope_exact),
            Metric::OosRecall => self.oos_recall,
            Metric::WrongRoute => Some(self.wrong_route),
        }
    }
}

/// Every candidate's decision on every row.
#[derive(Debug, Clone)]
pub struct Replay {
    candidates: Vec<VoteSettings>,
    /// The routes decisions are made of: default routing first, then the ones seen.
    routes: Vec<Target>,
    /// The expected route of each row.
    expected: Vec<u16>,
    /// `decided[candidate][row]`.
    decided: Vec<Vec<u16>>,
}

/// The index of `target` in `routes`, added when new.
fn route_id(routes: &mut Vec<Target>, target: &Target) -> u16 {
    match routes.iter().position(|r| r == target) {
        Some(i) => i as u16,
        None => {
            routes.push(target.clone());
            (routes.len() - 1) as u16
        }
    }
}

impl Replay {
    /// Replays every candidate on every row: `texts[i]` is row `i`'s message, `similarities[i]`
    /// its similarities to the config's phrases (from the same `tally`'s vote), `expected[i]`
    /// its labelled route. `tally` is the config's [`ExampleVote::tally`](crate::routing::ExampleVote::tally).
    pub fn new(
        cfg: &RoutingConfig,
        tally: &Tally,
        texts: &[&str],
        similarities: &[Similarities],
        expected: &[Target],
        candidates: Vec<VoteSettings>,
    ) -> Replay {
        assert!(texts.len() == similarities.len() && texts.len() == expected.len(), "one text, similarity and label per row");
        let mut routes = vec![Target::DefaultRouting];
        let expected: Vec<u16> = expected.iter().map(|t| route_id(&mut routes, t)).collect();
        // Rule 1 does not depend on the vote: once per row.
        let screened: Vec<bool> = texts.iter().map(|t| rule_before_vote(cfg, t).is_some()).collect();
        let k_max = candidates.iter().map(|c| c.k).max().unwrap_or(1);
        let mut decided = vec![Vec::new(); candidates.len()];
        let mut weights: Vec<f32> = candidates.iter().map(|c| c.lexical_weight).collect();
        weights.sort_by(f32::total_cmp);
        weights.dedup();
        for w in weights {
            let nearest: Vec<Vec<(usize, f32)>> = similarities.iter().map(|s| s.nearest(w, k_max)).collect();
            for (c, candidate) in candidates.iter().enumerate().filter(|(_, c)| c.lexical_weight == w) {
                let tally = tally.with_settings(candidate);
                decided[c] = nearest
                    .iter()
                    .zip(&screened)
                    .map(|(nearest, &screened)| {
                        if screened {
                            return 0;
                        }
                        match tally.count(nearest).1 {
                            Some(ballot) => route_id(&mut routes, &examples_route(&ballot)),
                            // No phrase at all: the rules route it to default routing.
                            None => 0,
                        }
                    })
                    .collect();
            }
        }
        Replay { candidates, routes, expected, decided }
    }

    /// The candidates, the current config's first.
    pub fn candidates(&self) -> &[VoteSettings] {
        &self.candidates
    }

    /// How many rows were replayed.
    pub fn rows(&self) -> usize {
        self.expected.len()
    }

    /// The route `candidate` gives row `row`.
    pub fn decision(&self, candidate: usize, row: usize) -> &Target {
        &self.routes[self.decided[candidate][row] as usize]
    }

    /// Row `row`'s labelled route.
    pub fn expected(&self, row: usize) -> &Target {
        &self.routes[self.expected[row] as usize]
    }

    /// Row `row`'s label as a small number (equal labels, equal numbers).
    pub(crate) fn label_id(&self, row: usize) -> usize {
        self.expected[row] as usize
    }

    /// The routes decisions and labels are made of, default routing first.
    pub fn routes(&self) -> &[Target] {
        &self.routes
    }

    /// Whether `candidate` routes row `row` exactly.
    pub fn exact(&self, candidate: usize, row: usize) -> bool {
        self.decided[candidate][row] == self.expected[row]
    }

    /// `candidate`'s figures on `rows`.
    pub fn metrics(&self, candidate: usize, rows: &[usize]) -> Metrics {
        score(rows.iter().map(|&r| (self.expected[r], self.decided[candidate][r])))
    }

    /// The figures of per-row choices: `pick(row)` names the candidate whose decision counts
    /// for that row (cross-validation's held-out decisions).
    pub fn metrics_by(&self, rows: &[usize], pick: impl Fn(usize) -> usize) -> Metrics {
        score(rows.iter().map(|&r| (self.expected[r], self.decided[pick(r)][r])))
    }

    /// The candidate `objective` chooses on `rows` (see [`Choice`]): the first of the
    /// [`ranking`](Self::ranking).
    pub fn choose(&self, objective: &Objective, rows: &[usize]) -> Choice {
        let (bounds, ranking) = self.judge(objective, rows);
        let best = ranking[0];
        Choice {
            candidate: best.0,
            metrics: best.1,
            feasible: best.2 == 0.0,
            bounds: bounds.into_iter().map(|(c, v)| (c.to_string(), v)).collect(),
        }
    }

    /// Every candidate with its figures on `rows` and the points by which it breaks the
    /// objective's bounds (0: it keeps them), best first: the fewest points broken, then the
    /// best value of the objective's metric, then the fewest values changed from the current
    /// config, then grid order.
    pub fn ranking(&self, objective: &Objective, rows: &[usize]) -> Vec<Ranked> {
        self.judge(objective, rows).1
    }

    /// The bounds resolved on `rows`, and the ranking.
    fn judge(&self, objective: &Objective, rows: &[usize]) -> (Vec<(Constraint, f64)>, Vec<Ranked>) {
        let current = self.metrics(0, rows);
        let bounds: Vec<(Constraint, f64)> =
            objective.constraints.iter().map(|c| (*c, c.bound.resolve(current.get(c.metric).unwrap_or(0.0)))).collect();
        let value = |m: &Metrics| {
            let v = m.get(objective.metric).unwrap_or(0.0);
            if objective.maximise {
                -v
            } else {
                v
            }
        };
        let changed = |i: usize| changed_values(&self.candidates[i], &self.candidates[0]);
        let mut all: Vec<Ranked> = (0..self.candidates.len())
            .map(|i| {
                let m = self.metrics(i, rows);
                (i, m, violation(&m, &bounds))
            })
            .collect();
        all.sort_by(|a, b| {
            a.2.total_cmp(&b.2).then(value(&a.1).total_cmp(&value(&b.1))).then(changed(a.0).cmp(&changed(b.0))).then(a.0.cmp(&b.0))
        });
        (bounds, all)
    }
}

/// A candidate's index, its figures, and the points by which it breaks the bounds.
pub type Ranked = (usize, Metrics, f64);

/// The points by which `m` breaks `bounds`, summed (0 when it keeps them all).
fn violation(m: &Metrics, bounds: &[(Constraint, f64)]) -> f64 {
    bounds
        .iter()
        .map(|(c, bound)| match m.get(c.metric) {
            None => 0.0,
            Some(v) if c.at_least => (bound - v).max(0.0),
            Some(v) => (v - bound).max(0.0),
        })
        .sum()
}

/// `(expected, decided)` route ids (0 is default routing) into figures.
fn score(pairs: impl Iterator<Item = (u16, u16)>) -> Metrics {
    let (mut rows, mut exact, mut oos, mut oos_hits, mut in_scope_exact, mut wrong) = (0, 0, 0, 0, 0, 0);
    for (expected, decided) in pairs {
        rows += 1;
        exact += (expected == decided) as usize;
        if expected == 0 {
            oos += 1;
            oos_hits += (decided == 0) as usize;
        } else {
            in_scope_exact += (expected == decided) as usize;
        }
        wrong += (decided != 0 && decided != expected) as usize;
    }
    let pct = |a: usize, b: usize| if b == 0 { 0.0 } else { 100.0 * a as f64 / b as f64 };
    Metrics {
        rows,
        oos_rows: oos,
        exact: pct(exact, rows),
        in_scope_exact: pct(in_scope_exact, rows - oos),
        oos_recall: (oos > 0).then(|| pct(oos_hits, oos)),
        wrong_route: pct(wrong, rows),
    }
}

/// The candidate an objective chose on some rows.
#[derive(Debug, Clone, Serialize)]
pub struct Choice {
    /// Its index in [`Replay::candidates`] (0 is the current config).
    pub candidate: usize,
    /// Its figures on the rows it was chosen on.
    pub metrics: Metrics,
    /// Whether it keeps every bound. When no candidate does, the choice is the one that breaks
    /// them by the fewest points.
    pub feasible: bool,
    /// Each bound, resolved against the current config on those rows.
    pub bounds: Vec<(String, f64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoring_counts_default_routing_as_safe() {
        // expected, decided: 0 is default routing.
        let m = score([(0, 0), (0, 1), (1, 1), (1, 0), (2, 1)].into_iter());
        assert_eq!((m.rows, m.oos_rows), (5, 2));
        assert_eq!(m.exact, 40.0);
        assert_eq!(m.oos_recall, Some(50.0));
        assert!((m.in_scope_exact - 100.0 / 3.0).abs() < 1e-9);
        // (0 → 1) and (2 → 1) went to a route that is not theirs; (1 → 0) is default routing.
        assert_eq!(m.wrong_route, 40.0);
        assert_eq!(score([(1, 1)].into_iter()).oos_recall, None);
    }

    #[test]
    fn the_grid_puts_the_current_values_first_once() {
        let current = VoteSettings { k: 5, power: 4, min_similarity: 0.35, lexical_weight: 0.2, ..VoteSettings::default() };
        let c = Grid::default().candidates(&current);
        assert_eq!(c.len(), 1000, "5 k x 4 powers x 10 floors x 5 weights; the current values are on the grid");
        assert!(same_values(&c[0], &current));
        assert_eq!(c.iter().filter(|x| same_values(x, &current)).count(), 1);
        assert!(Grid::default().min_similarity.contains(&0.35));
    }
}
