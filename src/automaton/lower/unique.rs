//! Arrays with `uniqueItems: true`, exact where the items form a small
//! finite set of values.
//!
//! The item values are listed (enum/const literals, `null`, booleans,
//! integers within bounds, and unions of these) and grouped into classes of
//! values equal as JSON (`1` and `1.0` are one class). The states are the
//! sets of classes emitted so far (a subset construction): an item may be
//! emitted only if its class is not in the set yet, so two equal items never
//! both appear. Each value is emitted in its one canonical spelling (the
//! lowering of a literal or an integer admits no other), so two different
//! texts are never one value in disguise (`1` and `1.0`, `"a"` and
//! `"\u0061"`).
//!
//! Anything else is refused with the pointer: items that are strings,
//! decimals, arrays or objects of any value (infinitely many), more than
//! [`MAX_ITEM_VALUES`] values, or more than [`MAX_SUBSETS`] reachable sets
//! (`n` values and no `maxItems` reach `2ⁿ` sets: 12 values fit).

use std::collections::HashMap;

use regex_automata::util::primitives::StateID;
use serde_json::Value;

use super::numbers::integer_bound;
use super::{canonical_literal, Built, Lowerer};
use crate::schema::{json_equal, ArrayRule, Node, NodeId, SchemaError};

/// Item values (over all positions) beyond this are refused.
const MAX_ITEM_VALUES: usize = 64;
/// Reachable sets of emitted values beyond this are refused as too large.
const MAX_SUBSETS: usize = 4096;
/// Integer item values beyond ±this are refused (they are listed as `i64`).
const MAX_INTEGER: i64 = 1_000_000_000_000_000_000;
/// `$ref`s followed while listing the values of one item schema.
const MAX_REF_HOPS: usize = 64;

fn too_many_values(at: &str) -> SchemaError {
    SchemaError::too_large(at, format!("`uniqueItems` over more than {MAX_ITEM_VALUES} item values is not supported"))
}

impl Lowerer<'_> {
    pub(super) fn array_unique(&mut self, rule: &ArrayRule, next: StateID) -> Built {
        if rule.contains.is_some() {
            return Err(SchemaError::inexact("uniqueItems", &self.at, "`uniqueItems` beside `contains` is not supported"));
        }
        // Classes of values equal as JSON, and the texts of each position's values.
        let mut classes: Vec<Value> = Vec::new();
        let mut listed: HashMap<NodeId, Vec<(usize, String)>> = HashMap::new();
        let positions = rule.prefix.len() + usize::from(rule.items.is_some());
        for p in 0..positions {
            let node = rule.prefix.get(p).copied().or(rule.items).expect("position has a node");
            if listed.contains_key(&node) {
                continue;
            }
            let mut values = Vec::new();
            self.finite_values(node, 0, &mut values)?;
            let mut texts: Vec<(usize, String)> = Vec::new();
            for v in values {
                let class = match classes.iter().position(|c| json_equal(c, &v)) {
                    Some(c) => c,
                    None => {
                        classes.push(v.clone());
                        classes.len() - 1
                    }
                };
                if classes.len() > MAX_ITEM_VALUES {
                    return Err(too_many_values(&self.at));
                }
                let text = canonical_literal(&v);
                if !texts.iter().any(|(_, t)| *t == text) {
                    texts.push((class, text));
                }
            }
            listed.insert(node, texts);
        }
        let at_position = |k: usize| rule.prefix.get(k).copied().or(rule.items).map(|n| &listed[&n]);
        // Items are distinct, so no array is longer than the number of values.
        let max = rule.max_items.unwrap_or(usize::MAX).min(classes.len());
        if max < rule.min_items {
            return Ok(None);
        }
        // levels[k]: the sets reachable after k items, as bit masks over classes.
        let mut levels: Vec<Vec<u64>> = vec![vec![0]];
        let mut total = 1;
        for k in 0..max {
            let Some(texts) = at_position(k) else { break };
            let mut level: Vec<u64> = levels[k]
                .iter()
                .flat_map(|&set| texts.iter().filter(move |(c, _)| set & (1u64 << c) == 0).map(move |(c, _)| set | (1u64 << c)))
                .collect();
            level.sort_unstable();
            level.dedup();
            if level.is_empty() {
                break;
            }
            total += level.len();
            if total > MAX_SUBSETS {
                return Err(SchemaError::too_large(&self.at, format!("`uniqueItems` needs more than {MAX_SUBSETS} sets of emitted items")));
            }
            levels.push(level);
        }
        self.spend(total as u64)?;
        let close = self.punct(b']', next)?;
        // after[set]: the items in `set` emitted, expecting ',' or ']'; built from the longest arrays back.
        let mut after: HashMap<u64, StateID> = HashMap::new();
        for k in (0..levels.len()).rev() {
            for &set in &levels[k] {
                let mut alts = Vec::new();
                if k >= rule.min_items {
                    alts.push(close);
                }
                for (class, text) in at_position(k).into_iter().flatten() {
                    let Some(&then) = (set & (1u64 << class) == 0).then(|| after.get(&(set | (1u64 << class)))).flatten() else { continue };
                    let item = self.lit(text.as_bytes(), then)?;
                    alts.push(if k > 0 { self.punct(b',', item)? } else { item });
                }
                if !alts.is_empty() {
                    let state = self.union(alts)?;
                    after.insert(set, state);
                }
            }
        }
        match after.get(&0) {
            Some(&first) => Ok(Some(self.punct(b'[', first)?)),
            None => Ok(None),
        }
    }

    /// Lists the values a node admits, each as its canonical value, or
    /// refuses when they are not a small finite set.
    fn finite_values(&self, id: NodeId, hops: usize, out: &mut Vec<Value>) -> Result<(), SchemaError> {
        let infinite = |what: &str| {
            SchemaError::inexact("uniqueItems", &self.at, format!("`uniqueItems` is supported only over a small finite set of item values (enum, const, null, booleans, bounded integers), not {what}"))
        };
        if out.len() > MAX_ITEM_VALUES {
            return Err(too_many_values(&self.at));
        }
        match self.ir.node(id) {
            Node::Never => {}
            Node::Any => return Err(infinite("any value")),
            Node::Literals(values) => out.extend(values.iter().map(crate::automaton::canonical_value)),
            Node::Ref(_) | Node::AnyOf(_) if hops >= MAX_REF_HOPS => return Err(infinite("recursive items")),
            Node::Ref(target) => self.finite_values(*target, hops + 1, out)?,
            Node::AnyOf(ids) => {
                for &branch in ids {
                    self.finite_values(branch, hops + 1, out)?;
                }
            }
            Node::Typed(t) => {
                if t.string.is_some() {
                    return Err(infinite("strings of a type"));
                }
                if t.array.is_some() || t.object.is_some() {
                    return Err(infinite("arrays or objects of a type"));
                }
                if t.null {
                    out.push(Value::Null);
                }
                if t.boolean {
                    out.extend([Value::Bool(true), Value::Bool(false)]);
                }
                if let Some(rule) = &t.number {
                    if !rule.integer {
                        return Err(infinite("decimal numbers"));
                    }
                    if rule.multiple_of.is_some() {
                        return Err(infinite("integers with `multipleOf`"));
                    }
                    let bound = |b: Option<crate::schema::Bound>, is_min: bool| {
                        let (v, exclusive) = integer_bound(b?.value, b?.exclusive, is_min)?;
                        Some(if !exclusive {
                            v
                        } else if is_min {
                            v + 1
                        } else {
                            v - 1
                        })
                    };
                    let (Some(lo), Some(hi)) = (bound(rule.minimum, true), bound(rule.maximum, false)) else {
                        return Err(infinite("integers without both bounds"));
                    };
                    if lo < -(MAX_INTEGER as i128) || hi > MAX_INTEGER as i128 {
                        return Err(infinite("integers beyond ±10¹⁸"));
                    }
                    if hi >= lo && hi - lo >= MAX_ITEM_VALUES as i128 {
                        return Err(too_many_values(&self.at));
                    }
                    out.extend((lo..=hi).map(|v| Value::from(v as i64)));
                }
            }
        }
        Ok(())
    }
}
