//! The token-level half of the tests by schema area: a small hand-made
//! vocabulary (every single byte, a few longer pieces, EOS), the token mask
//! walked over it, and the `jsonschema` crate judging what comes out. The
//! byte-level half is `tests/oracle`; [`check`] runs both.

// Each test crate uses the part it needs.
#![allow(dead_code)]

use std::sync::Arc;

use crate::oracle::validator;
use serde_json::Value;
use strictly::automaton::Grammar;
use strictly::constraint::{Constraint, TokenAutomaton};
use strictly::coverage::random_walk;
use strictly::schema::CompileOptions;
use strictly::vocab::Vocabulary;

use crate::oracle::{self, text};

/// Token budget of a random walk (raised by the walk where a schema needs more).
const WALK_TOKENS: usize = 64;

/// A hand-made vocabulary: ids 0-255 are the single bytes, then `pieces`
/// (the multi-byte tokens a test cares about), then EOS.
pub struct Vocab {
    pub vocab: Arc<Vocabulary>,
    tokens: Vec<Vec<u8>>,
    eos: u32,
}

impl Vocab {
    /// Every byte as a token, plus `pieces` (each longer than one byte).
    pub fn new(pieces: &[&str]) -> Self {
        let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        for p in pieces {
            assert!(p.len() > 1, "a piece is longer than one byte: {p:?}");
            tokens.push(p.as_bytes().to_vec());
        }
        let eos = tokens.len() as u32;
        let all = tokens.iter().cloned().map(Some).chain([None]).collect();
        Vocab { vocab: Arc::new(Vocabulary::from_token_bytes(all, Some(eos))), tokens, eos }
    }

    /// Longest match first; always succeeds, every byte being a token.
    pub fn encode(&self, text: &[u8]) -> Vec<u32> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < text.len() {
            let (id, len) = (0..self.tokens.len())
                .filter(|&i| text[at..].starts_with(&self.tokens[i]))
                .map(|i| (i as u32, self.tokens[i].len()))
                .max_by_key(|&(_, len)| len)
                .expect("every byte is a token");
            out.push(id);
            at += len;
        }
        out
    }

    /// One token per byte.
    pub fn bytes(text: &[u8]) -> Vec<u32> {
        text.iter().map(|&b| u32::from(b)).collect()
    }
}

/// Whether the mask lets `tokens` through, one at a time, and then allows
/// EOS. The mask is asked before each step (not `advance`'s own check).
pub fn admits(automaton: &Arc<TokenAutomaton>, eos: u32, tokens: &[u32]) -> bool {
    let mut c = Constraint::new(automaton.clone());
    for &t in tokens {
        if !c.mask().unwrap().contains(t) {
            return false;
        }
        c.advance(t).unwrap();
    }
    c.mask().unwrap().contains(eos)
}

/// Along `tokens`, every token the mask allows leaves a state the value can still be
/// finished from (its own mask is not empty): a mask that let a token read past the end
/// of a complete value would leave the generation with nothing it may write.
pub fn no_dead_ends(automaton: &Arc<TokenAutomaton>, tokens: &[u32], what: &str) {
    for k in 0..=tokens.len() {
        let at = |extra: Option<u32>| {
            let mut c = Constraint::new(automaton.clone());
            tokens[..k].iter().chain(&extra).for_each(|&t| c.advance(t).unwrap());
            c
        };
        let allowed: Vec<u32> = at(None).mask().unwrap().iter().collect();
        for t in allowed {
            let mut c = at(None);
            if c.advance(t).is_err() || c.is_finished() {
                continue;
            }
            let mut after = at(Some(t));
            assert!(
                after.mask().unwrap().count() > 0,
                "{what}: token {t} after {k} tokens leads nowhere ({:?})",
                String::from_utf8_lossy(after.bytes())
            );
        }
    }
}

/// The token-level check: `valid` instances pass the mask (tokenized
/// longest-match-first and byte by byte) and no token the mask allows along them
/// leads to a dead end, `invalid` ones are stopped either way, and the mask's
/// random walks are all valid.
pub fn check_tokens(schema: &Value, options: &CompileOptions, vocab: &Vocab, valid: &[Value], invalid: &[Value]) {
    let g = Grammar::compile(schema, options).unwrap_or_else(|e| panic!("{schema}: {e}"));
    let oracle = validator(schema).unwrap();
    let automaton = Arc::new(TokenAutomaton::new(g, vocab.vocab.clone()));
    for v in valid {
        assert!(oracle.is_valid(v), "fixture must be valid under {schema}: {v}");
        let t = text(v);
        assert!(admits(&automaton, vocab.eos, &vocab.encode(t.as_bytes())), "{schema}: the mask stopped valid {t} (pieces)");
        assert!(admits(&automaton, vocab.eos, &Vocab::bytes(t.as_bytes())), "{schema}: the mask stopped valid {t} (bytes)");
        no_dead_ends(&automaton, &vocab.encode(t.as_bytes()), &format!("{schema}: {t}"));
    }
    for v in invalid {
        assert!(!oracle.is_valid(v), "fixture must be invalid under {schema}: {v}");
        let t = text(v);
        assert!(!admits(&automaton, vocab.eos, &vocab.encode(t.as_bytes())), "{schema}: the mask let invalid {t} through (pieces)");
        assert!(!admits(&automaton, vocab.eos, &Vocab::bytes(t.as_bytes())), "{schema}: the mask let invalid {t} through (bytes)");
    }
    // The coverage run's seeded walks (uniform over the mask, closed within the budget): every
    // one must finish, and the validator must accept it.
    for seed in 0..60 {
        let t = random_walk(&automaton, WALK_TOKENS, seed, &mut Vec::new()).unwrap_or_else(|e| panic!("{schema}: walk {seed} failed: {e}"));
        let value: Value = serde_json::from_str(&t).unwrap_or_else(|e| panic!("{schema}: unparseable walk {t}: {e}"));
        assert!(oracle.is_valid(&value), "{schema}: invalid walk {t}");
    }
}

/// Both halves with the default options: the byte automaton
/// ([`oracle::check`]) and the token mask over a vocabulary of every byte and
/// `pieces`.
pub fn check(schema: Value, pieces: &[&str], valid: &[Value], invalid: &[Value]) {
    let options = CompileOptions::default();
    check_tokens(&schema, &options, &Vocab::new(pieces), valid, invalid);
    oracle::check(schema, &options, valid, invalid);
}
