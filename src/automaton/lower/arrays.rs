//! Arrays: prefix items, `items`, `minItems`/`maxItems`, with one shared
//! copy of the item schema for an unbounded tail (arrays with `contains`
//! are counted in [`super::contains`]).

use regex_automata::util::primitives::StateID;

use super::{Built, Lowerer, MAX_UNROLL};
use crate::schema::ArrayRule;

impl Lowerer<'_> {
    pub(super) fn array(&mut self, rule: &ArrayRule, next: StateID) -> Built {
        if rule.unique {
            return self.array_unique(rule, next);
        }
        if let Some(c) = &rule.contains {
            return self.array_counting(rule, c, next);
        }
        let close = self.punct(b']', next)?;
        let (min, max) = (rule.min_items, rule.max_items);
        let element = |i: usize| rule.prefix.get(i).copied().or(rule.items);
        // Past `uniform`, every position behaves alike and can loop.
        let uniform = rule.prefix.len().max(min);
        let items_limit = if rule.items.is_none() { Some(rule.prefix.len()) } else { None };
        let max = match (max, items_limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        // Very long bounded arrays are unrolled only this far: a subset, so sound.
        .map(|m| m.min(MAX_UNROLL.max(min)));
        if max.is_some_and(|m| m < min) {
            return Ok(None);
        }
        // after[k]: k elements emitted, expecting ',' or ']'.
        let last = max.unwrap_or(uniform.max(1));
        let mut states: Vec<Option<StateID>> = vec![None; last + 1];
        // For unbounded arrays, positions from `last` on loop through one
        // shared copy of `items` whose continuation is the loop itself.
        let mut shared: Option<(StateID, Option<StateID>)> = None;
        if max.is_none() {
            let u = self.open_union()?;
            let items = rule.items.expect("unbounded arrays have items");
            let elem = self.node(items, u)?;
            if let Some(elem) = elem {
                let comma = self.punct(b',', elem)?;
                self.patch(u, comma)?;
            }
            self.patch(u, close)?;
            states[last] = Some(u);
            shared = Some((u, elem));
        } else {
            states[last] = Some(close);
        }
        // An element at position k followed by state `then`, reusing the
        // shared copy when it is the same node with the same continuation.
        let element_then = |l: &mut Self, k: usize, then: StateID| -> Built {
            let Some(node) = element(k) else { return Ok(None) };
            if let Some((u, elem)) = shared {
                if then == u && Some(node) == rule.items {
                    return Ok(elem);
                }
            }
            l.node(node, then)
        };
        for k in (1..last).rev() {
            let mut alts = Vec::new();
            if k >= min {
                alts.push(Some(close));
            }
            if let Some(then) = states[k + 1] {
                if let Some(value) = element_then(self, k, then)? {
                    alts.push(Some(self.punct(b',', value)?));
                }
            }
            states[k] = self.union_opt(alts)?;
        }
        let mut firsts = Vec::new();
        if min == 0 {
            firsts.push(Some(close));
        }
        if last >= 1 {
            if let Some(then) = states[1] {
                firsts.push(element_then(self, 0, then)?);
            }
        }
        match self.union_opt(firsts)? {
            Some(first) => Ok(Some(self.punct(b'[', first)?)),
            None => Ok(None),
        }
    }
}
