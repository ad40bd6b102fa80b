//! Token-level constraint: a [`Grammar`] over a [`Vocabulary`].
//!
//! A [`TokenAutomaton`] is built once per (schema, vocabulary) and shared;
//! it caches, per DFA state, the mask of allowed tokens, the bytes the state
//! forces, and the distance to acceptance. A [`Constraint`] is one
//! generation's cursor over it.
//!
//! # Costs
//! Later visits to a state are a hash lookup. A state's first mask walks the
//! token trie from the state, pruning every subtree the automaton rejects,
//! and avoids the work that most first visits would otherwise repeat:
//! - the NFA set of the state says which bytes it does not reject, so neither
//!   the run search below nor the walk's first level asks the lazy DFA about a
//!   dead byte (outside strings 4-6 of 60-89 byte classes are live);
//! - a string body at a character boundary (found in the NFA by structure, see
//!   [`crate::automaton::strings`]) takes the vocabulary's text tokens of at
//!   most its room whole (plain bytes and UTF-8 text, precomputed by length)
//!   and walks only the 432 of SmolLM2's tokens that hold a quote, backslash,
//!   control byte or broken UTF-8; far from a long bounded string's end, where
//!   no token can reach the bound, its positions share one mask;
//! - elsewhere the state's *run* (the bytes that all lead one way, and how far)
//!   is found first: the tokens made of run bytes alone come as one bitset from
//!   the vocabulary ([`Vocabulary::run_split`]) and only the rest is walked; a
//!   run whose first byte leads into a loop (a key's first letter in an object
//!   that admits any key, the letter after a backslash) takes the loop's split.
//!
//! What remains is mostly the lazy DFA determinising the states a walk
//! reaches for the first time. The README's benchmark table gives the
//! measured figures, first visits included.
//!
//! ```
//! use std::sync::Arc;
//! use strictly::{automaton::Grammar, constraint::{Constraint, TokenAutomaton}, schema::CompileOptions, vocab::Vocabulary};
//! let grammar = Grammar::compile(&serde_json::json!({"enum": ["yes", "no"]}), &CompileOptions::default()).unwrap();
//! let tokens = [&b"\"yes\""[..], b"\"", b"yes", b"no", b"\"no", b"maybe"];
//! let vocab = Vocabulary::from_token_bytes(tokens.iter().map(|t| Some(t.to_vec())).chain([None]).collect(), Some(6));
//! let automaton = Arc::new(TokenAutomaton::new(grammar, Arc::new(vocab)));
//! let mut c = Constraint::new(automaton);
//! let mask = c.mask().unwrap();
//! assert!(mask.contains(0) && mask.contains(1) && mask.contains(4) && !mask.contains(5) && !mask.contains(6));
//! c.advance(4).unwrap();               // "no
//! assert_eq!(c.forced_bytes().unwrap(), b"\"");
//! c.advance(1).unwrap();               // "
//! assert!(c.is_accepting().unwrap());
//! assert!(c.mask().unwrap().contains(6)); // EOS only now
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use regex_automata::hybrid::dfa::Cache;
use regex_automata::hybrid::LazyStateID;
use regex_automata::util::primitives::StateID;

use crate::automaton::distance::{self, NfaDistances, NfaSet, Visited};
use crate::automaton::Grammar;
use crate::vocab::{byte_count, contains, ByteRecognizer, ByteSet, RunSplit, TokenTrie, Visit, Vocabulary};

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
    /// The width (vocabulary size).
    pub fn capacity(&self) -> usize {
        self.len
    }
    /// The raw 64-bit words (bit `i` of word `i / 64` is id `i`).
    pub fn words(&self) -> &[u64] {
        &self.words
    }
}

/// Errors of a constraint.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConstraintError {
    #[error("token {token} is not allowed here")]
    Disallowed { token: u32 },
    #[error("the generation is already finished")]
    Finished,
    #[error("the automaton cache thrashes: a single step needs more states than the cache holds")]
    CacheThrash,
    /// The shortest completion cannot fit in the tokens left: the output
    /// would be cut off, so it is not produced (see [`Constraint::check_room`]).
    #[error(
        "the shortest valid completion needs at least {needed} more tokens ({bytes} bytes), but only {left} of the {cap}-token cap are left"
    )]
    TokenCap {
        /// The fewest tokens that can complete the value (a lower bound:
        /// its bytes over the longest token's).
        needed: usize,
        /// Bytes of the shortest completion.
        bytes: usize,
        /// Tokens left under the cap.
        left: usize,
        /// The cap.
        cap: usize,
    },
}

/// What the automaton knows about one DFA state.
#[derive(Debug)]
struct StateInfo {
    mask: Arc<TokenSet>,
    /// Computed on the first [`Constraint::forced_bytes`] at this state: a mask does not need it.
    forced: OnceLock<Vec<u8>>,
}

/// A run of a state (see [`TokenAutomaton::run_bytes`]).
struct Run {
    bytes: ByteSet,
    len: usize,
    /// No byte of the set is alive after `len` of them.
    closed: bool,
    /// Set when `bytes` lead one step to a state that loops on this larger set, which
    /// is then the run (see [`Vocabulary::run_tokens_headed`]); `bytes` is the head. With
    /// the loop's split, which has a rest trie.
    then_loop: Option<(ByteSet, Arc<RunSplit>)>,
}

/// One walk that finishes a mask: a token trie, the first bytes to walk, and a run the
/// walk may take whole (see [`TokenTrie::walk_runs`]).
struct Walk<'t> {
    trie: &'t TokenTrie,
    first: ByteSet,
    run_bytes: ByteSet,
    run: usize,
}

impl<'t> Walk<'t> {
    fn of(trie: &'t TokenTrie, first: ByteSet) -> Self {
        Self { trie, first, run_bytes: [0; 4], run: 0 }
    }
}

/// One byte class of the grammar's DFA (bytes it cannot tell apart).
#[derive(Debug, Clone, Copy)]
struct ByteClass {
    /// The class's first byte, which stands for all of them.
    rep: u8,
    bytes: ByteSet,
}


/// The lazy DFA's cache was cleared during an operation: the state ids it
/// held are stale, and the operation must be redone from the byte history.
struct Cleared;

/// Mutable per-automaton caches, behind one lock.
struct Engine {
    cache: Cache,
    /// Per-state knowledge, keyed by ids valid for `clears`.
    states: HashMap<LazyStateID, Arc<StateInfo>>,
    /// Masks of long bounded strings' far positions, by the rest of the NFA set and the
    /// string: every position with room for more characters than any token holds takes
    /// the same tokens (one DFA state each, one mask for all).
    far: HashMap<(Vec<StateID>, StateID), Arc<TokenSet>>,
    start: LazyStateID,
    /// The cache's clear count that `states` and `start` belong to.
    clears: usize,
}

impl Engine {
    /// Drops everything keyed by stale ids after a cache clear.
    fn sync(&mut self, grammar: &Grammar) {
        if self.cache.clear_count() != self.clears {
            self.states.clear();
            self.far.clear();
            self.start = grammar.start(&mut self.cache);
            self.clears = self.cache.clear_count();
        }
    }
}

/// A state that reads at most this many bytes is walked without looking for a run.
const FEW_LIVE_BYTES: u32 = 16;

/// The bound on cached state masks; past it the cache starts afresh.
pub const MAX_CACHED_STATES: usize = 20_000;

/// A grammar joined with a vocabulary, with per-state caches shared by every
/// generation that uses it.
pub struct TokenAutomaton {
    grammar: Grammar,
    vocab: Arc<Vocabulary>,
    classes: Vec<ByteClass>,
    engine: Mutex<Engine>,
    distances: OnceLock<NfaDistances>,
}

impl std::fmt::Debug for TokenAutomaton {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAutomaton").field("nfa_states", &self.grammar.nfa_states()).finish()
    }
}

/// Adapter: the lazy DFA as a [`ByteRecognizer`] for the trie walk. Stops
/// the walk (rejects everything) as soon as the cache is cleared under it.
struct DfaStep<'a> {
    automaton: &'a TokenAutomaton,
    engine: &'a mut Engine,
    cleared: bool,
}

impl<'a> DfaStep<'a> {
    fn new(automaton: &'a TokenAutomaton, engine: &'a mut Engine) -> Self {
        Self { automaton, engine, cleared: false }
    }
}

impl ByteRecognizer for DfaStep<'_> {
    type State = LazyStateID;
    #[inline]
    fn step(&mut self, state: LazyStateID, byte: u8) -> Option<LazyStateID> {
        if self.cleared {
            return None;
        }
        self.automaton.next(self.engine, state, byte).unwrap_or_else(|Cleared| {
            self.cleared = true;
            None
        })
    }
}

impl TokenAutomaton {
    /// Joins a grammar and a vocabulary.
    pub fn new(grammar: Grammar, vocab: Arc<Vocabulary>) -> Self {
        let mut cache = grammar.new_cache();
        let start = grammar.start(&mut cache);
        let clears = cache.clear_count();
        let byte_classes = grammar.dfa().byte_classes();
        let classes = byte_classes
            .representatives(0..=255)
            .filter_map(|u| u.as_u8())
            .map(|rep| {
                let mut bytes = [0u64; 4];
                for b in byte_classes.elements(regex_automata::util::alphabet::Unit::u8(byte_classes.get(rep))).filter_map(|u| u.as_u8()) {
                    bytes[(b / 64) as usize] |= 1 << (b % 64);
                }
                ByteClass { rep, bytes }
            })
            .collect();
        Self {
            grammar,
            vocab,
            classes,
            engine: Mutex::new(Engine { cache, states: HashMap::new(), far: HashMap::new(), start, clears }),
            distances: OnceLock::new(),
        }
    }

    /// The grammar.
    pub fn grammar(&self) -> &Grammar {
        &self.grammar
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &Arc<Vocabulary> {
        &self.vocab
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn nfa(&self) -> &regex_automata::nfa::thompson::NFA {
        self.grammar.dfa().get_nfa()
    }

    fn distances(&self) -> &NfaDistances {
        self.distances.get_or_init(|| NfaDistances::new(self.nfa()))
    }

    /// The NFA state set at the start.
    fn nfa_start(&self) -> NfaSet {
        distance::closure(self.nfa(), &[self.nfa().start_anchored()], &mut Visited::default())
    }

    /// Reads one byte from a state: the live state it leads to, or `Ok(None)` when it is
    /// rejected; `Err(Cleared)` when the lazy DFA's cache has been cleared since the engine
    /// was synced (every state id in hand is stale). The one place a DFA transition is taken.
    #[inline]
    fn next(&self, engine: &mut Engine, state: LazyStateID, byte: u8) -> Result<Option<LazyStateID>, Cleared> {
        let next = self.grammar.dfa().next_state(&mut engine.cache, state, byte);
        if engine.cache.clear_count() != engine.clears {
            return Err(Cleared);
        }
        Ok(next.ok().filter(|n| !n.is_dead()))
    }

    /// Reads bytes from a state; `Ok(None)` when they are rejected.
    fn step(&self, engine: &mut Engine, state: LazyStateID, bytes: &[u8]) -> Result<Option<LazyStateID>, Cleared> {
        let mut s = state;
        for &b in bytes {
            match self.next(engine, s, b)? {
                Some(n) => s = n,
                None => return Ok(None),
            }
        }
        Ok(Some(s))
    }

    fn accepting(&self, engine: &mut Engine, state: LazyStateID) -> bool {
        self.grammar.is_accepting(&mut engine.cache, state)
    }

    /// Computes (or fetches) what is known of a state.
    fn info(&self, engine: &mut Engine, state: LazyStateID, live: &ByteSet, room: Option<usize>) -> Result<Arc<StateInfo>, Cleared> {
        if let Some(info) = engine.states.get(&state) {
            return Ok(info.clone());
        }
        if engine.states.len() >= MAX_CACHED_STATES {
            engine.states.clear();
            engine.far.clear();
        }
        if let Some(room) = room {
            return self.info_text(engine, state, live, room);
        }
        if byte_count(live) <= FEW_LIVE_BYTES {
            return self.info_walked(engine, state, live);
        }
        let run = self.run_bytes(engine, state, live)?;
        if let Some((looped, split)) = &run.then_loop {
            return self.info_headed(engine, state, &run.bytes, looped, split, live);
        }
        // The tokens a run accepts whole are the same for every state with
        // that run: fetch them, then walk only what lies outside the run.
        let split = self.vocab.run_split(&run.bytes, run.len, run.closed);
        let mask = TokenSet::from_words(&split.run_tokens, self.vocab.len());
        let walk = match &split.rest {
            Some(rest) => Walk::of(rest, *live),
            None => Walk { trie: self.vocab.trie(), first: *live, run_bytes: run.bytes, run: split.run },
        };
        self.walked(engine, state, mask, &[walk])
    }

    /// [`info`](Self::info) for a state whose `head` bytes lead to a state that loops on
    /// `looped`: the tokens of the loop's split that start with a head byte are taken
    /// whole; the loop's rest, and every token that starts with a loop byte outside the
    /// head, are walked.
    #[allow(clippy::too_many_arguments)]
    fn info_headed(
        &self,
        engine: &mut Engine,
        state: LazyStateID,
        head: &ByteSet,
        looped: &ByteSet,
        split: &RunSplit,
        live: &ByteSet,
    ) -> Result<Arc<StateInfo>, Cleared> {
        let Some(rest) = &split.rest else { unreachable!("run_bytes keeps only a loop whose split has a rest") };
        let mask = TokenSet::from_words(&self.vocab.run_tokens_headed(split, looped, head), self.vocab.len());
        let walked: ByteSet = std::array::from_fn(|w| looped[w] & !head[w] & live[w]);
        let others: ByteSet = std::array::from_fn(|w| !walked[w] & live[w]);
        self.walked(engine, state, mask, &[Walk::of(rest, others), Walk::of(self.vocab.trie(), walked)])
    }

    /// [`info`](Self::info) for a string body at a character boundary with `room`
    /// characters left ([`Grammar::string_position`]; `usize::MAX` for a free string):
    /// the text tokens (plain bytes and UTF-8 text) of at most `room` characters are
    /// taken whole, the longer ones are not (they would overflow the string), and the
    /// tokens with a quote, backslash, control byte or broken UTF-8 are walked. No run is
    /// looked for, so no DFA state ahead is determinised for it.
    fn info_text(&self, engine: &mut Engine, state: LazyStateID, live: &ByteSet, room: usize) -> Result<Arc<StateInfo>, Cleared> {
        let chars = self.vocab.string_chars();
        let mask = TokenSet::from_words(chars.text_up_to(room), self.vocab.len());
        self.walked(engine, state, mask, &[Walk::of(&chars.rest, *live)])
    }

    /// [`info`](Self::info) for a state that reads only a few bytes (a key's next letter,
    /// the punctuation between values): no run is worth finding, the walk of those bytes'
    /// subtrees is the mask.
    fn info_walked(&self, engine: &mut Engine, state: LazyStateID, live: &ByteSet) -> Result<Arc<StateInfo>, Cleared> {
        self.walked(engine, state, TokenSet::new(self.vocab.len()), &[Walk::of(self.vocab.trie(), *live)])
    }

    /// Finishes a mask: adds every token the walks find from `state`, then caches it.
    fn walked(&self, engine: &mut Engine, state: LazyStateID, mut mask: TokenSet, walks: &[Walk<'_>]) -> Result<Arc<StateInfo>, Cleared> {
        let mut walker = DfaStep::new(self, engine);
        for walk in walks {
            walk.trie.walk_from(&walk.first, &mut walker, state, &walk.run_bytes, walk.run, |visit| {
                if let Visit::Token(token, _) = visit {
                    mask.insert(token);
                }
            });
        }
        if walker.cleared {
            return Err(Cleared);
        }
        Ok(self.keep(engine, state, mask))
    }

    /// Adds EOS where the state accepts, and caches the state's mask.
    fn keep(&self, engine: &mut Engine, state: LazyStateID, mut mask: TokenSet) -> Arc<StateInfo> {
        if self.accepting(engine, state) {
            if let Some(eos) = self.vocab.eos() {
                mask.insert(eos);
            }
        }
        let info = Arc::new(StateInfo { mask: Arc::new(mask), forced: OnceLock::new() });
        engine.states.insert(state, info.clone());
        info
    }

    /// The largest set of bytes that all lead from `state` to one state, and
    /// how many such bytes in a row keep the automaton alive (`usize::MAX`
    /// when the set loops `state` to itself). Inside a JSON string the set is
    /// the plain characters and the run is the room left before `maxLength`.
    fn run_bytes(&self, engine: &mut Engine, state: LazyStateID, live: &ByteSet) -> Result<Run, Cleared> {
        // Group the live classes by successor; keep the group with the most bytes. (A class
        // is live or dead as a whole: the NFA does not tell its bytes apart.)
        let mut groups: Vec<(LazyStateID, ByteSet)> = Vec::with_capacity(8);
        for class in self.classes.iter().filter(|c| contains(live, c.rep)) {
            if let Some(next) = self.next(engine, state, class.rep)? {
                let at = groups.iter().position(|g| g.0 == next).unwrap_or_else(|| {
                    groups.push((next, [0; 4]));
                    groups.len() - 1
                });
                (0..4).for_each(|w| groups[at].1[w] |= class.bytes[w]);
            }
        }
        let Some(&(first, set)) = groups.iter().max_by_key(|g| byte_count(&g.1)) else {
            return Ok(Run { bytes: [0; 4], len: 0, closed: false, then_loop: None });
        };
        if first == state {
            return Ok(Run { bytes: set, len: usize::MAX, closed: false, then_loop: None });
        }
        // A head into a loop (the first byte of a key, or the character after a backslash):
        // take the loop as the run. Head bytes that do not loop there (a quote after a
        // backslash) are left to the walk of the loop's rest.
        let mut looped: ByteSet = [0; 4];
        let mut loops = false;
        for class in self.classes.iter().filter(|c| contains(&set, c.rep)) {
            if self.next(engine, first, class.rep)? == Some(first) {
                loops = true;
                break;
            }
        }
        if loops {
            for class in &self.classes {
                if self.next(engine, first, class.rep)? == Some(first) {
                    (0..4).for_each(|w| looped[w] |= class.bytes[w]);
                }
            }
        }
        if loops && byte_count(&looped) >= 32 {
            let split = self.vocab.run_split(&looped, usize::MAX, false);
            if split.rest.is_some() {
                return Ok(Run { bytes: set, len: 1, closed: false, then_loop: Some((looped, split)) });
            }
        }
        // Classes partition the bytes, so the set's classes are those whose byte is in it.
        let reps: Vec<u8> = self.classes.iter().filter(|c| contains(&set, c.rep)).map(|c| c.rep).collect();
        // Follow the chain while every class of the set agrees on one live successor, no
        // further than the longest token of set bytes (a longer run changes no mask) and
        // no further than the shortest run that gets a trie of its own: each step costs
        // one DFA transition per class, where the walk of the few longer tokens costs
        // one per byte.
        let limit = self.vocab.longest_run_token(&set).min(crate::vocab::MIN_SPLIT_RUN);
        let (mut run, mut current) = (1, first);
        while run < limit {
            // Stop at the first class that goes elsewhere: each transition may be a new
            // DFA state to determinise.
            let to = self.next(engine, current, reps[0])?;
            let mut agree = true;
            for &rep in &reps[1..] {
                if self.next(engine, current, rep)? != to {
                    agree = false;
                    break;
                }
            }
            match (to, agree) {
                (_, false) => break,
                // Closed when every run byte dies here, not just the first class.
                (None, true) => return Ok(Run { bytes: set, len: run, closed: true, then_loop: None }),
                (Some(next), true) => {
                    run += 1;
                    current = next;
                }
            }
        }
        Ok(Run { bytes: set, len: run, closed: false, then_loop: None })
    }

    /// Bytes that are the only way on from `state`.
    fn forced_from(&self, engine: &mut Engine, mut state: LazyStateID) -> Result<Vec<u8>, Cleared> {
        let mut forced = Vec::new();
        while forced.len() < 256 && !self.accepting(engine, state) {
            let mut live = None;
            let mut count = 0;
            for class in &self.classes {
                if let Some(n) = self.next(engine, state, class.rep)? {
                    count += 1;
                    live = Some((class, n));
                    if count > 1 {
                        break;
                    }
                }
            }
            let (Some((class, next)), 1) = (live, count) else { break };
            // A class of several bytes is a choice, not a forced byte.
            if byte_count(&class.bytes) != 1 {
                break;
            }
            forced.push(class.rep);
            state = next;
        }
        Ok(forced)
    }
}

/// One generation's position in a [`TokenAutomaton`].
#[derive(Debug)]
pub struct Constraint {
    automaton: Arc<TokenAutomaton>,
    state: LazyStateID,
    /// The DFA cache's clear count when `state` was computed: if the cache
    /// has been cleared since, `state` is stale and is recomputed from `bytes`.
    epoch: usize,
    bytes: Vec<u8>,
    /// The NFA state set after `bytes[..nfa_at]`, caught up lazily.
    nfa_set: NfaSet,
    nfa_at: usize,
    visited: Visited,
    finished: bool,
}

/// How many times an operation is retried after a cache clear.
const RETRIES: usize = 4;

impl Constraint {
    /// Starts a generation.
    pub fn new(automaton: Arc<TokenAutomaton>) -> Self {
        let (state, epoch) = {
            let mut engine = automaton.lock();
            engine.sync(&automaton.grammar);
            (engine.start, engine.clears)
        };
        let nfa_set = automaton.nfa_start();
        Self { automaton, state, epoch, bytes: Vec::new(), nfa_set, nfa_at: 0, visited: Visited::default(), finished: false }
    }

    /// The automaton this constraint walks.
    pub fn automaton(&self) -> &Arc<TokenAutomaton> {
        &self.automaton
    }

    /// The bytes accepted so far.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether EOS was accepted.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Runs `op` on an up-to-date state, redoing it if the cache is cleared.
    fn run<T>(&mut self, mut op: impl FnMut(&TokenAutomaton, &mut Engine, LazyStateID) -> Result<T, Cleared>) -> Result<T, ConstraintError> {
        let automaton = self.automaton.clone();
        let mut engine = automaton.lock();
        for _ in 0..RETRIES {
            engine.sync(&automaton.grammar);
            if engine.clears != self.epoch {
                let start = engine.start;
                match automaton.step(&mut engine, start, &self.bytes) {
                    Ok(Some(s)) => {
                        self.state = s;
                        self.epoch = engine.clears;
                    }
                    Ok(None) => unreachable!("accepted bytes stay accepted"),
                    Err(Cleared) => continue,
                }
            }
            let state = self.state;
            if let Ok(v) = op(&automaton, &mut engine, state) {
                return Ok(v);
            }
        }
        Err(ConstraintError::CacheThrash)
    }

    /// The allowed tokens (EOS only in an accepting state). Cached per state.
    pub fn mask(&mut self) -> Result<Arc<TokenSet>, ConstraintError> {
        if self.finished {
            return Err(ConstraintError::Finished);
        }
        Ok(self.info()?.mask.clone())
    }

    /// What the automaton knows about the current state; a state seen for the first time
    /// is told which bytes it does not reject (from the NFA set), so that computing its
    /// mask never determinises a transition to the dead state (most of a state's byte
    /// classes, outside strings).
    fn info(&mut self) -> Result<Arc<StateInfo>, ConstraintError> {
        if let Some(info) = self.run(|_, e, s| Ok(e.states.get(&s).cloned()))? {
            return Ok(info);
        }
        let automaton = self.automaton.clone();
        let set = self.nfa_set();
        let live = distance::live_bytes(automaton.nfa(), set);
        let position = automaton.grammar.string_position(set);
        let room = position.map(|(p, _)| if p.room == u32::MAX { usize::MAX } else { p.room as usize });
        // Far from a bounded string's end: the set without the position, and the string.
        let far = position
            .filter(|(p, _)| p.room != u32::MAX && p.room as usize >= automaton.vocab.trie().max_token_len())
            .map(|(p, root)| (set.iter().copied().filter(|&s| s != root).collect::<Vec<_>>(), p.chain));
        self.run(|a, e, s| {
            let Some(key) = &far else { return a.info(e, s, &live, room) };
            if let Some(mask) = e.far.get(key) {
                let info = Arc::new(StateInfo { mask: mask.clone(), forced: OnceLock::new() });
                e.states.insert(s, info.clone());
                return Ok(info);
            }
            let info = a.info(e, s, &live, room)?;
            e.far.insert(key.clone(), info.mask.clone());
            Ok(info)
        })
    }

    /// Accepts a token, or refuses it with an error (the state is unchanged).
    pub fn advance(&mut self, token: u32) -> Result<(), ConstraintError> {
        if self.finished {
            return Err(ConstraintError::Finished);
        }
        let vocab = self.automaton.vocab.clone();
        if Some(token) == vocab.eos() {
            return if self.is_accepting()? {
                self.finished = true;
                Ok(())
            } else {
                Err(ConstraintError::Disallowed { token })
            };
        }
        if vocab.is_special(token) {
            return Err(ConstraintError::Disallowed { token });
        }
        let bytes = vocab.token_bytes(token);
        match self.run(|a, e, s| a.step(e, s, bytes))? {
            Some(next) => {
                self.bytes.extend_from_slice(bytes);
                self.state = next;
                Ok(())
            }
            None => Err(ConstraintError::Disallowed { token }),
        }
    }

    /// How many of `tokens`, in order from here, the automaton accepts (without moving):
    /// a speculative decoder checks its guess with this before asking the model.
    pub fn accepted_prefix(&mut self, tokens: &[u32]) -> Result<usize, ConstraintError> {
        if self.finished {
            return Ok(0);
        }
        let vocab = self.automaton.vocab.clone();
        self.run(|a, e, s| {
            let mut state = s;
            for (n, &t) in tokens.iter().enumerate() {
                if vocab.is_special(t) || Some(t) == vocab.eos() {
                    return Ok(n);
                }
                match a.step(e, state, vocab.token_bytes(t))? {
                    Some(next) => state = next,
                    None => return Ok(n),
                }
            }
            Ok(tokens.len())
        })
    }

    /// Whether the bytes so far are a complete instance.
    pub fn is_accepting(&mut self) -> Result<bool, ConstraintError> {
        self.run(|a, e, s| Ok(a.accepting(e, s)))
    }

    /// Whether nothing but EOS can follow (generation can stop here).
    pub fn is_complete(&mut self) -> Result<bool, ConstraintError> {
        if self.finished {
            return Ok(true);
        }
        let eos = self.automaton.vocab.eos();
        let mask = self.mask()?;
        Ok(self.is_accepting()? && mask.iter().all(|t| Some(t) == eos))
    }

    /// The bytes that must come next, whatever the model does.
    pub fn forced_bytes(&mut self) -> Result<Vec<u8>, ConstraintError> {
        let info = self.info()?;
        if let Some(forced) = info.forced.get() {
            return Ok(forced.clone());
        }
        let forced = self.run(|a, e, s| a.forced_from(e, s))?;
        Ok(info.forced.get_or_init(|| forced).clone())
    }

    /// The NFA state set after the bytes so far.
    fn nfa_set(&mut self) -> &NfaSet {
        if self.nfa_at < self.bytes.len() {
            let nfa = self.automaton.nfa();
            self.nfa_set = distance::step(nfa, &self.nfa_set, &self.bytes[self.nfa_at..], &mut self.visited);
            self.nfa_at = self.bytes.len();
        }
        &self.nfa_set
    }

    /// Bytes from here to the nearest complete instance.
    pub fn distance_to_accept(&mut self) -> u32 {
        let automaton = self.automaton.clone();
        automaton.distances().of(self.nfa_set())
    }

    /// The fewest tokens that can complete the value from here, as a lower
    /// bound: the shortest completion's bytes over the longest token's (0 in
    /// an accepting state). With [`Constraint::distance_to_accept`] (bytes,
    /// an upper bound on tokens), it brackets what a cap must allow.
    pub fn min_tokens_to_accept(&mut self) -> usize {
        let longest = self.automaton.vocab.trie().max_token_len().max(1);
        (self.distance_to_accept() as usize).div_ceil(longest)
    }

    /// The one check every decoding loop makes (the API, `generate`, the
    /// coverage walks): with `left` of `cap` tokens remaining, an error when
    /// the value cannot be completed in them, so that a cut-off value is
    /// never reported as output. Call it before decoding (the start state's
    /// distance may already exceed the cap), after each token, and at the cap.
    ///
    /// # Errors
    /// [`ConstraintError::TokenCap`] when even the fewest tokens that can
    /// complete the value exceed `left`.
    pub fn check_room(&mut self, left: usize, cap: usize) -> Result<(), ConstraintError> {
        if self.finished {
            return Ok(());
        }
        let needed = self.min_tokens_to_accept();
        // At the cap, the bound is exact: accepting or not.
        let short = if left == 0 { !self.is_accepting()? } else { needed > left };
        if short {
            let bytes = self.distance_to_accept() as usize;
            return Err(ConstraintError::TokenCap { needed: needed.max(1), bytes, left, cap });
        }
        Ok(())
    }

    /// Bytes to the nearest complete instance after `token`, or `None`
    /// when the token is not allowed.
    fn distance_after(&mut self, token: u32) -> Option<u32> {
        let automaton = self.automaton.clone();
        self.nfa_set();
        let set = distance::step(automaton.nfa(), &self.nfa_set, automaton.vocab.token_bytes(token), &mut self.visited);
        (!set.is_empty()).then(|| automaton.distances().of(&set))
    }

    /// Whether `token` leaves room to finish within `remaining` tokens
    /// (this one included), one token per byte in the worst case.
    pub fn fits_budget(&mut self, token: u32, remaining: usize) -> Result<bool, ConstraintError> {
        if Some(token) == self.automaton.vocab.eos() {
            return self.is_accepting();
        }
        Ok(self.distance_after(token).is_some_and(|d| (d as usize) < remaining))
    }

    /// The allowed tokens that leave room to finish within `remaining`
    /// tokens; if none does, those that get closest (the shortest completion).
    ///
    /// Tokens are grouped by the DFA state they lead to (a DFA state is one
    /// NFA state set, so one distance): only one token per group is stepped
    /// through the NFA.
    pub fn mask_within_budget(&mut self, remaining: usize) -> Result<TokenSet, ConstraintError> {
        let mask = self.mask()?;
        let eos = self.automaton.vocab.eos();
        let ends: Vec<(u32, LazyStateID)> = self.run(|a, e, s| {
            let mut walker = DfaStep::new(a, e);
            let mut ends = Vec::new();
            a.vocab.trie().walk(&mut walker, s, |t, end| ends.push((t, end)));
            if walker.cleared { Err(Cleared) } else { Ok(ends) }
        })?;
        let mut by_state: HashMap<LazyStateID, Option<u32>> = HashMap::new();
        let mut scored = Vec::with_capacity(ends.len());
        for (t, end) in ends {
            let d = match by_state.get(&end) {
                Some(&d) => d,
                None => {
                    let d = self.distance_after(t);
                    by_state.insert(end, d);
                    d
                }
            };
            if let Some(d) = d {
                scored.push((t, d));
            }
        }
        let mut set = TokenSet::new(mask.capacity());
        if let Some(e) = eos.filter(|&e| mask.contains(e)) {
            // Finishing is always within budget.
            set.insert(e);
            if remaining <= 1 {
                return Ok(set);
            }
        }
        let fits: Vec<u32> = scored.iter().filter(|(_, d)| (*d as usize) < remaining).map(|(t, _)| *t).collect();
        if !fits.is_empty() {
            fits.iter().for_each(|&t| set.insert(t));
        } else if set.is_empty() {
            let best = scored.iter().map(|(_, d)| *d).min().unwrap_or(u32::MAX);
            scored.iter().filter(|(_, d)| *d == best).for_each(|(t, _)| set.insert(*t));
        }
        Ok(set)
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::CompileOptions;

    #[test]
    fn a_free_string_runs_on_the_bytes_the_vocabulary_splits_for_in_advance() {
        let grammar = Grammar::compile(&serde_json::json!({"type": "string"}), &CompileOptions::default()).unwrap();
        let tokens = [&b"\""[..], b"ab", b"a\"", b"\xc3\xa9"];
        let vocab = Vocabulary::from_token_bytes(tokens.iter().map(|t| Some(t.to_vec())).collect(), None);
        let automaton = TokenAutomaton::new(grammar, Arc::new(vocab));
        let mut engine = automaton.lock();
        let start = engine.start;
        let inside = automaton.step(&mut engine, start, b"\"").ok().flatten().unwrap();
        let run = automaton.run_bytes(&mut engine, inside, &[u64::MAX; 4]).ok().unwrap();
        assert_eq!(run.bytes, crate::vocab::json_string_run_bytes());
        assert_eq!(run.len, usize::MAX);
    }

    #[test]
    fn the_room_check_bounds_tokens_by_the_longest_token_and_is_exact_at_the_cap() {
        let grammar = Grammar::compile(&serde_json::json!({"type": "string", "pattern": "^a{10}$"}), &CompileOptions::default()).unwrap();
        let tokens = [&b"\""[..], b"a", b"aaaa"];
        let vocab = Vocabulary::from_token_bytes(tokens.iter().map(|t| Some(t.to_vec())).collect(), None);
        let mut c = Constraint::new(Arc::new(TokenAutomaton::new(grammar, Arc::new(vocab))));
        // 12 bytes, 4 at most per token: at least 3 tokens.
        assert_eq!(c.check_room(2, 2), Err(ConstraintError::TokenCap { needed: 3, bytes: 12, left: 2, cap: 2 }));
        assert_eq!(c.check_room(3, 3), Ok(()));
        // At the cap, only a complete value passes.
        assert_eq!(c.check_room(0, 3), Err(ConstraintError::TokenCap { needed: 3, bytes: 12, left: 0, cap: 3 }));
        for t in [0, 2, 2, 1, 1, 0] {
            c.advance(t).unwrap();
        }
        assert_eq!(c.check_room(0, 6), Ok(()));
    }
}
