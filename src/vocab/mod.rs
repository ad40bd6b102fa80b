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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Something that reads bytes one at a time; `None` rejects.
pub trait ByteRecognizer {
    type State: Copy + PartialEq;
    fn step(&mut self, state: Self::State, byte: u8) -> Option<Self::State>;
}

/// Errors building a vocabulary.
#[derive(Debug, thiserror::Error)]
pub enum VocabError {
    #[error("token {id} ({text:?}) has a character outside the byte-level alphabet")]
    NotByteLevel { id: u32, text: String },
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
        let byte_sets = bytes
            .iter()
            .map(|token| {
                let mut set = [0u64; 4];
                token.iter().for_each(|&b| set[(b / 64) as usize] |= 1 << (b % 64));
                set
            })
            .collect();
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
        for byte in (0..=255u8).filter(|&b| contains(run_bytes, b)) {
            let tokens = self.trie.tokens_starting_with(byte);
            if contains(head, byte) { kept.push(tokens) } else { dropped.push(tokens) }
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
        if byte_count(set) < 32 {
            return Box::new(self.trie.tokens_within(set).into_iter().map(|t| t as usize));
        }
        Box::new(self.byte_sets.iter().enumerate().filter(move |(id, bytes)| !self.special[*id] && subset(bytes, set)).map(|(id, _)| id))
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

/// `<0x0A>` → `0x0A`.
fn byte_fallback(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    (hex.len() == 2).then(|| u8::from_str_radix(hex, 16).ok()).flatten()
}

/// GPT-2's byte ↔ printable-character table, inverted.
pub(crate) fn gpt2_char_to_byte() -> HashMap<char, u8> {
    let mut printable: Vec<u8> = (b'!'..=b'~').chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut map: HashMap<char, u8> = printable.iter().map(|&b| (b as char, b)).collect();
    let mut n = 0u32;
    for b in 0..=255u8 {
        if !printable.contains(&b) {
            map.insert(char::from_u32(256 + n).expect("valid char"), b);
            printable.push(b);
            n += 1;
        }
    }
    map
}

/// A node of the flattened trie, in depth-first pre-order.
#[derive(Debug, Clone, Copy)]
struct TrieNode {
    byte: u8,
    depth: u16,
    /// Token ending here, or `NO_TOKEN`.
    token: u32,
    /// Index one past this node's last descendant.
    subtree_end: u32,
    /// The subtree's tokens are `order[first_token..subtree token end]`,
    /// where the end is the next subtree's `first_token`.
    first_token: u32,
}

/// A set of bytes as four 64-bit words.
pub type ByteSet = [u64; 4];

/// The bytes a JSON string holds unescaped, one character each: U+0020..=U+007F but `"` and
/// `\`. (Multi-byte UTF-8 characters are not a run: their bytes lead to other states.)
pub fn json_string_run_bytes() -> ByteSet {
    let mut set = [0u64; 4];
    for b in (0u8..0x80).filter(|&b| !json_escapes(b)) {
        set[(b / 64) as usize] |= 1 << (b % 64);
    }
    set
}

/// The bytes a JSON string body writes as an escape sequence (`serde_json`'s canonical form:
/// the quote, the backslash and the control characters; DEL is written as it is). The one
/// place this is decided: the grammar's string characters, its pattern products and the
/// vocabulary's text tokens all ask here.
pub fn json_escapes(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// A run as [`Vocabulary::run_split`] keys it: its bytes, its (rounded) length, whether closed.
type RunKey = (ByteSet, usize, bool);

/// Runs whose split a vocabulary keeps (a handful per kind of string body).
const MAX_RUNS_CACHED: usize = 256;

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
    up_to: Vec<Arc<[u64]>>,
    /// Every other token.
    pub rest: Arc<TokenTrie>,
}

impl StringChars {
    fn new(vocab: &Vocabulary, plain: &RunSplit) -> Self {
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
}

/// Whether every byte of `a` is in `b`.
#[inline]
fn subset(a: &ByteSet, b: &ByteSet) -> bool {
    (a[0] & !b[0]) | (a[1] & !b[1]) | (a[2] & !b[2]) | (a[3] & !b[3]) == 0
}

/// Whether `byte` is in `set`.
#[inline]
pub fn contains(set: &ByteSet, byte: u8) -> bool {
    set[(byte / 64) as usize] & (1 << (byte % 64)) != 0
}

/// How many bytes `set` holds.
#[inline]
pub fn byte_count(set: &ByteSet) -> u32 {
    set.iter().map(|w| w.count_ones()).sum()
}

/// The bytes `start..=end`.
pub fn byte_range(start: u8, end: u8) -> ByteSet {
    let mut set = [0u64; 4];
    (start..=end).for_each(|b| set[(b / 64) as usize] |= 1 << (b % 64));
    set
}

/// The bytes a character inside a JSON string body can start with: a plain byte or a
/// UTF-8 lead byte.
pub fn json_text_first_bytes() -> ByteSet {
    let (plain, leads) = (json_string_run_bytes(), byte_range(0xC2, 0xF4));
    std::array::from_fn(|w| plain[w] | leads[w])
}

const NO_TOKEN: u32 = u32::MAX;

/// Byte trie over the vocabulary, flattened so that skipping a subtree is one
/// jump: a walk visits each live node once and prunes dead subtrees whole.
#[derive(Debug, Clone)]
pub struct TokenTrie {
    nodes: Vec<TrieNode>,
    /// Bytes that occur in each node's subtree, this node's byte included.
    subtree_bytes: Vec<ByteSet>,
    /// The longest token (in bytes) in each node's subtree.
    subtree_depth: Vec<u16>,
    /// Token ids in trie order (duplicates included), so a subtree's
    /// tokens are one contiguous slice.
    order: Vec<u32>,
    /// Extra ids for tokens that share their bytes with another token.
    duplicates: HashMap<u32, Vec<u32>>,
    max_depth: usize,
    /// The node of each first byte (0: none), so that a walk over a few first bytes
    /// jumps to them instead of stepping over every other first byte's subtree (one
    /// cache miss each, ~5 us over the ~250 of a byte-level vocabulary).
    roots: Box<[u32; 256]>,
}

impl TokenTrie {
    fn build(bytes: &[Vec<u8>], special: &[bool]) -> Self {
        let mut order: Vec<u32> = (0..bytes.len() as u32)
            .filter(|&i| !special[i as usize] && !bytes[i as usize].is_empty())
            .collect();
        order.sort_by(|&a, &b| bytes[a as usize].cmp(&bytes[b as usize]).then(a.cmp(&b)));
        Self::build_sorted(bytes, order)
    }

    /// The trie over the tokens this one holds that `keep` keeps (this trie's order is
    /// already sorted, so no sort is needed).
    fn subset(&self, bytes: &[Vec<u8>], keep: impl Fn(u32) -> bool) -> Self {
        Self::build_sorted(bytes, self.order.iter().copied().filter(|&t| keep(t)).collect())
    }

    /// Builds from non-empty tokens sorted by (bytes, id).
    fn build_sorted(bytes: &[Vec<u8>], order: Vec<u32>) -> Self {
        let mut nodes = vec![TrieNode { byte: 0, depth: 0, token: NO_TOKEN, subtree_end: 0, first_token: 0 }];
        let mut duplicates: HashMap<u32, Vec<u32>> = HashMap::new();
        // Path of node indices from the root to the last inserted node.
        let mut path: Vec<usize> = vec![0];
        let mut prev: &[u8] = &[];
        let mut max_depth = 0;
        for id in order {
            let word = bytes[id as usize].as_slice();
            let common = word.iter().zip(prev).take_while(|(a, b)| a == b).count();
            if common == word.len() && word.len() == prev.len() {
                let owner = nodes[*path.last().expect("path")].token;
                duplicates.entry(owner).or_default().push(id);
                continue;
            }
            // Close the nodes that are not on the new word's path.
            while path.len() > common + 1 {
                let done = path.pop().expect("path");
                nodes[done].subtree_end = nodes.len() as u32;
            }
            for (d, &byte) in word.iter().enumerate().skip(common) {
                nodes.push(TrieNode { byte, depth: (d + 1) as u16, token: NO_TOKEN, subtree_end: 0, first_token: 0 });
                path.push(nodes.len() - 1);
            }
            nodes[*path.last().expect("path")].token = id;
            max_depth = max_depth.max(word.len());
            prev = word;
        }
        let end = nodes.len() as u32;
        for idx in path {
            nodes[idx].subtree_end = end;
        }
        // Token order, subtree byte sets (children come after parents, so a
        // reverse sweep folds each node into its parent).
        let mut order = Vec::new();
        for node in nodes.iter_mut() {
            node.first_token = order.len() as u32;
            if node.token != NO_TOKEN {
                order.push(node.token);
                order.extend(duplicates.get(&node.token).into_iter().flatten().copied());
            }
        }
        let mut subtree_bytes = vec![[0u64; 4]; nodes.len()];
        let mut parents = vec![0usize; nodes.len()];
        let mut stack: Vec<usize> = vec![0];
        for i in 1..nodes.len() {
            stack.truncate(nodes[i].depth as usize);
            parents[i] = *stack.last().expect("root stays");
            stack.push(i);
        }
        let mut subtree_depth: Vec<u16> = nodes.iter().map(|n| if n.token != NO_TOKEN { n.depth } else { 0 }).collect();
        for i in (1..nodes.len()).rev() {
            let b = nodes[i].byte;
            let deepest = subtree_depth[i];
            let up = &mut subtree_depth[parents[i]];
            *up = (*up).max(deepest);
            subtree_bytes[i][(b / 64) as usize] |= 1 << (b % 64);
            let (own, parent) = (subtree_bytes[i], parents[i]);
            for w in 0..4 {
                subtree_bytes[parent][w] |= own[w];
            }
        }
        let mut roots = Box::new([0u32; 256]);
        let mut i = 1;
        while i < nodes.len() {
            roots[nodes[i].byte as usize] = i as u32;
            i = nodes[i].subtree_end as usize;
        }
        Self { nodes, subtree_bytes, subtree_depth, order, duplicates, max_depth, roots }
    }

    /// The tokens made of `set` bytes only, by walking the paths that stay inside the set.
    fn tokens_within(&self, set: &ByteSet) -> Vec<u32> {
        let mut out = Vec::new();
        for first in (0..=255u8).filter(|&b| contains(set, b) && self.roots[b as usize] != 0) {
            let start = self.roots[first as usize] as usize;
            let end = self.nodes[start].subtree_end as usize;
            let mut i = start;
            while i < end {
                let node = self.nodes[i];
                if !contains(set, node.byte) {
                    i = node.subtree_end as usize;
                    continue;
                }
                if node.token != NO_TOKEN {
                    out.push(node.token);
                    out.extend(self.duplicates.get(&node.token).into_iter().flatten().copied());
                }
                i += 1;
            }
        }
        out
    }

    /// The tokens that start with `byte` (one contiguous slice of the trie's order).
    pub fn tokens_starting_with(&self, byte: u8) -> &[u32] {
        match self.roots[byte as usize] as usize {
            0 => &[],
            i => self.subtree_tokens(i),
        }
    }

    /// The tokens of node `i`'s subtree, itself included (a contiguous slice of the order).
    fn subtree_tokens(&self, i: usize) -> &[u32] {
        let node = self.nodes[i];
        let end = self.nodes.get(node.subtree_end as usize).map_or(self.order.len(), |n| n.first_token as usize);
        &self.order[node.first_token as usize..end]
    }

    /// The longest token, in bytes.
    pub fn max_token_len(&self) -> usize {
        self.max_depth
    }

    /// Number of nodes, the root included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the trie holds no token.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }

    /// Calls `on_token(id, state)` for every token the recognizer reads whole,
    /// with the recognizer's state after its last byte.
    pub fn walk<R: ByteRecognizer>(&self, recognizer: &mut R, start: R::State, on_token: impl FnMut(u32, R::State)) {
        self.walk_with_run(recognizer, start, &[0; 4], 0, on_token);
    }

    /// Like [`walk`](Self::walk), given a byte set on which the recognizer,
    /// from `start`, stays alive for at least `run` bytes whatever those bytes
    /// are (inside a JSON string: plain characters, up to the room left).
    /// A subtree reached by run bytes only, whose own bytes all lie in the set
    /// and whose tokens are at most `run` bytes long, is accepted whole,
    /// without stepping the recognizer; for those tokens `on_token` receives
    /// `start` as the state.
    pub fn walk_with_run<R: ByteRecognizer>(
        &self,
        recognizer: &mut R,
        start: R::State,
        run_bytes: &ByteSet,
        run: usize,
        mut on_token: impl FnMut(u32, R::State),
    ) {
        self.walk_runs(recognizer, start, run_bytes, run, |visit| match visit {
            Visit::Token(token, state) => on_token(token, state),
            Visit::Run(tokens) => tokens.iter().for_each(|&t| on_token(t, start)),
        });
    }

    /// The walk behind [`walk_with_run`](Self::walk_with_run): subtrees
    /// accepted whole are reported as one [`Visit::Run`] slice, so a caller
    /// that already holds a run's tokens ([`Vocabulary::run_split`]) can skip them.
    pub fn walk_runs<R: ByteRecognizer>(
        &self,
        recognizer: &mut R,
        start: R::State,
        run_bytes: &ByteSet,
        run: usize,
        visit: impl FnMut(Visit<'_, R::State>),
    ) {
        self.walk_from(&[u64::MAX; 4], recognizer, start, run_bytes, run, visit);
    }

    /// [`walk_runs`](Self::walk_runs) over the tokens whose first byte is in `first_bytes` only.
    pub fn walk_from<R: ByteRecognizer>(
        &self,
        first_bytes: &ByteSet,
        recognizer: &mut R,
        start: R::State,
        run_bytes: &ByteSet,
        run: usize,
        mut visit: impl FnMut(Visit<'_, R::State>),
    ) {
        let skipping = run > 0 && run_bytes.iter().any(|&w| w != 0);
        let mut stack: Vec<R::State> = Vec::with_capacity(self.max_depth + 1);
        stack.push(start);
        // on_run[d]: the path to depth d is made of run bytes only.
        let mut on_run: Vec<bool> = Vec::with_capacity(self.max_depth + 1);
        on_run.push(true);
        let nodes = &self.nodes;
        // One subtree per first byte in the filter, found through the root index.
        let all = first_bytes.iter().all(|&w| w == u64::MAX);
        let firsts = (0..=255u8).filter(|&b| self.roots[b as usize] != 0 && (all || contains(first_bytes, b)));
        for first in firsts {
            let mut i = self.roots[first as usize] as usize;
            let end = nodes[i].subtree_end as usize;
            while i < end {
                let node = nodes[i];
                let depth = node.depth as usize;
                stack.truncate(depth);
                on_run.truncate(depth);
                let parent = stack[depth - 1];
                if skipping
                    && on_run[depth - 1]
                    && self.subtree_depth[i] as usize <= run
                    && subset(&self.subtree_bytes[i], run_bytes)
                {
                    visit(Visit::Run(self.subtree_tokens(i)));
                    i = node.subtree_end as usize;
                    continue;
                }
                match recognizer.step(parent, node.byte) {
                    None => i = node.subtree_end as usize,
                    Some(next) => {
                        if node.token != NO_TOKEN {
                            visit(Visit::Token(node.token, next));
                            if let Some(extra) = self.duplicates.get(&node.token) {
                                for &id in extra {
                                    visit(Visit::Token(id, next));
                                }
                            }
                        }
                        stack.push(next);
                        on_run.push(on_run[depth - 1] && contains(run_bytes, node.byte));
                        i += 1;
                    }
                }
            }
        }
    }
}

/// What [`TokenTrie::walk_runs`] reports.
#[derive(Debug)]
pub enum Visit<'a, S> {
    /// A token the recognizer accepted, with the state after it.
    Token(u32, S),
    /// Tokens accepted whole as run bytes; the recognizer stays where it
    /// started (a self-loop) or moves along the run.
    Run(&'a [u32]),
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

    #[test]
    fn gpt2_alphabet_is_a_bijection() {
        let map = gpt2_char_to_byte();
        assert_eq!(map.len(), 256);
        assert_eq!(map[&'Ġ'], b' ');
        assert_eq!(map[&'Ċ'], b'\n');
    }
}
