//! Decoding speed with the real model, printed as a table (not criterion:
//! each measurement is seconds long). Run on an idle machine:
//!
//! ```sh
//! cargo bench --bench decode                     # writes bench-out/decode.json
//! cargo bench --features anchors --bench decode  # and candle-transformers beside it
//! ```
//!
//! (a) tokens per second, unconstrained vs constrained, on the same prompt,
//!     beside candle-transformers' quantized llama on the same weights (with
//!     `--features anchors`);
//! (b) per-message latency and validity for the 8 seed messages with the
//!     seed's support schema, prompt prefix cached, beside llama.cpp's JSON-
//!     schema mode (same GGUF, 2 threads).
//!
//! llama.cpp runs first, in the same run, from its venv (`STRICTLY_BENCH_VENV`,
//! else `.venv-bench`; `bash benches/llamacpp/setup.sh` makes it); a run that
//! succeeds is kept in `benches/llamacpp/last-run.json`. When it cannot run
//! (no venv) or dies (exit code or signal, with the tail of its output), the
//! bench says so, and the last recorded run is shown marked OLD, with its date.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use strictly::backend::local::LocalBackend;
use strictly::backend::SchemaSpec;
use strictly::chat::{self, ChatMessage, Role};
use strictly::decode::DecodeOptions;
use strictly::model::local::{LoadOptions, LocalModel, Requantize};
use strictly::schema::validator;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap()
}

/// A system and a user message in the model's chat template, as token ids.
fn render(model: &LocalModel, system: &str, user: &str) -> Vec<u32> {
    let messages = [ChatMessage { role: Role::System, content: system.into() }, ChatMessage { role: Role::User, content: user.into() }];
    chat::render(model.tokenizer(), &messages).unwrap().ids
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Greedy decoding with no mask: ms per token after a prefill.
fn unconstrained_ms_per_token(model: &LocalModel, prompt: &[u32], n: usize) -> f64 {
    let mut session = model.session();
    let mut logits = session.feed(prompt).unwrap();
    let eos = model.tokenizer().eos();
    let t0 = Instant::now();
    for _ in 0..n {
        let next = logits
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i as u32) != eos)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i as u32)
            .unwrap();
        logits = session.feed(&[next]).unwrap();
    }
    t0.elapsed().as_secs_f64() * 1e3 / n as f64
}

/// llama.cpp's plain-decode prompt (`PLAIN_PROMPT` in benches/llamacpp/bench.py).
const PLAIN_SYSTEM: &str = "You are a helpful assistant.";
const PLAIN_USER: &str = "Write a detailed, step-by-step guide for a customer who wants to return a broken kettle bought online: what to check first, how to contact support, how to pack the item, and what happens with the refund.";

/// The same measurement on candle-transformers' quantized llama (the
/// implementation `strictly::model` replaced), loaded from the same file. It is an anchor,
/// built with `--features anchors`.
#[cfg(feature = "anchors")]
fn reference_ms_per_token(path: &Path, prompt: &[u32], n: usize) -> f64 {
    use candle_core::quantized::gguf_file;
    use candle_core::{Device, Tensor};
    use candle_transformers::models::quantized_llama::ModelWeights;
    let mut file = std::fs::File::open(path).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut model = ModelWeights::from_gguf(content, &mut file, &Device::Cpu).unwrap();
    let run = |model: &mut ModelWeights, ids: &[u32], pos: usize| -> Vec<f32> {
        let input = Tensor::new(ids, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        model.forward(&input, pos).unwrap().squeeze(0).unwrap().to_vec1().unwrap()
    };
    let mut logits = run(&mut model, prompt, 0);
    let t0 = Instant::now();
    for i in 0..n {
        let next = logits.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i as u32).unwrap();
        logits = run(&mut model, &[next], prompt.len() + i);
    }
    t0.elapsed().as_secs_f64() * 1e3 / n as f64
}

/// The llama.cpp anchor in this run: its report, from this run or an old one, and if old, why.
struct Anchor {
    report: Option<serde_json::Value>,
    /// Why the anchor did not run in this run (the report, if any, is then an old one).
    failed: Option<String>,
}

/// Runs the llama.cpp anchor now, from `STRICTLY_BENCH_VENV` (else `.venv-bench`). A run that
/// fails says how (exit code or signal, and the tail of its output); the last recorded run is
/// then shown, marked as old with its date.
fn llama_cpp_anchor() -> Anchor {
    use std::os::unix::process::ExitStatusExt;
    let venv = std::env::var_os("STRICTLY_BENCH_VENV").map(std::path::PathBuf::from).unwrap_or_else(|| root().join(".venv-bench"));
    let python = venv.join("bin/python");
    let recorded = root().join("benches/llamacpp/last-run.json");
    let failed = if !python.exists() {
        Some(format!("no venv at {} (create it with `bash benches/llamacpp/setup.sh`)", venv.display()))
    } else {
        std::fs::create_dir_all(root().join("bench-out")).unwrap();
        let fresh = root().join("bench-out/llamacpp-run.json");
        let _ = std::fs::remove_file(&fresh);
        let log = root().join("bench-out/llamacpp-run.log");
        let status = std::process::Command::new(&python)
            .arg(root().join("benches/llamacpp/bench.py"))
            .arg("--json")
            .arg(&fresh)
            .stderr(std::fs::File::create(&log).unwrap())
            .status();
        match status {
            Err(e) => Some(format!("{} did not start: {e}", python.display())),
            Ok(s) if s.success() && fresh.exists() => {
                std::fs::copy(&fresh, &recorded).unwrap();
                None
            }
            Ok(s) => {
                let how = match (s.code(), s.signal()) {
                    (_, Some(4)) => {
                        "signal 4 (SIGILL: an instruction this CPU or kernel does not allow; `bash benches/llamacpp/setup.sh` rebuilds it)"
                            .to_string()
                    }
                    (_, Some(sig)) => format!("signal {sig}"),
                    (Some(code), _) => format!("exit code {code}"),
                    _ => s.to_string(),
                };
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                Some(format!(
                    "bench.py died with {how}; the last lines of {}:\n{}",
                    log.display(),
                    lines[lines.len().saturating_sub(15)..].join("\n")
                ))
            }
        }
    };
    let report = std::fs::read_to_string(recorded).ok().and_then(|s| serde_json::from_str(&s).ok());
    Anchor { report, failed }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!("## llama.cpp anchor\n");
    let anchor = llama_cpp_anchor();
    let llama_fresh = anchor.failed.is_none();
    // An old run's figures carry its date wherever they are printed.
    let old = match &anchor.failed {
        None => String::new(),
        Some(why) => {
            let date = anchor.report.as_ref().and_then(|r| r["machine"]["date_utc"].as_str()).unwrap_or("an unknown date").to_string();
            println!("llama.cpp did NOT run in this run: {why}\n");
            if anchor.report.is_some() {
                println!("Its figures below are an OLD run's, recorded {date} (benches/llamacpp/last-run.json), not this run's.\n");
            }
            format!(" (OLD run, {date})")
        }
    };
    let llama = anchor.report;
    let path = strictly::model::resolve::resolve(None).expect("model");
    let system = read("benches/seed/support_system_prompt.txt");
    let schema: serde_json::Value = serde_json::from_str(&read("grammars/support_classification.schema.json")).unwrap();
    let spec = SchemaSpec { name: "support".into(), schema: schema.clone() };
    let v = validator(&schema).unwrap();
    let messages: Vec<String> = read("benches/seed/support_messages.txt").lines().filter(|l| !l.is_empty()).map(String::from).collect();
    let mut report = serde_json::json!({ "threads": std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into()) });

    println!("## (a) tokens per second, same prompt\n");
    println!("| weights | load ms | unconstrained ms/token, llama.cpp's prompt | unconstrained ms/token | constrained ms/token | constrained / unconstrained tok/s | constrained + lookahead ms/token |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for requantize in [Requantize::Q4_0, Requantize::Q8_0, Requantize::Keep] {
        let t0 = Instant::now();
        let model = Arc::new(LocalModel::load(&path, &LoadOptions { requantize }).unwrap());
        let load_ms = t0.elapsed().as_secs_f64() * 1e3;
        let prompt = render(&model, &system, &messages[0]);
        let free = median((0..3).map(|_| unconstrained_ms_per_token(&model, &prompt, 64)).collect());
        // llama.cpp's plain-decode prompt and length (benches/llamacpp/bench.py), for the ratio.
        let plain_prompt = render(&model, PLAIN_SYSTEM, PLAIN_USER);
        let plain = median((0..3).map(|_| unconstrained_ms_per_token(&model, &plain_prompt, 128)).collect());
        // Constrained: per generated token, forward passes and masks included. Without
        // lookahead for the like-for-like ratio (one pass per sampled token, as unconstrained),
        // then with the default lookahead.
        let msgs =
            [ChatMessage { role: Role::System, content: system.clone() }, ChatMessage { role: Role::User, content: messages[0].clone() }];
        let per_token = |lookahead: usize| {
            let backend = LocalBackend::new(model.clone(), DecodeOptions { max_tokens: 64, lookahead, ..DecodeOptions::default() });
            let _ = backend.generate(&msgs, &spec).unwrap();
            median(
                (0..3)
                    .map(|_| {
                        let g = backend.generate(&msgs, &spec).unwrap();
                        g.timings.decode_ms / g.tokens.len() as f64
                    })
                    .collect(),
            )
        };
        let constrained = per_token(0);
        let lookahead = per_token(DecodeOptions::default().lookahead);
        println!(
            "| {requantize:?} | {load_ms:.0} | {plain:.2} | {free:.2} | {constrained:.2} | {:.2} | {lookahead:.2} |",
            free / constrained
        );
        report[format!("{requantize:?}")] = serde_json::json!({ "load_ms": load_ms, "plain_prompt_ms_per_token": plain, "unconstrained_ms_per_token": free, "constrained_ms_per_token": constrained, "constrained_lookahead_ms_per_token": lookahead });
        #[cfg(feature = "anchors")]
        if requantize == Requantize::Keep {
            let reference = median((0..3).map(|_| reference_ms_per_token(&path, &plain_prompt, 128)).collect());
            println!("| Keep, candle-transformers' quantized_llama | | {reference:.2} | | | | |");
            report["candle_transformers_keep_plain_ms_per_token"] = serde_json::json!(reference);
        }
        #[cfg(not(feature = "anchors"))]
        if requantize == Requantize::Keep {
            let why = "candle-transformers is an anchor: run with --features anchors";
            println!("| Keep, candle-transformers' quantized_llama: not run ({why}) | | | | | | |");
            report["candle_transformers_not_run_because"] = serde_json::json!(why);
        }
    }
    if let Some(theirs) = llama.as_ref().and_then(|l| l["plain"]["median_decode_ms_per_token"].as_f64()) {
        println!("| llama.cpp, the file's Q4_1{old} | | {theirs:.2} | | | | |");
        for w in ["Q4_0", "Q8_0"] {
            let ours = report[w]["plain_prompt_ms_per_token"].as_f64().unwrap_or(f64::NAN);
            println!("\nunconstrained, {w}: {:.2}x llama.cpp's ms/token on the same prompt{old}", ours / theirs);
        }
    }

    println!("\n## (a2) prompt prefill, default weights (Q8_0)\n");
    {
        let model = LocalModel::load(&path, &LoadOptions::default()).unwrap();
        // One whole prompt in one forward pass, from an empty cache; the median of 5.
        let prefill_ms = |ids: &[u32]| {
            median(
                (0..5)
                    .map(|_| {
                        let mut session = model.session();
                        let t0 = Instant::now();
                        session.feed(ids).unwrap();
                        t0.elapsed().as_secs_f64() * 1e3
                    })
                    .collect(),
            )
        };
        println!(
            "| prompt | tokens | strictly ms | strictly tokens/s | llama.cpp tokens/s (Q4_1 as shipped) | strictly / llama.cpp tokens/s |"
        );
        println!("|---|---:|---:|---:|---:|---:|");
        let theirs = llama.as_ref().and_then(|l| l["plain"]["median_prefill_tok_s"].as_f64());
        for (name, ids, anchor) in [
            ("llama.cpp's plain prompt", render(&model, PLAIN_SYSTEM, PLAIN_USER), theirs),
            ("the seed support prompt, first message", render(&model, &system, &messages[0]), None),
        ] {
            let ms = prefill_ms(&ids);
            let ours = ids.len() as f64 / (ms / 1e3);
            let (their_cell, ratio) = match anchor {
                Some(t) => (format!("{t:.0}{old}"), format!("{:.2}", ours / t)),
                None => ("not measured on this prompt".to_string(), String::new()),
            };
            println!("| {name} | {} | {ms:.1} | {ours:.0} | {their_cell} | {ratio} |", ids.len());
            report["prefill"][name] = serde_json::json!({ "tokens": ids.len(), "median_ms": ms, "tokens_per_s": ours });
        }
    }

    println!("\n## (b) the 8 seed messages, support schema, prompt cached, cap 256 tokens\n");
    let model = Arc::new(LocalModel::load(&path, &LoadOptions::default()).unwrap());
    let backend = LocalBackend::new(model, DecodeOptions { max_tokens: 256, ..DecodeOptions::default() });
    let msgs = |m: &str| [ChatMessage { role: Role::System, content: system.clone() }, ChatMessage { role: Role::User, content: m.into() }];
    let _ = backend.generate(&msgs("Hello, I have a question."), &spec).unwrap();
    println!("| message | strictly ms | tokens (forced) | valid | llama.cpp ms{old} | llama.cpp valid |");
    println!("|---|---:|---:|---|---:|---|");
    let (mut ours, mut theirs, mut valid) = (Vec::new(), Vec::new(), 0);
    let mut rows = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let t0 = Instant::now();
        let g = backend.generate(&msgs(m), &spec).unwrap();
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        let ok = serde_json::from_str::<serde_json::Value>(&g.text).is_ok_and(|x| v.is_valid(&x));
        valid += ok as usize;
        ours.push(ms);
        let l = llama.as_ref().and_then(|l| l["support"]["messages"].get(i)).cloned().unwrap_or_default();
        let lms = l["latency_ms"].as_f64().unwrap_or(f64::NAN);
        theirs.push(lms);
        println!("| {m} | {ms:.0} | {} ({}) | {ok} | {lms:.0} | {} |", g.tokens.len(), g.forced_tokens(), l["valid"]);
        rows.push(serde_json::json!({ "message": m, "ms": ms, "tokens": g.tokens.len(), "forced": g.forced_tokens(), "valid": ok, "text": g.text }));
    }
    let (m_ours, m_theirs) = (median(ours), median(theirs));
    let llama_valid = llama.as_ref().and_then(|l| l["support"]["valid_count"].as_u64()).unwrap_or(0);
    println!("\nmedian per message: strictly {m_ours:.0} ms, llama.cpp{old} {m_theirs:.0} ms ({:.2}x faster); valid {valid}/8 vs {llama_valid}/8", m_theirs / m_ours);
    if let Some(l) = &llama {
        println!(
            "llama.cpp plain decode on its own run{old}: {:.2} ms/token",
            l["plain"]["median_decode_ms_per_token"].as_f64().unwrap_or(f64::NAN)
        );
    }
    report["llama_cpp_from_this_run"] = serde_json::json!(llama_fresh);
    report["llama_cpp_not_run_because"] = serde_json::json!(anchor.failed);
    report["seed_messages"] = serde_json::json!({ "rows": rows, "median_ms": m_ours, "llama_cpp_median_ms": m_theirs, "valid": valid, "llama_cpp_valid": llama_valid });
    report["peak_rss_mb"] = serde_json::json!(strictly::coverage::peak_rss_mb());
    std::fs::create_dir_all(root().join("bench-out")).unwrap();
    std::fs::write(root().join("bench-out/decode.json"), serde_json::to_string_pretty(&report).unwrap()).unwrap();
}
