//! A small validator over the IR: whether a node admits a JSON value,
//! exact for every node the reader builds. It keeps the `enum`/`const`
//! literals that the other keywords of their schema allow, and decides
//! literal cases of `oneOf` disjointness.

use serde_json::Value;

use super::error::SchemaError;
use super::merge::{key_node, resolve};
use super::reader::{json_equal, Reader};
use super::{Node, NumberRule, Typed};

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

/// Whether a node admits a value. Exact for every node the reader builds.
pub(super) fn admits(r: &mut Reader, node: &Node, value: &Value, at: &str) -> Result<bool, SchemaError> {
    r.nested(at, |r| admits_level(r, node, value, at))
}

fn admits_level(r: &mut Reader, node: &Node, value: &Value, at: &str) -> Result<bool, SchemaError> {
    Ok(match node {
        Node::Any => true,
        Node::Never => false,
        Node::Literals(values) => values.iter().any(|v| json_equal(v, value)),
        Node::Ref(id) => {
            let target = resolve(r, *id, at, "enum")?;
            admits(r, &target, value, at)?
        }
        Node::AnyOf(ids) => {
            for id in ids.clone() {
                let branch = resolve(r, id, at, "enum")?;
                if admits(r, &branch, value, at)? {
                    return Ok(true);
                }
            }
            false
        }
        Node::Typed(t) => match value {
            Value::Null => t.null,
            Value::Bool(_) => t.boolean,
            Value::Number(n) => t.number.as_ref().is_some_and(|rule| number_admits(rule, n.as_f64().unwrap_or(f64::NAN))),
            Value::String(s) => match &t.string {
                None => false,
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
                        if !admits(r, &child, item, at)? {
                            return Ok(false);
                        }
                    }
                    if rule.unique && items.iter().enumerate().any(|(i, a)| items[..i].iter().any(|b| json_equal(a, b))) {
                        return Ok(false);
                    }
                    if let Some(c) = &rule.contains {
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
                            if !super::names::admits_name(names, k)? {
                                return Ok(false);
                            }
                        }
                        let Some(id) = key_node(r, rule, k, at)? else { return Ok(false) };
                        let child = resolve(r, id, at, "enum")?;
                        if !admits(r, &child, v, at)? {
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
