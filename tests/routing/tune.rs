//! `strictly tune` with the real sentence encoder on the dev sets.
//!
//! - Values chosen by cross-validation on the even rows of `routing-dev.csv` and
//!   `routing-human-dev.csv` score, on the odd rows, within 1 point of the best candidate chosen
//!   on the odd rows themselves.
//! - The replayed decision is the router's: for a sample of rows, the replay at the config's own
//!   values and at the tuned values gives the route `Router::screen` + `conclude` gives
//!   (examples only, the encoder's one-message path against the replay's batches).
//! - The command never writes without `--write`; with it, only the `[vote]` values change and a
//!   backup is kept. Bad CSVs fail with a message that names the problem.

use crate::common;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use strictly::eval::Row;
use strictly::routing::{ExampleVote, Router, RoutingConfig, Target};
use strictly::tune::{cross_validate, read_labelled, Grid, Objective, Replay, TuneError};

fn dev_files() -> [PathBuf; 2] {
    let dir = common::shared().join("data/support");
    [dir.join("routing-dev.csv"), dir.join("routing-human-dev.csv")]
}

/// Both dev files, and each row's position parity within its own file.
struct Dev {
    cfg: RoutingConfig,
    rows: Vec<Row>,
    expected: Vec<Target>,
    even: Vec<bool>,
    vote: ExampleVote,
    replay: Replay,
}

/// Compared with the phrases once per test binary: the embeddings are the slow part.
fn dev() -> &'static Dev {
    static DEV: OnceLock<Dev> = OnceLock::new();
    DEV.get_or_init(|| {
        let cfg = RoutingConfig::load(common::example_config()).unwrap();
        let (mut rows, mut expected, mut even) = (Vec::new(), Vec::new(), Vec::new());
        for file in dev_files() {
            let (r, e) = read_labelled(&file, &cfg).unwrap();
            even.extend((0..r.len()).map(|i| i % 2 == 0));
            rows.extend(r);
            expected.extend(e);
        }
        let vote = ExampleVote::with_encoder(&cfg, common::encoder()).unwrap();
        let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
        let similarities = vote.similarities_of_many(&texts, |_| {}).unwrap();
        assert!(similarities.iter().all(|s| s.meaning.is_some()), "every message is compared by meaning");
        let replay = Replay::new(&cfg, vote.tally(), &texts, &similarities, &expected, Grid::default().candidates(&cfg.vote));
        Dev { cfg, rows, expected, even, vote, replay }
    })
}

#[test]
fn values_chosen_on_even_rows_are_near_the_best_on_odd_rows() {
    let d = dev();
    assert_eq!(d.rows.len(), 3594 + 1011);
    let (even, odd): (Vec<usize>, Vec<usize>) = (0..d.rows.len()).partition(|&i| d.even[i]);
    let objective = Objective::default();
    let tuning = cross_validate(&d.replay, &even, 5, 0, &objective).unwrap();
    let chosen = tuning.chosen.candidate;
    let on_odd = d.replay.metrics(chosen, &odd);
    let best_on_odd = d.replay.choose(&objective, &odd);
    let current_on_odd = d.replay.metrics(0, &odd);
    eprintln!(
        "chosen on even rows: {:?}\n  odd rows: exact {:.2} (current {:.2}; best chosen on odd {:.2}: {:?})",
        d.replay.candidates()[chosen],
        on_odd.exact,
        current_on_odd.exact,
        best_on_odd.metrics.exact,
        d.replay.candidates()[best_on_odd.candidate]
    );
    assert!(on_odd.exact >= best_on_odd.metrics.exact - 1.0, "{} against {}", on_odd.exact, best_on_odd.metrics.exact);
    // The folds are dealt by the seed: the same seed, the same result; each fold is held out once.
    let again = cross_validate(&d.replay, &even, 5, 0, &objective).unwrap();
    assert_eq!(again.chosen.candidate, chosen);
    assert_eq!(again.held_out, tuning.held_out);
    assert_eq!(tuning.folds.iter().map(|f| f.rows).sum::<usize>(), even.len());
    assert!(odd.iter().all(|&r| tuning.held_out[r].is_none()), "odd rows take no part");
}

/// The replay's decision is the router's, at the config's values and at other values.
#[test]
fn the_replay_decides_as_the_router_does() {
    let d = dev();
    let objective = Objective::default();
    let all: Vec<usize> = (0..d.rows.len()).collect();
    let tuned = d.replay.choose(&objective, &all).candidate;
    // A few candidates: the current values, the chosen ones, and two far from both.
    let picks = [0, tuned, 1, d.replay.candidates().len() - 1];
    for &c in &picks {
        let mut cfg = d.cfg.clone();
        cfg.vote = d.replay.candidates()[c].clone();
        let router = Router::builder(cfg).backend(strictly::backend::NoModel).encoder(common::encoder()).no_audit().build().unwrap();
        // 150 rows spread over both files.
        for r in (0..d.rows.len()).step_by(d.rows.len() / 150) {
            let text = &d.rows[r].text;
            let screened = router.screen(text);
            let (routed, _) = router.conclude(text, None, screened, None);
            assert_eq!(&routed.decision.target, d.replay.decision(c, r), "candidate {c}, row {} {text:?}", d.rows[r].id);
        }
    }
    // The vote's own tally agrees with a vote built from scratch with those values.
    assert_eq!(d.vote.tally().k(), d.cfg.vote.k);
    assert_eq!(d.expected.len(), d.rows.len());
}

/// A CSV of `n` rows spread over both dev files.
fn sample_csv(dir: &Path, n: usize) -> PathBuf {
    let mut out = String::from("id,source,text,intent,category,expected_action,expected_team,expected_agent\n");
    let mut wtr = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    for file in dev_files() {
        let mut rdr = csv::Reader::from_path(file).unwrap();
        let records: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
        for i in 0..n / 2 {
            wtr.write_record(&records[i * records.len() / (n / 2)]).unwrap();
        }
    }
    out.push_str(&String::from_utf8(wtr.into_inner().unwrap()).unwrap());
    let path = dir.join("sample.csv");
    std::fs::write(&path, out).unwrap();
    path
}

fn tune(args: &[&std::ffi::OsStr]) -> std::process::Output {
    common::strictly_command().arg("tune").args(args).output().unwrap()
}

/// The example config with poor `[vote]` values, so that tuning has something to change.
fn poor_config(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(common::example_config()).unwrap();
    let text = text
        .replace("\nk = 5\n", "\nk = 1\n")
        .replace("\npower = 4\n", "\npower = 1\n")
        .replace("\nmin_similarity = 0.35\n", "\nmin_similarity = 0\n")
        .replace("\nlexical_weight = 0.2\n", "\nlexical_weight = 0.5\n");
    let cfg = RoutingConfig::from_toml_str(&text).unwrap();
    assert_eq!((cfg.vote.k, cfg.vote.power, cfg.vote.min_similarity, cfg.vote.lexical_weight), (1, 1, 0.0, 0.5));
    let path = dir.join("routing.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn nothing_is_written_without_write_and_write_keeps_a_backup() {
    let dir = common::temp_dir("tune", "write");
    let csv = sample_csv(&dir, 400);
    let config = poor_config(&dir);
    let before = std::fs::read(&config).unwrap();
    let out = dir.join("out");
    let o = tune(&[csv.as_os_str(), "--config".as_ref(), config.as_os_str(), "--out".as_ref(), out.as_os_str()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("bound on all rows: oos_recall >= current - 2"), "{stdout}");
    assert_eq!(std::fs::read(&config).unwrap(), before, "the config is unchanged, byte for byte");
    assert!(!dir.join("routing.toml.bak").exists());
    for f in ["report.md", "report.json", "patch.toml"] {
        assert!(out.join(f).exists(), "{f}");
    }
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["tuning"]["better"], true, "{stdout}");
    let chosen = &report["chosen"];
    let patch: toml::Table = toml::from_str(&std::fs::read_to_string(out.join("patch.toml")).unwrap()).unwrap();
    assert_eq!(patch["vote"]["k"].as_integer(), chosen["k"].as_i64());

    let o = tune(&[csv.as_os_str(), "--config".as_ref(), config.as_os_str(), "--out".as_ref(), out.as_os_str(), "--write".as_ref()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(dir.join("routing.toml.bak")).unwrap(), before, "the backup is the old file, byte for byte");
    let after = std::fs::read_to_string(&config).unwrap();
    let cfg = RoutingConfig::from_toml_str(&after).unwrap();
    let got = (cfg.vote.k as i64, cfg.vote.power as i64, cfg.vote.min_similarity as f64, cfg.vote.lexical_weight as f64);
    let want = (
        chosen["k"].as_i64().unwrap(),
        chosen["power"].as_i64().unwrap(),
        chosen["min_similarity"].as_f64().unwrap(),
        chosen["lexical_weight"].as_f64().unwrap(),
    );
    assert_eq!(got.0, want.0);
    assert_eq!(got.1, want.1);
    assert!((got.2 - want.2).abs() < 1e-6 && (got.3 - want.3).abs() < 1e-6, "{got:?} {want:?}");
    // Only [vote] value lines changed; every comment and every other line is as it was.
    let old = String::from_utf8(before).unwrap();
    let changed: Vec<(&str, &str)> = old.lines().zip(after.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(old.lines().count(), after.lines().count());
    assert!(!changed.is_empty() && changed.len() <= 4, "{changed:?}");
    assert!(
        changed.iter().all(|(a, _)| ["k =", "power =", "min_similarity =", "lexical_weight ="].iter().any(|k| a.starts_with(k))),
        "{changed:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_csvs_give_clear_errors() {
    let dir = common::temp_dir("tune", "bad");
    let cfg = RoutingConfig::load(common::example_config()).unwrap();
    let header = "id,source,text,intent,category,expected_action,expected_team,expected_agent\n";
    let cases = [
        ("empty.csv", String::new(), "has no labelled rows"),
        ("header.csv", header.to_string(), "has no labelled rows"),
        ("columns.csv", "id,source,text\n1,x,hello\n".to_string(), "has no column `expected_action`"),
        (
            "team.csv",
            format!("{header}a,x,my bill,,,handoff_team,123,\n"),
            "line 2 (id `a`): expected_team `123` is not a team of the config",
        ),
        (
            "agent.csv",
            format!("{header}a,x,hi,,,answer,,\nb,x,a person please,,,handoff_agent,,boss@company.com\n"),
            "line 3 (id `b`): expected_agent `boss@company.com`",
        ),
        ("action.csv", format!("{header}a,x,hi,,,escalate,,\n"), "expected_action `escalate` is not one of"),
        ("text.csv", format!("{header}a,x,  ,,,answer,,\n"), "the text is empty"),
    ];
    for (name, text, why) in &cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let e = read_labelled(&path, &cfg).unwrap_err();
        assert!(e.to_string().contains(why), "{name}: {e}");
    }
    assert!(matches!(read_labelled(&dir.join("absent.csv"), &cfg), Err(TuneError::Read { .. })));
    // Through the command: exit code 2 and the message, before the encoder loads.
    let o = tune(&[
        dir.join("team.csv").as_os_str(),
        "--config".as_ref(),
        common::example_config().as_os_str(),
        "--out".as_ref(),
        dir.join("out").as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("expected_team `123` is not a team of the config (54515931, 98234710, 77120034)"), "{stderr}");
    assert!(!dir.join("out").exists(), "nothing is written on a bad CSV");
    let o = tune(&[dir.join("team.csv").as_os_str(), "--objective".as_ref(), "max speed".as_ref()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown metric `speed`"));
    let _ = std::fs::remove_dir_all(dir);
}
