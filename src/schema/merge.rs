//! Exact intersection (`allOf`, `$ref` with siblings, `type` with `anyOf`)
//! of IR nodes, and the schema an object rule gives a key. The validator
//! over the IR is in `admits.rs`, the disjointness proof `oneOf` needs in
//! `disjoint.rs`.

use super::admits::admits;
use super::error::{SchemaError, SchemaErrorKind};
use super::reader::Reader;
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
            if kept.is_empty() {
                Node::Never
            } else {
                Node::Literals(kept)
            }
        }
        (Node::Typed(a), Node::Typed(b)) => {
            let t = intersect_typed(r, a, b, at, kw)?;
            if t.is_empty() {
                Node::Never
            } else {
                Node::Typed(t)
            }
        }
    })
}

fn intersect_typed(r: &mut Reader, a: Typed, b: Typed, at: &str, kw: &str) -> Result<Typed, SchemaError> {
    let unlisted_numbers = a.unlisted_numbers_meet(&b);
    Ok(Typed {
        null: a.null && b.null,
        boolean: a.boolean && b.boolean,
        string: both(a.string, b.string, |x, y| intersect_string(x, y, at, kw)).transpose()?,
        array: match (a.array, b.array) {
            (Some(x), Some(y)) => intersect_array(r, x, y, at, kw)?,
            _ => None,
        },
        unlisted_numbers,
        number: both(a.number, b.number, |x, y| Ok(intersect_number(x, y))).transpose()?,
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
    // Both divisors over the same decimal places, then their least common multiple.
    (out.multiple_of, out.decimal_places) = match (a.multiple_of, b.multiple_of) {
        (Some(x), Some(y)) => {
            let places = a.decimal_places.max(b.decimal_places);
            let scale = |v: u64, p: u32| v.saturating_mul(10u64.saturating_pow(places - p));
            let (x, y) = (scale(x, a.decimal_places), scale(y, b.decimal_places));
            (Some((x / gcd(x, y)).saturating_mul(y)), places)
        }
        (Some(x), None) => (Some(x), a.decimal_places),
        (None, y) => (y, b.decimal_places),
    };
    out
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
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
    out.unique = a.unique || b.unique;
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
    let names: Vec<String> = a.properties.iter().chain(&b.properties).map(|p| p.name.clone()).fold(Vec::new(), |mut acc, n| {
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
pub(super) fn key_node(r: &mut Reader, rule: &ObjectRule, name: &str, at: &str) -> Result<Option<NodeId>, SchemaError> {
    match rule.properties.iter().find(|p| p.name == name) {
        Some(p) => Ok(Some(p.node)),
        None => undeclared(r, rule, name, at),
    }
}

/// Whether an object rule forbids a key.
pub(super) fn forbids(r: &mut Reader, rule: &ObjectRule, name: &str, at: &str) -> Result<bool, SchemaError> {
    Ok(match key_node(r, rule, name, at)? {
        None => true,
        Some(id) => matches!(r.nodes[id], Node::Never),
    })
}
