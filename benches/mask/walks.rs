//! One seeded uniform random walk per engine, each mask computation timed.

use std::hint::black_box;
use std::time::Instant;

use outlines_core::index::Index;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::engines::{ms, Engines};
use crate::CAP;

/// One walk's mask times (µs) and token count, or the error that ended it.
pub struct Walk {
    pub mask_us: Vec<f64>,
    /// Allowed-token counts (llguidance and outlines only: strictly's walk is `coverage::random_walk`).
    pub mask_sizes: Vec<usize>,
    pub tokens: usize,
    pub error: Option<String>,
    pub first_mask_size: usize,
}

impl Walk {
    /// Records one step's allowed tokens and picks the next token uniformly;
    /// `None` ends the walk (EOS, or a dead end recorded as an error).
    pub fn pick(&mut self, allowed: Vec<u32>, step: usize, eos: u32, rng: &mut SmallRng) -> Option<u32> {
        self.mask_sizes.push(allowed.len());
        if step == 0 {
            self.first_mask_size = allowed.len();
        }
        if allowed.is_empty() {
            self.error = Some(format!("empty mask after {} tokens (dead end)", self.tokens));
            return None;
        }
        let token = allowed[rng.random_range(0..allowed.len())];
        (token != eos).then_some(token)
    }
}

pub fn ids_of_words(words: &[u64]) -> Vec<u32> {
    let mut out = Vec::new();
    for (i, &w) in words.iter().enumerate() {
        let mut w = w;
        while w != 0 {
            out.push(i as u32 * 64 + w.trailing_zeros());
            w &= w - 1;
        }
    }
    out
}

pub fn walk_strictly(e: &Engines, schema: &Value, seed: u64) -> (f64, Walk) {
    let t0 = Instant::now();
    let automaton = e.strictly(schema).expect("accepted before");
    let compile = ms(t0.elapsed());
    let first_mask_size = strictly::constraint::Constraint::new(automaton.clone()).mask().map_or(0, |m| m.count());
    // The first mask above warmed the start state: rebuild so the walk's first visit counts.
    let automaton = e.strictly(schema).expect("accepted before");
    let mut mask_us = Vec::new();
    let r = strictly::coverage::random_walk(&automaton, CAP, seed, &mut mask_us);
    let tokens = mask_us.len();
    (compile, Walk { mask_us, mask_sizes: Vec::new(), tokens, error: r.err(), first_mask_size })
}

pub fn walk_llguidance(e: &Engines, schema: &Value, seed: u64) -> (f64, Walk) {
    let t0 = Instant::now();
    let mut m = e.llguidance(schema).expect("accepted before");
    let compile = ms(t0.elapsed());
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut w = Walk { mask_us: Vec::new(), mask_sizes: Vec::new(), tokens: 0, error: None, first_mask_size: 0 };
    for step in 0..CAP {
        if m.is_stopped() {
            break;
        }
        let t0 = Instant::now();
        let mask = match m.compute_mask() {
            Ok(mask) => mask,
            Err(err) => {
                w.error = Some(err.to_string());
                break;
            }
        };
        w.mask_us.push(t0.elapsed().as_secs_f64() * 1e6);
        let Some(token) = w.pick(mask.to_list(), step, e.eos, &mut rng) else { break };
        if let Err(err) = m.consume_token(token) {
            w.error = Some(err.to_string());
            break;
        }
        w.tokens += 1;
    }
    (compile, w)
}

pub fn walk_outlines(e: &Engines, index: &Index, seed: u64) -> Walk {
    let n = e.vocab.len();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut w = Walk { mask_us: Vec::new(), mask_sizes: Vec::new(), tokens: 0, error: None, first_mask_size: 0 };
    let mut state = index.initial_state();
    for step in 0..CAP {
        let t0 = Instant::now();
        let mut words = vec![0u64; n.div_ceil(64)];
        if let Some(it) = index.allowed_tokens_iter(&state) {
            for &t in it {
                words[t as usize / 64] |= 1 << (t % 64);
            }
        }
        let words = black_box(words);
        w.mask_us.push(t0.elapsed().as_secs_f64() * 1e6);
        let Some(token) = w.pick(ids_of_words(&words), step, e.eos, &mut rng) else { break };
        match index.next_state(&state, &token) {
            Some(s) => state = s,
            None => {
                w.error = Some(format!("no transition for allowed token {token}"));
                break;
            }
        }
        w.tokens += 1;
    }
    w
}
