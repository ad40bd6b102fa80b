//! Our transformer (fused projections, grouped attention, KV cache written in place, quantized
//! embeddings) against llama.cpp, the GGUF format's own implementation, on the same weights
//! and the same token ids: llama.cpp's logits come from llama-cpp-python in the anchor venv
//! (`benches/llamacpp/logits.py`), a separate C++ code base.
//!
//! The two cannot agree to the last bit: llama.cpp keeps its KV cache in f16 and picks its own
//! matmul kernels, so its logits move by a few hundredths of their scale. What must hold is
//! that, after every position, one token at a time and in batches, the logits agree to that
//! precision and both implementations rank the same token first wherever the choice is not a
//! near-tie.

use crate::{common, llamacpp};
use common::relative_gap;

use strictly::chat::{self, ChatMessage, Role};
use strictly::model::local::{LoadOptions, LocalModel, Requantize};

/// The best token and its lead over the second, in logits.
fn top(logits: &[f32]) -> (usize, f32) {
    let (mut best, mut second) = ((0, f32::NEG_INFINITY), f32::NEG_INFINITY);
    for (i, &x) in logits.iter().enumerate() {
        if x > best.1 {
            second = best.1;
            best = (i, x);
        } else if x > second {
            second = x;
        }
    }
    (best.0, best.1 - second)
}

/// The bounds. Measured on this prompt: gaps of 0.017 to 0.050 of the logit scale, one token at
/// a time and batched, and the same top token everywhere but at one near-tie (leads of 0.02 and
/// 0.15). A wrong rotary embedding, norm or weight layout moves the logits by far more.
const GAP: f32 = 0.08;
const LEAD: f32 = 0.5;

#[test]
fn logits_match_llama_cpp_on_the_same_gguf() {
    let path = common::model_path();
    let ours = LocalModel::load(&path, &LoadOptions { requantize: Requantize::Keep }).unwrap();
    let messages = [
        ChatMessage { role: Role::System, content: "You route support messages.".into() },
        ChatMessage { role: Role::User, content: "My package never arrived, I want to return it".into() },
    ];
    let prompt = chat::render(ours.tokenizer(), &messages).unwrap();
    let ids = &prompt.ids[..32.min(prompt.ids.len())];
    let split = ids.len() / 2;

    let python = llamacpp::venv_python(&path);
    let out = common::temp_dir("llamacpp", "logits").join("logits.f32");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/llamacpp/logits.py");
    let ran = std::process::Command::new(python)
        .arg(script)
        .arg(&path)
        .arg(serde_json::to_string(ids).unwrap())
        .arg(split.to_string())
        .arg(&out)
        .output()
        .unwrap();
    assert!(ran.status.success(), "logits.py failed ({}):\n{}", llamacpp::describe_exit(ran.status), String::from_utf8_lossy(&ran.stderr));
    let bytes = std::fs::read(&out).unwrap();
    let floats: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    // One row per position, then one per batch; our logits must be as long (checked below).
    let vocab = floats.len() / (ids.len() + 2);
    assert_eq!(floats.len(), (ids.len() + 2) * vocab, "{} floats for {} rows", floats.len(), ids.len() + 2);
    let rows: Vec<&[f32]> = floats.chunks_exact(vocab).collect();

    // (what, gap, our top token and lead, llama.cpp's top token and lead)
    let mut seen = Vec::new();
    let mut session = ours.session();
    for (i, row) in rows[..ids.len()].iter().enumerate() {
        let logits = session.feed(&ids[i..i + 1]).unwrap();
        seen.push((format!("one token at a time, after position {i}"), relative_gap(&logits, row), top(&logits), top(row)));
    }
    let mut session = ours.session();
    for (k, (start, end)) in [(0, split), (split, ids.len())].into_iter().enumerate() {
        let logits = session.feed(&ids[start..end]).unwrap();
        seen.push((
            format!("batched, after position {}", end - 1),
            relative_gap(&logits, rows[ids.len() + k]),
            top(&logits),
            top(rows[ids.len() + k]),
        ));
    }
    for (what, gap, ours, theirs) in &seen {
        eprintln!("{what}: gap {gap:.4}, top {} (+{:.2}) and {} (+{:.2})", ours.0, ours.1, theirs.0, theirs.1);
    }
    let worst = seen.iter().fold(0f32, |m, s| m.max(s.1));
    for (what, gap, (ta, lead_a), (tb, lead_b)) in &seen {
        assert!(*gap < GAP, "{what}: the logits differ by {gap} of their scale");
        // Where one side leads by more than LEAD, the other must rank the same token first.
        assert!(ta == tb || lead_a.min(*lead_b) < LEAD, "{what}: ours ranks {ta} first (by {lead_a}), llama.cpp {tb} (by {lead_b})");
    }
    eprintln!("largest gap to llama.cpp over {} positions and 2 batches: {worst:.4} of the logit scale", ids.len());
}
