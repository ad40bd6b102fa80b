//! `contains`, `minContains` and `maxContains`, read into [`Contains`].
//!
//! An array satisfies `contains` when the number of its items that match the
//! schema lies within the bounds. Each position's element schema is split in
//! two, by intersection with the `contains` schema and with its exact
//! complement, so that the lowering can count the items that match: the
//! language is exact, or the schema is refused (a complement or an
//! intersection strictly cannot build).
//!
//! # Exact, or a subset for `type: integer`
//! The split is as exact as the complement. One complement is a subset: that
//! of `type: integer` (or of a `type` list naming `integer` without
//! `number`), since the IR cannot single out "the numbers with a fraction"
//! and so leaves out every number (see `negate.rs`). Under
//! `"contains": {"type": "integer"}` an item that is a number and does not
//! match is therefore never emitted: `[1, 2.5]` is valid but outside the
//! language, a sound subset (every array emitted is valid). Where no item can
//! be a non-integral number (`items` of `type: integer`, or of no numbers),
//! the language is exact.

use serde_json::{Map, Value};

use super::error::SchemaError;
use super::merge;
use super::negate::Complement;
use super::reader::Reader;
use super::rules::count;
use super::{ArrayRule, Contains, Node, NodeId};

impl Reader<'_> {
    /// Reads `contains` beside `rule` (whose prefix and items are read);
    /// `None` when there is none or it cannot fail.
    pub(super) fn read_contains(&mut self, map: &Map<String, Value>, rule: &ArrayRule, at: &str) -> Result<Option<Contains>, SchemaError> {
        if !map.contains_key("contains") {
            // `minContains` and `maxContains` without `contains` have no effect.
            return Ok(None);
        }
        let min = count(map, "minContains", at)?.unwrap_or(1);
        let max = count(map, "maxContains", at)?;
        if min == 0 && max.is_none() {
            return Ok(None);
        }
        let pointer = format!("{at}/contains");
        let schema = self.read_at(&pointer)?;
        let complement = self
            .negate(&pointer, at, Complement::Exact, 0)
            .map_err(|e| SchemaError::inexact("contains", at, format!("its complement cannot be built exactly ({e})")))?;
        let complement = self.push(complement, &pointer);
        split(self, rule, schema, complement, (min, max), at).map(Some)
    }
}

/// Splits every element schema of `rule` into hits and misses of `schema`.
pub(super) fn split(
    r: &mut Reader,
    rule: &ArrayRule,
    schema: NodeId,
    complement: NodeId,
    (min, max): (usize, Option<usize>),
    at: &str,
) -> Result<Contains, SchemaError> {
    let mut contains = Contains { schema, complement, hits: Vec::new(), misses: Vec::new(), min, max };
    let elements: Vec<Option<NodeId>> = rule.prefix.iter().map(|&p| Some(p)).chain([rule.items]).collect();
    for element in elements {
        let (hit, miss) = match element {
            None => (None, None),
            Some(e) => (part(r, e, schema, at)?, part(r, e, complement, at)?),
        };
        contains.hits.push(hit);
        contains.misses.push(miss);
    }
    Ok(contains)
}

fn part(r: &mut Reader, element: NodeId, with: NodeId, at: &str) -> Result<Option<NodeId>, SchemaError> {
    let id = merge::intersect_nodes(r, element, with, at, "contains")?;
    Ok(id.filter(|&id| !matches!(r.nodes[id], Node::Never)))
}
