//! The A/B pictures: grouped bars, A beside B, for accuracy, latency and cost. Plain SVG
//! written here (no plotting dependency), like `strictly eval`'s pictures.

use std::fmt::Write as _;

use super::report::AbReport;

const A_COLOUR: &str = "steelblue";
const B_COLOUR: &str = "darkorange";

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Grouped bars: one group per metric, A's bar beside B's, each labelled with its value.
/// `scale` is the axis maximum shared by every group; `None` scales each group to its own
/// largest bar (for metrics in different units).
fn bars(title: &str, labels: (&str, &str), groups: &[(String, f64, f64)], scale: Option<f64>, unit: &str) -> String {
    let (left, top, height, group_w, bar_w) = (20.0, 70.0, 240.0, 150.0, 50.0);
    let width = left * 2.0 + group_w * groups.len() as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{:.0}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        top + height + 50.0
    );
    let _ = writeln!(s, "<text x=\"10\" y=\"20\" font-size=\"14\">{}</text>", esc(title));
    for (i, (label, colour)) in [(labels.0, A_COLOUR), (labels.1, B_COLOUR)].into_iter().enumerate() {
        let y = 38.0 + 16.0 * i as f64;
        let _ = writeln!(s, "<rect x=\"10\" y=\"{:.0}\" width=\"12\" height=\"12\" fill=\"{colour}\"/>", y - 10.0);
        let _ = writeln!(s, "<text x=\"28\" y=\"{y:.0}\">{}: {}</text>", if i == 0 { "A" } else { "B" }, esc(label));
    }
    let base = top + height;
    let _ = writeln!(s, "<line x1=\"{left}\" y1=\"{base}\" x2=\"{:.0}\" y2=\"{base}\" stroke=\"#999\"/>", width - left);
    for (g, (name, a, b)) in groups.iter().enumerate() {
        let max = scale.unwrap_or_else(|| a.max(*b)).max(f64::MIN_POSITIVE);
        let x0 = left + group_w * g as f64 + (group_w - 2.0 * bar_w) / 2.0;
        for (k, (v, colour)) in [(*a, A_COLOUR), (*b, B_COLOUR)].into_iter().enumerate() {
            let h = (v / max).clamp(0.0, 1.0) * (height - 20.0);
            let x = x0 + bar_w * k as f64;
            let _ =
                writeln!(s, "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{colour}\"/>", base - h, bar_w - 4.0);
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\">{}</text>",
                x + bar_w / 2.0 - 2.0,
                base - h - 4.0,
                fmt(v)
            );
        }
        let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>", x0 + bar_w, base + 16.0, esc(name));
    }
    let note = if scale.is_some() { unit.to_string() } else { format!("{unit}; each group on its own scale") };
    let _ = writeln!(s, "<text x=\"{left}\" y=\"{:.0}\" font-size=\"11\" fill=\"#555\">{}</text>", base + 36.0, esc(&note));
    s.push_str("</svg>\n");
    s
}

fn fmt(v: f64) -> String {
    if v == 0.0 || v.abs() >= 10.0 {
        format!("{v:.0}")
    } else if v.abs() >= 0.1 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}")
    }
}

/// Exact routing, in-scope exact routing, out-of-scope recall and schema-valid answers, in %.
pub fn accuracy(r: &AbReport) -> String {
    let (a, b) = (&r.a.eval, &r.b.eval);
    let groups = [
        ("exact".to_string(), a.exact_pct, b.exact_pct),
        ("in-scope exact".to_string(), a.in_scope_exact_pct, b.in_scope_exact_pct),
        ("out-of-scope recall".to_string(), a.out_of_scope_recall_pct, b.out_of_scope_recall_pct),
        ("schema-valid".to_string(), a.valid_pct, b.valid_pct),
    ];
    bars(&format!("Accuracy ({} messages)", r.rows), (&r.a.label, &r.b.label), &groups, Some(100.0), "percent")
}

/// Latency p50, p95 and p99.
pub fn latency(r: &AbReport) -> String {
    let (a, b) = (&r.a, &r.b);
    let groups = [
        ("p50".to_string(), a.eval.latency_p50_ms, b.eval.latency_p50_ms),
        ("p95".to_string(), a.eval.latency_p95_ms, b.eval.latency_p95_ms),
        ("p99".to_string(), a.latency_p99_ms, b.latency_p99_ms),
    ];
    let max = groups.iter().map(|(_, a, b)| a.max(*b)).fold(0.0, f64::max);
    bars("Latency per message", (&a.label, &b.label), &groups, Some(max), "milliseconds")
}

/// Tokens and cost per 1,000 messages.
pub fn cost(r: &AbReport) -> String {
    let (a, b) = (&r.a, &r.b);
    let groups = [
        ("prompt tokens".to_string(), a.prompt_tokens_per_1k, b.prompt_tokens_per_1k),
        ("output tokens".to_string(), a.completion_tokens_per_1k, b.completion_tokens_per_1k),
        ("cost (USD)".to_string(), a.cost_per_1k_usd.unwrap_or(0.0), b.cost_per_1k_usd.unwrap_or(0.0)),
    ];
    bars("Per 1,000 messages (cost 0: not priced)", (&a.label, &b.label), &groups, None, "tokens and US dollars")
}
