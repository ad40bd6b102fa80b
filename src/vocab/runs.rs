//! Runs: a byte set a recognizer stays alive on, and what the vocabulary's tokens make of it
//! ([`RunSplit`]); the text tokens a JSON string body takes by length ([`StringChars`]).

use std::sync::Arc;

use super::trie::TokenTrie;
use super::Vocabulary;
use crate::bytes::{json_escapes, ByteSet};

/// A run as [`Vocabulary::run_split`] keys it: its bytes, its (rounded) length, whether closed.
pub(super) type RunKey = (ByteSet, usize, bool);

/// Runs whose split a vocabulary keeps (a handful per kind of string body).
pub(super) const MAX_RUNS_CACHED: usize = 256;

/// The shortest run for which [`RunSplit::rest`] is built. Below it many tokens are
/// longer than the run, the rest would be a large share of the vocabulary, and walking
/// the full trie (which dies a few bytes past the run) costs about the same. For the
/// same reason the rest is built only when the run takes at least half of the vocabulary.
pub const MIN_SPLIT_RUN: usize = 32;

/// The vocabulary split by a run (a byte set on which a recognizer stays alive for at
/// least `run` bytes, see [`TokenTrie::walk_with_run`]): the tokens the run takes whole,
/// as a bitset, and a trie of every other token.
///
/// Inside a free JSON string the run takes 47,874 of SmolLM2's 49,152 tokens; a mask then
/// costs a bitset copy plus a walk of the 1,261 others (quotes, escapes, partial UTF-8),
/// instead of a walk of the full trie that must descend every subtree holding one of them.
/// (A string body the constraint recognises goes further, see [`StringChars`].)
#[derive(Debug)]
pub struct RunSplit {
    /// The run length the split was made for (rounded down, see [`Vocabulary::run_split`]).
    pub run: usize,
    /// The tokens the run takes whole (bit `id % 64` of word `id / 64`).
    pub run_tokens: Arc<[u64]>,
    /// Every other non-special token (for a closed run: every token not made of run bytes
    /// alone), when the run is long enough to be worth a trie of its own; walk it from the
    /// state to finish the mask.
    pub rest: Option<Arc<TokenTrie>>,
}

/// What a JSON string body that takes any character takes of the vocabulary: the text
/// tokens (plain bytes, and the 829 of SmolLM2's tokens that are UTF-8 text with no quote,
/// backslash or control byte: accented words, CJK, emoji, a trailing partial character),
/// by length in characters; a body with room for `n` more characters takes those of at
/// most `n` whole, and only the other 432 tokens are walked.
#[derive(Debug)]
pub struct StringChars {
    /// Text tokens (the plain run's and the UTF-8 ones) by length in characters: entry `n` holds
    /// those of at most `n` characters (a trailing partial character counts: its first
    /// byte takes a position), up to the longest token.
    pub(super) up_to: Vec<Arc<[u64]>>,
    /// Every other token.
    pub rest: Arc<TokenTrie>,
}

impl StringChars {
    pub(super) fn new(vocab: &Vocabulary, plain: &RunSplit) -> Self {
        // The UTF-8 text tokens outside the plain run.
        let mut extra = vec![0u64; vocab.bytes.len().div_ceil(64)];
        let text = |bytes: &[u8]| {
            !bytes.iter().any(|&b| json_escapes(b))
                && match std::str::from_utf8(bytes) {
                    Ok(_) => true,
                    // A character cut short at the end (the next token completes it).
                    Err(e) => e.error_len().is_none(),
                }
        };
        for id in 0..vocab.bytes.len() {
            let taken = plain.run_tokens[id / 64] & (1 << (id % 64)) != 0;
            if !taken && !vocab.special[id] && !vocab.bytes[id].is_empty() && text(&vocab.bytes[id]) {
                extra[id / 64] |= 1 << (id % 64);
            }
        }
        let rest = vocab.trie.subset(&vocab.bytes, |t| {
            plain.run_tokens[t as usize / 64] & (1 << (t % 64)) == 0 && extra[t as usize / 64] & (1 << (t % 64)) == 0
        });
        let mut up_to: Vec<Vec<u64>> = vec![vec![0u64; extra.len()]; vocab.trie.max_token_len() + 1];
        for id in 0..vocab.bytes.len() {
            let bit = 1 << (id % 64);
            if (plain.run_tokens[id / 64] | extra[id / 64]) & bit != 0 {
                let chars = vocab.bytes[id].iter().filter(|&&b| !(0x80..0xC0).contains(&b)).count();
                up_to[chars][id / 64] |= bit;
            }
        }
        for n in 1..up_to.len() {
            let (done, rest) = up_to.split_at_mut(n);
            rest[0].iter_mut().zip(&done[n - 1]).for_each(|(w, prev)| *w |= prev);
        }
        Self { up_to: up_to.into_iter().map(Into::into).collect(), rest: Arc::new(rest) }
    }

    /// The text tokens of at most `chars` characters (bitset words): what a bounded string
    /// with room for `chars` more characters takes whole.
    pub fn text_up_to(&self, chars: usize) -> &[u64] {
        &self.up_to[chars.min(self.up_to.len() - 1)]
    }

    /// The text tokens of more than `lo` and at most `hi` characters (`None`: any number).
    pub fn text_between(&self, lo: usize, hi: Option<usize>) -> impl Iterator<Item = u32> + '_ {
        self.words_between(lo, hi).flat_map(|(w, mut word)| {
            std::iter::from_fn(move || {
                (word != 0).then(|| {
                    let bit = word.trailing_zeros();
                    word &= word - 1;
                    (w * 64) as u32 + bit
                })
            })
        })
    }

    /// How many text tokens have more than `lo` and at most `hi` characters.
    pub fn count_between(&self, lo: usize, hi: Option<usize>) -> usize {
        self.words_between(lo, hi).map(|(_, word)| word.count_ones() as usize).sum()
    }

    /// [`Self::text_between`] as bitset words, by index.
    fn words_between(&self, lo: usize, hi: Option<usize>) -> impl Iterator<Item = (usize, u64)> + '_ {
        let long = self.text_up_to(hi.unwrap_or(usize::MAX));
        self.text_up_to(lo).iter().zip(long).map(|(&short, &long)| long & !short).enumerate()
    }
}
