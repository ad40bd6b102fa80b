//! The sentence encoder against sentence-transformers itself: token ids and embeddings that
//! the official Python library produced for the same model files
//! (`tests/data/encoder_reference.json`, made once by `benches/encoder/reference.py`).

use crate::common;
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    max_seq_length: usize,
    sentences: Vec<Sentence>,
}

#[derive(Deserialize)]
struct Sentence {
    text: String,
    ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn reference() -> Reference {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/encoder_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("reference file")).expect("reference parses")
}

#[test]
fn token_ids_match_the_reference_tokenizer() {
    let encoder = common::encoder();
    let reference = reference();
    assert_eq!(reference.max_seq_length, strictly::encoder::MAX_TOKENS);
    for s in &reference.sentences {
        assert_eq!(encoder.token_ids(&s.text).unwrap(), s.ids, "{:?}", s.text);
    }
}

#[test]
fn embeddings_match_sentence_transformers() {
    let encoder = common::encoder();
    let reference = reference();
    let texts: Vec<&str> = reference.sentences.iter().map(|s| s.text.as_str()).collect();
    // Batched (padded, sorted by length) and one at a time must both match.
    let batched = encoder.embed(&texts).unwrap();
    for (s, got) in reference.sentences.iter().zip(&batched) {
        let one = encoder.embed_one(&s.text).unwrap();
        for v in [got, &one] {
            assert_eq!(v.len(), 384);
            let worst = v.iter().zip(&s.embedding).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst < 1e-4, "{:?}: largest difference {worst}", s.text);
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "{:?}: norm {norm}", s.text);
        }
    }
    // What the encoder is for: a paraphrase is nearer than an unrelated sentence.
    let charged = &batched[0];
    let debit = &batched[1];
    let weather = &batched[4];
    assert!(strictly::encoder::cosine(charged, debit) > strictly::encoder::cosine(charged, weather) + 0.2);
}
