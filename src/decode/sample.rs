//! Choosing a token at a branch point: penalties on repeated tokens, the masked softmax,
//! greedy or seeded sampling, and the token budget's veto.

use std::collections::HashMap;

use rand::rngs::SmallRng;
use rand::Rng;

use super::{token_text, Alternative, DecodeError, DecodeOptions, GeneratedToken};
use crate::constraint::{Constraint, TokenSet};
use crate::tokenizer::GgufTokenizer;

/// The text the penalties look at: the prompt tokens this call fed, then the output so far.
#[derive(Clone, Copy)]
pub(super) struct History<'a> {
    pub pending: &'a [u32],
    pub out: &'a [GeneratedToken],
}

/// Applies the request's penalties to the logits in place (nothing when it sets none).
///
/// - `repeat_penalty` (llama.cpp's): every distinct token among the last `repeat_last_n` of
///   the history has a positive logit divided by it, a negative one multiplied;
/// - `frequency_penalty` and `presence_penalty` (OpenAI's): a token's logit loses
///   `count × frequency + presence` for each output token it already is (`count` > 0).
///
/// Forced tokens count: they are in the text the model sees, as in llama.cpp's grammar mode.
fn penalize(logits: &mut [f32], options: &DecodeOptions, history: History) {
    let repeat = options.repeat_penalty != 1.0 && options.repeat_last_n > 0;
    let counted = options.frequency_penalty != 0.0 || options.presence_penalty != 0.0;
    if repeat {
        let recent = history.pending.iter().copied().chain(history.out.iter().map(|t| t.token));
        let len = history.pending.len() + history.out.len();
        let mut window: Vec<u32> = recent.skip(len.saturating_sub(options.repeat_last_n)).collect();
        window.sort_unstable();
        window.dedup();
        for t in window {
            if let Some(l) = logits.get_mut(t as usize) {
                *l = if *l > 0.0 { *l / options.repeat_penalty } else { *l * options.repeat_penalty };
            }
        }
    }
    if counted {
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for t in history.out {
            *counts.entry(t.token).or_default() += 1;
        }
        for (t, n) in counts {
            if let Some(l) = logits.get_mut(t as usize) {
                *l -= n as f32 * options.frequency_penalty + options.presence_penalty;
            }
        }
    }
}

/// The token, its log-probability and the alternatives at its branch point.
pub(super) type Choice = (u32, f32, Vec<Alternative>);

/// Picks a token from the masked logits after the penalties over `history` (applied to
/// `logits` in place: the caller's row is used once), honouring the token budget (`limited`
/// is set when the budget overrules the model's pick).
#[allow(clippy::too_many_arguments)]
pub(super) fn choose(
    constraint: &mut Constraint,
    mask: &TokenSet,
    logits: &mut [f32],
    history: History,
    remaining: usize,
    options: &DecodeOptions,
    rng: &mut SmallRng,
    tokenizer: &GgufTokenizer,
    limited: &mut bool,
) -> Result<Choice, DecodeError> {
    penalize(logits, options, history);
    let logits = &*logits;
    let choice = pick(mask, logits, options, rng, tokenizer).ok_or(DecodeError::Stuck)?;
    if constraint.fits_budget(choice.0, remaining)? {
        return Ok(choice);
    }
    *limited = true;
    let within = constraint.mask_within_budget(remaining)?;
    pick(&within, logits, options, rng, tokenizer).ok_or(DecodeError::Stuck)
}

/// Masked softmax, then greedy or seeded sampling.
fn pick(mask: &TokenSet, logits: &[f32], options: &DecodeOptions, rng: &mut SmallRng, tokenizer: &GgufTokenizer) -> Option<Choice> {
    // Read the allowed ids straight from the bitset (a free string allows ~48k): one pass
    // for the maximum, one for the normaliser and the top alternatives.
    let allowed = || mask.iter().filter(|&t| (t as usize) < logits.len());
    let mut best: Option<(u32, f32)> = None;
    for t in allowed() {
        // Ascending ids and a strict comparison: ties go to the lowest id.
        if best.is_none_or(|(_, l)| logits[t as usize] > l) {
            best = Some((t, logits[t as usize]));
        }
    }
    let (best, max) = best?;
    let keep = options.alternatives;
    let mut top: Vec<(f32, u32)> = Vec::with_capacity(keep + 1);
    let mut z = 0.0f32;
    let mut count = 0usize;
    for t in allowed() {
        let logit = logits[t as usize];
        z += (logit - max).exp();
        count += 1;
        if keep > 0 && (top.len() < keep || logit > top[top.len() - 1].0) {
            let at = top.partition_point(|&(l, _)| l >= logit);
            top.insert(at, (logit, t));
            top.truncate(keep);
        }
    }
    let prob = |t: u32| (logits[t as usize] - max).exp() / z;
    let token = if options.temperature <= 0.0 {
        best
    } else {
        let ids: Vec<u32> = allowed().collect();
        ids[sample(&ids, logits, options, rng)?]
    };
    let alternatives = if count > 1 {
        top.into_iter().map(|(_, t)| Alternative { token: t, text: token_text(tokenizer, t), prob: prob(t) }).collect()
    } else {
        Vec::new()
    };
    Some((token, prob(token).max(f32::MIN_POSITIVE).ln(), alternatives))
}

fn sample(allowed: &[u32], logits: &[f32], options: &DecodeOptions, rng: &mut SmallRng) -> Option<usize> {
    let t = options.temperature;
    let max = allowed.iter().map(|&i| logits[i as usize] / t).fold(f32::NEG_INFINITY, f32::max);
    let mut weighted: Vec<(usize, f32)> = allowed.iter().enumerate().map(|(i, &tok)| (i, (logits[tok as usize] / t - max).exp())).collect();
    let z: f32 = weighted.iter().map(|w| w.1).sum();
    weighted.iter_mut().for_each(|w| w.1 /= z);
    if options.top_p < 1.0 {
        weighted.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut mass = 0.0;
        let keep = weighted
            .iter()
            .take_while(|w| {
                let inside = mass < options.top_p;
                mass += w.1;
                inside
            })
            .count()
            .max(1);
        weighted.truncate(keep);
    }
    let total: f32 = weighted.iter().map(|w| w.1).sum();
    let mut x = rng.random::<f32>() * total;
    for (i, w) in &weighted {
        if x < *w {
            return Some(*i);
        }
        x -= w;
    }
    weighted.last().map(|w| w.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(frequency: f32, presence: f32, repeat: f32, last_n: usize) -> DecodeOptions {
        DecodeOptions {
            frequency_penalty: frequency,
            presence_penalty: presence,
            repeat_penalty: repeat,
            repeat_last_n: last_n,
            ..DecodeOptions::default()
        }
    }

    fn out(tokens: &[u32]) -> Vec<GeneratedToken> {
        tokens
            .iter()
            .map(|&token| GeneratedToken { token, text: String::new(), logprob: 0.0, forced: false, alternatives: Vec::new(), margin: 0.0 })
            .collect()
    }

    fn penalized(logits: &[f32], options: &DecodeOptions, history: History) -> Vec<f32> {
        let mut logits = logits.to_vec();
        penalize(&mut logits, options, history);
        logits
    }

    #[test]
    fn no_penalty_leaves_the_logits_alone() {
        let history = History { pending: &[1], out: &out(&[1, 2]) };
        assert_eq!(penalized(&[1.0, 2.0, 3.0], &DecodeOptions::default(), history), vec![1.0, 2.0, 3.0]);
    }

    #[test]
    fn frequency_and_presence_follow_openai() {
        // Token 1 was output twice, token 2 once, token 0 never; the prompt does not count.
        let output = out(&[1, 2, 1]);
        let history = History { pending: &[0, 0], out: &output };
        let l = penalized(&[1.0, 1.0, 1.0], &options(0.5, 0.25, 1.0, 64), history);
        assert_eq!(l, vec![1.0, 1.0 - 2.0 * 0.5 - 0.25, 1.0 - 0.5 - 0.25]);
    }

    #[test]
    fn repeat_penalty_follows_llama_cpp_over_its_window() {
        // The window is the last 2 tokens of prompt + output: tokens 3 and 1 (once each).
        let output = out(&[3, 1]);
        let history = History { pending: &[0, 2], out: &output };
        let l = penalized(&[2.0, 2.0, 2.0, -2.0], &options(0.0, 0.0, 2.0, 2), history);
        assert_eq!(l, vec![2.0, 1.0, 2.0, -4.0]);
    }
}
