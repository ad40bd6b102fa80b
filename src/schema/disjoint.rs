//! The disjointness proof that `oneOf` needs: pairs of branches that
//! strictly cannot prove never match the same value, and the refusal
//! that names them.

use super::admits::may_admit;
use super::error::{SchemaError, SchemaErrorKind};
use super::merge::{forbids, resolve};
use super::reader::Reader;
use super::{Bound, Node, NodeId, NumberRule, ObjectRule};

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
                if may_admit(r, x, &v, at)? {
                    return Ok(false);
                }
            }
            true
        }
        (Node::Typed(x), Node::Typed(y)) => {
            // Unlisted numbers may be any non-integral ones (a subset in the IR, not in the schema).
            let numbers_overlap = match (&x.number, &y.number) {
                (Some(p), Some(q)) => ranges_overlap(p, q),
                _ => false,
            } || x.unlisted_numbers_meet(y);
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
