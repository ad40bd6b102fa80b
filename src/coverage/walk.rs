//! One seeded random walk over the token mask, finishing within a budget.

use std::sync::Arc;
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::constraint::{Constraint, TokenAutomaton};

/// One seeded walk: uniform choice among the allowed tokens, finishing
/// within `budget` tokens. Records each mask's time in microseconds.
pub fn random_walk(automaton: &Arc<TokenAutomaton>, budget: usize, seed: u64, mask_us: &mut Vec<f64>) -> Result<String, String> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut c = Constraint::new(automaton.clone());
    let eos = automaton.vocab().eos();
    // A schema whose shortest instance is longer than the budget gets the
    // room it needs (one token per byte, plus slack), so every walk can finish.
    let budget = budget.max(c.distance_to_accept() as usize + 64);
    // The same cap check as decoding: a walk that could not finish is an
    // error, never a cut-off value.
    c.check_room(budget, budget).map_err(|e| e.to_string())?;
    for used in 0..=budget {
        let remaining = budget - used;
        let t0 = Instant::now();
        let mask = c.mask().map_err(|e| e.to_string())?;
        mask_us.push(t0.elapsed().as_secs_f64() * 1e6);
        // Nothing but EOS can follow: the value is complete.
        if mask.count() == 1 && eos.is_some_and(|e| mask.contains(e)) {
            break;
        }
        c.check_room(remaining, budget).map_err(|e| e.to_string())?;
        if remaining == 0 {
            break;
        }
        let allowed: Vec<u32> = mask.iter().collect();
        if allowed.is_empty() {
            return Err("empty mask before acceptance".into());
        }
        let mut token = allowed[rng.random_range(0..allowed.len())];
        if !c.fits_budget(token, remaining).map_err(|e| e.to_string())? {
            let within: Vec<u32> = c.mask_within_budget(remaining).map_err(|e| e.to_string())?.iter().collect();
            if within.is_empty() {
                return Err("no token fits the budget".into());
            }
            token = within[rng.random_range(0..within.len())];
        }
        if Some(token) == eos {
            c.advance(token).map_err(|e| e.to_string())?;
            break;
        }
        c.advance(token).map_err(|e| e.to_string())?;
    }
    String::from_utf8(c.bytes().to_vec()).map_err(|e| format!("not UTF-8: {e}"))
}
