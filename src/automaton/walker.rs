//! Reading a grammar byte by byte from outside the crate: [`Grammar::walker`] and
//! [`GrammarState`], which hide the lazy DFA and its cache.

use regex_automata::hybrid::dfa::Cache;
use regex_automata::hybrid::LazyStateID;

use super::Grammar;

/// A state of a grammar's automaton, valid with the [`Walker`] that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GrammarState(LazyStateID);

impl GrammarState {
    /// Whether the byte that led here ended a complete instance. The automaton reports a
    /// match one byte late: the byte after a complete value leads to a state that says so,
    /// and from which the value may or may not go on ([`Walker::is_accepting`] says whether
    /// the bytes read so far are complete).
    pub fn follows_match(self) -> bool {
        self.0.is_match()
    }
}

/// Steps through a grammar's automaton with its own cache of states.
///
/// ```
/// use strictly::automaton::Grammar;
/// use strictly::schema::CompileOptions;
///
/// let g = Grammar::compile(&serde_json::json!({"type": "boolean"}), &CompileOptions::default())?;
/// let mut w = g.walker();
/// let mut state = w.start();
/// for &b in b"tru" {
///     state = w.step(state, b).expect("a prefix of true");
/// }
/// assert!(!w.is_accepting(state) && w.step(state, b'x').is_none());
/// let state = w.step(state, b'e').unwrap();
/// assert!(w.is_accepting(state));
/// # Ok::<(), strictly::schema::SchemaError>(())
/// ```
#[derive(Debug)]
pub struct Walker<'g> {
    grammar: &'g Grammar,
    cache: Cache,
}

impl<'g> Walker<'g> {
    pub(super) fn new(grammar: &'g Grammar) -> Self {
        Walker { grammar, cache: grammar.new_cache() }
    }

    /// The state before any byte.
    pub fn start(&mut self) -> GrammarState {
        GrammarState(self.grammar.start(&mut self.cache))
    }

    /// The state after `byte`, or `None` when no instance goes on with it.
    pub fn step(&mut self, state: GrammarState, byte: u8) -> Option<GrammarState> {
        self.grammar.dfa().next_state(&mut self.cache, state.0, byte).ok().filter(|s| !s.is_dead()).map(GrammarState)
    }

    /// Whether the bytes read up to `state` form a complete instance.
    pub fn is_accepting(&mut self, state: GrammarState) -> bool {
        self.grammar.is_accepting(&mut self.cache, state.0)
    }
}
