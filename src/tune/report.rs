//! What `strictly tune` hands the operator: a report (Markdown and JSON), a TOML patch of the
//! `[vote]` table, and, when asked, the patch applied to the config with a backup beside it.
//!
//! The config is edited line by line inside its `[vote]` table, so every comment and every
//! other line stays as it was; the result is parsed again and must equal the old config with
//! only the tuned values changed, or nothing is written.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::replay::{Metrics, Replay};
use super::{TuneError, Tuning};
use crate::eval::Row;
use crate::routing::{RoutingConfig, Target, VoteSettings};

/// A route as the eval reports write it: `team:ID`, `agent:EMAIL`, `none` (the bot answers),
/// `default` (default routing).
pub fn route_label(t: &Target) -> String {
    match t {
        Target::None => "none".into(),
        Target::Agent(a) => format!("agent:{a}"),
        Target::Team(id) => format!("team:{id}"),
        Target::DefaultRouting => "default".into(),
    }
}

/// The four tuned values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Values {
    /// `[vote] k`.
    pub k: usize,
    /// `[vote] power`.
    pub power: i32,
    /// `[vote] min_similarity`.
    pub min_similarity: f32,
    /// `[vote] lexical_weight`.
    pub lexical_weight: f32,
}

impl From<&VoteSettings> for Values {
    fn from(v: &VoteSettings) -> Self {
        Values { k: v.k, power: v.power, min_similarity: v.min_similarity, lexical_weight: v.lexical_weight }
    }
}

impl Values {
    fn cells(&self) -> String {
        format!("{} | {} | {} | {}", self.k, self.power, self.min_similarity, self.lexical_weight)
    }

    fn pairs(&self) -> [(&'static str, String); 4] {
        [
            ("k", self.k.to_string()),
            ("power", self.power.to_string()),
            ("min_similarity", self.min_similarity.to_string()),
            ("lexical_weight", self.lexical_weight.to_string()),
        ]
    }
}

/// One route's precision and recall, held out, for the current and the tuned values.
#[derive(Debug, Clone, Serialize)]
pub struct RouteLine {
    /// The route ([`route_label`]).
    pub route: String,
    /// Rows labelled with it.
    pub rows: usize,
    /// `(precision, recall)` in percent with the current values.
    pub current: (f64, f64),
    /// `(precision, recall)` in percent with the tuned values (held out).
    pub tuned: (f64, f64),
}

/// A row that both the current and the tuned values route wrong.
#[derive(Debug, Clone, Serialize)]
pub struct WrongRow {
    /// The row's id.
    pub id: String,
    /// The message.
    pub text: String,
    /// The labelled route.
    pub expected: String,
    /// The current values' route.
    pub current: String,
    /// The tuned values' route (held out).
    pub tuned: String,
}

/// The report of one tuning run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The labelled CSV.
    pub csv: String,
    /// The routing config.
    pub config: String,
    /// Whether phrases were matched by meaning (with the encoder) as well as words.
    pub by_meaning: bool,
    /// Seconds spent comparing messages with phrases (the encoder), and replaying the grid.
    pub seconds: (f64, f64),
    /// Candidates tried.
    pub candidates: usize,
    /// The current values.
    pub current: Values,
    /// The values chosen on all rows.
    pub chosen: Values,
    /// The chosen values' figures on all rows (in sample), and the current ones'.
    pub in_sample: (Metrics, Metrics),
    /// The cross-validation.
    pub tuning: Tuning,
    /// Each fold's choice, as values.
    pub fold_values: Vec<Values>,
    /// Per route, held out.
    pub routes: Vec<RouteLine>,
    /// The best candidates on all rows: values, figures, points by which the bounds are broken.
    pub top: Vec<(Values, Metrics, f64)>,
    /// Rows the tuned values get right and the current ones wrong, and the reverse.
    pub fixed_broken: (usize, usize),
    /// Rows wrong with both.
    pub still_wrong: Vec<WrongRow>,
}

impl Report {
    /// Gathers the report; `rows` are the replay's rows, in order.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        csv: &str,
        config: &str,
        by_meaning: bool,
        seconds: (f64, f64),
        rows: &[Row],
        replay: &Replay,
        tuning: Tuning,
        top: usize,
    ) -> Report {
        let values = |i: usize| Values::from(&replay.candidates()[i]);
        let tuned_of = |r: usize| tuning.held_out[r].unwrap_or(0);
        let routes = replay
            .routes()
            .iter()
            .map(|route| {
                let pr = |pick: &dyn Fn(usize) -> usize| {
                    let (mut support, mut predicted, mut hits) = (0, 0, 0);
                    for &r in &tuning.rows {
                        let (expected, decided) = (replay.expected(r) == route, replay.decision(pick(r), r) == route);
                        support += expected as usize;
                        predicted += decided as usize;
                        hits += (expected && decided) as usize;
                    }
                    let pct = |a: usize, b: usize| if b == 0 { 0.0 } else { 100.0 * a as f64 / b as f64 };
                    (support, pct(hits, predicted), pct(hits, support))
                };
                let (rows, cp, cr) = pr(&|_| 0);
                let (_, tp, tr) = pr(&tuned_of);
                RouteLine { route: route_label(route), rows, current: (cp, cr), tuned: (tp, tr) }
            })
            .collect();
        let objective: super::Objective = tuning.objective.parse().expect("the tuning's objective parses back");
        let top = replay.ranking(&objective, &tuning.rows).into_iter().take(top).map(|(i, m, broken)| (values(i), m, broken)).collect();
        let (mut fixed, mut broken, mut still_wrong) = (0, 0, Vec::new());
        for &r in &tuning.rows {
            let (now, then) = (replay.exact(0, r), replay.exact(tuned_of(r), r));
            fixed += (!now && then) as usize;
            broken += (now && !then) as usize;
            if !now && !then {
                still_wrong.push(WrongRow {
                    id: rows[r].id.clone(),
                    text: rows[r].text.clone(),
                    expected: route_label(replay.expected(r)),
                    current: route_label(replay.decision(0, r)),
                    tuned: route_label(replay.decision(tuned_of(r), r)),
                });
            }
        }
        Report {
            csv: csv.into(),
            config: config.into(),
            by_meaning,
            seconds,
            candidates: replay.candidates().len(),
            current: values(0),
            chosen: values(tuning.chosen.candidate),
            in_sample: (tuning.chosen.metrics, replay.metrics(0, &tuning.rows)),
            fold_values: tuning.folds.iter().map(|f| values(f.choice.candidate)).collect(),
            routes,
            top,
            fixed_broken: (fixed, broken),
            still_wrong,
            tuning,
        }
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.1}"))
}

fn figures(m: &Metrics) -> String {
    format!("{:.1} | {:.1} | {} | {:.1}", m.exact, m.in_scope_exact, opt(m.oos_recall), m.wrong_route)
}

/// The report as Markdown; at most `wrong` of the rows that stay wrong are listed.
pub fn markdown(r: &Report, wrong: usize) -> String {
    let t = &r.tuning;
    let mut s = String::new();
    let _ = writeln!(s, "# strictly tune: {}\n", r.csv);
    let _ = writeln!(
        s,
        "{} rows, {}-fold cross-validation (seed {}), {} candidates, phrases matched by {}. Config: `{}`.\n",
        t.rows.len(),
        t.folds.len(),
        t.seed,
        r.candidates,
        if r.by_meaning { "meaning and words" } else { "words only" },
        r.config
    );
    let _ = writeln!(s, "Comparing messages with phrases: {:.1} s; replaying the grid: {:.1} s.\n", r.seconds.0, r.seconds.1);
    let _ = writeln!(s, "Objective: `{}`. Bounds on all rows:", t.objective);
    for (c, v) in &t.chosen.bounds {
        let _ = writeln!(s, "- `{c}`: {v:.2}");
    }
    let _ = writeln!(s, "\n## Result\n\n| values | k | power | min_similarity | lexical_weight |\n|---|---|---|---|---|");
    let _ = writeln!(s, "| current | {} |\n| chosen | {} |\n", r.current.cells(), r.chosen.cells());
    let _ = writeln!(s, "| figures (%) | exact | in-scope exact | out-of-scope recall | wrong route |\n|---|---|---|---|---|");
    let _ = writeln!(s, "| current, all rows | {} |", figures(&r.in_sample.1));
    let _ = writeln!(s, "| chosen, all rows (in sample) | {} |", figures(&r.in_sample.0));
    let _ = writeln!(s, "| current, held out | {} |", figures(&t.cv_current));
    let _ = writeln!(s, "| tuned, held out (cross-validated) | {} |\n", figures(&t.cv_tuned));
    let verdict = if t.chosen.candidate == 0 {
        "The current values are the best candidate: nothing to change.".to_string()
    } else if t.better {
        format!(
            "On the held-out folds the tuned values score {:.1} against {:.1} and keep the bounds: the patch is worth applying.",
            t.cv_tuned.get(objective_metric(t)).unwrap_or(0.0),
            t.cv_current.get(objective_metric(t)).unwrap_or(0.0)
        )
    } else {
        "On the held-out folds the tuned values do not beat the current ones within the bounds: keep the current values (`--write` will not apply the patch).".to_string()
    };
    let _ = writeln!(s, "{verdict}");
    if !t.chosen.feasible {
        let _ = writeln!(s, "\nNo candidate keeps every bound on all rows; the chosen one breaks them by the fewest points.");
    }
    let _ = writeln!(s, "\n## Per fold\n\nEach fold's values are chosen on the other folds, then scored on the fold (exact / out-of-scope recall / wrong route, %).\n");
    let _ = writeln!(s, "| fold | rows | k | power | min_similarity | lexical_weight | bounds kept | current | tuned |\n|---|---|---|---|---|---|---|---|---|");
    for (i, (f, v)) in t.folds.iter().zip(&r.fold_values).enumerate() {
        let short = |m: &Metrics| format!("{:.1} / {} / {:.1}", m.exact, opt(m.oos_recall), m.wrong_route);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            i + 1,
            f.rows,
            v.cells(),
            if f.choice.feasible { "yes" } else { "no" },
            short(&f.current),
            short(&f.tuned)
        );
    }
    let _ = writeln!(s, "\n## Per route, held out\n\n| route | rows | precision, current | recall, current | precision, tuned | recall, tuned |\n|---|---|---|---|---|---|");
    for l in &r.routes {
        let _ = writeln!(s, "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |", l.route, l.rows, l.current.0, l.current.1, l.tuned.0, l.tuned.1);
    }
    let _ = writeln!(s, "\n## Candidates, best {} on all rows\n\n| rank | k | power | min_similarity | lexical_weight | exact | in-scope exact | out-of-scope recall | wrong route | bounds broken by |\n|---|---|---|---|---|---|---|---|---|---|", r.top.len());
    for (i, (v, m, broken)) in r.top.iter().enumerate() {
        let _ = writeln!(s, "| {} | {} | {} | {broken:.1} |", i + 1, v.cells(), figures(m));
    }
    let (fixed, broken) = r.fixed_broken;
    let _ = writeln!(
        s,
        "\n## Messages that stay wrong\n\n{} rows are wrong with both the current and the tuned values (held out); tuning fixes {fixed} and breaks {broken}.\n",
        r.still_wrong.len()
    );
    let _ = writeln!(s, "| id | message | expected | current | tuned |\n|---|---|---|---|---|");
    for w in r.still_wrong.iter().take(wrong) {
        let text: String = w.text.chars().take(100).collect::<String>().replace('|', "\\|").replace('\n', " ");
        let _ = writeln!(s, "| {} | {} | {} | {} | {} |", w.id, text, w.expected, w.current, w.tuned);
    }
    if r.still_wrong.len() > wrong {
        let _ = writeln!(s, "\n({} more in report.json)", r.still_wrong.len() - wrong);
    }
    s
}

fn objective_metric(t: &Tuning) -> super::Metric {
    t.objective.parse::<super::Objective>().map(|o| o.metric).unwrap_or(super::Metric::Exact)
}

/// The report as pretty JSON.
pub fn to_json(r: &Report) -> String {
    serde_json::to_string_pretty(r).expect("the report serializes")
}

/// The `[vote]` patch for review, its comments saying where the values come from and
/// whether they are worth applying.
pub fn patch_toml(r: &Report) -> String {
    let t = &r.tuning;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# [vote] values chosen by `strictly tune` on {} ({} rows, {}-fold cross-validation, seed {}).",
        r.csv,
        t.rows.len(),
        t.folds.len(),
        t.seed
    );
    let _ = writeln!(s, "# Objective: {}", t.objective);
    let h = |m: &Metrics| format!("exact {:.1}, out-of-scope recall {}, wrong route {:.1}", m.exact, opt(m.oos_recall), m.wrong_route);
    let _ = writeln!(s, "# Held out, current: {}", h(&t.cv_current));
    let _ = writeln!(s, "# Held out, tuned:   {}", h(&t.cv_tuned));
    let _ = writeln!(
        s,
        "# Current values: k = {}, power = {}, min_similarity = {}, lexical_weight = {}",
        r.current.k, r.current.power, r.current.min_similarity, r.current.lexical_weight
    );
    if !t.better {
        let _ = writeln!(s, "# Not recommended: the tuned values do not beat the current ones on the held-out folds.");
    }
    let _ = writeln!(s, "[vote]");
    for (k, v) in r.chosen.pairs() {
        let _ = writeln!(s, "{k} = {v}");
    }
    s
}

/// Where [`apply_patch`] kept the old config.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The backup of the config as it was, byte for byte.
    pub backup: PathBuf,
}

/// Writes the report's chosen values into the config's `[vote]` table, in place, keeping
/// every other line (comments included); the old file is copied first to `CONFIG.bak` (or
/// `.bak.1`, `.bak.2`, ... when that exists). The edited text must parse to the old config
/// with only the four values changed, and load as a valid config, or nothing is written.
pub fn apply_patch(config: &Path, r: &Report) -> Result<Applied, TuneError> {
    let fail = |why: String, source: Option<Box<dyn std::error::Error + Send + Sync>>| TuneError::Write {
        message: format!("{}: {why}", config.display()),
        source,
    };
    let old = std::fs::read_to_string(config).map_err(|e| fail(e.to_string(), Some(e.into())))?;
    let pairs = r.chosen.pairs();
    let new = edit_vote_table(&old, &pairs);
    check_edit(&old, &new, &pairs).map_err(|why| fail(format!("cannot edit [vote] in place ({why}); apply patch.toml by hand"), None))?;
    RoutingConfig::from_toml_str(&new).map_err(|e| fail(format!("the patched config does not load: {e}"), Some(e.into())))?;
    let backup = (0..)
        .map(|i| {
            if i == 0 {
                PathBuf::from(format!("{}.bak", config.display()))
            } else {
                PathBuf::from(format!("{}.bak.{i}", config.display()))
            }
        })
        .find(|p| !p.exists())
        .expect("some backup name is free");
    std::fs::copy(config, &backup).map_err(|e| fail(format!("cannot keep a backup at {}: {e}", backup.display()), Some(e.into())))?;
    let tmp = PathBuf::from(format!("{}.tmp{}", config.display(), std::process::id()));
    std::fs::write(&tmp, &new).and_then(|_| std::fs::rename(&tmp, config)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e.to_string(), Some(e.into()))
    })?;
    Ok(Applied { backup })
}

/// Whether a line opens the table `[name]` (not an array of tables).
fn opens_table(line: &str, name: &str) -> bool {
    let t = line.trim();
    let t = t.split('#').next().unwrap_or("").trim();
    !t.starts_with("[[") && t.strip_prefix('[').and_then(|t| t.strip_suffix(']')).is_some_and(|inner| inner.trim() == name)
}

/// Sets `key = value` for each pair inside `[vote]`: an existing line keeps its indentation,
/// spacing and comment; a missing key goes after the table's last key; a missing table goes
/// at the end.
fn edit_vote_table(text: &str, pairs: &[(&'static str, String)]) -> String {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    let Some(header) = lines.iter().position(|l| opens_table(l, "vote")) else {
        let mut out = text.to_owned();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("\n[vote]\n");
        for (k, v) in pairs {
            let _ = writeln!(out, "{k} = {v}");
        }
        return out;
    };
    let end = lines[header + 1..].iter().position(|l| l.trim_start().starts_with('[')).map_or(lines.len(), |p| header + 1 + p);
    let mut missing: Vec<&(&str, String)> = pairs.iter().collect();
    for line in &mut lines[header + 1..end] {
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let Some((key, rest)) = body.split_once('=') else { continue };
        let key = key.trim();
        if let Some(pos) = missing.iter().position(|(k, _)| *k == key) {
            let (_, value) = missing.remove(pos);
            let indent = &line[..line.len() - body.len()];
            let lead = rest.len() - rest.trim_start().len();
            let old_len = rest[lead..].find(|c: char| c.is_whitespace() || c == '#').unwrap_or(rest.len() - lead);
            *line = format!("{indent}{}={}{value}{}", &body[..body.len() - rest.len() - 1], &rest[..lead], &rest[lead + old_len..]);
        }
    }
    let last_key = (header + 1..end)
        .rev()
        .find(|&i| {
            let body = lines[i].trim_start();
            !body.is_empty() && !body.starts_with('#')
        })
        .unwrap_or(header);
    let mut insert: String = missing.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    if !insert.is_empty() {
        if !lines[last_key].ends_with('\n') {
            insert.insert(0, '\n');
        }
        lines.insert(last_key + 1, insert);
    }
    lines.concat()
}

/// The edit changed exactly the four values: the old text with them set by the TOML parser
/// equals the new text as parsed.
fn check_edit(old: &str, new: &str, pairs: &[(&'static str, String)]) -> Result<(), String> {
    let mut expected: toml::Table = toml::from_str(old).map_err(|e| e.to_string())?;
    let got: toml::Table = toml::from_str(new).map_err(|e| e.to_string())?;
    let vote = expected.entry("vote").or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let vote = vote.as_table_mut().ok_or("`vote` is not a table")?;
    for (k, v) in pairs {
        let parsed: toml::Table = toml::from_str(&format!("x = {v}")).map_err(|e| e.to_string())?;
        let value = parsed.get("x").cloned().ok_or("the value does not parse")?;
        vote.insert((*k).to_owned(), value);
    }
    if expected == got {
        Ok(())
    } else {
        Err("the edited file does not parse to the config with the new values".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs() -> Vec<(&'static str, String)> {
        vec![("k", "7".into()), ("power", "2".into()), ("min_similarity", "0.4".into()), ("lexical_weight", "0.1".into())]
    }

    #[test]
    fn values_change_in_place_and_comments_stay() {
        let old = "a = 1\n# about the vote\n[vote]\nk = 5        # nearest\n  power=4\nshortlist = 3\n\n[[examples]]\nx = [1]\n";
        let new = edit_vote_table(old, &pairs());
        assert_eq!(
            new,
            "a = 1\n# about the vote\n[vote]\nk = 7        # nearest\n  power=2\nshortlist = 3\nmin_similarity = 0.4\nlexical_weight = 0.1\n\n[[examples]]\nx = [1]\n"
        );
        check_edit(old, &new, &pairs()).unwrap();
    }

    #[test]
    fn a_missing_table_is_added_and_odd_layouts_are_refused() {
        let old = "a = 1";
        let new = edit_vote_table(old, &pairs());
        assert_eq!(new, "a = 1\n\n[vote]\nk = 7\npower = 2\nmin_similarity = 0.4\nlexical_weight = 0.1\n");
        check_edit(old, &new, &pairs()).unwrap();
        // An inline table cannot take a second [vote]: the check catches what the line edit misses.
        let inline = "vote = { k = 5 }\n";
        assert!(check_edit(inline, &edit_vote_table(inline, &pairs()), &pairs()).is_err());
    }
}
