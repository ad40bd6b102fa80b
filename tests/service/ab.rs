//! `strictly ab` end to end, the binary as a user runs it: the local model against the
//! examples alone on 7 rows of the shared routing CSVs (Bitext, CLINC150 out-of-scope,
//! banking77, CLINC150 in-scope). Every section of the report is there, its figures add up,
//! and a rerun resumes instead of routing again. Then the examples against llama.cpp's
//! server posing as OpenAI (llama-cpp-python, the OpenAI backend's compat mode).

use crate::{common, llamacpp};
use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes the test's inputs into `dir`: 7 rows picked evenly from each source of the shared
/// CSVs, and the example config without `decide_at`, so the model is asked about every
/// in-scope message (the example config lets a confident vote decide without it).
fn inputs(dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let data = common::shared().join("data/support");
    let mut picked = Vec::new();
    for (file, source, n) in [
        ("routing-dev.csv", "bitext", 3),
        ("routing-dev.csv", "clinc150", 2),
        ("routing-human-dev.csv", "banking77", 1),
        ("routing-human-dev.csv", "clinc150-inscope", 1),
    ] {
        let rows: Vec<_> = strictly::eval::read_rows(&data.join(file)).unwrap().into_iter().filter(|r| r.source == source).collect();
        picked.extend(strictly::eval::sample(rows, Some(n)));
    }
    let csv = dir.join("rows.csv");
    let mut w = csv::Writer::from_path(&csv).unwrap();
    w.write_record(["id", "source", "text", "intent", "category", "expected_action", "expected_team", "expected_agent"]).unwrap();
    for r in &picked {
        w.write_record([&r.id, &r.source, &r.text, &r.intent, &r.category, &r.expected_action, &r.expected_team, &r.expected_agent])
            .unwrap();
    }
    w.flush().unwrap();
    let example = std::fs::read_to_string(root().join("config/routing.example.toml")).unwrap();
    assert!(example.contains("\ndecide_at = 0.45\n"), "the example config changed: update this test");
    let config = dir.join("routing.toml");
    std::fs::write(&config, example.replace("\ndecide_at = 0.45\n", "\n")).unwrap();
    (csv, config)
}

/// Runs `strictly ab` and returns its stdout.
fn ab(out: &Path, extra: &[&str]) -> String {
    let dir = out.parent().unwrap();
    let (csv, config) = (dir.join("rows.csv"), dir.join("routing.toml"));
    let output = common::strictly_command()
        .current_dir(root())
        .arg("ab")
        .arg(&csv)
        .args(["--config", config.to_str().unwrap()])
        .args(["--max-tokens", "80", "--out", out.to_str().unwrap()])
        .args(extra)
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "strictly ab failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8 output")
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map(|s| s.lines().count()).unwrap_or(0)
}

fn rows_file(out: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("rows-"))
        .collect();
    assert_eq!(files.len(), 1, "one run file: {files:?}");
    files[0].clone()
}

/// Checks one side's figures against its own rows.
fn check_side(side: &Value, rows: usize) {
    let results = side["eval"]["results"].as_array().unwrap();
    assert_eq!(results.len(), rows);
    let correct = results.iter().filter(|r| r["exact"] == true).count();
    assert_eq!(side["correct"].as_u64().unwrap() as usize, correct);
    let pct = side["eval"]["exact_pct"].as_f64().unwrap();
    assert!((pct - 100.0 * correct as f64 / rows as f64).abs() < 1e-9, "{pct} vs {correct}/{rows}");
    // The confusion matrix holds every row once.
    let cells: u64 = side["eval"]["confusion"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|r| r.as_object().unwrap().values())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(cells as usize, rows);
    // Per-source accuracy, weighted by rows, gives the overall figure back.
    let by_source = side["eval"]["exact_by_source"].as_object().unwrap();
    let weighted: f64 = by_source
        .iter()
        .map(|(src, v)| v.as_f64().unwrap() * results.iter().filter(|r| r["source"] == src.as_str()).count() as f64)
        .sum::<f64>()
        / rows as f64;
    assert!((weighted - pct).abs() < 1e-9, "{weighted} vs {pct}");
    let errors: u64 = side["errors_by_kind"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(errors, side["errors"].as_u64().unwrap());
    assert!(errors as usize <= rows && side["schema_violations"].as_u64().unwrap() as usize <= rows);
    let (p50, p95, p99) = (
        side["eval"]["latency_p50_ms"].as_f64().unwrap(),
        side["eval"]["latency_p95_ms"].as_f64().unwrap(),
        side["latency_p99_ms"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p95 && p95 <= p99, "{p50} {p95} {p99}");
}

/// Checks every section of the report and that its figures add up; returns report.json and
/// report.md.
fn check_report(out: &Path, stdout: &str) -> (Value, String) {
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert_eq!(stdout.trim_end().lines().next(), md.lines().next(), "stdout starts with the report");
    for section in [
        "## Side by side",
        "| exact routing (action and target) |",
        "| out-of-scope recall (",
        "| schema violations |",
        "| refusals |",
        "| errors |",
        "| latency p50 / p95 / p99 |",
        "| tokens per 1,000 messages (prompt / output) |",
        "| cost per 1,000 messages |",
        "The two agree on",
        "## Paired test",
        "McNemar's exact test",
        "95% CI",
        "## Exact routing per source",
        "## Exact routing per intent",
        "## Errors by kind",
        "## Where they disagree",
        "## Pictures",
    ] {
        assert!(md.contains(section), "report.md lacks {section:?}:\n{md}");
    }
    for svg in ["confusion-a.svg", "confusion-b.svg", "accuracy.svg", "latency.svg", "cost.svg"] {
        let body = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(body.starts_with("<svg") && body.trim_end().ends_with("</svg>"), "{svg}");
    }

    let report: Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let rows = report["rows"].as_u64().unwrap() as usize;
    assert_eq!(rows, 7);
    check_side(&report["a"], rows);
    check_side(&report["b"], rows);
    for side in ["a", "b"] {
        assert_eq!(report[side]["eval"]["out_of_scope_rows"], 2);
        assert_eq!(report[side]["eval"]["exact_by_source"].as_object().unwrap().len(), 4);
    }

    // The paired table holds every row once, and its discordant cells are the disagreements
    // one side got right.
    let t = &report["paired"]["table"];
    let cell = |k: &str| t[k].as_u64().unwrap() as usize;
    assert_eq!(cell("both_right") + cell("a_only") + cell("b_only") + cell("both_wrong"), rows);
    assert_eq!(cell("both_right") + cell("a_only"), report["a"]["correct"].as_u64().unwrap() as usize);
    assert_eq!(cell("both_right") + cell("b_only"), report["b"]["correct"].as_u64().unwrap() as usize);
    let disagreements = report["disagreements"].as_array().unwrap();
    let right = |who: &str| disagreements.iter().filter(|d| d["right"] == who).count();
    assert_eq!((right("a"), right("b")), (cell("a_only"), cell("b_only")));
    let agreement = report["agreement_pct"].as_f64().unwrap();
    assert!((agreement - 100.0 * (rows - disagreements.len()) as f64 / rows as f64).abs() < 1e-9);
    let (a_results, b_results) = (report["a"]["eval"]["results"].as_array().unwrap(), report["b"]["eval"]["results"].as_array().unwrap());
    for d in disagreements {
        assert_ne!(d["a"], d["b"]);
        let i = a_results.iter().position(|r| r["id"] == d["id"]).unwrap();
        let (ra, rb) = (&a_results[i], &b_results[i]);
        assert_eq!(d["a"].as_str().unwrap(), format!("{} {}", ra["action"].as_str().unwrap(), ra["target"].as_str().unwrap()));
        assert_eq!(d["b"].as_str().unwrap(), format!("{} {}", rb["action"].as_str().unwrap(), rb["target"].as_str().unwrap()));
        let expected = if ra["exact"] == true {
            "a"
        } else if rb["exact"] == true {
            "b"
        } else {
            "neither"
        };
        assert_eq!(d["right"], expected);
    }
    let diff = report["paired"]["difference_pct"].as_f64().unwrap();
    let (lo, hi) = (report["paired"]["ci95_pct"][0].as_f64().unwrap(), report["paired"]["ci95_pct"][1].as_f64().unwrap());
    assert!(lo <= diff && diff <= hi, "{lo} {diff} {hi}");
    let p = report["paired"]["mcnemar_p"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));

    (report, md)
}

#[test]
fn local_against_examples_adds_up_and_resumes() {
    let dir = std::env::temp_dir().join(format!("strictly-ab-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    inputs(&dir);
    let out = dir.join("out");
    let stdout = ab(&out, &["--a", "local", "--b", "examples"]);
    let (report, md) = check_report(&out, &stdout);
    let rows = report["rows"].as_u64().unwrap() as usize;
    // The local side asked the model (about the in-scope rows at least) and counted its tokens.
    assert!(report["a"]["eval"]["model_asked"].as_u64().unwrap() >= 3, "{}", report["a"]["eval"]["model_asked"]);
    assert!(report["a"]["prompt_tokens_per_1k"].as_f64().unwrap() > 0.0);
    assert!(report["a"]["completion_tokens_per_1k"].as_f64().unwrap() > 0.0);
    // The examples never ask the model.
    assert_eq!(report["b"]["eval"]["model_asked"], 0);
    assert_eq!(report["b"]["prompt_tokens_per_1k"], 0.0);

    // Every finished row of both sides is in the run file, and each side audited each row.
    let run_file = rows_file(&out);
    assert_eq!(lines(&run_file), 2 * rows);
    let audits = (lines(&out.join("audit-a.jsonl")), lines(&out.join("audit-b.jsonl")));
    assert_eq!(audits, (rows, rows));

    // A rerun with the same inputs routes nothing (no new audit lines) and reports the same.
    let json_before = std::fs::read_to_string(out.join("report.json")).unwrap();
    ab(&out, &["--a", "local", "--b", "examples"]);
    assert_eq!((lines(&out.join("audit-a.jsonl")), lines(&out.join("audit-b.jsonl"))), audits, "a rerun routes nothing");
    assert_eq!(lines(&run_file), 2 * rows);
    assert_eq!(std::fs::read_to_string(out.join("report.md")).unwrap(), md);
    assert_eq!(std::fs::read_to_string(out.join("report.json")).unwrap(), json_before);

    // A run cut mid-line (the last row half written) redoes that row only.
    let text = std::fs::read_to_string(&run_file).unwrap();
    let last = text.trim_end().rfind('\n').unwrap() + 1;
    std::fs::write(&run_file, &text[..last + (text.len() - last) / 2]).unwrap();
    ab(&out, &["--a", "local", "--b", "examples"]);
    assert_eq!(lines(&out.join("audit-a.jsonl")) + lines(&out.join("audit-b.jsonl")), audits.0 + audits.1 + 1, "one row redone");
    assert_eq!(lines(&run_file), 2 * rows);

    // Other inputs (the sides swapped) start a run file of their own instead of mixing.
    ab(&out, &["--a", "examples", "--b", "examples"]);
    let runs = std::fs::read_dir(&out).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_str().unwrap().starts_with("rows-")).count();
    assert_eq!(runs, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The examples against llama.cpp's server posing as OpenAI (llama-cpp-python, compat wire
/// mode): the remote side asks its model about the in-scope rows, the report's figures add up,
/// its tokens are counted, and its failures (if any) are errors of a named kind. (The local
/// side's figures are checked above; the examples keep this run to one model.)
#[test]
fn examples_against_llamacpp_server_adds_up() {
    let server = llamacpp::start(&common::model_path());
    let dir = std::env::temp_dir().join(format!("strictly-ab-llamacpp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    inputs(&dir);
    let out = dir.join("out");
    let stdout = ab(
        &out,
        &[
            "--a",
            "examples",
            "--b",
            "openai",
            "--openai-mode",
            "compat",
            "--openai-base-url",
            &server.base_url,
            "--openai-model",
            "smollm2",
            "--concurrency",
            "2",
        ],
    );
    // Calls to a server that died would count as transport errors below: say that it died, and how.
    server.assert_alive();
    let (report, _) = check_report(&out, &stdout);
    let b = &report["b"];
    assert!(b["label"].as_str().unwrap().starts_with("openai"), "{}", b["label"]);
    let asked = b["eval"]["model_asked"].as_u64().unwrap();
    assert!(asked >= 3, "the server was asked about the in-scope rows: {asked}");
    let errors = b["errors"].as_u64().unwrap();
    if errors < asked {
        // Some calls came back with an answer, and llama.cpp reports their tokens.
        assert!(b["prompt_tokens_per_1k"].as_f64().unwrap() > 0.0, "{b}");
    }
    for (kind, _) in b["errors_by_kind"].as_object().unwrap() {
        assert_ne!(kind, "other", "every backend error has a kind");
    }
    // Violations are counted from the rows: no more than the rows the model was asked about.
    assert!(b["schema_violations"].as_u64().unwrap() <= asked);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
