//! The serializations of an instance the automaton is asked about: its own
//! key order and the schema's.

use serde_json::Value;

use crate::automaton::canonical_value;
use crate::schema::{Ir, Node, NodeId};

/// The serializations of an instance the automaton should accept: compact
/// JSON in the instance's own key order, and in schema order. Integral floats
/// are written as integers (`1.0` → `1`) only where the draft makes them
/// integers (not draft-04, where `1.0` is not an integer).
pub fn serializations(ir: &Ir, value: &Value) -> Vec<String> {
    let value = if ir.integral_floats_are_integers() { canonical_value(value) } else { value.clone() };
    let mut out = vec![serde_json::to_string(&value).unwrap_or_default()];
    let ordered = serde_json::to_string(&schema_order(ir, ir.root(), &value, 0)).unwrap_or_default();
    if ordered != out[0] {
        out.push(ordered);
    }
    out
}

/// Reorders object keys to the schema's property order (best effort through unions).
fn schema_order(ir: &Ir, id: NodeId, value: &Value, depth: usize) -> Value {
    if depth > 64 {
        return value.clone();
    }
    match ir.node(id) {
        Node::Ref(target) => schema_order(ir, *target, value, depth + 1),
        Node::AnyOf(branches) => {
            let fits = |b: &NodeId| branch_fits(ir, *b, value, 0);
            match branches.iter().find(|b| fits(b)) {
                Some(b) => schema_order(ir, *b, value, depth + 1),
                None => value.clone(),
            }
        }
        Node::Typed(t) => match value {
            Value::Object(map) => {
                let Some(rule) = &t.object else { return value.clone() };
                let mut ordered = serde_json::Map::new();
                for p in &rule.properties {
                    if let Some(v) = map.get(&p.name) {
                        ordered.insert(p.name.clone(), schema_order(ir, p.node, v, depth + 1));
                    }
                }
                for (k, v) in map {
                    if !ordered.contains_key(k) {
                        let v = match rule.additional {
                            Some(a) => schema_order(ir, a, v, depth + 1),
                            None => v.clone(),
                        };
                        ordered.insert(k.clone(), v);
                    }
                }
                Value::Object(ordered)
            }
            Value::Array(items) => {
                let Some(rule) = &t.array else { return value.clone() };
                Value::Array(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| match rule.prefix.get(i).copied().or(rule.items) {
                            Some(n) => schema_order(ir, n, v, depth + 1),
                            None => v.clone(),
                        })
                        .collect(),
                )
            }
            _ => value.clone(),
        },
        _ => value.clone(),
    }
}

/// Whether a union branch plausibly describes a value (type and required keys).
fn branch_fits(ir: &Ir, id: NodeId, value: &Value, depth: usize) -> bool {
    if depth > 16 {
        return false;
    }
    match ir.node(id) {
        Node::Any => true,
        Node::Never => false,
        Node::Literals(vs) => vs.contains(value),
        Node::Ref(t) => branch_fits(ir, *t, value, depth + 1),
        Node::AnyOf(bs) => bs.iter().any(|b| branch_fits(ir, *b, value, depth + 1)),
        Node::Typed(t) => match value {
            Value::Null => t.null,
            Value::Bool(_) => t.boolean,
            Value::Number(_) => t.number.is_some(),
            Value::String(_) => t.string.is_some(),
            Value::Array(_) => t.array.is_some(),
            Value::Object(map) => t.object.as_ref().is_some_and(|o| {
                o.properties.iter().all(|p| !p.required || map.contains_key(&p.name))
                    && (o.additional.is_some() || !o.patterns.is_empty() || map.keys().all(|k| o.properties.iter().any(|p| &p.name == k)))
            }),
        },
    }
}
