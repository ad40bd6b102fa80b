//! The reports: the closing line, Markdown, the confusion and reliability
//! pictures (SVG), and the files they are written to.

use std::fmt::Write as _;
use std::path::Path;

use super::{EvalError, EvalReport};

/// The closing summary line.
pub fn total_line(r: &EvalReport) -> String {
    format!(
        "TOTAL exact={:.1}% in_scope_exact={:.1}% oos_recall={:.1}% valid={:.1}% p50_ms={:.0} p95_ms={:.0} examples_p50_ms={:.0} model_asked={}",
        r.exact_pct, r.in_scope_exact_pct, r.out_of_scope_recall_pct, r.valid_pct, r.latency_p50_ms, r.latency_p95_ms, r.examples_p50_ms, r.model_asked
    )
}

/// The Markdown report.
pub fn markdown(r: &EvalReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Routing evaluation\n\nbackend `{}`, model `{}`, {} messages\n", r.backend, r.model, r.rows);
    let _ = writeln!(s, "| metric | value |\n|---|---|");
    let _ = writeln!(s, "| exact routing (action and target) | {:.1}% |", r.exact_pct);
    for (src, v) in &r.exact_by_source {
        let _ = writeln!(s, "| exact routing, {src} rows | {v:.1}% |");
    }
    let _ = writeln!(s, "| exact routing, in-scope rows | {:.1}% |", r.in_scope_exact_pct);
    let _ = writeln!(
        s,
        "| out-of-scope recall ({} rows expected at default_fallback) | {:.1}% |",
        r.out_of_scope_rows, r.out_of_scope_recall_pct
    );
    let _ = writeln!(s, "| schema-valid outputs | {:.1}% |", r.valid_pct);
    let _ = writeln!(s, "| refusals | {} |", r.refusals);
    let _ = writeln!(s, "| latency p50 / p95 | {:.0} / {:.0} ms |", r.latency_p50_ms, r.latency_p95_ms);
    let _ = writeln!(s, "| decided by the examples: p50 / p95 | {:.1} / {:.1} ms |", r.examples_p50_ms, r.examples_p95_ms);
    let _ = writeln!(s, "| model asked: messages, p50 / p95 | {}, {:.0} / {:.0} ms |\n", r.model_asked, r.model_p50_ms, r.model_p95_ms);
    let _ = writeln!(s, "| action | support | predicted | precision | recall |\n|---|---|---|---|---|");
    for (a, sc) in &r.per_action {
        let _ = writeln!(s, "| {a} | {} | {} | {:.1}% | {:.1}% |", sc.support, sc.predicted, sc.precision, sc.recall);
    }
    let _ = writeln!(s, "\n| intent | rows | exact |\n|---|---|---|");
    for (intent, (v, n)) in &r.exact_by_intent {
        let _ = writeln!(s, "| {intent} | {n} | {v:.1}% |");
    }
    let _ = writeln!(s, "\nConfusion (rows: expected, columns: decided)\n");
    let names: Vec<&String> = r.confusion.keys().collect();
    let _ = writeln!(s, "| | {} |\n|---|{}", names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(" | "), "---|".repeat(names.len()));
    for (e, row) in &r.confusion {
        let _ = writeln!(s, "| {e} | {} |", names.iter().map(|n| row[*n].to_string()).collect::<Vec<_>>().join(" | "));
    }
    let _ = writeln!(s, "\nConfusion by target (rows: expected, columns: decided)\n");
    let decided: Vec<&String> = {
        let mut d: Vec<&String> = r.confusion_targets.values().flat_map(|row| row.keys()).collect();
        d.sort();
        d.dedup();
        d
    };
    let _ =
        writeln!(s, "| | {} |\n|---|{}", decided.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(" | "), "---|".repeat(decided.len()));
    for (e, row) in &r.confusion_targets {
        let _ = writeln!(
            s,
            "| {e} | {} |",
            decided.iter().map(|n| row.get(*n).copied().unwrap_or(0).to_string()).collect::<Vec<_>>().join(" | ")
        );
    }
    let _ = writeln!(s, "\nReliability: the decision's confidence (the model's when it decided, else the examples' vote) against exact routing; expected calibration error {:.3}\n", r.calibration_error);
    let _ = writeln!(s, "| confidence | rows | mean confidence | accuracy |\n|---|---|---|---|");
    for b in r.reliability.iter().filter(|b| b.rows > 0) {
        let _ = writeln!(s, "| {:.1}–{:.1} | {} | {:.3} | {:.3} |", b.from, b.from + 0.1, b.rows, b.mean_confidence, b.accuracy);
    }
    let _ = writeln!(s, "\n![reliability](reliability.svg)");
    let _ = writeln!(s, "\nRules fired: {}", r.rules_fired.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "));
    let _ = writeln!(s, "\n![confusion matrix](confusion.svg)");
    s
}

/// The confusion matrix as an SVG heat map.
pub fn confusion_svg(r: &EvalReport) -> String {
    confusion_svg_titled(r, "Confusion")
}

/// The confusion matrix as an SVG heat map, its title starting with `title`.
pub fn confusion_svg_titled(r: &EvalReport, title: &str) -> String {
    let names: Vec<&String> = r.confusion.keys().collect();
    let cell = 90;
    let (left, top) = (150, 110);
    let size = names.len() * cell;
    let max = r.confusion.values().flat_map(|row| row.values()).copied().max().unwrap_or(1).max(1);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        left + size + 20,
        top + size + 40
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"20\" font-size=\"14\">{}: rows expected, columns decided ({} messages)</text>",
        10,
        title.replace('&', "&amp;").replace('<', "&lt;"),
        r.rows
    );
    for (j, n) in names.iter().enumerate() {
        let x = left + j * cell + cell / 2;
        let _ = writeln!(s, "<text x=\"{x}\" y=\"{}\" text-anchor=\"end\" transform=\"rotate(-35 {x} {})\">{n}</text>", top - 8, top - 8);
    }
    for (i, e) in names.iter().enumerate() {
        let y = top + i * cell;
        let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{e}</text>", left - 8, y + cell / 2 + 4);
        for (j, p) in names.iter().enumerate() {
            let v = r.confusion[*e][*p];
            let shade = 255 - (200 * v / max) as u32;
            let colour = if i == j { format!("rgb({shade},255,{shade})") } else { format!("rgb(255,{shade},{shade})") };
            let x = left + j * cell;
            let _ = writeln!(s, "<rect x=\"{x}\" y=\"{y}\" width=\"{cell}\" height=\"{cell}\" fill=\"{colour}\" stroke=\"#999\"/>");
            let _ =
                writeln!(s, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"16\">{v}</text>", x + cell / 2, y + cell / 2 + 5);
        }
    }
    s.push_str("</svg>\n");
    s
}

/// The reliability diagram: accuracy per confidence bin against the diagonal, bar width by rows.
pub fn reliability_svg(r: &EvalReport) -> String {
    let (left, top, size) = (60.0, 40.0, 400.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        left + size + 30.0,
        top + size + 50.0
    );
    let _ = writeln!(
        s,
        "<text x=\"10\" y=\"20\" font-size=\"14\">Reliability: accuracy per confidence bin (ECE {:.3})</text>",
        r.calibration_error
    );
    let _ = writeln!(s, "<rect x=\"{left}\" y=\"{top}\" width=\"{size}\" height=\"{size}\" fill=\"none\" stroke=\"#999\"/>");
    let _ = writeln!(
        s,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{top}\" stroke=\"#bbb\" stroke-dasharray=\"4\"/>",
        top + size,
        left + size
    );
    let most = r.reliability.iter().map(|b| b.rows).max().unwrap_or(1).max(1) as f64;
    for b in r.reliability.iter().filter(|b| b.rows > 0) {
        let w = size / 10.0;
        let x = left + b.from * size;
        let h = b.accuracy * size;
        let opacity = 0.25 + 0.75 * (b.rows as f64 / most);
        let _ = writeln!(s, "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"steelblue\" fill-opacity=\"{opacity:.2}\" stroke=\"white\"/>", x, top + size - h, w);
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{}</text>",
            x + w / 2.0,
            top + size - h - 4.0,
            b.rows
        );
    }
    for i in 0..=10 {
        let v = i as f64 / 10.0;
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{v:.1}</text>",
            left + v * size,
            top + size + 14.0
        );
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"10\">{v:.1}</text>",
            left - 4.0,
            top + size - v * size + 3.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">confidence (bar labels: rows)</text>",
        left + size / 2.0,
        top + size + 34.0
    );
    let _ = writeln!(
        s,
        "<text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">accuracy</text>",
        top + size / 2.0,
        top + size / 2.0
    );
    s.push_str("</svg>\n");
    s
}

/// Writes `report.md`, `report.json`, `confusion.svg` and `reliability.svg` into `dir`.
pub fn write_reports(r: &EvalReport, dir: &Path) -> Result<(), EvalError> {
    let err = |p: &Path, source: std::io::Error| EvalError::Write { path: p.display().to_string(), source };
    std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
    let files = [
        ("report.md", markdown(r)),
        ("report.json", serde_json::to_string_pretty(r).expect("reports serialise")),
        ("confusion.svg", confusion_svg(r)),
        ("reliability.svg", reliability_svg(r)),
    ];
    for (name, body) in files {
        let path = dir.join(name);
        std::fs::write(&path, body).map_err(|e| err(&path, e))?;
    }
    Ok(())
}
