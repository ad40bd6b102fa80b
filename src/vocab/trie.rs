//! The vocabulary's byte trie, flattened in depth-first pre-order so that skipping a subtree
//! is one jump, and its walks against a [`ByteRecognizer`].

use std::collections::HashMap;

use super::ByteRecognizer;
use crate::bytes::ByteSet;

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

/// A walk asks whether the recognizer loops on a subtree's bytes only at a node with at
/// least this many nodes below it (itself included): below that, stepping is as cheap.
pub(super) const MIN_LOOP_SUBTREE: usize = 8;

/// A walk that does not need each token's end state asks whether every string of a subtree's
/// bytes keeps the recognizer alive ([`ByteRecognizer::stays_alive`]) only at a node with at
/// least this many nodes below it, and lets that search take at most a quarter of as many
/// steps: a failed search then costs a fraction of the walk it could have saved.
pub(super) const MIN_LIVE_SUBTREE: usize = 64;

/// Byte trie over the vocabulary, flattened so that skipping a subtree is one
/// jump: a walk visits each live node once and prunes dead subtrees whole.
#[derive(Debug, Clone)]
pub struct TokenTrie {
    pub(super) nodes: Vec<TrieNode>,
    /// Bytes that occur in each node's subtree, this node's byte included.
    pub(super) subtree_bytes: Vec<ByteSet>,
    /// The longest token (in bytes) in each node's subtree.
    pub(super) subtree_depth: Vec<u16>,
    /// Token ids in trie order, so a subtree's tokens are one contiguous slice; a node's
    /// own token comes first, then the tokens that share its bytes.
    pub(super) order: Vec<u32>,
    pub(super) max_depth: usize,
    /// The children of every node as one flat list, by increasing byte: node `i`'s are
    /// `child_bytes[child_start[i]..child_start[i + 1]]` (and the same range of
    /// `child_nodes`), so finding a child by its byte reads one short contiguous slice
    /// instead of hopping over the earlier children's subtrees (one cache miss each, ~5 µs
    /// over the ~250 first bytes of a byte-level vocabulary).
    child_start: Vec<u32>,
    child_bytes: Vec<u8>,
    child_nodes: Vec<u32>,
}

impl TokenTrie {
    pub(super) fn build(bytes: &[Vec<u8>], special: &[bool]) -> Self {
        let mut order: Vec<u32> = (0..bytes.len() as u32).filter(|&i| !special[i as usize] && !bytes[i as usize].is_empty()).collect();
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
        // Pre-order lists each parent's children in byte order.
        let mut child_start = vec![0u32; nodes.len() + 1];
        parents.iter().skip(1).for_each(|&p| child_start[p + 1] += 1);
        (1..child_start.len()).for_each(|i| child_start[i] += child_start[i - 1]);
        let mut filled: Vec<u32> = child_start[..nodes.len()].to_vec();
        let mut child_bytes = vec![0u8; nodes.len().saturating_sub(1)];
        let mut child_nodes = vec![0u32; nodes.len().saturating_sub(1)];
        for (i, &p) in parents.iter().enumerate().skip(1) {
            let at = filled[p] as usize;
            (child_bytes[at], child_nodes[at]) = (nodes[i].byte, i as u32);
            filled[p] += 1;
        }
        Self { nodes, subtree_bytes, subtree_depth, order, max_depth, child_start, child_bytes, child_nodes }
    }

    /// The tokens made of `set` bytes only, by walking the paths that stay inside the set.
    pub(super) fn tokens_within(&self, set: &ByteSet) -> Vec<u32> {
        let mut out = Vec::new();
        for (_, first) in self.children(Self::ROOT, set) {
            let start = first.0 as usize;
            let end = self.nodes[start].subtree_end as usize;
            let mut i = start;
            while i < end {
                let node = self.nodes[i];
                if !set.contains(node.byte) {
                    i = node.subtree_end as usize;
                    continue;
                }
                out.extend_from_slice(self.own_tokens(i));
                i += 1;
            }
        }
        out
    }

    /// The tokens that start with `byte` (one contiguous slice of the trie's order).
    pub fn tokens_starting_with(&self, byte: u8) -> &[u32] {
        self.child(Self::ROOT, byte).map_or(&[], |first| self.subtree_tokens(first.0 as usize))
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
            Visit::Live(_) => unreachable!("walk_runs reports every token's end state"),
        });
    }

    /// The walk behind [`walk_with_run`](Self::walk_with_run): subtrees
    /// accepted whole are reported as one [`Visit::Run`] slice, so a caller
    /// that already holds a run's tokens ([`Vocabulary::run_split`]) can skip them.
    /// Every other token comes with its end state (never a [`Visit::Live`]).
    pub fn walk_runs<R: ByteRecognizer>(
        &self,
        recognizer: &mut R,
        start: R::State,
        run_bytes: &ByteSet,
        run: usize,
        visit: impl FnMut(Visit<'_, R::State>),
    ) {
        self.walk_inner(Self::ROOT, &ByteSet::ALL, recognizer, start, run_bytes, run, true, visit);
    }

    /// [`walk_runs`](Self::walk_runs) over the tokens whose first byte is in `first_bytes` only,
    /// for a caller that needs to know which tokens are read, not where they end: a large
    /// subtree on whose bytes the recognizer stays alive comes as one [`Visit::Live`] slice.
    pub fn walk_from<R: ByteRecognizer>(
        &self,
        first_bytes: &ByteSet,
        recognizer: &mut R,
        start: R::State,
        run_bytes: &ByteSet,
        run: usize,
        visit: impl FnMut(Visit<'_, R::State>),
    ) {
        self.walk_below(Self::ROOT, first_bytes, recognizer, start, run_bytes, run, visit);
    }

    /// [`walk_from`](Self::walk_from) below node `parent`, whose prefix the recognizer has
    /// read to reach `start`: the tokens that extend the prefix by a byte in `first_bytes`.
    /// A run counts from `start`.
    #[allow(clippy::too_many_arguments)]
    pub fn walk_below<R: ByteRecognizer>(
        &self,
        parent: TrieNodeId,
        first_bytes: &ByteSet,
        recognizer: &mut R,
        start: R::State,
        run_bytes: &ByteSet,
        run: usize,
        visit: impl FnMut(Visit<'_, R::State>),
    ) {
        self.walk_inner(parent, first_bytes, recognizer, start, run_bytes, run, false, visit);
    }

    /// The walk: `end_states` says whether every token must come with its end state (no
    /// [`Visit::Live`] then).
    #[allow(clippy::too_many_arguments)]
    fn walk_inner<R: ByteRecognizer>(
        &self,
        parent: TrieNodeId,
        first_bytes: &ByteSet,
        recognizer: &mut R,
        start: R::State,
        run_bytes: &ByteSet,
        run: usize,
        end_states: bool,
        mut visit: impl FnMut(Visit<'_, R::State>),
    ) {
        let base = self.nodes[parent.0 as usize].depth as usize;
        let skipping = run > 0 && !run_bytes.is_empty();
        let mut stack: Vec<R::State> = Vec::with_capacity(self.max_depth + 1 - base);
        stack.push(start);
        // on_run[d]: the path from `start` to relative depth d is made of run bytes only.
        let mut on_run: Vec<bool> = Vec::with_capacity(self.max_depth + 1 - base);
        on_run.push(true);
        let nodes = &self.nodes;
        for (_, child) in self.children(parent, first_bytes) {
            let mut i = child.0 as usize;
            let end = nodes[i].subtree_end as usize;
            while i < end {
                let node = nodes[i];
                let depth = node.depth as usize - base;
                stack.truncate(depth);
                on_run.truncate(depth);
                let parent = stack[depth - 1];
                if skipping
                    && on_run[depth - 1]
                    && self.subtree_depth[i] as usize - base <= run
                    && self.subtree_bytes[i].is_subset(run_bytes)
                {
                    visit(Visit::Run(self.subtree_tokens(i)));
                    i = node.subtree_end as usize;
                    continue;
                }
                match recognizer.step(parent, node.byte) {
                    None => i = node.subtree_end as usize,
                    Some(next) => {
                        let size = node.subtree_end as usize - i;
                        // A subtree whose bytes all loop the state back to itself is read
                        // whole: each of its tokens ends in `next`.
                        if size >= MIN_LOOP_SUBTREE && recognizer.loops_on(next, &self.subtree_bytes[i]) {
                            for &id in self.subtree_tokens(i) {
                                visit(Visit::Token(id, next));
                            }
                            i = node.subtree_end as usize;
                            continue;
                        }
                        // So is one where every string of the bytes below, up to its longest
                        // token, keeps the recognizer alive; the tokens' end states differ.
                        if !end_states && size >= MIN_LIVE_SUBTREE {
                            let below = self
                                .children(TrieNodeId(i as u32), &ByteSet::ALL)
                                .fold(ByteSet::EMPTY, |acc, (_, c)| acc | self.subtree_bytes[c.0 as usize]);
                            let longest = self.subtree_depth[i].saturating_sub(node.depth) as usize;
                            if recognizer.stays_alive(next, &below, longest, size / 4) {
                                visit(Visit::Live(self.subtree_tokens(i)));
                                i = node.subtree_end as usize;
                                continue;
                            }
                        }
                        for &id in self.own_tokens(i) {
                            visit(Visit::Token(id, next));
                        }
                        stack.push(next);
                        on_run.push(on_run[depth - 1] && run_bytes.contains(node.byte));
                        i += 1;
                    }
                }
            }
        }
    }

    /// The root: the empty prefix.
    pub const ROOT: TrieNodeId = TrieNodeId(0);

    /// The children of a node whose byte is in `bytes`, by increasing byte: each extends
    /// the node's prefix by one byte.
    pub fn children<'a>(&'a self, node: TrieNodeId, bytes: &'a ByteSet) -> impl Iterator<Item = (u8, TrieNodeId)> + 'a {
        let (keys, ids) = self.child_list(node);
        // A few bytes are looked up; otherwise the children are scanned.
        let few = bytes.len() <= 4 && keys.len() > 8;
        let looked_up = few.then(|| bytes.iter().filter_map(move |b| Some((b, self.child(node, b)?)))).into_iter().flatten();
        let scanned = (!few)
            .then(|| keys.iter().zip(ids).filter(|(b, _)| bytes.contains(**b)).map(|(&b, &id)| (b, TrieNodeId(id))))
            .into_iter()
            .flatten();
        looked_up.chain(scanned)
    }

    /// The child of a node that extends its prefix by `byte`.
    pub fn child(&self, node: TrieNodeId, byte: u8) -> Option<TrieNodeId> {
        let (keys, ids) = self.child_list(node);
        keys.binary_search(&byte).ok().map(|k| TrieNodeId(ids[k]))
    }

    /// A node's children: their bytes (increasing) and their nodes.
    fn child_list(&self, node: TrieNodeId) -> (&[u8], &[u32]) {
        let at = node.0 as usize;
        let range = self.child_start[at] as usize..self.child_start[at + 1] as usize;
        (&self.child_bytes[range.clone()], &self.child_nodes[range])
    }

    /// The tokens whose bytes are exactly the node's prefix (one, or several that share
    /// their bytes; none for a node inside longer tokens only).
    pub fn tokens_at(&self, node: TrieNodeId) -> &[u32] {
        self.own_tokens(node.0 as usize)
    }

    /// Node `i`'s own tokens: in the order, they come before its descendants'.
    #[inline]
    fn own_tokens(&self, i: usize) -> &[u32] {
        let end = self.nodes.get(i + 1).map_or(self.order.len(), |n| n.first_token as usize);
        &self.order[self.nodes[i].first_token as usize..end]
    }

    /// Whether no token extends the node's prefix.
    pub fn is_leaf(&self, node: TrieNodeId) -> bool {
        let at = node.0 as usize;
        self.nodes[at].subtree_end as usize == at + 1
    }
}

/// A node of a [`TokenTrie`]: the prefix its path spells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrieNodeId(u32);

/// What a walk of the trie reports ([`TokenTrie::walk_runs`], [`TokenTrie::walk_from`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum Visit<'a, S> {
    /// A token the recognizer accepted, with the state after it.
    Token(u32, S),
    /// Tokens accepted whole as run bytes; the recognizer stays where it
    /// started (a self-loop) or moves along the run.
    Run(&'a [u32]),
    /// Tokens accepted whole because every string of their subtree's bytes, up to its longest
    /// token, keeps the recognizer alive ([`ByteRecognizer::stays_alive`]); where each ends is
    /// not known. Only [`TokenTrie::walk_from`] and [`TokenTrie::walk_below`] report these.
    Live(&'a [u32]),
}
