//! The vocabulary's byte trie, flattened in depth-first pre-order so that skipping a subtree
//! is one jump, and its walks against a [`ByteRecognizer`].

use std::collections::HashMap;

use crate::bytes::ByteSet;
use super::ByteRecognizer;

#[derive(Debug, Clone, Copy)]
pub(super) struct TrieNode {
    pub(super) byte: u8,
    pub(super) depth: u16,
    /// Token ending here, or `NO_TOKEN`.
    pub(super) token: u32,
    /// Index one past this node's last descendant.
    pub(super) subtree_end: u32,
    /// The subtree's tokens are `order[first_token..subtree token end]`,
    /// where the end is the next subtree's `first_token`.
    pub(super) first_token: u32,
}

pub(super) const NO_TOKEN: u32 = u32::MAX;

/// Byte trie over the vocabulary, flattened so that skipping a subtree is one
/// jump: a walk visits each live node once and prunes dead subtrees whole.
#[derive(Debug, Clone)]
pub struct TokenTrie {
    pub(super) nodes: Vec<TrieNode>,
    /// Bytes that occur in each node's subtree, this node's byte included.
    pub(super) subtree_bytes: Vec<ByteSet>,
    /// The longest token (in bytes) in each node's subtree.
    pub(super) subtree_depth: Vec<u16>,
    /// Token ids in trie order (duplicates included), so a subtree's
    /// tokens are one contiguous slice.
    pub(super) order: Vec<u32>,
    /// Extra ids for tokens that share their bytes with another token.
    pub(super) duplicates: HashMap<u32, Vec<u32>>,
    pub(super) max_depth: usize,
    /// The node of each first byte (0: none), so that a walk over a few first bytes
    /// jumps to them instead of stepping over every other first byte's subtree (one
    /// cache miss each, ~5 us over the ~250 of a byte-level vocabulary).
    pub(super) roots: Box<[u32; 256]>,
}

impl TokenTrie {
    pub(super) fn build(bytes: &[Vec<u8>], special: &[bool]) -> Self {
        let mut order: Vec<u32> = (0..bytes.len() as u32)
            .filter(|&i| !special[i as usize] && !bytes[i as usize].is_empty())
            .collect();
        order.sort_by(|&a, &b| bytes[a as usize].cmp(&bytes[b as usize]).then(a.cmp(&b)));
        Self::build_sorted(bytes, order)
    }

    /// The trie over the tokens this one holds that `keep` keeps (this trie's order is
    /// already sorted, so no sort is needed).
    pub(super) fn subset(&self, bytes: &[Vec<u8>], keep: impl Fn(u32) -> bool) -> Self {
        Self::build_sorted(bytes, self.order.iter().copied().filter(|&t| keep(t)).collect())
    }

    /// Builds from non-empty tokens sorted by (bytes, id).
    pub(super) fn build_sorted(bytes: &[Vec<u8>], order: Vec<u32>) -> Self {
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
        let mut subtree_bytes = vec![ByteSet::EMPTY; nodes.len()];
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
            subtree_bytes[i].insert(b);
            let (own, parent) = (subtree_bytes[i], parents[i]);
            subtree_bytes[parent] = subtree_bytes[parent] | own;
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
    pub(super) fn tokens_within(&self, set: &ByteSet) -> Vec<u32> {
        let mut out = Vec::new();
        for first in set.iter().filter(|&b| self.roots[b as usize] != 0) {
            let start = self.roots[first as usize] as usize;
            let end = self.nodes[start].subtree_end as usize;
            let mut i = start;
            while i < end {
                let node = self.nodes[i];
                if !set.contains(node.byte) {
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
    pub(super) fn subtree_tokens(&self, i: usize) -> &[u32] {
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
        self.walk_with_run(recognizer, start, &ByteSet::EMPTY, 0, on_token);
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
        self.walk_from(&ByteSet::ALL, recognizer, start, run_bytes, run, visit);
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
        let skipping = run > 0 && !run_bytes.is_empty();
        let mut stack: Vec<R::State> = Vec::with_capacity(self.max_depth + 1);
        stack.push(start);
        // on_run[d]: the path to depth d is made of run bytes only.
        let mut on_run: Vec<bool> = Vec::with_capacity(self.max_depth + 1);
        on_run.push(true);
        let nodes = &self.nodes;
        // One subtree per first byte in the filter, found through the root index.
        let all = first_bytes.is_full();
        let firsts = (0..=255u8).filter(|&b| self.roots[b as usize] != 0 && (all || first_bytes.contains(b)));
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
                    && self.subtree_bytes[i].is_subset(run_bytes)
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
                        on_run.push(on_run[depth - 1] && run_bytes.contains(node.byte));
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
