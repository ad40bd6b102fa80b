//! The byte tries of JSON characters: every encoding of a character of a
//! set inside a JSON string, as one deterministic trie the NFA holds as
//! one state per node.

use std::collections::HashMap;

use regex_syntax::utf8::Utf8Sequences;

/// The encodings of one character of a set inside a JSON string (UTF-8
/// sequences and `serde_json`'s escapes) as a deterministic byte trie whose
/// equal suffixes are shared: every node's byte ranges are disjoint, so it is
/// one NFA state (`Sparse`). Nodes come children first; the last is the root.
/// A transition's target is a node index, or `None` for the character's end.
pub(crate) struct CharTrie {
    pub(crate) nodes: Vec<Vec<TrieEdge>>,
}

/// A [`CharTrie`] transition: a byte range and the node it leads to (`None`: the end).
pub(crate) type TrieEdge = (u8, u8, Option<usize>);

/// Character encodings as sequences of byte ranges.
type Encodings = Vec<Vec<(u8, u8)>>;

/// The trie of any character: what [`super::strings`] looks for in a built NFA.
pub(crate) fn any_char_trie() -> std::sync::Arc<CharTrie> {
    CharTrie::for_set(&[('\0', char::MAX)])
}

/// Character sets whose [`CharTrie`] a process keeps (a schema's strings use a few).
const MAX_CHAR_TRIES: usize = 4096;

impl CharTrie {
    /// The trie of a character set, built once per process: every compile uses the one
    /// for any character, and a bounded string emits one per position.
    pub(super) fn for_set(ranges: &[(char, char)]) -> std::sync::Arc<Self> {
        type Tries = HashMap<Vec<(char, char)>, std::sync::Arc<CharTrie>>;
        static TRIES: std::sync::OnceLock<std::sync::Mutex<Tries>> = std::sync::OnceLock::new();
        let mut tries = TRIES.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        if let Some(trie) = tries.get(ranges) {
            return trie.clone();
        }
        if tries.len() >= MAX_CHAR_TRIES {
            tries.clear();
        }
        let trie = std::sync::Arc::new(Self::json(ranges));
        tries.insert(ranges.to_vec(), trie.clone());
        trie
    }

    fn json(ranges: &[(char, char)]) -> Self {
        let mut seqs: Encodings = Vec::new();
        for &(lo, hi) in ranges {
            // Literal part: U+0020..=U+10FFFF without '"' and '\\'.
            for (a, b) in [(' ', '!'), ('#', '['), (']', char::MAX)] {
                let (l, h) = (lo.max(a), hi.min(b));
                if l <= h {
                    seqs.extend(Utf8Sequences::new(l, h).map(|seq| seq.as_slice().iter().map(|r| (r.start, r.end)).collect::<Vec<_>>()));
                }
            }
            // Escaped part.
            for special in (0u8..0x80).filter(|&b| crate::bytes::json_escapes(b)).map(char::from) {
                if lo <= special && special <= hi {
                    let escaped = serde_json::to_string(&special.to_string()).expect("string serialises");
                    seqs.push(escaped.as_bytes()[1..escaped.len() - 1].iter().map(|&b| (b, b)).collect());
                }
            }
        }
        let mut trie = Self { nodes: Vec::new() };
        if !seqs.is_empty() {
            trie.node(seqs, &mut HashMap::new());
        }
        trie
    }

    /// The node for a set of non-empty sequences (the encodings are prefix-free, so none
    /// ends where another goes on); `None` when every sequence has ended.
    fn node(&mut self, mut seqs: Encodings, memo: &mut HashMap<Encodings, Option<usize>>) -> Option<usize> {
        seqs.sort();
        seqs.dedup();
        if seqs.iter().all(Vec::is_empty) {
            return None;
        }
        debug_assert!(seqs.iter().all(|s| !s.is_empty()), "character encodings are prefix-free");
        if let Some(&node) = memo.get(&seqs) {
            return node;
        }
        // Cut the byte space where any first range starts or ends.
        let mut cuts: Vec<u16> = seqs.iter().flat_map(|s| [s[0].0 as u16, s[0].1 as u16 + 1]).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut trans: Vec<TrieEdge> = Vec::new();
        for w in cuts.windows(2) {
            let (lo, hi) = (w[0] as u8, (w[1] - 1) as u8);
            let tails: Encodings = seqs.iter().filter(|s| s[0].0 <= lo && hi <= s[0].1).map(|s| s[1..].to_vec()).collect();
            if tails.is_empty() {
                continue;
            }
            let child = self.node(tails, memo);
            match trans.last_mut() {
                Some(t) if t.2 == child && t.1 as u16 + 1 == lo as u16 => t.1 = hi,
                _ => trans.push((lo, hi, child)),
            }
        }
        self.nodes.push(trans);
        let node = Some(self.nodes.len() - 1);
        memo.insert(seqs, node);
        node
    }
}
