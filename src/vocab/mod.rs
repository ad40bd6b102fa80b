//! A tokenizer's vocabulary as exact bytes, and a byte trie to walk them.
//!
//! This module knows nothing of schemas: the trie is walked against any
//! [`ByteRecognizer`], in the manner of llguidance's token trie.
//!
//! ```
//! use strictly::vocab::{ByteRecognizer, Vocabulary};
//! let vocab = Vocabulary::from_token_bytes(
//!     vec![Some(b"a".to_vec()), Some(b"ab".to_vec()), Some(b"b".to_vec()), None], Some(3));
//! // A recognizer for strings over {a}: "a" and nothing with a "b".
//! struct OnlyA;
//! impl ByteRecognizer for OnlyA {
//!     type State = ();
//!     fn step(&mut self, _: (), byte: u8) -> Option<()> { (byte == b'a').then_some(()) }
//! }
//! let mut allowed = vec![];
//! vocab.trie().walk(&mut OnlyA, (), |token, _| allowed.push(token));
//! assert_eq!(allowed, vec![0]);
//! ```

mod runs;
mod text;
mod token_set;
mod trie;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::bytes::{json_string_run_bytes, ByteSet};
use runs::{RunKey, MAX_RUNS_CACHED};
pub use runs::{RunSplit, StringChars, MIN_SPLIT_RUN};
use text::byte_fallback;
pub(crate) use text::gpt2_char_to_byte;
pub use token_set::TokenSet;
pub use trie::{TokenTrie, TrieNodeId, Visit};

/// Something that reads bytes one at a time; `None` rejects.
pub trait ByteRecognizer {
    /// The recognizer's position after some bytes; the trie walk passes it from a token prefix to its extensions.
    type State: Copy + PartialEq;
    /// The state after reading `byte` in `state`; None when the byte is rejected there.
    fn step(&mut self, state: Self::State, byte: u8) -> Option<Self::State>;
    /// Whether every byte of `bytes` leads `state` back to itself (so every string of
    /// them is read and ends there). The trie walk asks this at a node with a large subtree
    /// and, on `true`, takes the subtree's tokens without stepping through it. The default
    /// says `false`: every node is stepped.
    fn loops_on(&mut self, state: Self::State, bytes: &ByteSet) -> bool {
        let _ = (state, bytes);
        false
    }
    /// Whether every string of `bytes` up to `longest` bytes long is read from `state`
    /// without a rejection, found in at most `max_steps` steps (`false` past them). A walk
    /// that needs no end states asks this at a node with a large subtree and, on `true`,
    /// takes the subtree's tokens whole. The default says `false`.
    fn stays_alive(&mut self, state: Self::State, bytes: &ByteSet, longest: usize, max_steps: usize) -> bool {
        let _ = (state, bytes, longest, max_steps);
        false
    }
}

/// Errors building a vocabulary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VocabError {
    /// A byte-level BPE token holds a character outside the GPT-2 byte alphabet.
    #[error("token {id} ({text:?}) has a character outside the byte-level alphabet")]
    NotByteLevel {
        /// The token's id.
        id: u32,
        /// The token as the tokenizer spells it.
        text: String,
    },
    /// The tokenizer has no tokens.
    #[error("the vocabulary is empty")]
    Empty,
}

/// Every token's bytes, special tokens apart, and the trie over them.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    bytes: Vec<Vec<u8>>,
    special: Vec<bool>,
    eos: Option<u32>,
    trie: TokenTrie,
    /// [`Vocabulary::run_split`], by run: they depend on the vocabulary only, so every
    /// automaton over it shares them.
    runs: Arc<Mutex<HashMap<RunKey, Arc<RunSplit>>>>,
    /// The bytes each token uses, by id: whether a token is made of a run's bytes is then
    /// one subset test.
    byte_sets: Vec<ByteSet>,
    /// [`Vocabulary::longest_run_token`], by byte set.
    longest_runs: Arc<Mutex<HashMap<ByteSet, usize>>>,
    /// [`Vocabulary::string_chars`], made with the vocabulary.
    string_chars: Arc<StringChars>,
}

impl Vocabulary {
    /// From each token's bytes, by id; `None` marks a special (control) token.
    pub fn from_token_bytes(tokens: Vec<Option<Vec<u8>>>, eos: Option<u32>) -> Self {
        let special: Vec<bool> = tokens.iter().map(Option::is_none).collect();
        let bytes: Vec<Vec<u8>> = tokens.into_iter().map(Option::unwrap_or_default).collect();
        let trie = TokenTrie::build(&bytes, &special);
        let byte_sets = bytes.iter().map(|token| token.iter().copied().collect()).collect();
        let placeholder = Arc::new(StringChars { up_to: vec![Arc::new([])], rest: Arc::new(TokenTrie::build(&[], &[])) });
        let mut vocab = Self {
            bytes,
            special,
            eos,
            trie,
            byte_sets,
            runs: Default::default(),
            longest_runs: Default::default(),
            string_chars: placeholder,
        };
        // Every free JSON string body runs on the same bytes: split for it now (about a
        // millisecond), as llguidance precomputes its string slices per tokenizer, so no
        // schema's first mask inside a string pays for it.
        let plain = json_string_run_bytes();
        let split = vocab.run_split(&plain, usize::MAX, false);
        vocab.run_split(&plain, MIN_SPLIT_RUN, false);
        vocab.string_chars = Arc::new(StringChars::new(&vocab, &split));
        vocab
    }

    /// The tokens a free JSON string body takes whole beyond its plain bytes (see
    /// [`StringChars`]).
    pub fn string_chars(&self) -> &StringChars {
        &self.string_chars
    }

    /// How the vocabulary splits for a run (see [`RunSplit`]). Computed once per run and
    /// vocabulary: a run's tokens are the same whatever the schema, so a new automaton's
    /// first visits inside strings reuse them.
    ///
    /// Runs of [`MIN_SPLIT_RUN`] or more are rounded down to a power of two (or the longest
    /// token), which keeps a handful of tries per kind of string body; rounding down is
    /// sound, because a token the rounded run does not take whole is left to the walk.
    /// Shorter runs (the end of a bounded string) are kept exact: a walk of the full trie
    /// skips every subtree they take whole, and most tokens are short.
    ///
    /// A `closed` run is one after which no run byte is alive: every token that starts with
    /// more than `run` run bytes is rejected, so its split shares the trie of the tokens that
    /// are not made of run bytes alone (the longest run's rest) instead of walking the
    /// full trie.
    pub fn run_split(&self, run_bytes: &ByteSet, run: usize, closed: bool) -> Arc<RunSplit> {
        let longest = self.longest_run_token(run_bytes);
        let closed = closed && run < longest;
        let run = match run.min(longest) {
            r if r == longest || r < MIN_SPLIT_RUN || closed => r,
            r => 1 << r.ilog2(),
        };
        let shared_rest = if closed { self.run_split(run_bytes, longest, false).rest.clone() } else { None };
        let mut cache = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(split) = cache.get(&(*run_bytes, run, closed)) {
            return split.clone();
        }
        let mut words = vec![0u64; self.bytes.len().div_ceil(64)];
        for id in self.tokens_within(run_bytes) {
            if self.bytes[id].len() <= run {
                words[id / 64] |= 1 << (id % 64);
            }
        }
        let taken: usize = words.iter().map(|w| w.count_ones() as usize).sum();
        let rest = shared_rest.or_else(|| {
            (run >= MIN_SPLIT_RUN && taken * 2 >= self.bytes.len())
                .then(|| Arc::new(self.trie.subset(&self.bytes, |t| words[t as usize / 64] & (1 << (t % 64)) == 0)))
        });
        let split = Arc::new(RunSplit { run, run_tokens: words.into(), rest });
        if cache.len() >= MAX_RUNS_CACHED {
            cache.clear();
        }
        cache.insert((*run_bytes, run, closed), split.clone());
        split
    }

    /// The tokens `split` takes whole (made of `run_bytes`) whose first byte is in `head`,
    /// as bitset words: the tokens a state takes whole when `head` bytes lead it to a state
    /// that loops on `run_bytes` (after `{"` in an object that admits any key, every key
    /// byte but the first bytes of its declared names). Costs one pass over the tokens that
    /// start with the bytes on the smaller side of the cut.
    pub fn run_tokens_headed(&self, split: &RunSplit, run_bytes: &ByteSet, head: &ByteSet) -> Vec<u64> {
        let (mut dropped, mut kept) = (Vec::new(), Vec::new());
        for byte in run_bytes.iter() {
            let tokens = self.trie.tokens_starting_with(byte);
            if head.contains(byte) {
                kept.push(tokens)
            } else {
                dropped.push(tokens)
            }
        }
        let size = |side: &[&[u32]]| side.iter().map(|t| t.len()).sum::<usize>();
        if size(&dropped) <= size(&kept) {
            let mut words = split.run_tokens.to_vec();
            dropped.iter().flat_map(|t| t.iter()).for_each(|&t| words[t as usize / 64] &= !(1 << (t % 64)));
            words
        } else {
            let mut words = vec![0u64; split.run_tokens.len()];
            for &t in kept.iter().flat_map(|t| t.iter()) {
                words[t as usize / 64] |= split.run_tokens[t as usize / 64] & (1 << (t % 64));
            }
            words
        }
    }

    /// The longest token made of `run_bytes` only: a run at least this long takes every
    /// such token, so a caller need not look further ahead. Cached per byte set.
    pub fn longest_run_token(&self, run_bytes: &ByteSet) -> usize {
        let mut cache = self.longest_runs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&longest) = cache.get(run_bytes) {
            return longest;
        }
        let longest = self.tokens_within(run_bytes).map(|id| self.bytes[id].len()).max().unwrap_or(0);
        if cache.len() >= MAX_RUNS_CACHED {
            cache.clear();
        }
        cache.insert(*run_bytes, longest);
        longest
    }

    /// The non-special tokens made of `set` bytes only: one subset test per token for a
    /// large set, a walk of the trie's paths inside the set for a small one (a key's
    /// single byte takes a handful of tokens, not a pass over the vocabulary).
    fn tokens_within<'a>(&'a self, set: &'a ByteSet) -> Box<dyn Iterator<Item = usize> + 'a> {
        if set.len() < 32 {
            return Box::new(self.trie.tokens_within(set).into_iter().map(|t| t as usize));
        }
        Box::new(self.byte_sets.iter().enumerate().filter(move |(id, bytes)| !self.special[*id] && bytes.is_subset(set)).map(|(id, _)| id))
    }

    /// From a `tokenizers` tokenizer: byte-level BPE (GPT-2 alphabet) or
    /// SentencePiece with byte fallback (`▁` and `<0xXX>`).
    ///
    /// # Errors
    /// When a byte-level token has a character outside the GPT-2 alphabet.
    pub fn from_tokenizer(tokenizer: &tokenizers::Tokenizer, eos: Option<u32>) -> Result<Self, VocabError> {
        let vocab = tokenizer.get_vocab(true);
        if vocab.is_empty() {
            return Err(VocabError::Empty);
        }
        let size = vocab.values().max().map_or(0, |m| *m as usize + 1);
        let added = tokenizer.get_added_tokens_decoder();
        let byte_level = vocab.keys().any(|t| t.contains('Ġ') || t.contains('Ċ'));
        let decode = gpt2_char_to_byte();
        let mut tokens: Vec<Option<Vec<u8>>> = vec![None; size];
        for (text, &id) in &vocab {
            if let Some(a) = added.get(&id) {
                tokens[id as usize] = (!a.special).then(|| a.content.as_bytes().to_vec());
                continue;
            }
            tokens[id as usize] = Some(if byte_level {
                text.chars()
                    .map(|c| decode.get(&c).copied().ok_or_else(|| VocabError::NotByteLevel { id, text: text.clone() }))
                    .collect::<Result<Vec<u8>, _>>()?
            } else if let Some(b) = byte_fallback(text) {
                vec![b]
            } else {
                text.replace('▁', " ").into_bytes()
            });
        }
        Ok(Self::from_token_bytes(tokens, eos))
    }

    /// Number of token ids (the logits' width).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// A token's bytes (empty for special tokens).
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.bytes.get(id as usize).map_or(&[], Vec::as_slice)
    }

    /// Whether a token is special (never produced by the grammar).
    pub fn is_special(&self, id: u32) -> bool {
        self.special.get(id as usize).copied().unwrap_or(true)
    }

    /// The end-of-sequence token, when known.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// The trie of non-special tokens.
    pub fn trie(&self) -> &TokenTrie {
        &self.trie
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Prefix(&'static [u8]);
    impl ByteRecognizer for Prefix {
        type State = usize;
        fn step(&mut self, at: usize, byte: u8) -> Option<usize> {
            (self.0.get(at) == Some(&byte)).then_some(at + 1)
        }
    }

    #[test]
    fn walk_finds_exactly_the_prefix_tokens() {
        let words: Vec<&[u8]> = vec![b"a", b"ab", b"abc", b"b", b"abd", b"ab", b"c", b"abcd"];
        let vocab = Vocabulary::from_token_bytes(words.iter().map(|w| Some(w.to_vec())).collect(), None);
        let mut found = vec![];
        vocab.trie().walk(&mut Prefix(b"abcd"), 0, |t, _| found.push(t));
        found.sort();
        assert_eq!(found, vec![0, 1, 2, 5, 7]);
    }

    /// Reads at most `max` bytes, none of them `z`; says so for whole subtrees when asked.
    struct Short {
        max: usize,
        asked: usize,
    }
    impl ByteRecognizer for Short {
        type State = usize;
        fn step(&mut self, at: usize, byte: u8) -> Option<usize> {
            (at < self.max && byte != b'z').then_some(at + 1)
        }
        fn stays_alive(&mut self, at: usize, bytes: &ByteSet, longest: usize, _max_steps: usize) -> bool {
            self.asked += 1;
            !bytes.contains(b'z') && at + longest <= self.max
        }
    }

    #[test]
    fn live_subtrees_give_the_tokens_a_walk_steps_to() {
        // Behind each of 16 one-byte prefixes, every string of 1 to 6 letters over "ab" (127
        // nodes below the prefix, past MIN_LIVE_SUBTREE); behind every other prefix also two
        // tokens with a `z`, which the recognizer rejects.
        let mut words: Vec<Vec<u8>> = vec![];
        for p in 0..16u8 {
            let prefix = b'0' + p;
            for len in 1..=6u32 {
                for n in 0..2usize.pow(len) {
                    words.push(std::iter::once(prefix).chain((0..len).map(|k| b"ab"[n >> k & 1])).collect());
                }
            }
            if p % 2 == 0 {
                words.extend([vec![prefix, b'z'], vec![prefix, b'a', b'z']]);
            }
        }
        let vocab = Vocabulary::from_token_bytes(words.iter().map(|w| Some(w.clone())).collect(), None);
        for max in [3, 6, 7, 9] {
            let mut stepped = vec![];
            vocab.trie().walk(&mut Short { max, asked: 0 }, 0, |t, _| stepped.push(t));
            let mut short = Short { max, asked: 0 };
            let (mut found, mut live) = (vec![], 0);
            vocab.trie().walk_from(&ByteSet::ALL, &mut short, 0, &ByteSet::EMPTY, 0, |v| match v {
                Visit::Token(t, _) => found.push(t),
                Visit::Live(ts) => {
                    live += 1;
                    found.extend_from_slice(ts);
                }
                Visit::Run(_) => unreachable!("no run bytes given"),
            });
            stepped.sort();
            found.sort();
            assert_eq!(found, stepped, "max {max}");
            assert!(stepped.iter().all(|&t| vocab.token_bytes(t).len() <= max && !vocab.token_bytes(t).contains(&b'z')));
            assert!(short.asked >= 16, "max {max}: asked {}", short.asked);
            // From 7 bytes on, the 8 prefixes without a `z` behind them are taken whole.
            assert_eq!(live, if max >= 7 { 8 } else { 0 }, "max {max}");
        }
    }

    #[test]
    fn gpt2_alphabet_is_a_bijection() {
        let map = gpt2_char_to_byte();
        assert_eq!(map.len(), 256);
        assert_eq!(map[&'Ġ'], b' ');
        assert_eq!(map[&'Ċ'], b'\n');
    }
}
