//! The [`TokenAutomaton`]: a grammar joined with a vocabulary, its lazy DFA's cache, the
//! per-state knowledge shared by every generation, and the forced bytes of a state.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

use regex_automata::hybrid::dfa::Cache;
use regex_automata::hybrid::LazyStateID;
use regex_automata::util::primitives::StateID;

use crate::automaton::distance::{self, NfaDistances, NfaSet, Visited};
use crate::automaton::Grammar;
use crate::bytes::ByteSet;
use crate::vocab::{ByteRecognizer, TokenSet, Vocabulary};

/// What the automaton knows about one DFA state.
#[derive(Debug)]
pub(super) struct StateInfo {
    pub(super) mask: Arc<TokenSet>,
    /// Computed on the first [`Constraint::forced_bytes`] at this state: a mask does not need it.
    pub(super) forced: OnceLock<Vec<u8>>,
}

/// One byte class of the grammar's DFA (bytes it cannot tell apart).
#[derive(Debug, Clone, Copy)]
pub(super) struct ByteClass {
    /// The class's first byte, which stands for all of them.
    pub(super) rep: u8,
    pub(super) bytes: ByteSet,
}

/// The lazy DFA's cache was cleared during an operation: the state ids it
/// held are stale, and the operation must be redone from the byte history.
pub(super) struct Cleared;

/// Hashes a DFA state id with one multiply-rotate: the ids are the lazy DFA's own numbers,
/// not input an adversary picks, so SipHash's defence costs ~20 ns a lookup for nothing
/// (every mask asks the map at least once).
#[derive(Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|&b| self.write_u64(b.into()));
    }
    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(n.into());
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        // A 64-bit odd constant (2^64 / golden ratio) spreads the low bits into the high
        // ones, where the hash table takes its control bits.
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The byte classes known to lead a DFA state back to itself, and known not to.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Loops {
    pub(super) yes: ByteSet,
    pub(super) no: ByteSet,
}

/// A map keyed by DFA state.
pub(super) type StateMap<V> = HashMap<LazyStateID, V, BuildHasherDefault<IdHasher>>;

/// Mutable per-automaton caches, behind one lock.
pub(super) struct Engine {
    pub(super) cache: Cache,
    /// Per-state knowledge, keyed by ids valid for `clears`.
    pub(super) states: StateMap<Arc<StateInfo>>,
    /// Masks of long bounded strings' far positions, by the rest of the NFA set and the
    /// string: every position with room for more characters than any token holds takes
    /// the same tokens (one DFA state each, one mask for all).
    pub(super) far: HashMap<(Vec<StateID>, StateID), Arc<TokenSet>>,
    pub(super) start: LazyStateID,
    /// Which byte classes loop each state met by a walk to itself (see
    /// [`ByteRecognizer::loops_on`]), keyed by ids valid for `clears`.
    pub(super) loops: StateMap<Loops>,
    /// The guided walk's buffers, kept between walks so that they grow once.
    pub(super) scratch: super::guided::Scratch,
    /// The state past a complete value, once seen (see [`TokenAutomaton::next`]).
    pub(super) past_end: Option<LazyStateID>,
    /// Match states seen that are not past the end: a complete value that can go on
    /// (a top-level number takes more digits).
    pub(super) goes_on: Vec<LazyStateID>,
    /// The cache's clear count that `states` and `start` belong to.
    pub(super) clears: usize,
}

impl Engine {
    /// Drops everything keyed by stale ids after a cache clear.
    pub(super) fn sync(&mut self, grammar: &Grammar) {
        if self.cache.clear_count() != self.clears {
            self.states.clear();
            self.far.clear();
            self.loops.clear();
            self.start = grammar.start(&mut self.cache);
            self.past_end = None;
            self.goes_on.clear();
            self.clears = self.cache.clear_count();
        }
    }
}

/// The bound on cached state masks; past it the cache starts afresh.
pub const MAX_CACHED_STATES: usize = 20_000;

/// A grammar joined with a vocabulary, with per-state caches shared by every
/// generation that uses it.
pub struct TokenAutomaton {
    pub(super) grammar: Grammar,
    pub(super) vocab: Arc<Vocabulary>,
    pub(super) classes: Vec<ByteClass>,
    /// What [`TokenAutomaton::text_universal`] tries from each place inside a character.
    pub(super) text_steps: super::text::TextSteps,
    pub(super) engine: Mutex<Engine>,
    pub(super) distances: OnceLock<NfaDistances>,
}

impl std::fmt::Debug for TokenAutomaton {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAutomaton").field("nfa_states", &self.grammar.nfa_states()).finish()
    }
}

/// Adapter: the lazy DFA as a [`ByteRecognizer`] for the trie walk. Stops
/// the walk (rejects everything) as soon as the cache is cleared under it.
pub(super) struct DfaStep<'a> {
    pub(super) automaton: &'a TokenAutomaton,
    pub(super) engine: &'a mut Engine,
    pub(super) cleared: bool,
}

impl<'a> DfaStep<'a> {
    pub(super) fn new(automaton: &'a TokenAutomaton, engine: &'a mut Engine) -> Self {
        Self { automaton, engine, cleared: false }
    }
}

impl ByteRecognizer for DfaStep<'_> {
    type State = LazyStateID;
    /// Answers from the engine's record of which byte classes loop each state to itself,
    /// testing the classes not yet known (one transition each, the first failure ends it).
    fn loops_on(&mut self, state: LazyStateID, bytes: &ByteSet) -> bool {
        if self.cleared {
            return false;
        }
        let mut known = self.engine.loops.get(&state).copied().unwrap_or_default();
        if bytes.intersects(&known.no) {
            return false;
        }
        if bytes.is_subset(&known.yes) {
            return true;
        }
        let mut all = true;
        for class in &self.automaton.classes {
            if known.yes.contains(class.rep) || !bytes.intersects(&class.bytes) {
                continue;
            }
            match self.automaton.next(self.engine, state, class.rep) {
                Err(Cleared) => {
                    self.cleared = true;
                    return false;
                }
                Ok(next) if next == Some(state) => known.yes = known.yes | class.bytes,
                Ok(_) => {
                    known.no = known.no | class.bytes;
                    all = false;
                    break;
                }
            }
        }
        if self.engine.loops.len() >= MAX_CACHED_STATES {
            self.engine.loops.clear();
        }
        self.engine.loops.insert(state, known);
        all
    }
    /// A breadth-first search over the states `bytes` reach from `state`, each met first at
    /// its least depth (a later meeting has fewer bytes left), one transition per byte class.
    fn stays_alive(&mut self, state: LazyStateID, bytes: &ByteSet, longest: usize, max_steps: usize) -> bool {
        if self.cleared {
            return false;
        }
        let automaton = self.automaton;
        let reps: Vec<u8> = automaton.classes.iter().filter(|c| c.bytes.intersects(bytes)).map(|c| c.rep).collect();
        if reps.len() > max_steps {
            return false;
        }
        // `order` lists the states met, level by level; `seen` answers membership.
        let mut order = vec![state];
        let mut seen: StateMap<()> = StateMap::default();
        seen.insert(state, ());
        let (mut level, mut steps) = (0..1, 0);
        for _ in 0..longest {
            for at in level.clone() {
                for &rep in &reps {
                    steps += 1;
                    if steps > max_steps {
                        return false;
                    }
                    match automaton.next(self.engine, order[at], rep) {
                        Err(Cleared) => {
                            self.cleared = true;
                            return false;
                        }
                        Ok(None) => return false,
                        Ok(Some(n)) => {
                            if seen.insert(n, ()).is_none() {
                                order.push(n);
                            }
                        }
                    }
                }
            }
            if order.len() == level.end {
                break;
            }
            level = level.end..order.len();
        }
        true
    }
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
        let nfa_states = grammar.nfa_states();
        let mut cache = grammar.new_cache();
        let start = grammar.start(&mut cache);
        let clears = cache.clear_count();
        let byte_classes = grammar.dfa().byte_classes();
        let classes = byte_classes
            .representatives(0..=255)
            .filter_map(|u| u.as_u8())
            .map(|rep| {
                let bytes: ByteSet = byte_classes
                    .elements(regex_automata::util::alphabet::Unit::u8(byte_classes.get(rep)))
                    .filter_map(|u| u.as_u8())
                    .collect();
                ByteClass { rep, bytes }
            })
            .collect::<Vec<_>>();
        Self {
            grammar,
            vocab,
            text_steps: super::text::TextSteps::new(&classes),
            classes,
            engine: Mutex::new(Engine {
                cache,
                states: StateMap::default(),
                far: HashMap::new(),
                loops: StateMap::default(),
                start,
                scratch: super::guided::Scratch::for_states(nfa_states),
                past_end: None,
                goes_on: Vec::new(),
                clears,
            }),
            distances: OnceLock::new(),
        }
    }

    /// The memory this automaton holds now, in bytes: the NFA, the lazy DFA's cache, the
    /// cached masks, the record of which bytes loop each state, and the walks' buffers (the
    /// visited set is as large as the NFA). Waits for a generation using it to let go. The
    /// vocabulary's own tables are shared by every automaton over it and are not counted.
    pub fn memory_usage(&self) -> usize {
        self.memory_of(&self.lock())
    }

    /// [`TokenAutomaton::memory_usage`], or `None` while a generation holds the automaton.
    pub fn try_memory_usage(&self) -> Option<usize> {
        match self.engine.try_lock() {
            Ok(engine) => Some(self.memory_of(&engine)),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(self.memory_of(&p.into_inner())),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    fn memory_of(&self, engine: &Engine) -> usize {
        let mask = self.vocab.len().div_ceil(64) * 8 + std::mem::size_of::<TokenSet>();
        let dfa = self.grammar.dfa();
        dfa.get_nfa().memory_usage()
            + dfa.memory_usage()
            + engine.cache.memory_usage()
            + (engine.states.len() + engine.far.len()) * (mask + 64)
            + engine.far.keys().map(|(set, _)| set.capacity() * std::mem::size_of::<StateID>()).sum::<usize>()
            + engine.loops.capacity() * (std::mem::size_of::<(LazyStateID, Loops)>() + 1)
            + engine.goes_on.capacity() * std::mem::size_of::<LazyStateID>()
            + engine.scratch.memory_usage()
            + self.classes.capacity() * std::mem::size_of::<ByteClass>()
    }

    /// The grammar.
    pub fn grammar(&self) -> &Grammar {
        &self.grammar
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &Arc<Vocabulary> {
        &self.vocab
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn nfa(&self) -> &regex_automata::nfa::thompson::NFA {
        self.grammar.dfa().get_nfa()
    }

    pub(super) fn distances(&self) -> &NfaDistances {
        self.distances.get_or_init(|| NfaDistances::new(self.nfa()))
    }

    /// The NFA state set at the start.
    pub(super) fn nfa_start(&self) -> NfaSet {
        distance::closure(self.nfa(), &[self.nfa().start_anchored()], &mut Visited::default())
    }

    /// Reads one byte from a state: the live state it leads to, or `Ok(None)` when it is
    /// rejected; `Err(Cleared)` when the lazy DFA's cache has been cleared since the engine
    /// was synced (every state id in hand is stale). The one place a DFA transition is taken.
    ///
    /// The lazy DFA reports a match one byte late: the byte after a complete value leads
    /// to a *match* state that holds no NFA state, which is not the dead state. Any
    /// token that reads one byte past the value's end (`"ab",` for `"ab"`) would pass for
    /// allowed and leave the generation with nothing it may write. That state is past the
    /// end and is rejected here like the dead state.
    #[inline]
    pub(super) fn next(&self, engine: &mut Engine, state: LazyStateID, byte: u8) -> Result<Option<LazyStateID>, Cleared> {
        let next = self.grammar.dfa().next_state(&mut engine.cache, state, byte);
        if engine.cache.clear_count() != engine.clears {
            return Err(Cleared);
        }
        match next {
            Ok(n) if n.is_dead() => Ok(None),
            Ok(n) if n.is_match() && self.past_end(engine, n)? => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(_) => Ok(None),
        }
    }

    /// Whether a match state holds no NFA state (it is past the end of a complete value).
    /// Every NFA state can reach a match, so a state that holds one either accepts at the
    /// end of input or reads some byte; the state past the end does neither. There is one
    /// such state per cache epoch (the lazy DFA keeps one id per set), so the search runs
    /// once, and once per match state that goes on.
    #[cold]
    fn past_end(&self, engine: &mut Engine, state: LazyStateID) -> Result<bool, Cleared> {
        if engine.past_end == Some(state) {
            return Ok(true);
        }
        if engine.goes_on.contains(&state) {
            return Ok(false);
        }
        let dfa = self.grammar.dfa();
        let mut goes_on = self.grammar.is_accepting(&mut engine.cache, state);
        for class in &self.classes {
            if goes_on {
                break;
            }
            goes_on = dfa.next_state(&mut engine.cache, state, class.rep).is_ok_and(|n| !n.is_dead());
        }
        if engine.cache.clear_count() != engine.clears {
            return Err(Cleared);
        }
        if goes_on {
            // A few at most (a number's digit states); past the bound, asked again.
            if engine.goes_on.len() < 64 {
                engine.goes_on.push(state);
            }
        } else {
            engine.past_end = Some(state);
        }
        Ok(!goes_on)
    }

    /// Reads bytes from a state; `Ok(None)` when they are rejected.
    pub(super) fn step(&self, engine: &mut Engine, state: LazyStateID, bytes: &[u8]) -> Result<Option<LazyStateID>, Cleared> {
        let mut s = state;
        for &b in bytes {
            match self.next(engine, s, b)? {
                Some(n) => s = n,
                None => return Ok(None),
            }
        }
        Ok(Some(s))
    }

    pub(super) fn accepting(&self, engine: &mut Engine, state: LazyStateID) -> bool {
        self.grammar.is_accepting(&mut engine.cache, state)
    }

    /// Bytes that are the only way on from `state`.
    pub(super) fn forced_from(&self, engine: &mut Engine, mut state: LazyStateID) -> Result<Vec<u8>, Cleared> {
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
            if class.bytes.len() != 1 {
                break;
            }
            forced.push(class.rep);
            state = next;
        }
        Ok(forced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constraint::Constraint;
    use crate::schema::CompileOptions;

    /// What the memory count held before the walks' buffers and the loop record were counted.
    fn nfa_dfa_and_cache(a: &TokenAutomaton) -> usize {
        let dfa = a.grammar.dfa();
        dfa.get_nfa().memory_usage() + dfa.memory_usage() + a.lock().cache.memory_usage()
    }

    #[test]
    fn memory_usage_counts_the_visited_set_and_the_loop_record() {
        // Many declared keys (a large NFA), and other keys of lower-case letters and digits: a
        // key's body loops on those bytes. (Any other key at all would take the string plan,
        // which walks nothing.)
        let names: serde_json::Map<String, serde_json::Value> =
            (0..300).map(|n| (format!("key{n}"), serde_json::json!({"type": "integer"}))).collect();
        let schema = serde_json::json!({"type": "object", "properties": names, "propertyNames": {"pattern": "^[a-z0-9]*$"}});
        let grammar = Grammar::compile(&schema, &CompileOptions::default()).unwrap();
        let words = [
            "{",
            "\"",
            "\":",
            "1",
            "}",
            ",",
            "x",
            "xyzzy",
            "xyzzyxyzzy",
            "xy",
            "xyz",
            "xyzz",
            "zz",
            "zzz",
            "zzzz",
            "zy",
            "kzzzzzzzzz",
            "kzzz",
            "kzy",
        ];
        let tokens = words.iter().map(|w| Some(w.as_bytes().to_vec())).chain((0..64).map(|n| Some(format!("zyx{n}").into_bytes())));
        let vocab = Vocabulary::from_token_bytes(tokens.chain([None]).collect(), None);
        let a = Arc::new(TokenAutomaton::new(grammar, Arc::new(vocab)));
        let visited = a.nfa().states().len() * std::mem::size_of::<u32>();
        assert!(visited > 4096, "a large NFA: {visited}");
        assert!(a.memory_usage() >= nfa_dfa_and_cache(&a) + visited);
        // At a key's start, the tokens that begin like a declared name (`k`) are walked, and
        // past `kz` (no declared name) the key's body loops.
        let mut c = Constraint::new(a.clone());
        for bytes in [&b"{"[..], b"\"", b"k", b"z"] {
            c.mask().unwrap();
            assert!(c.advance_bytes(bytes).unwrap());
        }
        assert!(c.mask().unwrap().count() > 60);
        let loops = a.lock().loops.len();
        assert!(loops > 0, "the walks recorded which states loop");
        let masks = a.lock().states.len() * a.vocab.len().div_ceil(64) * 8;
        assert!(a.memory_usage() >= nfa_dfa_and_cache(&a) + visited + masks + loops * std::mem::size_of::<(LazyStateID, Loops)>());
    }
}
