//! Exact intersection (`allOf`, `$ref` with siblings, `type` with `anyOf`),
//! literal filtering, and the disjointness proof that `oneOf` needs.

use serde_json::Value;

use super::error::{SchemaError, SchemaErrorKind};
use super::reader::{json_equal, Reader};
use super::{ArrayRule, Bound, Node, NodeId, NumberRule, ObjectRule, Property, StringRule, Typed};

/// Unions wider than this after distributing an intersection are refused.
const MAX_UNION: usize = 256;

/// Follows `Ref`s to the node they name.
pub(super) fn resolve(r: &Reader, mut id: NodeId, at: &str, keyword: &str) -> Result<Node, SchemaError> {
    for _ in 0..64 {
        if r.is_in_progress(id) {
            return Err(SchemaError::inexact(keyword, at, "it combines a recursive `$ref` by intersection"));
        }
        match &r.nodes[id] {
            Node::Ref(next) => id = *next,
            node => return Ok(node.clone()),
        }
    }
    Err(SchemaError::inexact(keyword, at, "`$ref` chain too long"))
}

/// The intersection of several nodes.
pub(crate) fn intersect_all(r: &mut Reader, ids: &[NodeId], at: &str, keyword: &str) -> Result<Node, SchemaError> {
    let mut acc = Node::Any;
    for &id in ids {
        let node = resolve(r, id, at, keyword)?;
        acc = intersect(r, acc, node, at, keyword)?;
    }
    Ok(acc)
}

/// The intersection of two nodes; one nesting level (see [`Reader::nested`]).
fn intersect(r: &mut Reader, a: Node, b: Node, at: &str, kw: &str) -> Result<Node, SchemaError> {
    r.nested(at, |r| intersect_level(r, a, b, at, kw))
}

fn intersect_level(r: &mut Reader, a: Node, b: Node, at: &str, kw: &str) -> Result<Node, SchemaError> {
    r.check_budget(at)?;
    Ok(match (a, b) {
        (Node::Any, x) | (x, Node::Any) => x,
        (Node::Never, _) | (_, Node::Never) => Node::Never,
        (Node::Ref(id), x) | (x, Node::Ref(id)) => {
            let target = resolve(r, id, at, kw)?;
            intersect(r, target, x, at, kw)?
        }
        (a @ Node::AnyOf(_), b) | (a, b @ Node::AnyOf(_)) => {
            // Each branch meets the other side in the operands' order, which
            // is the order of their declared properties in the output.
            let any_of_first = matches!(a, Node::AnyOf(_));
            let (Node::AnyOf(branches), x) = (if any_of_first { (a, b) } else { (b, a) }) else { unreachable!("one side is a union") };
            let mut out = Vec::new();
            for id in branches {
                let branch = resolve(r, id, at, kw)?;
                let both = if any_of_first { intersect(r, branch, x.clone(), at, kw)? } else { intersect(r, x.clone(), branch, at, kw)? };
                if both != Node::Never {
                    out.push(r.push(both, at));
                }
            }
            if out.len() > MAX_UNION {
                return Err(SchemaError::too_large(at, format!("`{kw}` expands to more than {MAX_UNION} alternatives")));
            }
            match out.len() {
                0 => Node::Never,
                _ => Node::AnyOf(out),
            }
        }
        (Node::Literals(values), x) | (x, Node::Literals(values)) => {
            let mut kept = Vec::new();
            for v in values {
                if admits(r, &x, &v, at)? {
                    kept.push(v);
                }
            }
            if kept.is_empty() { Node::Never } else { Node::Literals(kept) }
        }
        (Node::Typed(a), Node::Typed(b)) => {
            let t = intersect_typed(r, a, b, at, kw)?;
            if t.is_empty() { Node::Never } else { Node::Typed(t) }
        }
    })
}

fn intersect_typed(r: &mut Reader, a: Typed, b: Typed, at: &str, kw: &str) -> Result<Typed, SchemaError> {
    Ok(Typed {
        null: a.null && b.null,
        boolean: a.boolean && b.boolean,
        number: both(a.number, b.number, |x, y| Ok(intersect_number(x, y))).transpose()?,
        string: both(a.string, b.string, |x, y| intersect_string(x, y, at, kw)).transpose()?,
        array: match (a.array, b.array) {
            (Some(x), Some(y)) => intersect_array(r, x, y, at, kw)?,
            _ => None,
        },
        object: match (a.object, b.object) {
            (Some(x), Some(y)) => intersect_object(r, x, y, at, kw)?,
            _ => None,
        },
    })
}

fn both<T, R>(a: Option<T>, b: Option<T>, f: impl FnOnce(T, T) -> R) -> Option<R> {
    match (a, b) {
        (Some(x), Some(y)) => Some(f(x, y)),
        _ => None,
    }
}

pub(crate) fn tighter_min(a: Option<Bound>, b: Bound) -> Option<Bound> {
    Some(match a {
        Some(a) if a.value > b.value || (a.value == b.value && a.exclusive) => a,
        _ => b,
    })
}

pub(crate) fn tighter_max(a: Option<Bound>, b: Bound) -> Option<Bound> {
    Some(match a {
        Some(a) if a.value < b.value || (a.value == b.value && a.exclusive) => a,
        _ => b,
    })
}

fn intersect_number(a: NumberRule, b: NumberRule) -> NumberRule {
    let mut out = NumberRule { integer: a.integer || b.integer, ..NumberRule::default() };
    out.minimum = a.minimum;
    if let Some(m) = b.minimum {
        out.minimum = tighter_min(out.minimum, m);
    }
    out.maximum = a.maximum;
    if let Some(m) = b.maximum {
        out.maximum = tighter_max(out.maximum, m);
    }
    out.multiple_of = match (a.multiple_of, b.multiple_of) {
        (Some(x), Some(y)) => Some(x / gcd(x, y) * y),
        (x, y) => x.or(y),
    };
    out
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn intersect_string(a: StringRule, b: StringRule, at: &str, kw: &str) -> Result<StringRule, SchemaError> {
    let pattern = match (a.pattern, b.pattern) {
        (Some(x), Some(y)) if x.0 != y.0 => {
            return Err(SchemaError::inexact(kw, at, "it intersects two different `pattern`s"));
        }
        (x, y) => x.or(y),
    };
    let format = match (a.format, b.format) {
        (Some(x), Some(y)) if x != y => {
            return Err(SchemaError::inexact(kw, at, "it intersects two different `format`s"));
        }
        (x, y) => x.or(y),
    };
    let mut excluded = a.excluded;
    for word in b.excluded {
        if !excluded.contains(&word) {
            excluded.push(word);
        }
    }
    Ok(StringRule {
        excluded,
        min_len: a.min_len.max(b.min_len),
        max_len: match (a.max_len, b.max_len) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        },
        pattern,
        format,
    })
}

pub(super) fn intersect_nodes(r: &mut Reader, a: NodeId, b: NodeId, at: &str, kw: &str) -> Result<Option<NodeId>, SchemaError> {
    if a == b || matches!(r.nodes[b], Node::Any) {
        return Ok(Some(a));
    }
    if matches!(r.nodes[a], Node::Any) {
        return Ok(Some(b));
    }
    let node = intersect_all(r, &[a, b], at, kw)?;
    Ok((node != Node::Never).then(|| r.push(node, at)))
}

fn intersect_array(r: &mut Reader, a: ArrayRule, b: ArrayRule, at: &str, kw: &str) -> Result<Option<ArrayRule>, SchemaError> {
    let len = a.prefix.len().max(b.prefix.len());
    let elem = |rule: &ArrayRule, i: usize| rule.prefix.get(i).copied().or(rule.items);
    let mut out = ArrayRule {
        min_items: a.min_items.max(b.min_items),
        max_items: match (a.max_items, b.max_items) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        },
        ..ArrayRule::default()
    };
    for i in 0..len {
        let merged = match (elem(&a, i), elem(&b, i)) {
            (Some(x), Some(y)) => intersect_nodes(r, x, y, at, kw)?,
            _ => None,
        };
        match merged {
            Some(id) => out.prefix.push(id),
            None => {
                out.max_items = Some(out.max_items.map_or(i, |m| m.min(i)));
                break;
            }
        }
    }
    out.items = match (a.items, b.items) {
        (Some(x), Some(y)) if out.prefix.len() == len => intersect_nodes(r, x, y, at, kw)?,
        _ => None,
    };
    out.items_any = a.items_any && b.items_any;
    out.contains = match (a.contains, b.contains) {
        (None, None) => None,
        (Some(c), None) | (None, Some(c)) => Some(super::contains::split(r, &out, c.schema, c.complement, (c.min, c.max), at)?),
        (Some(_), Some(_)) => {
            return Err(SchemaError::inexact("contains", at, "two `contains` on one array cannot be counted together"));
        }
    };
    if out.max_items.is_some_and(|m| m < out.min_items) {
        return Ok(None);
    }
    Ok(Some(out))
}

fn intersect_object(r: &mut Reader, a: ObjectRule, b: ObjectRule, at: &str, kw: &str) -> Result<Option<ObjectRule>, SchemaError> {
    let mut props: Vec<Property> = Vec::new();
    let names: Vec<String> = a
        .properties
        .iter()
        .chain(&b.properties)
        .map(|p| p.name.clone())
        .fold(Vec::new(), |mut acc, n| {
            if !acc.contains(&n) {
                acc.push(n);
            }
            acc
        });
    for name in names {
        let pa = a.properties.iter().find(|p| p.name == name);
        let pb = b.properties.iter().find(|p| p.name == name);
        let required = pa.is_some_and(|p| p.required) || pb.is_some_and(|p| p.required);
        let na = match pa {
            Some(p) => Some(p.node),
            None => undeclared(r, &a, &name, at)?,
        };
        let nb = match pb {
            Some(p) => Some(p.node),
            None => undeclared(r, &b, &name, at)?,
        };
        let node = match (na, nb) {
            (Some(x), Some(y)) => intersect_nodes(r, x, y, at, kw)?,
            _ => None,
        };
        match node {
            Some(node) => props.push(Property { name, node, required }),
            None if required => return Ok(None),
            // Kept with a false schema so that the name stays excluded from
            // additional properties.
            None => {
                let never = r.push(Node::Never, at);
                props.push(Property { name, node: never, required: false });
            }
        }
    }
    let additional = match (a.additional, b.additional) {
        (Some(x), Some(y)) => intersect_nodes(r, x, y, at, kw)?,
        _ => None,
    };
    // Pattern-keyed properties survive an intersection exactly when the other
    // side takes any value under any undeclared key, or has the same patterns.
    let (patterns, patterns_all) = if b.patterns.is_empty() && (a.patterns.is_empty() || b.additional_any) {
        (a.patterns, a.patterns_all)
    } else if a.patterns.is_empty() && a.additional_any || a.patterns == b.patterns {
        (b.patterns, b.patterns_all)
    } else {
        return Err(SchemaError::inexact(kw, at, "it intersects `patternProperties` with other constraints on undeclared keys"));
    };
    let max_props = match (a.max_props, b.max_props) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    let min_props = a.min_props.max(b.min_props);
    if max_props.is_some_and(|m| m < min_props) {
        return Ok(None);
    }
    let names = match (a.names, b.names) {
        (Some(x), Some(y)) => Some(intersect_string(x, y, at, kw)?),
        (x, y) => x.or(y),
    };
    let mut rule = ObjectRule {
        properties: props,
        additional,
        additional_any: a.additional_any && b.additional_any,
        patterns,
        patterns_all,
        min_props,
        max_props,
        names,
    };
    match super::names::restrict_names(r, &mut rule, at) {
        Ok(()) => Ok(Some(rule)),
        Err(e) if matches!(e.kind(), SchemaErrorKind::Unsatisfiable { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The node of an undeclared property name: the intersection of the
/// patterns it matches, or else `additionalProperties` (`None` if false).
pub(crate) fn undeclared(r: &mut Reader, rule: &ObjectRule, name: &str, at: &str) -> Result<Option<NodeId>, SchemaError> {
    let matching = matching_patterns(rule, name)?;
    if matching.is_empty() {
        return Ok(rule.additional);
    }
    let node = intersect_all(r, &matching, at, "patternProperties")?;
    Ok(Some(r.push(node, at)))
}

/// A declared property's node, intersected with the patterns its name matches.
pub(crate) fn with_matching_patterns(r: &mut Reader, rule: &ObjectRule, name: &str, node: NodeId, at: &str) -> Result<NodeId, SchemaError> {
    let mut ids = matching_patterns(rule, name)?;
    if ids.is_empty() {
        return Ok(node);
    }
    ids.insert(0, node);
    let node = intersect_all(r, &ids, at, "patternProperties")?;
    Ok(r.push(node, at))
}

fn matching_patterns(rule: &ObjectRule, name: &str) -> Result<Vec<NodeId>, SchemaError> {
    let mut ids = Vec::new();
    for p in &rule.patterns {
        if crate::pattern::pattern_matches(&p.pattern, name).map_err(|e| SchemaError::inexact("patternProperties", &p.pointer, e))? {
            ids.push(p.node);
        }
    }
    Ok(ids)
}

/// The node a key takes under an object rule (`None`: the key is forbidden).
fn key_node(r: &mut Reader, rule: &ObjectRule, name: &str, at: &str) -> Result<Option<NodeId>, SchemaError> {
    match rule.properties.iter().find(|p| p.name == name) {
        Some(p) => Ok(Some(p.node)),
        None => undeclared(r, rule, name, at),
    }
}

/// Whether an object rule forbids a key.
fn forbids(r: &mut Reader, rule: &ObjectRule, name: &str, at: &str) -> Result<bool, SchemaError> {
    Ok(match key_node(r, rule, name, at)? {
        None => true,
        Some(id) => matches!(r.nodes[id], Node::Never),
    })
}

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
fn admits(r: &mut Reader, node: &Node, value: &Value, at: &str) -> Result<bool, SchemaError> {
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
        if (x / m as f64).fract() != 0.0 {
            return false;
        }
    }
    true
}

/// The pairs of `oneOf` branches that strictly cannot prove disjoint.
pub(crate) fn overlapping_pairs(r: &mut Reader, ids: &[NodeId], at: &str) -> Result<Vec<(usize, usize)>, SchemaError> {
    let mut pairs = Vec::new();
    for (i, &a) in ids.iter().enumerate() {
        for (j, &b) in ids.iter().enumerate().skip(i + 1) {
            let na = resolve(r, a, at, "oneOf")?;
            let nb = resolve(r, b, at, "oneOf")?;
            if !disjoint(r, &na, &nb, at, 0)? {
                pairs.push((i, j));
            }
        }
    }
    Ok(pairs)
}

/// The refusal of a `oneOf` whose branches `i` and `j` may overlap.
pub(crate) fn overlap_error(i: usize, j: usize, at: &str) -> SchemaError {
    SchemaError::new(
        SchemaErrorKind::Unsupported {
            keyword: "oneOf".into(),
            why: format!(
                "branches {i} and {j} may both match one value, and exclusivity cannot be enforced (use anyOf, or the lenient option)"
            ),
        },
        at,
    )
}

fn disjoint(r: &mut Reader, a: &Node, b: &Node, at: &str, depth: usize) -> Result<bool, SchemaError> {
    if depth > 8 {
        return Ok(false);
    }
    Ok(match (a, b) {
        (Node::Never, _) | (_, Node::Never) => true,
        (Node::Any, _) | (_, Node::Any) => false,
        (Node::Ref(id), x) | (x, Node::Ref(id)) => {
            let t = resolve(r, *id, at, "oneOf")?;
            disjoint(r, &t, x, at, depth + 1)?
        }
        (Node::AnyOf(ids), x) | (x, Node::AnyOf(ids)) => {
            for id in ids.clone() {
                let t = resolve(r, id, at, "oneOf")?;
                if !disjoint(r, &t, x, at, depth + 1)? {
                    return Ok(false);
                }
            }
            true
        }
        (Node::Literals(vs), x) | (x, Node::Literals(vs)) => {
            for v in vs.clone() {
                if admits(r, x, &v, at)? {
                    return Ok(false);
                }
            }
            true
        }
        (Node::Typed(x), Node::Typed(y)) => {
            let numbers_overlap = match (&x.number, &y.number) {
                (Some(p), Some(q)) => ranges_overlap(p, q),
                _ => false,
            };
            let objects_overlap = match (&x.object, &y.object) {
                (Some(p), Some(q)) => !objects_disjoint(r, p, q, at, depth)?,
                _ => false,
            };
            !((x.null && y.null)
                || (x.boolean && y.boolean)
                || numbers_overlap
                || (x.string.is_some() && y.string.is_some())
                || (x.array.is_some() && y.array.is_some())
                || objects_overlap)
        }
    })
}

fn ranges_overlap(p: &NumberRule, q: &NumberRule) -> bool {
    let below = |max: Option<Bound>, min: Option<Bound>| match (max, min) {
        (Some(hi), Some(lo)) => hi.value < lo.value || (hi.value == lo.value && (hi.exclusive || lo.exclusive)),
        _ => false,
    };
    !(below(p.maximum, q.minimum) || below(q.maximum, p.minimum))
}

/// Objects are disjoint when a property required by both has disjoint
/// schemas, or one forbids a property the other requires.
fn objects_disjoint(r: &mut Reader, p: &ObjectRule, q: &ObjectRule, at: &str, depth: usize) -> Result<bool, SchemaError> {
    for a in p.properties.iter().filter(|a| a.required) {
        match q.properties.iter().find(|b| b.name == a.name) {
            Some(b) if b.required => {
                let na = resolve(r, a.node, at, "oneOf")?;
                let nb = resolve(r, b.node, at, "oneOf")?;
                if disjoint(r, &na, &nb, at, depth + 1)? {
                    return Ok(true);
                }
            }
            _ => {
                if forbids(r, q, &a.name, at)? {
                    return Ok(true);
                }
            }
        }
    }
    for b in q.properties.iter().filter(|b| b.required) {
        if forbids(r, p, &b.name, at)? {
            return Ok(true);
        }
    }
    Ok(false)
}
