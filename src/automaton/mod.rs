//! IR → byte-level automaton.
//!
//! The IR is lowered straight into a Thompson NFA with `regex_automata`'s
//! NFA builder (see `lower.rs` for why not through a regex string), and the
//! NFA is determinised lazily by `regex_automata::hybrid`: compiling costs
//! only the NFA, and DFA states are built as decoding visits them.
//!
//! # Recursion
//! A recursive `$ref` is unrolled: each `$ref` target may be entered at most
//! [`CompileOptions::max_recursion_depth`] times on one path (default 6);
//! beyond that the recursive branch is dropped, so the language is a subset
//! of the schema's and every output stays valid. The trade-off, measured on
//! `grammars/search_products.schema.json` (the recursive filter tree; see
//! docs/benchmarks.md for the current compile figures): each level of depth
//! roughly doubles the NFA, because the `and` and `or` branches each hold a
//! copy of the level below. A pushdown automaton would not pay this, but it
//! would give up the per-state mask cache that makes the hot path a lookup.
//!
//! # Limits
//! NFA size ([`CompileOptions::max_nfa_states`]), work ([`CompileOptions::max_work`],
//! steps, not time) and the work of a token mask ([`CompileOptions::max_mask_work`], see
//! [`cost`]) end in a clean [`SchemaError`].
//!
//! ```
//! use strictly::automaton::Grammar;
//! use strictly::schema::CompileOptions;
//! let schema = serde_json::json!({"type": "object", "properties": {"ok": {"type": "boolean"}},
//!                                 "required": ["ok"], "additionalProperties": false});
//! let g = Grammar::compile(&schema, &CompileOptions::default()).unwrap();
//! assert!(g.matches(br#"{"ok":true}"#));
//! assert!(!g.matches(br#"{"ok":1}"#));
//! ```

pub mod cost;
mod decimal;
pub(crate) mod distance;
mod lower;
pub(crate) mod regex;
pub(crate) mod strings;
mod walker;

pub use walker::{GrammarState, Walker};

use std::time::{Duration, Instant};

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::hybrid::LazyStateID;
use regex_automata::nfa::thompson::State;
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind};
use serde_json::Value;

use crate::schema::{self, CompileOptions, IgnoredKeyword, Ir, SchemaError};

/// Lazy-DFA cache capacity per grammar. States are built on demand; when the
/// cache fills, it is cleared and rebuilt (see the `constraint` module).
pub const CACHE_CAPACITY: usize = 64 << 20;

/// A compiled schema: a lazily determinised byte automaton whose matches are
/// exactly the compact JSON texts the schema admits (in schema property order).
#[derive(Debug, Clone)]
pub struct Grammar {
    dfa: DFA,
    nfa_states: usize,
    compile_time: Duration,
    /// Free and bounded string bodies (see [`strings`]).
    strings: std::sync::Arc<strings::StringBodies>,
    /// Keywords read as annotations (see [`Ir::ignored`]).
    ignored: std::sync::Arc<[IgnoredKeyword]>,
}

impl Grammar {
    /// Compiles a JSON Schema.
    ///
    /// # Errors
    /// Anything strictly cannot enforce exactly, or a size or work limit.
    pub fn compile(schema: &Value, options: &CompileOptions) -> Result<Self, SchemaError> {
        let started = Instant::now();
        schema::on_compiler_stack(|| {
            let ir = schema::read(schema, options)?;
            Self::lower(&ir, options, started)
        })
    }

    /// Lowers an IR (already read) to an automaton; `started` is when the compilation began
    /// (for [`Grammar::compile_time`]: the limits are in work, see
    /// [`CompileOptions::max_work`]).
    pub fn from_ir(ir: &Ir, options: &CompileOptions, started: Instant) -> Result<Self, SchemaError> {
        schema::on_compiler_stack(|| Self::lower(ir, options, started))
    }

    /// [`Grammar::from_ir`] on the caller's stack (for callers already on the compiler's).
    fn lower(ir: &Ir, options: &CompileOptions, started: Instant) -> Result<Self, SchemaError> {
        let mut lowerer = lower::Lowerer::new(ir, options);
        let nfa_err = |e: regex_automata::nfa::thompson::BuildError| SchemaError::too_large("", e.to_string());
        lowerer.b.start_pattern().map_err(nfa_err)?;
        let accept = lowerer.b.add_match().map_err(nfa_err)?;
        let start = lowerer.node(ir.root(), accept)?.ok_or_else(|| {
            SchemaError::new(
                schema::SchemaErrorKind::Unsatisfiable { why: "no value is left within the recursion and size limits".into() },
                "",
            )
        })?;
        lowerer.b.finish_pattern(start).map_err(nfa_err)?;
        let nfa = lowerer.b.build(start, start).map_err(nfa_err)?;
        let nfa_states = nfa.states().len();
        lowerer.spans.dropped = lowerer.dropped_unions();
        let marked = lowerer.spans.nfa_ids(&nfa, &lowerer.free_roots);
        let counted = lowerer.spans.nfa_ids(&nfa, lowerer.room_roots.iter().map(|(reads, _)| reads));
        let rooms = lowerer.room_roots.iter().map(|&(_, room)| room);
        let strings =
            std::sync::Arc::new(strings::StringBodies::find(&nfa).with_free_roots(marked).with_rooms(counted.into_iter().zip(rooms)));
        let classes: Vec<u8> = {
            let classes = nfa.byte_classes();
            classes.representatives(0..=255).filter_map(|u| u.as_u8()).collect()
        };
        cost::check(&nfa, &classes, &lowerer.spans, ir, options)?;
        let dfa = lazy_dfa(nfa, CACHE_CAPACITY).map_err(|e| SchemaError::too_large("", e.to_string()))?;
        Ok(Self { dfa, nfa_states, compile_time: started.elapsed(), strings, ignored: ir.ignored().into() })
    }

    /// The keywords no JSON Schema draft defines that the schema holds, read
    /// as annotations, each with its JSON pointer (empty under
    /// [`crate::schema::UnknownKeywords::Deny`], which refuses them).
    ///
    /// ```
    /// use strictly::automaton::Grammar;
    /// use strictly::schema::CompileOptions;
    /// let schema = serde_json::json!({"type": "object", "x-order": 1,
    ///                                 "properties": {"a": {"type": "string", "format": "color"}}});
    /// let g = Grammar::compile(&schema, &CompileOptions::default()).unwrap();
    /// let ignored: Vec<String> = g.ignored_keywords().iter().map(|k| k.to_string()).collect();
    /// assert_eq!(ignored, ["`x-order` at `#`", "`format` \"color\" at `#/properties/a`"]);
    /// ```
    pub fn ignored_keywords(&self) -> &[IgnoredKeyword] {
        &self.ignored
    }

    /// When `set` is a string body at a character boundary (one gadget root, and no other
    /// state that reads a byte a character can start with), that position and its root:
    /// the string takes any character, each uses one position, and after `room` of them
    /// only the closing quote is left.
    ///
    /// A set that holds the root of a loop over any character (a free string, or the `.*`
    /// around an unanchored pattern) is a free position whatever else it holds: every
    /// string of whole characters leads back to that root, so it stays alive. So is a set
    /// that holds a root the lowering marked as one from which every such string stays
    /// alive (a key that differs from the declared names, a pattern product's state that no
    /// text kills).
    pub(crate) fn string_position(&self, set: &[StateID]) -> Option<(strings::Position, StateID)> {
        if self.strings.is_empty() {
            return None;
        }
        if let Some(found) = set.iter().find_map(|&id| Some((self.strings.free_root(id)?, id))) {
            return Some(found);
        }
        self.gadget_position(set)
    }

    /// Where a pattern product that counts characters marked states of `set`: the most
    /// characters of text that surely keep it alive (a lower bound), and, when every state of
    /// the set that reads text is so marked, the most that may (beyond it, text kills them all).
    pub(crate) fn text_room(&self, set: &[StateID]) -> Option<(usize, Option<usize>)> {
        let nfa = self.dfa.get_nfa();
        let text = self.strings.text_first();
        let (mut sure, mut most) = (None, Some(0));
        for &id in set {
            if let Some((room, upper)) = self.strings.room(id) {
                sure = sure.max(Some(room as usize));
                most = most.map(|m: usize| m.max(upper as usize));
            } else if reads_text(nfa, id, text) {
                most = None;
            }
        }
        sure.map(|sure| (sure, most))
    }

    fn gadget_position(&self, set: &[StateID]) -> Option<(strings::Position, StateID)> {
        let nfa = self.dfa.get_nfa();
        // What the other states must not read: a byte a character can start with.
        let text = self.strings.text_first();
        let mut found = None;
        for &id in set {
            if let Some(position) = self.strings.position(id) {
                if found.is_some() {
                    return None;
                }
                found = Some((position, id));
                continue;
            }
            if reads_text(nfa, id, text) {
                return None;
            }
        }
        found
    }

    /// The lazy DFA.
    pub(crate) fn dfa(&self) -> &DFA {
        &self.dfa
    }

    /// NFA states after compilation (a size measure).
    pub fn nfa_states(&self) -> usize {
        self.nfa_states
    }

    /// Wall-clock time from schema to automaton.
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }

    /// A reader of the grammar byte by byte, with its own cache of states.
    pub fn walker(&self) -> Walker<'_> {
        Walker::new(self)
    }

    /// The largest NFA state set the compile-time probe finds ([`cost`]), within `max_sets`
    /// DFA states and `max_work` steps: the work of this grammar's costliest masks.
    pub fn mask_work(&self, max_sets: usize, max_work: u64) -> cost::MaskWork {
        let classes: Vec<u8> = self.dfa.byte_classes().representatives(0..=255).filter_map(|u| u.as_u8()).collect();
        cost::probe(self.dfa.get_nfa(), &classes, max_sets, max_work)
    }

    /// A fresh lazy-DFA cache for this grammar.
    pub(crate) fn new_cache(&self) -> Cache {
        self.dfa.create_cache()
    }

    /// The anchored start state.
    pub(crate) fn start(&self, cache: &mut Cache) -> LazyStateID {
        self.dfa
            .start_state(cache, &start::Config::new().anchored(Anchored::Yes))
            .expect("anchored start states never fail without look-behind")
    }

    /// Whether the bytes read so far form a complete instance.
    pub(crate) fn is_accepting(&self, cache: &mut Cache, state: LazyStateID) -> bool {
        self.dfa.next_eoi_state(cache, state).is_ok_and(|s| s.is_match())
    }

    /// Whether `text` is exactly one instance, in canonical form.
    pub fn matches(&self, text: &[u8]) -> bool {
        let mut walker = self.walker();
        let start = walker.start();
        text.iter().try_fold(start, |state, &byte| walker.step(state, byte)).is_some_and(|end| walker.is_accepting(end))
    }
}

/// A lazy DFA over an NFA: all matches (no leftmost pruning), and a cache
/// that is never cleared behind the caller's back.
// The error is regex-automata's own, returned once per compile; boxing it buys nothing.
#[allow(clippy::result_large_err)]
pub(crate) fn lazy_dfa(nfa: regex_automata::nfa::thompson::NFA, cache_capacity: usize) -> Result<DFA, regex_automata::hybrid::BuildError> {
    DFA::builder()
        .configure(
            DFA::config()
                .match_kind(MatchKind::All)
                .cache_capacity(cache_capacity)
                .minimum_cache_clear_count(None)
                .skip_cache_capacity_check(true),
        )
        .build_from_nfa(nfa)
}

/// Rewrites a value into the form the automaton produces: integral numbers
/// as integers (`1.0` → `1`). Key order is left as it is.
pub(crate) fn canonical_value(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() == 0.0 && f.abs() < 1e18 {
                Value::from(f as i64)
            } else {
                v.clone()
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical_value).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), canonical_value(v))).collect()),
        _ => v.clone(),
    }
}

/// Whether an NFA state reads a byte a character can start with (`text`).
fn reads_text(nfa: &regex_automata::nfa::thompson::NFA, id: StateID, text: &crate::bytes::ByteSet) -> bool {
    let reads = |start: u8, end: u8| crate::bytes::ByteSet::range(start, end).intersects(text);
    match nfa.state(id) {
        State::ByteRange { trans } => reads(trans.start, trans.end),
        State::Sparse(t) => t.transitions.iter().any(|t| reads(t.start, t.end)),
        State::Dense(_) => true,
        _ => false,
    }
}
