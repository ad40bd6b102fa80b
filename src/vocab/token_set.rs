//! A set of token ids over one vocabulary, as a bitset: what a mask is.

/// A set of token ids, as a bitset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSet {
    words: Vec<u64>,
    len: usize,
}

impl TokenSet {
    /// An empty set over `len` ids.
    pub fn new(len: usize) -> Self {
        Self { words: vec![0; len.div_ceil(64)], len }
    }
    /// From bitset words (bit `id % 64` of word `id / 64`) over `len` ids.
    pub fn from_words(words: &[u64], len: usize) -> Self {
        Self { words: words.to_vec(), len }
    }
    /// Adds an id.
    pub fn insert(&mut self, id: u32) {
        self.words[id as usize / 64] |= 1 << (id % 64);
    }
    /// Adds the tokens a walk of the trie found readable ([`super::TokenTrie::walk_from`]),
    /// except a [`Visit::Run`]'s, which a mask that starts from its run's split holds already.
    pub fn insert_walked<S>(&mut self, visit: &super::Visit<'_, S>) {
        match visit {
            super::Visit::Token(token, _) => self.insert(*token),
            super::Visit::Live(tokens) => tokens.iter().for_each(|&t| self.insert(t)),
            super::Visit::Run(_) => {}
        }
    }
    /// Whether an id is in the set.
    pub fn contains(&self, id: u32) -> bool {
        (id as usize) < self.len && self.words[id as usize / 64] & (1 << (id % 64)) != 0
    }
    /// Number of ids in the set.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }
    /// Number of ids the set ranges over (the vocabulary size).
    pub fn universe(&self) -> usize {
        self.len
    }
    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }
    /// The ids, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros();
                w &= w - 1;
                Some(i as u32 * 64 + bit)
            })
        })
    }
    /// The raw 64-bit words (bit `i` of word `i / 64` is id `i`).
    pub fn words(&self) -> &[u64] {
        &self.words
    }
}
