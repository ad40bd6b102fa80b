//! Arrays with `contains`: the lowering counts the items that match.
//!
//! States are pairs (items emitted, hits so far). Hits count up to `top`:
//! `maxContains` when there is one (a further hit is refused), otherwise
//! `minContains` (further hits stay at `top`). An array may close once it
//! has `minItems` items and `minContains` hits. The NFA holds about
//! `2 × (top + 1)` copies of each element per position, so `top` is bounded
//! by [`MAX_COUNTED_HITS`].
//!
//! The counting is exact over the hits and misses it is given; those are a
//! subset only where the complement of the `contains` schema is (`type:
//! integer`: see `schema/contains.rs`).

use regex_automata::util::primitives::StateID;

use super::{Built, Lowerer, MAX_UNROLL};
use crate::schema::{ArrayRule, Contains, SchemaError};

/// `minContains`/`maxContains` above this are refused as too large.
const MAX_COUNTED_HITS: usize = 32;

impl Lowerer<'_> {
    pub(super) fn array_counting(&mut self, rule: &ArrayRule, c: &Contains, next: StateID) -> Built {
        let top = c.max.unwrap_or(c.min);
        if top > MAX_COUNTED_HITS {
            return Err(SchemaError::too_large(&self.at, format!("`contains` counts more than {MAX_COUNTED_HITS} matching items")));
        }
        if c.max.is_some_and(|m| m < c.min) {
            return Ok(None);
        }
        let close = self.punct(b']', next)?;
        let min = rule.min_items;
        let items_limit = if rule.items.is_none() { Some(rule.prefix.len()) } else { None };
        let max = match (rule.max_items, items_limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        // Very long bounded arrays are unrolled only this far: a subset, so sound.
        .map(|m| m.min(MAX_UNROLL.max(min)));
        if max.is_some_and(|m| m < min) {
            return Ok(None);
        }
        // The hit count after one more hit, `None` when that is one too many.
        let bump = |hits: usize| match hits < top {
            true => Some(hits + 1),
            false => c.max.is_none().then_some(top),
        };
        let can_close = |k: usize, hits: usize| k >= min && hits >= c.min;
        // Hit and miss schemas at position `k` (the last entry serves `items`).
        let slot = |k: usize| k.min(rule.prefix.len());
        let last = max.unwrap_or(rule.prefix.len().max(min).max(1));
        // after[k][h]: k items emitted with h hits, expecting ',' or ']'.
        let mut after: Vec<Vec<Option<StateID>>> = vec![vec![None; top + 1]; last + 1];
        if max.is_none() {
            // From `last` on, positions loop through one state per count.
            let loops = (0..=top).map(|_| self.open_union()).collect::<Result<Vec<_>, _>>()?;
            let at = slot(last);
            for hits in 0..=top {
                if hits >= c.min {
                    self.patch(loops[hits], close)?;
                }
                if let (Some(n), Some(hit)) = (bump(hits), c.hits[at]) {
                    if let Some(value) = self.node(hit, loops[n])? {
                        let comma = self.punct(b',', value)?;
                        self.patch(loops[hits], comma)?;
                    }
                }
                if let Some(miss) = c.misses[at] {
                    if let Some(value) = self.node(miss, loops[hits])? {
                        let comma = self.punct(b',', value)?;
                        self.patch(loops[hits], comma)?;
                    }
                }
                after[last][hits] = Some(loops[hits]);
            }
        } else {
            for (hits, then) in after[last].iter_mut().enumerate().take(top + 1) {
                *then = can_close(last, hits).then_some(close);
            }
        }
        // Element `k` from count `hits`, continuing in `after[k + 1]`.
        let element = |l: &mut Self, after: &[Vec<Option<StateID>>], k: usize, hits: usize| -> Result<Vec<StateID>, SchemaError> {
            let mut alts = Vec::new();
            if let (Some(n), Some(hit)) = (bump(hits), c.hits[slot(k)]) {
                if let Some(then) = after[k + 1][n] {
                    alts.extend(l.node(hit, then)?);
                }
            }
            if let (Some(then), Some(miss)) = (after[k + 1][hits], c.misses[slot(k)]) {
                alts.extend(l.node(miss, then)?);
            }
            Ok(alts)
        };
        for k in (1..last).rev() {
            for hits in 0..=top {
                let mut alts = Vec::new();
                if can_close(k, hits) {
                    alts.push(close);
                }
                for value in element(self, &after, k, hits)? {
                    alts.push(self.punct(b',', value)?);
                }
                after[k][hits] = if alts.is_empty() { None } else { Some(self.union(alts)?) };
            }
        }
        let mut firsts = Vec::new();
        if can_close(0, 0) {
            firsts.push(close);
        }
        if last >= 1 {
            firsts.extend(element(self, &after, 0, 0)?);
        }
        if firsts.is_empty() {
            return Ok(None);
        }
        let first = self.union(firsts)?;
        Ok(Some(self.punct(b'[', first)?))
    }
}
