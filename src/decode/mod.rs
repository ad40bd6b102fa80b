//! The masked decoding loop (feature `local`).
//!
//! Each step: if the constraint forces bytes, feed their canonical tokens in
//! one batched forward pass (fast-forward); otherwise set every disallowed
//! logit to −∞ *before* sampling, pick a token (greedy by default), and check
//! it against the token budget so the output always finishes as valid JSON.
//! Per-token log-probabilities are taken under the masked distribution, and
//! the alternatives at every branch point are kept for the rule layer.
//!
//! Fast-forward feeds the tokens the tokenizer itself would produce for the
//! forced bytes, minus the last one (which might merge with what follows),
//! so the model never sees a tokenization it was not trained on.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde::Serialize;

use crate::constraint::{Constraint, ConstraintError, TokenAutomaton, TokenSet};
use lookahead::draft;
use sample::{choose, History};

mod lookahead;
mod sample;
use crate::model::local::{ModelError, Session};
use crate::tokenizer::GgufTokenizer;

/// Sampling and stopping options.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Token cap; the constraint's budget keeps the output complete within it. Default 256.
    pub max_tokens: usize,
    /// 0 means greedy (the default).
    pub temperature: f32,
    /// Nucleus sampling mass; 1.0 (the default) disables it.
    pub top_p: f32,
    /// Seed of the sampler. Default 0.
    pub seed: u64,
    /// Skip sampling for forced tokens (the tokenizer's own tokens for them). Default true.
    pub fast_forward: bool,
    /// Feed fast-forwarded tokens in one batched forward pass; when false,
    /// one pass per token (the reference the equivalence test compares with). Default true.
    pub batch_forced: bool,
    /// Alternatives kept per branch point. Default 8.
    pub alternatives: usize,
    /// Greedy decoding only: after each sampled token, guess up to this many next tokens
    /// from earlier text (the prompt's tail and the output so far; see [`draft`]) and check
    /// the guess in one batched forward pass, keeping the tokens the model itself picks.
    /// The output is greedy decoding's; only the number of passes changes. Default 8;
    /// 0 turns it off, and so does `batch_forced: false` (the one-pass-per-token reference).
    pub lookahead: usize,
    /// OpenAI's `frequency_penalty`: each earlier output token lowers its own logit by this
    /// much per occurrence. Default 0 (off).
    pub frequency_penalty: f32,
    /// OpenAI's `presence_penalty`: a token already in the output has its logit lowered by
    /// this much. Default 0 (off).
    pub presence_penalty: f32,
    /// llama.cpp's `repeat_penalty` over the last [`repeat_last_n`](Self::repeat_last_n)
    /// tokens: a positive logit is divided by it, a negative one multiplied. Default 1 (off).
    pub repeat_penalty: f32,
    /// How many of the latest tokens (the prompt's this call fed, then the output)
    /// `repeat_penalty` looks at. Default 64, as llama.cpp.
    pub repeat_last_n: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
            fast_forward: true,
            batch_forced: true,
            alternatives: 8,
            lookahead: 8,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
        }
    }
}

impl DecodeOptions {
    /// The penalties' ranges, which the API and the CLI both enforce: OpenAI's from −2 to 2,
    /// `repeat_penalty` in (0, 10]. The error names the option (as the API spells it) and its rule.
    pub fn check_penalties(&self) -> Result<(), (&'static str, &'static str)> {
        for (name, value) in [("frequency_penalty", self.frequency_penalty), ("presence_penalty", self.presence_penalty)] {
            if !(-2.0..=2.0).contains(&value) {
                return Err((name, "from -2 to 2"));
            }
        }
        if !(self.repeat_penalty > 0.0 && self.repeat_penalty <= 10.0) {
            return Err(("repeat_penalty", "in (0, 10]"));
        }
        Ok(())
    }
}

/// Errors while decoding.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The model's forward pass or context failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The constraint refused a step, or the value cannot fit under the token cap.
    #[error(transparent)]
    Constraint(#[from] ConstraintError),
    /// The mask leaves no token the sampler can pick before the value is complete.
    #[error("the constraint allows no token before the value is complete")]
    Stuck,
    /// The finished output's bytes are not UTF-8.
    #[error("output is not UTF-8: {0}")]
    Utf8(#[from] std::string::FromUtf8Error),
}

/// One alternative at a branch point.
#[derive(Debug, Clone, Serialize)]
pub struct Alternative {
    /// The token's id.
    pub token: u32,
    /// The token's bytes as text (invalid UTF-8 replaced).
    pub text: String,
    /// The token's probability among the allowed tokens (0 to 1), from the logits after any
    /// penalties, before the temperature.
    pub prob: f32,
}

/// One generated token.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratedToken {
    /// The token's id.
    pub token: u32,
    /// The token's bytes as text (invalid UTF-8 replaced).
    pub text: String,
    /// Log-probability under the masked distribution (0 when forced).
    pub logprob: f32,
    /// Fed by fast-forward or the only allowed token.
    pub forced: bool,
    /// The most likely allowed tokens, when more than one was allowed.
    pub alternatives: Vec<Alternative>,
    /// Log-probability gap between the best and second-best allowed token
    /// (infinite when only one was allowed): small gaps are near-ties.
    pub margin: f32,
}

/// Why decoding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The value is complete and nothing but EOS may follow.
    Complete,
    /// The model chose EOS in an accepting state.
    Eos,
    /// The token cap was reached with the value complete (a value that
    /// cannot be completed under the cap is [`ConstraintError::TokenCap`]).
    MaxTokens,
    /// The caller's output callback asked to stop (see [`generate_streaming`]); the output
    /// is a prefix of a valid value, not a complete one.
    Stopped,
}

/// Timings of one generation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    /// Time to feed the prompt, in ms.
    pub prefill_ms: f64,
    /// Time from the end of the prefill to the last token, in ms.
    pub decode_ms: f64,
    /// Time spent computing masks, in ms (a part of `decode_ms`).
    pub mask_ms: f64,
    /// Forward passes of the model, the prefill included.
    pub forward_passes: usize,
    /// Tokens guessed by lookahead, and how many of them the model kept.
    pub drafted: usize,
    /// Drafted tokens the model kept.
    pub accepted: usize,
}

impl GeneratedToken {
    /// A token fed by fast-forward.
    fn fast_forwarded(token: u32, tokenizer: &GgufTokenizer) -> Self {
        Self { token, text: token_text(tokenizer, token), logprob: 0.0, forced: true, alternatives: Vec::new(), margin: f32::INFINITY }
    }

    /// A token the sampler chose (forced when it had no alternative).
    fn chosen(token: u32, logprob: f32, alternatives: Vec<Alternative>, tokenizer: &GgufTokenizer) -> Self {
        let margin = match &alternatives[..] {
            [a, b, ..] => a.prob.ln() - b.prob.ln(),
            _ => f32::INFINITY,
        };
        Self { token, text: token_text(tokenizer, token), logprob, forced: alternatives.is_empty(), alternatives, margin }
    }
}

/// The result of one generation.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    /// The output; lossy UTF-8 when decoding was stopped by the caller.
    pub text: String,
    /// Each output token in order, forced ones included.
    pub tokens: Vec<GeneratedToken>,
    /// Tokens in the model's context after the prompt was fed (a reused prefix included).
    pub prompt_tokens: usize,
    /// Why decoding stopped.
    pub stop: StopReason,
    /// Where the time went.
    pub timings: Timings,
    /// The token budget overruled the model at least once (its pick could not have been
    /// completed within the cap), so the value was closed earlier than the model wanted.
    pub budget_limited: bool,
}

impl Generation {
    /// Tokens fed by fast-forward or forced by the mask.
    pub fn forced_tokens(&self) -> usize {
        self.tokens.iter().filter(|t| t.forced).count()
    }
}

/// Runs constrained decoding from a session that has consumed the prompt
/// up to (not including) `pending`, which is fed first.
pub fn generate(
    session: &mut Session,
    pending: &[u32],
    tokenizer: &GgufTokenizer,
    automaton: &Arc<TokenAutomaton>,
    options: &DecodeOptions,
) -> Result<Generation, DecodeError> {
    decode(session, pending, tokenizer, automaton, options, None)
}

/// [`generate`], handing the output's bytes to `on_output` as tokens are committed (a
/// fast-forwarded run or a batch of kept lookahead guesses arrives as one call; a multi-byte
/// character may be split between calls). The calls' concatenation is the final text.
/// `ControlFlow::Break` stops decoding at once with [`StopReason::Stopped`] (a client that
/// hung up, a stop sequence): no further forward pass is run.
///
/// ```no_run
/// # use std::ops::ControlFlow;
/// # fn f(session: &mut strictly::model::local::Session, tokenizer: &strictly::tokenizer::GgufTokenizer,
/// #      automaton: &std::sync::Arc<strictly::constraint::TokenAutomaton>) -> Result<(), strictly::decode::DecodeError> {
/// let mut seen = Vec::new();
/// let g = strictly::decode::generate_streaming(session, &[], tokenizer, automaton, &Default::default(), &mut |bytes| {
///     seen.extend_from_slice(bytes);
///     ControlFlow::Continue(())
/// })?;
/// assert_eq!(seen, g.text.as_bytes());
/// # Ok(()) }
/// ```
pub fn generate_streaming(
    session: &mut Session,
    pending: &[u32],
    tokenizer: &GgufTokenizer,
    automaton: &Arc<TokenAutomaton>,
    options: &DecodeOptions,
    on_output: &mut dyn FnMut(&[u8]) -> ControlFlow<()>,
) -> Result<Generation, DecodeError> {
    decode(session, pending, tokenizer, automaton, options, Some(on_output))
}

/// The decode loop behind [`generate`] (no callback: nothing is copied per token) and
/// [`generate_streaming`].
fn decode(
    session: &mut Session,
    pending: &[u32],
    tokenizer: &GgufTokenizer,
    automaton: &Arc<TokenAutomaton>,
    options: &DecodeOptions,
    mut on_output: OnOutput<'_>,
) -> Result<Generation, DecodeError> {
    let mut timings = Timings::default();
    let mut rng = SmallRng::seed_from_u64(options.seed);
    let mut constraint = Constraint::new(automaton.clone());
    let eos = tokenizer.eos();
    // Before any model work: a value whose shortest completion cannot fit
    // under the cap is an error, never a cut-off output.
    constraint.check_room(options.max_tokens, options.max_tokens)?;
    session.ensure_room(pending.len() + options.max_tokens)?;

    let t0 = Instant::now();
    let mut logits = session.feed(pending)?;
    let prompt_tokens = session.position();
    timings.prefill_ms = t0.elapsed().as_secs_f64() * 1e3;
    timings.forward_passes += 1;
    let decode_start = Instant::now();
    let mut out: Vec<GeneratedToken> = Vec::new();
    let speculate = options.lookahead > 0 && options.temperature <= 0.0 && options.batch_forced;
    let mut emitted = 0;
    let mut budget_limited = false;
    let stop = loop {
        if emit(&out, &mut emitted, tokenizer, &mut on_output).is_break() {
            break StopReason::Stopped;
        }
        let used = out.len();
        let remaining = options.max_tokens - used;
        let mask = timed_mask(&mut constraint, &mut timings)?;
        if only_eos(&mask, eos) {
            break StopReason::Complete;
        }
        constraint.check_room(remaining, options.max_tokens)?;
        if remaining == 0 {
            break StopReason::MaxTokens;
        }
        if options.fast_forward {
            let forced = fast_forward_tokens(&mut constraint, tokenizer, remaining)?;
            if !forced.is_empty() {
                for &t in &forced {
                    constraint.advance(t)?;
                    out.push(GeneratedToken::fast_forwarded(t, tokenizer));
                }
                let allowed = sparse_allowed(&mut constraint, &mut timings)?;
                if options.batch_forced {
                    logits = session.feed_allowed(&forced, allowed.as_deref())?;
                    timings.forward_passes += 1;
                } else {
                    for (i, &t) in forced.iter().enumerate() {
                        let last = i + 1 == forced.len();
                        logits = session.feed_allowed(&[t], if last { allowed.as_deref() } else { None })?;
                        timings.forward_passes += 1;
                    }
                }
                continue;
            }
        }
        let history = History { pending, out: &out };
        let (token, logprob, alternatives) =
            choose(&mut constraint, &mask, &mut logits, history, remaining, options, &mut rng, tokenizer, &mut budget_limited)?;
        if Some(token) == eos {
            constraint.advance(token)?;
            break StopReason::Eos;
        }
        constraint.advance(token)?;
        out.push(GeneratedToken::chosen(token, logprob, alternatives, tokenizer));
        // Feed the token unless the value is now complete.
        if constraint.is_complete()? {
            break StopReason::Complete;
        }
        let mut guess = if speculate { draft(pending, &out, options.lookahead.min(remaining - 1)) } else { Vec::new() };
        guess.truncate(constraint.accepted_prefix(&guess)?);
        if guess.is_empty() {
            let allowed = sparse_allowed(&mut constraint, &mut timings)?;
            logits = session.feed_allowed(&[token], allowed.as_deref())?;
            timings.forward_passes += 1;
            continue;
        }
        // Feed the token and the guess in one pass, then keep the guessed tokens for as
        // long as they are what the model picks from the logits before each of them.
        let start = session.position();
        let fed: Vec<u32> = std::iter::once(token).chain(guess.iter().copied()).collect();
        let rows = session.feed_each(&fed)?;
        timings.forward_passes += 1;
        timings.drafted += guess.len();
        let mut kept = 0;
        for (i, &guessed) in guess.iter().enumerate() {
            let remaining = options.max_tokens - out.len();
            let mask = timed_mask(&mut constraint, &mut timings)?;
            if remaining == 0 || only_eos(&mask, eos) {
                break;
            }
            let allowed = sparse_allowed(&mut constraint, &mut timings)?;
            let mut row = rows.logits(i, allowed.as_deref())?;
            let history = History { pending, out: &out };
            let (picked, logprob, alternatives) =
                choose(&mut constraint, &mask, &mut row, history, remaining, options, &mut rng, tokenizer, &mut budget_limited)?;
            if picked != guessed {
                break;
            }
            constraint.advance(picked)?;
            out.push(GeneratedToken::chosen(picked, logprob, alternatives, tokenizer));
            kept += 1;
            if constraint.is_complete()? {
                break;
            }
        }
        timings.accepted += kept;
        session.rewind(start + 1 + kept);
        let allowed = sparse_allowed(&mut constraint, &mut timings)?;
        logits = rows.logits(kept, allowed.as_deref())?;
    };
    if stop != StopReason::Stopped {
        // The last tokens; the caller cannot stop what is already decoded.
        let _ = emit(&out, &mut emitted, tokenizer, &mut on_output);
    }
    timings.decode_ms = decode_start.elapsed().as_secs_f64() * 1e3;
    let bytes: Vec<u8> = out.iter().flat_map(|t| tokenizer.vocab().token_bytes(t.token).to_vec()).collect();
    // A stopped output may end inside a character.
    let text = if stop == StopReason::Stopped { String::from_utf8_lossy(&bytes).into_owned() } else { String::from_utf8(bytes)? };
    Ok(Generation { text, tokens: out, prompt_tokens, stop, timings, budget_limited })
}

/// Where a generation's text goes as it is decoded; `Break` stops the generation.
type OnOutput<'a> = Option<&'a mut dyn FnMut(&[u8]) -> ControlFlow<()>>;

/// Hands the bytes of the tokens after `emitted` to the callback, if there is one (nothing
/// when no token is new).
fn emit(out: &[GeneratedToken], emitted: &mut usize, tokenizer: &GgufTokenizer, on_output: &mut OnOutput<'_>) -> ControlFlow<()> {
    let Some(on_output) = on_output else { return ControlFlow::Continue(()) };
    if *emitted == out.len() {
        return ControlFlow::Continue(());
    }
    let mut bytes = Vec::new();
    for t in &out[*emitted..] {
        bytes.extend_from_slice(tokenizer.vocab().token_bytes(t.token));
    }
    *emitted = out.len();
    on_output(&bytes)
}

/// The state's mask, its lookup counted in the mask time.
fn timed_mask(constraint: &mut Constraint, timings: &mut Timings) -> Result<Arc<TokenSet>, DecodeError> {
    let t = Instant::now();
    let mask = constraint.mask()?;
    timings.mask_ms += t.elapsed().as_secs_f64() * 1e3;
    Ok(mask)
}

/// Nothing but end-of-sequence is allowed: the value is complete.
fn only_eos(mask: &TokenSet, eos: Option<u32>) -> bool {
    mask.count() == 1 && eos.is_some_and(|e| mask.contains(e))
}

/// The tokens the next step allows, when they are few enough that computing
/// only their logits beats the whole output layer (one dot product per
/// allowed token against a matmul over the vocabulary). The mask is cached
/// per state, so the lookup is repeated for free at the top of the loop.
fn sparse_allowed(constraint: &mut Constraint, timings: &mut Timings) -> Result<Option<Vec<u32>>, DecodeError> {
    let mask = timed_mask(constraint, timings)?;
    let sparse = mask.count() <= mask.universe() / SPARSE_HEAD_FRACTION;
    Ok(sparse.then(|| mask.iter().collect()))
}

/// Masks allowing at most 1/8 of the vocabulary use the sparse output layer.
const SPARSE_HEAD_FRACTION: usize = 8;

fn token_text(tokenizer: &GgufTokenizer, token: u32) -> String {
    String::from_utf8_lossy(tokenizer.vocab().token_bytes(token)).into_owned()
}

/// The canonical tokens for the forced bytes, minus the last (which could
/// merge with what follows), each checked against the constraint and budget.
fn fast_forward_tokens(constraint: &mut Constraint, tokenizer: &GgufTokenizer, remaining: usize) -> Result<Vec<u32>, DecodeError> {
    let forced = constraint.forced_bytes()?;
    if forced.is_empty() {
        return Ok(Vec::new());
    }
    let text = match std::str::from_utf8(&forced) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&forced[..e.valid_up_to()]).expect("valid prefix"),
    };
    let mut tokens = tokenizer.encode_plain(text).map_err(ModelError::from)?;
    tokens.pop();
    // Every forced token must spell the forced bytes exactly.
    let spelled: Vec<u8> = tokens.iter().flat_map(|&t| tokenizer.vocab().token_bytes(t).to_vec()).collect();
    if !forced.starts_with(&spelled) || tokens.len() >= remaining {
        return Ok(Vec::new());
    }
    Ok(tokens)
}
