//! Decoding speed with the real model, printed as a table (not criterion:
//! each measurement is seconds long). Run on an idle machine:
//!
//! ```sh
//! cargo bench --bench decode            # writes bench-out/decode.json
//! ```
//!
//! (a) tokens per second, unconstrained vs constrained, on the same prompt;
//! (b) per-message latency and validity for the 8 seed messages with the
//!     seed's support schema, prompt prefix cached, beside llama.cpp's JSON-
//!     schema mode from `benches/llamacpp/last-run.json` (same GGUF, 2 threads).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use strictly::backend::local::LocalBackend;
use strictly::backend::SchemaSpec;
use strictly::chat::{self, ChatMessage, Role};
use strictly::coverage::validator;
use strictly::decode::DecodeOptions;
use strictly::model::local::{LoadOptions, LocalModel, Requantize};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap()
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

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let path = strictly::model::resolve::resolve(None).expect("model");
    let system = read("benches/seed/support_system_prompt.txt");
    let schema: serde_json::Value = serde_json::from_str(&read("grammars/support_classification.schema.json")).unwrap();
    let spec = SchemaSpec { name: "support".into(), schema: schema.clone() };
    let v = validator(&schema).unwrap();
    let messages: Vec<String> = read("benches/seed/support_messages.txt").lines().filter(|l| !l.is_empty()).map(String::from).collect();
    let llama = std::fs::read_to_string(root().join("benches/llamacpp/last-run.json")).ok().and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok());
    let mut report = serde_json::json!({ "threads": std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into()) });

    println!("## (a) tokens per second, same prompt\n");
    println!("| weights | load ms | unconstrained ms/token | constrained ms/token | constrained / unconstrained tok/s |");
    println!("|---|---:|---:|---:|---:|");
    for requantize in [Requantize::Q4_0, Requantize::Q8_0, Requantize::Keep] {
        let t0 = Instant::now();
        let model = Arc::new(LocalModel::load(&path, &LoadOptions { requantize }).unwrap());
        let load_ms = t0.elapsed().as_secs_f64() * 1e3;
        let prompt = chat::render(
            model.tokenizer(),
            &[ChatMessage { role: Role::System, content: system.clone() }, ChatMessage { role: Role::User, content: messages[0].clone() }],
        )
        .unwrap();
        let free = median((0..3).map(|_| unconstrained_ms_per_token(&model, &prompt.ids, 64)).collect());
        // Constrained: per generated token, forward passes and masks included.
        let backend = LocalBackend::new(model.clone(), DecodeOptions { max_tokens: 64, ..DecodeOptions::default() });
        let msgs = [ChatMessage { role: Role::System, content: system.clone() }, ChatMessage { role: Role::User, content: messages[0].clone() }];
        let _ = backend.generate(&msgs, &spec).unwrap();
        let constrained = median(
            (0..3)
                .map(|_| {
                    let g = backend.generate(&msgs, &spec).unwrap();
                    g.timings.decode_ms / g.tokens.len() as f64
                })
                .collect(),
        );
        println!("| {requantize:?} | {load_ms:.0} | {free:.2} | {constrained:.2} | {:.2} |", free / constrained);
        report[format!("{requantize:?}")] = serde_json::json!({ "load_ms": load_ms, "unconstrained_ms_per_token": free, "constrained_ms_per_token": constrained });
    }

    println!("\n## (b) the 8 seed messages, support schema, prompt cached, cap 256 tokens\n");
    let model = Arc::new(LocalModel::load(&path, &LoadOptions::default()).unwrap());
    let backend = LocalBackend::new(model, DecodeOptions { max_tokens: 256, ..DecodeOptions::default() });
    let msgs = |m: &str| [ChatMessage { role: Role::System, content: system.clone() }, ChatMessage { role: Role::User, content: m.into() }];
    let _ = backend.generate(&msgs("Hello, I have a question."), &spec).unwrap();
    println!("| message | strictly ms | tokens (forced) | valid | llama.cpp ms | llama.cpp valid |");
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
    println!("\nmedian per message: strictly {m_ours:.0} ms, llama.cpp {m_theirs:.0} ms ({:.2}x faster); valid {valid}/8 vs {llama_valid}/8", m_theirs / m_ours);
    if let Some(l) = &llama {
        println!("llama.cpp plain decode on its own run: {:.2} ms/token", l["plain"]["median_decode_ms_per_token"].as_f64().unwrap_or(f64::NAN));
    }
    report["seed_messages"] = serde_json::json!({ "rows": rows, "median_ms": m_ours, "llama_cpp_median_ms": m_theirs, "valid": valid, "llama_cpp_valid": llama_valid });
    report["peak_rss_mb"] = serde_json::json!(strictly::coverage::peak_rss_mb());
    std::fs::create_dir_all(root().join("bench-out")).unwrap();
    std::fs::write(root().join("bench-out/decode.json"), serde_json::to_string_pretty(&report).unwrap()).unwrap();
}
