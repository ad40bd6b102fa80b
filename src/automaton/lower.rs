//! IR → Thompson NFA, built directly with `regex_automata`'s NFA builder.
//!
//! Construction runs backwards in continuation-passing style: every emitter
//! takes the state that follows it (`next`) and returns its own start state.
//! Two constructs that share a continuation can therefore share states, which
//! keeps the NFA linear where a regex string would not be:
//! - a separated list `[a, a, a]` holds one copy of `a` (a regex needs two);
//! - optional properties in schema order share their suffix, so `n` optional
//!   properties cost `O(n)` states, not `O(n²)`.
//!
//! `None` stands for the empty language; it propagates upwards so that the
//! NFA never holds a state from which no match is reachable. That keeps the
//! determinised automaton honest: a live state can always be completed.
//!
//! The lowering is split by job: [`builder`] holds the NFA primitives
//! (ranges, unions, loops, whitespace, one JSON character), [`char_trie`]
//! the byte tries of JSON characters, and one file per kind of value:
//! [`numbers`], [`strings`] (with [`hir`] for regexes), [`arrays`] (with
//! [`contains`] for counted arrays and [`unique`] for `uniqueItems`), [`objects`] and [`product`] (strings
//! under several regexes at once). This file holds the walk over the IR.

use std::collections::HashMap;

use regex_automata::nfa::thompson::Builder;
use regex_automata::util::primitives::StateID;
use serde_json::Value;

mod arrays;
mod builder;
mod char_trie;
mod contains;
mod hir;
mod multiples;
mod numbers;
mod objects;
mod product;
mod strings;
mod unique;

use crate::schema::{CompileOptions, Ir, Node, NodeId, NumberRule, SchemaError, StringRule, Typed};
pub(crate) use char_trie::{any_char_trie, TrieEdge};

type Built = Result<Option<StateID>, SchemaError>;

/// `maxItems` above this (and above `minItems`) is lowered as this many.
const MAX_UNROLL: usize = 128;
/// How deeply [`Lowerer::node`] and free values may nest (nodes inside
/// nodes, recursive `$ref`s unrolled) before the schema is refused as too
/// deep. A level uses less stack than a level of the reader; the compiler's
/// own thread holds the deepest lowering many times over.
const MAX_NESTING: usize = 256;

pub(crate) struct Lowerer<'a> {
    pub(crate) b: Builder,
    ir: &'a Ir,
    opts: &'a CompileOptions,
    ref_depth: HashMap<NodeId, usize>,
    states: usize,
    /// Steps spent so far (see [`CompileOptions::max_work`]).
    work: u64,
    /// The pointer of the node being lowered, for errors.
    at: String,
    /// Levels of [`Lowerer::node`] and free values under way.
    nesting: usize,
    /// Each node's builder ids, for naming the subschema of a costly mask.
    pub(crate) spans: super::cost::Spans,
    /// Open unions (by builder id) and the alternatives patched in so far.
    open: HashMap<StateID, u32>,
    /// Roots (builder ids, and the bytes each reads) from which every string of whole
    /// characters stays alive: the gaps of a key complement, the states of a pattern product
    /// that no text can kill ([`super::strings::StringBodies`]).
    pub(crate) free_roots: Vec<Reads>,
    /// States of a pattern product that counts characters, with the characters of text each
    /// surely takes and the most it may ([`super::strings::StringBodies::with_rooms`]).
    pub(crate) room_roots: Vec<(Reads, (u32, u32))>,
}

/// A state, and the byte ranges it reads (to find it again in the built NFA).
pub(crate) type Reads = (StateID, Vec<(u8, u8)>);

impl<'a> Lowerer<'a> {
    pub(crate) fn new(ir: &'a Ir, opts: &'a CompileOptions) -> Self {
        let mut b = Builder::new();
        b.set_utf8(false);
        Self {
            b,
            ir,
            opts,
            ref_depth: HashMap::new(),
            states: 0,
            work: 0,
            at: String::new(),
            nesting: 0,
            spans: Default::default(),
            open: HashMap::new(),
            free_roots: Vec::new(),
            room_roots: Vec::new(),
        }
    }

    fn check(&mut self) -> Result<(), SchemaError> {
        self.states += 1;
        if self.states > self.opts.max_nfa_states {
            return Err(SchemaError::too_large(&self.at, format!("the automaton needs more than {} NFA states", self.opts.max_nfa_states)));
        }
        self.spend(1)
    }

    /// Spends `steps` of the work budget.
    fn spend(&mut self, steps: u64) -> Result<(), SchemaError> {
        self.work += steps;
        if self.work > self.opts.max_work {
            return Err(SchemaError::too_large(&self.at, format!("lowering needs more than {} steps", self.opts.max_work)));
        }
        Ok(())
    }

    fn nfa_err(&self, e: impl std::fmt::Display) -> SchemaError {
        SchemaError::too_large(&self.at, format!("NFA construction failed: {e}"))
    }

    // ---- values -------------------------------------------------------

    /// Runs one level of the recursive lowering, refusing the schema when
    /// levels nest deeper than [`MAX_NESTING`] (the stack stays bounded).
    fn nested(&mut self, lower: impl FnOnce(&mut Self) -> Built) -> Built {
        if self.nesting >= MAX_NESTING {
            return Err(SchemaError::too_large(&self.at, format!("the automaton nests more than {MAX_NESTING} values deep")));
        }
        self.nesting += 1;
        let result = lower(self);
        self.nesting -= 1;
        result
    }

    /// Lowers a node; `None` when it admits nothing here.
    pub(crate) fn node(&mut self, id: NodeId, next: StateID) -> Built {
        let saved = std::mem::replace(&mut self.at, self.ir.pointer(id).to_string());
        // Builder id 0 is the match state; the k-th checked state is id k.
        let first = self.states + 1;
        let result = self.nested(|l| l.node_level(id, next));
        self.spans.spans.push((first, self.states + 1, id));
        self.at = saved;
        result
    }

    fn node_level(&mut self, id: NodeId, next: StateID) -> Built {
        match self.ir.node(id) {
            Node::Any => self.any_value(self.opts.any_value_depth, next),
            Node::Never => Ok(None),
            Node::Literals(values) => self.literals(values.iter().map(canonical_literal), next),
            Node::AnyOf(ids) => {
                let mut alts = Vec::new();
                for &branch in ids {
                    alts.push(self.node(branch, next)?);
                }
                self.union_opt(alts)
            }
            Node::Ref(target) => {
                let depth = self.ref_depth.entry(*target).or_insert(0);
                if *depth >= self.opts.max_recursion_depth {
                    Ok(None)
                } else {
                    *depth += 1;
                    let r = self.node(*target, next);
                    *self.ref_depth.get_mut(target).expect("entry exists") -= 1;
                    r
                }
            }
            Node::Typed(t) => self.typed(t, next),
        }
    }

    fn typed(&mut self, t: &Typed, next: StateID) -> Built {
        let mut alts = Vec::new();
        if t.null {
            alts.push(Some(self.lit(b"null", next)?));
        }
        if t.boolean {
            alts.push(Some(self.lit(b"true", next)?));
            alts.push(Some(self.lit(b"false", next)?));
        }
        if let Some(rule) = &t.number {
            alts.push(self.number(rule, next)?);
        }
        if let Some(rule) = &t.string {
            alts.push(self.string(rule, next)?);
        }
        if let Some(rule) = &t.array {
            alts.push(self.array(rule, next)?);
        }
        if let Some(rule) = &t.object {
            alts.push(self.object(rule, next)?);
        }
        self.union_opt(alts)
    }

    /// Any JSON value, nested at most `depth` levels.
    fn any_value(&mut self, depth: usize, next: StateID) -> Built {
        let mut alts = vec![
            Some(self.lit(b"null", next)?),
            Some(self.lit(b"true", next)?),
            Some(self.lit(b"false", next)?),
            self.number(&NumberRule::default(), next)?,
            self.string(&StringRule::default(), next)?,
        ];
        if depth > 0 {
            // Arrays and objects of free values, one level shallower.
            let close = self.punct(b']', next)?;
            let after = self.open_union()?;
            let item_then_after = self.nested(|l| l.any_value(depth - 1, after))?.expect("free values are never empty");
            let comma = self.punct(b',', item_then_after)?;
            self.patch(after, comma)?;
            self.patch(after, close)?;
            let first = self.union(vec![item_then_after, close])?;
            alts.push(Some(self.punct(b'[', first)?));

            let close = self.punct(b'}', next)?;
            let after = self.open_union()?;
            let value = self.nested(|l| l.any_value(depth - 1, after))?.expect("free values are never empty");
            let colon = self.punct(b':', value)?;
            let key = self.string(&StringRule::default(), colon)?.expect("free strings are never empty");
            let comma = self.punct(b',', key)?;
            self.patch(after, comma)?;
            self.patch(after, close)?;
            let first = self.union(vec![key, close])?;
            alts.push(Some(self.punct(b'{', first)?));
        }
        self.union_opt(alts)
    }
}

/// The canonical text of a literal: compact `serde_json`, with integral
/// numbers written as integers.
pub(crate) fn canonical_literal(v: &Value) -> String {
    serde_json::to_string(&crate::automaton::canonical_value(v)).expect("values serialise")
}
