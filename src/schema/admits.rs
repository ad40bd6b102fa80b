//! A small validator over the IR: whether a node admits a JSON value,
//! exact for every node the reader builds. It keeps the `enum`/`const`
//! literals that the other keywords of their schema allow, and decides
//! literal cases of `oneOf` disjointness.

use serde_json::Value;

use super::error::SchemaError;
use super::merge::{key_node, resolve};
use super::reader::{json_equal, Reader};
use super::{Node, NumberRule, StringRule, Typed};

/// Keeps the literals that satisfy the other keywords of their schema.
pub(crate) fn filter_literals(r: &mut Reader, values: Vec<Value>, typed: &Typed, at: &str) -> Result<Vec<Value>, SchemaError> {
    let node = Node::Typed(typed.clone());
    let mut kept = Vec::new();
    for v in values {
        if admits(r, &node, &v, at)? {
            kept.push(v);
        }
    }
    Ok(kept)
}

/// Whether a node admits a value. Exact for every node the reader builds: what the lowering
/// emits, so a value it refuses may still be valid where the IR is a sound subset.
pub(super) fn admits(r: &mut Reader, node: &Node, value: &Value, at: &str) -> Result<bool, SchemaError> {
    admits_as(r, node, value, at, false)
}

/// Whether the schema a node was read from may admit a value: [`admits`], except where the IR
/// is a subset of its schema (formats, [`Typed::unlisted_numbers`], `contains` counts), which
/// count as admitting. A proof that two schemas share no value needs this reading.
pub(super) fn may_admit(r: &mut Reader, node: &Node, value: &Value, at: &str) -> Result<bool, SchemaError> {
    admits_as(r, node, value, at, true)
}

fn admits_as(r: &mut Reader, node: &Node, value: &Value, at: &str, possibly: bool) -> Result<bool, SchemaError> {
    r.nested(at, |r| admits_level(r, node, value, at, possibly))
}

fn admits_level(r: &mut Reader, node: &Node, value: &Value, at: &str, possibly: bool) -> Result<bool, SchemaError> {
    Ok(match node {
        Node::Any => true,
        Node::Never => false,
        Node::Literals(values) => values.iter().any(|v| json_equal(v, value)),
        Node::Ref(id) => {
            let target = resolve(r, *id, at, "enum")?;
            admits_as(r, &target, value, at, possibly)?
        }
        Node::AnyOf(ids) => {
            for id in ids.clone() {
                let branch = resolve(r, id, at, "enum")?;
                if admits_as(r, &branch, value, at, possibly)? {
                    return Ok(true);
                }
            }
            false
        }
        Node::Typed(t) => match value {
            Value::Null => t.null,
            Value::Bool(_) => t.boolean,
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                t.number.as_ref().is_some_and(|rule| number_admits(rule, x)) || (possibly && t.unlisted_numbers && x.fract() != 0.0)
            }
            Value::String(s) => match &t.string {
                None => false,
                // A format's regex is a subset of its RFC.
                Some(rule) if possibly && rule.format.is_some() => StringRule { format: None, ..rule.clone() }.admits(s)?,
                Some(rule) => rule.admits(s)?,
            },
            Value::Array(items) => match &t.array {
                None => false,
                Some(rule) => {
                    if items.len() < rule.min_items || rule.max_items.is_some_and(|m| items.len() > m) {
                        return Ok(false);
                    }
                    for (i, item) in items.iter().enumerate() {
                        let Some(id) = rule.prefix.get(i).copied().or(rule.items) else { return Ok(false) };
                        let child = resolve(r, id, at, "enum")?;
                        if !admits_as(r, &child, item, at, possibly)? {
                            return Ok(false);
                        }
                    }
                    if rule.unique && items.iter().enumerate().any(|(i, a)| items[..i].iter().any(|b| json_equal(a, b))) {
                        return Ok(false);
                    }
                    // Counted on the IR, hits may be too few or too many for the schema.
                    if let Some(c) = rule.contains.as_ref().filter(|_| !possibly) {
                        let schema = resolve(r, c.schema, at, "contains")?;
                        let mut hits = 0;
                        for item in items {
                            hits += admits(r, &schema, item, at)? as usize;
                        }
                        if hits < c.min || c.max.is_some_and(|m| hits > m) {
                            return Ok(false);
                        }
                    }
                    true
                }
            },
            Value::Object(map) => match &t.object {
                None => false,
                Some(rule) => {
                    if map.len() < rule.min_props || rule.max_props.is_some_and(|m| map.len() > m) {
                        return Ok(false);
                    }
                    for p in &rule.properties {
                        if p.required && !map.contains_key(&p.name) {
                            return Ok(false);
                        }
                    }
                    for (k, v) in map {
                        if let Some(names) = &rule.names {
                            let names = if possibly { &StringRule { format: None, ..names.clone() } } else { names };
                            if !super::names::admits_name(names, k)? {
                                return Ok(false);
                            }
                        }
                        let Some(id) = key_node(r, rule, k, at)? else { return Ok(false) };
                        let child = resolve(r, id, at, "enum")?;
                        if !admits_as(r, &child, v, at, possibly)? {
                            return Ok(false);
                        }
                    }
                    true
                }
            },
        },
    })
}

fn number_admits(rule: &NumberRule, x: f64) -> bool {
    if rule.integer && x.fract() != 0.0 {
        return false;
    }
    if let Some(b) = rule.minimum {
        if x < b.value || (b.exclusive && x == b.value) {
            return false;
        }
    }
    if let Some(b) = rule.maximum {
        if x > b.value || (b.exclusive && x == b.value) {
            return false;
        }
    }
    if let Some(m) = rule.multiple_of {
        if !super::is_decimal_multiple(x, m, rule.decimal_places) {
            return false;
        }
    }
    true
}
