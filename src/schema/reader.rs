//! Reads a `serde_json::Value` schema into the [`Ir`](super::Ir): the
//! reader's state and budgets, one schema object at a time (its local
//! keywords, then the applicators that intersect with them), literals, and
//! the keyword check. References are resolved in `refs.rs`, the
//! type-specific keywords read in `rules.rs`, the vocabulary listed in
//! `keywords.rs`.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::error::{SchemaError, SchemaErrorKind};
use super::keywords::{constrains, is_no_op, unevaluated_is_local, Draft, ANNOTATIONS, REFUSED, SUPPORTED, TYPE_KEYWORDS};
use super::negate::Complement;
use super::{admits, disjoint, merge};
use super::{CompileOptions, IgnoredKeyword, Ir, Node, NodeId, Typed, UnknownKeywords};

/// Schema nodes one reading may create.
const MAX_NODES: usize = 200_000;

/// How deeply the reader's recursive passes (reading, intersecting,
/// filtering literals) may nest before the schema is refused as too deep.
/// Measured in a release build: about 10 KB of stack per level (1.3 MB at
/// the limit), which the compiler's own thread holds many times over (see
/// `on_compiler_stack`).
pub(crate) const MAX_NESTING: usize = 128;

pub(crate) struct Reader<'a> {
    pub(super) root: &'a Value,
    pub(super) draft: Draft,
    pub(super) options: &'a CompileOptions,
    pub(crate) nodes: Vec<Node>,
    pub(crate) pointers: Vec<String>,
    /// Nodes already read, by the JSON pointer of their schema.
    pub(super) by_pointer: HashMap<String, NodeId>,
    /// Nodes whose reading is under way (a `$ref` to one is recursive).
    pub(super) in_progress: Vec<bool>,
    pub(super) any: NodeId,
    /// Schemas negated so far (bounded: see `negate.rs`).
    pub(super) negations: usize,
    /// Nesting of the recursive passes under way (see [`MAX_NESTING`]).
    nesting: usize,
    /// Keywords no draft defines, read as annotations.
    pub(super) ignored: std::collections::BTreeSet<IgnoredKeyword>,
    /// Steps spent so far (see [`CompileOptions::max_work`]).
    work: u64,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(root: &'a Value, options: &'a CompileOptions) -> Self {
        let mut reader = Self {
            root,
            draft: Draft::detect(root),
            options,
            nodes: Vec::new(),
            pointers: Vec::new(),
            by_pointer: HashMap::new(),
            in_progress: Vec::new(),
            any: 0,
            negations: 0,
            nesting: 0,
            ignored: std::collections::BTreeSet::new(),
            work: 0,
        };
        reader.any = reader.push(Node::Any, "");
        reader
    }

    pub(crate) fn read_root(mut self) -> Result<Ir, SchemaError> {
        let root = self.read_at("")?;
        if matches!(self.nodes[root], Node::Never) {
            return Err(SchemaError::new(SchemaErrorKind::Unsatisfiable { why: "the schema admits no value".into() }, ""));
        }
        let ignored = self.ignored.into_iter().collect();
        Ok(Ir { nodes: self.nodes, pointers: self.pointers, root, draft4: self.draft == Draft::D4, ignored })
    }

    pub(crate) fn push(&mut self, node: Node, pointer: &str) -> NodeId {
        self.nodes.push(node);
        self.pointers.push(pointer.to_string());
        self.in_progress.push(false);
        self.nodes.len() - 1
    }

    /// Spends one step, refusing a schema whose reading outgrows the node or work limits
    /// (intersections and complements can multiply nodes).
    pub(crate) fn check_budget(&mut self, at: &str) -> Result<(), SchemaError> {
        if self.nodes.len() > MAX_NODES {
            return Err(SchemaError::too_large(at, format!("reading needs more than {MAX_NODES} schema nodes")));
        }
        self.work += 1;
        if self.work > self.options.max_work {
            return Err(SchemaError::too_large(at, format!("reading needs more than {} steps", self.options.max_work)));
        }
        Ok(())
    }

    /// Runs one level of a recursive pass, refusing the schema at `at` when
    /// the passes nest deeper than [`MAX_NESTING`] (the stack stays bounded
    /// whatever the schema).
    pub(crate) fn nested<T>(&mut self, at: &str, pass: impl FnOnce(&mut Self) -> Result<T, SchemaError>) -> Result<T, SchemaError> {
        if self.nesting >= MAX_NESTING {
            return Err(SchemaError::too_large(at, format!("schemas nest more than {MAX_NESTING} levels deep")));
        }
        self.nesting += 1;
        let result = pass(self);
        self.nesting -= 1;
        result
    }

    pub(crate) fn is_in_progress(&self, id: NodeId) -> bool {
        self.in_progress[id]
    }

    pub(super) fn read_schema(&mut self, schema: &Value, at: &str) -> Result<Node, SchemaError> {
        let map = match schema {
            Value::Bool(true) => return Ok(Node::Any),
            Value::Bool(false) => return Ok(Node::Never),
            Value::Object(map) => map,
            _ => return Err(SchemaError::malformed("schema", at, "a schema must be an object or a boolean")),
        };
        self.check_keywords(map, at)?;

        if let Some(reference) = map.get("$ref") {
            let target = self.resolve_ref(reference, at)?;
            let has_siblings = map.keys().any(|k| k != "$ref" && constrains(k));
            // Before 2019-09, keywords beside `$ref` are ignored.
            if !has_siblings || self.draft <= Draft::D7 {
                return Ok(Node::Ref(target));
            }
            let mut rest = map.clone();
            rest.remove("$ref");
            let own = self.read_schema(&Value::Object(rest), at)?;
            let own = self.push(own, at);
            let target = self.push(Node::Ref(target), at);
            return merge::intersect_all(self, &[target, own], at, "$ref");
        }

        let base = self.read_local(map, at)?;

        // Applicators combine with the local constraints by intersection.
        let mut parts = Vec::new();
        if let Some(all) = map.get("allOf") {
            for (i, _) in Self::array(all, "allOf", at)?.iter().enumerate() {
                parts.push(self.read_at(&format!("{at}/allOf/{i}"))?);
            }
        }
        parts.extend(self.read_dependencies(map, at)?);
        parts.extend(self.read_conditional(map, at)?);
        if map.contains_key("not") {
            let complement = self.negate(&format!("{at}/not"), at, Complement::Exact, 0)?;
            parts.push(self.push(complement, at));
        }
        let mut node = if parts.is_empty() {
            base
        } else {
            let base = self.push(base, at);
            parts.insert(0, base);
            merge::intersect_all(self, &parts, at, "allOf")?
        };
        for key in ["anyOf", "oneOf"] {
            let Some(branches) = map.get(key) else { continue };
            let mut ids = Vec::new();
            for (i, _) in Self::array(branches, key, at)?.iter().enumerate() {
                ids.push(self.read_at(&format!("{at}/{key}/{i}"))?);
            }
            if key == "oneOf" && !self.options.lenient_one_of {
                let overlaps = disjoint::overlapping_pairs(self, &ids, at)?;
                if let Some(&(i, j)) = overlaps.first() {
                    ids = self.exclusive_branches(&ids, &overlaps, at).ok_or_else(|| disjoint::overlap_error(i, j, at))?;
                }
            }
            let union = self.push(Node::AnyOf(ids), at);
            node = if matches!(node, Node::Any) {
                Node::Ref(union)
            } else {
                let own = self.push(node, at);
                merge::intersect_all(self, &[own, union], at, key)?
            };
        }
        Ok(node)
    }

    pub(super) fn check_keywords(&mut self, map: &Map<String, Value>, at: &str) -> Result<(), SchemaError> {
        for (keyword, value) in map {
            let k = keyword.as_str();
            if ANNOTATIONS.contains(&k) || SUPPORTED.contains(&k) {
                continue;
            }
            if k == "id" && self.draft == Draft::D4 && value.is_string() {
                continue;
            }
            if let Some((_, why)) = REFUSED.iter().find(|(r, _)| *r == k) {
                if is_no_op(k, value, map) || unevaluated_is_local(k, map) {
                    continue;
                }
                return Err(SchemaError::unsupported(k, at, why));
            }
            if self.options.unknown_keywords == UnknownKeywords::Deny {
                return Err(SchemaError::new(SchemaErrorKind::UnknownKeyword { keyword: k.into() }, at));
            }
            self.ignored.insert(IgnoredKeyword { pointer: at.into(), keyword: k.into(), format: None });
        }
        Ok(())
    }

    fn array<'v>(value: &'v Value, keyword: &str, at: &str) -> Result<&'v Vec<Value>, SchemaError> {
        match value {
            Value::Array(items) if !items.is_empty() => Ok(items),
            _ => Err(SchemaError::malformed(keyword, at, "must be a non-empty array")),
        }
    }

    /// Reads the keywords that apply to the value itself (not applicators).
    fn read_local(&mut self, map: &Map<String, Value>, at: &str) -> Result<Node, SchemaError> {
        let literals = self.read_literals(map, at)?;

        let types = match map.get("type") {
            None => None,
            Some(Value::String(t)) => Some(vec![t.as_str()]),
            Some(Value::Array(ts)) => Some(
                ts.iter()
                    .map(|t| t.as_str().ok_or_else(|| SchemaError::malformed("type", at, "must hold strings")))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(_) => return Err(SchemaError::malformed("type", at, "must be a string or an array")),
        };
        let has = |t: &str| types.as_ref().is_none_or(|ts| ts.contains(&t));
        if let Some(ts) = &types {
            for t in ts {
                if !["null", "boolean", "integer", "number", "string", "array", "object"].contains(t) {
                    return Err(SchemaError::malformed("type", at, format!("unknown type \"{t}\"")));
                }
            }
        }
        let type_specific =
            map.iter().any(|(k, v)| TYPE_KEYWORDS.iter().any(|(kw, _)| kw == k) && !(k.starts_with("unevaluated") && is_no_op(k, v, map)));
        if types.is_none() && !type_specific {
            return Ok(match literals {
                Some(values) => Node::Literals(values),
                None => Node::Any,
            });
        }

        let mut typed = Typed { null: has("null"), boolean: has("boolean"), ..Typed::default() };
        if has("number") || has("integer") {
            let mut rule = self.read_number(map, at)?;
            rule.integer |= !has("number");
            typed.number = Some(rule);
        }
        if has("string") {
            typed.string = Some(self.read_string(map, at)?);
        }
        if has("array") {
            typed.array = Some(self.read_array(map, at)?);
        }
        if has("object") {
            typed.object = Some(self.read_object(map, at)?);
        }
        if let Some(values) = literals {
            let kept = admits::filter_literals(self, values, &typed, at)?;
            return Ok(if kept.is_empty() { Node::Never } else { Node::Literals(kept) });
        }
        Ok(if typed.is_empty() { Node::Never } else { Node::Typed(typed) })
    }

    fn read_literals(&self, map: &Map<String, Value>, at: &str) -> Result<Option<Vec<Value>>, SchemaError> {
        let mut values = match map.get("enum") {
            Some(Value::Array(vs)) => Some(vs.clone()),
            Some(_) => return Err(SchemaError::malformed("enum", at, "must be an array")),
            None => None,
        };
        for (keyword, value) in map.iter().filter(|(k, _)| *k == "enum" || *k == "const") {
            // Comparing and printing literals recurses over them.
            if value_depth(value) > MAX_NESTING {
                return Err(SchemaError::too_large(at, format!("`{keyword}` holds values nested more than {MAX_NESTING} levels deep")));
            }
        }
        if let Some(c) = map.get("const") {
            values = Some(match values {
                Some(vs) => vs.into_iter().filter(|v| json_equal(v, c)).collect(),
                None => vec![c.clone()],
            });
        }
        Ok(values)
    }
}

/// JSON equality as JSON Schema defines it (1 == 1.0).
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w))),
        _ => a == b,
    }
}

/// How deeply a JSON value nests (a scalar is 1), found without recursion.
fn value_depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1)];
    while let Some((v, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, depth + 1))),
            _ => {}
        }
    }
    deepest
}
