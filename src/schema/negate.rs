//! `not`: the complement of a schema, for the shapes whose complement the IR
//! expresses exactly. Anything else is refused with `not` as the keyword.
//!
//! A schema is the conjunction of its keywords, so its complement is the
//! union of the complements of its keywords (annotations excluded), each of
//! which is built here:
//! - `type` → the other types (one sound subset: the complement of
//!   `integer` alone drops the non-integral numbers too, and is marked
//!   [`Typed::unlisted_numbers`], so that `oneOf` does not take it as exact);
//! - `enum`/`const` → every other value: the other types, strings minus the
//!   listed words, numbers in the open intervals between the listed ones;
//! - `required` → objects lacking one of the names;
//! - `properties` → objects that have one of the names with a value in the
//!   complement of its schema;
//! - bounds (`minimum`, `maxLength`, `minItems`, `minProperties`, …) → the opposite bound;
//! - `not` → the schema itself; `allOf` → the union of the complements;
//!   `anyOf` → their intersection; `$ref` → the complement of the target.

use serde_json::{Map, Value};

use super::error::{escape_token, SchemaError};
use super::keywords::{constrains, is_no_op, Draft, ANNOTATIONS};
use super::merge;
use super::reader::{json_equal, Reader};
use super::rules::count;
use super::{ArrayRule, Bound, Node, NodeId, NumberRule, ObjectRule, Property, StringRule, Typed};

/// How to treat a keyword whose complement cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Complement {
    /// Refuse the schema (for `not`).
    Exact,
    /// Leave that keyword's complement out. The complement of a conjunction
    /// is the union of its keywords' complements, so dropping some gives a
    /// subset of the true complement: sound wherever a subset of the
    /// complement is acceptable (carving the overlap out of `oneOf` branches).
    Subset,
}

/// `$ref`s and nested `not`s followed before giving up.
const MAX_DEPTH: usize = 8;
/// Schemas negated in one compilation before giving up.
const MAX_NEGATIONS: usize = 2_000;

impl Reader<'_> {
    /// The complement of the schema at `pointer`; errors name `holder`,
    /// the schema whose `not` is being read.
    pub(super) fn negate(&mut self, pointer: &str, holder: &str, mode: Complement, depth: usize) -> Result<Node, SchemaError> {
        let refuse = |why: String| SchemaError::unsupported("not", holder, &why);
        self.check_budget(holder)?;
        self.negations += 1;
        if depth > MAX_DEPTH || self.negations > MAX_NEGATIONS {
            return Err(refuse("negations nest too deeply".into()));
        }
        let schema = self.root.pointer(pointer).ok_or_else(|| refuse(format!("no schema at `#{pointer}`")))?;
        let map = match schema {
            Value::Bool(admits_all) => return Ok(if *admits_all { Node::Never } else { Node::Any }),
            Value::Object(map) => map,
            _ => return Err(SchemaError::malformed("not", holder, "must be a schema")),
        };
        if mode == Complement::Exact {
            self.check_keywords(map, pointer)?;
        }
        if let Some(reference) = map.get("$ref") {
            if mode == Complement::Exact && self.draft > Draft::D7 && map.keys().any(|k| k != "$ref" && constrains(k)) {
                return Err(refuse("the negation of `$ref` with sibling keywords is not supported".into()));
            }
            let target = self.ref_pointer(reference, pointer)?;
            return self.negate(&target, holder, mode, depth + 1);
        }
        let mut alternatives = Vec::new();
        for (keyword, value) in map {
            let k = keyword.as_str();
            if ANNOTATIONS.contains(&k) || !constrains(k) || is_no_op(k, value, map) {
                continue;
            }
            let node = match self.negate_keyword(k, value, map, pointer, holder, mode, depth) {
                Ok(node) => node,
                Err(_) if mode == Complement::Subset => continue,
                Err(e) => return Err(e),
            };
            if node != Node::Never {
                alternatives.push(self.push(node, pointer));
            }
        }
        Ok(match alternatives.len() {
            0 => Node::Never,
            1 => Node::Ref(alternatives[0]),
            _ => Node::AnyOf(alternatives),
        })
    }

    // The keyword, its value, its object and where it sits are all needed to say why a
    // negation is refused; a struct for them would only be built to be taken apart here.
    #[allow(clippy::too_many_arguments)]
    fn negate_keyword(
        &mut self,
        k: &str,
        value: &Value,
        map: &Map<String, Value>,
        at: &str,
        holder: &str,
        mode: Complement,
        depth: usize,
    ) -> Result<Node, SchemaError> {
        let refuse = |why: String| SchemaError::unsupported("not", holder, &why);
        let typed = |t: Typed| if t.is_empty() { Node::Never } else { Node::Typed(t) };
        Ok(match k {
            // `exclusiveMinimum: true` in draft 04 is read with `minimum`.
            _ if value.is_boolean() && self.draft == Draft::D4 && k.starts_with("exclusive") => Node::Never,
            "type" => {
                let names: Vec<&str> = match value {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                    _ => return Err(SchemaError::malformed("type", at, "must be a string or an array")),
                };
                let has = |t: &str| names.contains(&t);
                let mut t = self.all_types();
                t.null = !has("null");
                t.boolean = !has("boolean");
                // Without `number`, the complement holds the non-integral
                // numbers, which the IR cannot single out: all numbers are
                // left out (a sound subset), and the node says so, for the
                // proofs that two schemas share no value.
                if has("number") || has("integer") {
                    t.number = None;
                    t.unlisted_numbers = !has("number");
                }
                if has("string") {
                    t.string = None;
                }
                if has("array") {
                    t.array = None;
                }
                if has("object") {
                    t.object = None;
                }
                typed(t)
            }
            "enum" | "const" => {
                let values = match (k, value) {
                    ("const", v) => vec![v.clone()],
                    (_, Value::Array(vs)) => vs.clone(),
                    _ => return Err(SchemaError::malformed("enum", at, "must be an array")),
                };
                self.negate_literals(&values)
                    .ok_or_else(|| refuse(format!("the negation of `{k}` with arrays or objects is not supported")))?
            }
            "required" => {
                let Value::Array(names) = value else {
                    return Err(SchemaError::malformed("required", at, "must be an array"));
                };
                let never = self.push(Node::Never, at);
                let mut branches = Vec::new();
                for name in names {
                    let name = name.as_str().ok_or_else(|| SchemaError::malformed("required", at, "must be an array of strings"))?;
                    // Only objects can lack a name: every other value satisfies `required`.
                    let object = self.object_with(Property { name: name.to_string(), node: never, required: false });
                    branches.push(self.push(Node::Typed(Typed { object: Some(object), ..Typed::default() }), at));
                }
                union(branches)
            }
            "properties" => {
                let Value::Object(props) = value else {
                    return Err(SchemaError::malformed("properties", at, "must be an object"));
                };
                let mut branches = Vec::new();
                for name in props.keys() {
                    let node = self.negate(&format!("{at}/properties/{}", escape_token(name)), holder, mode, depth + 1)?;
                    if node == Node::Never {
                        continue;
                    }
                    let node = self.push(node, at);
                    let object = self.object_with(Property { name: name.clone(), node, required: true });
                    branches.push(self.push(Node::Typed(Typed { object: Some(object), ..Typed::default() }), at));
                }
                union(branches)
            }
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
                let bound = value.as_f64().ok_or_else(|| refuse(format!("the negation of a non-numeric `{k}` is not supported")))?;
                let inclusive_flag = |flag: &str| map.get(flag) == Some(&Value::Bool(true));
                let mut rule = NumberRule::default();
                match k {
                    // Draft 04 spells exclusivity as a boolean beside the bound.
                    "minimum" => {
                        rule.maximum =
                            Some(Bound { value: bound, exclusive: !inclusive_flag("exclusiveMinimum") || self.draft != Draft::D4 })
                    }
                    "maximum" => {
                        rule.minimum =
                            Some(Bound { value: bound, exclusive: !inclusive_flag("exclusiveMaximum") || self.draft != Draft::D4 })
                    }
                    "exclusiveMinimum" => rule.maximum = Some(Bound { value: bound, exclusive: false }),
                    _ => rule.minimum = Some(Bound { value: bound, exclusive: false }),
                }
                Node::Typed(Typed { number: Some(rule), ..Typed::default() })
            }
            "minLength" | "maxLength" => {
                let n = count(map, k, at)?.unwrap_or(0);
                let rule = if k == "minLength" {
                    match n.checked_sub(1) {
                        Some(max) => StringRule { max_len: Some(max), ..StringRule::default() },
                        None => return Ok(Node::Never),
                    }
                } else {
                    StringRule { min_len: n.saturating_add(1), ..StringRule::default() }
                };
                Node::Typed(Typed { string: Some(rule), ..Typed::default() })
            }
            "minItems" | "maxItems" => {
                let n = count(map, k, at)?.unwrap_or(0);
                let mut rule = ArrayRule { items: Some(self.any), items_any: true, ..ArrayRule::default() };
                if k == "minItems" {
                    match n.checked_sub(1) {
                        Some(max) => rule.max_items = Some(max),
                        None => return Ok(Node::Never),
                    }
                } else {
                    rule.min_items = n.saturating_add(1);
                }
                Node::Typed(Typed { array: Some(rule), ..Typed::default() })
            }
            "minProperties" | "maxProperties" => {
                let n = count(map, k, at)?.unwrap_or(0);
                let mut rule = ObjectRule { additional: Some(self.any), additional_any: true, ..ObjectRule::default() };
                if k == "minProperties" {
                    match n.checked_sub(1) {
                        Some(max) => rule.max_props = Some(max),
                        None => return Ok(Node::Never),
                    }
                } else {
                    rule.min_props = n.saturating_add(1);
                }
                Node::Typed(Typed { object: Some(rule), ..Typed::default() })
            }
            "not" => Node::Ref(self.read_at(&format!("{at}/not"))?),
            "allOf" | "anyOf" => {
                let Value::Array(parts) = value else {
                    return Err(SchemaError::malformed(k, at, "must be a non-empty array"));
                };
                let mut complements = Vec::new();
                for i in 0..parts.len() {
                    let node = self.negate(&format!("{at}/{k}/{i}"), holder, mode, depth + 1)?;
                    complements.push(self.push(node, at));
                }
                if k == "allOf" {
                    union(complements)
                } else {
                    merge::intersect_all(self, &complements, holder, "not")?
                }
            }
            _ => return Err(refuse(format!("the negation of `{k}` is not supported"))),
        })
    }

    /// `oneOf` branches made exclusive where strictly could not prove them
    /// disjoint: branch `i` becomes `i` minus (a subset of the complement
    /// of) every branch it may overlap. Each value then matches exactly one
    /// original branch; values in a dropped part are not emitted (a sound
    /// subset). `None` (refuse) when an intersection fails or nothing is left.
    pub(super) fn exclusive_branches(&mut self, ids: &[NodeId], overlaps: &[(usize, usize)], at: &str) -> Option<Vec<NodeId>> {
        let mut out = Vec::new();
        for (i, &id) in ids.iter().enumerate() {
            let mut parts = vec![id];
            for &(a, b) in overlaps {
                let other = match (a == i, b == i) {
                    (true, _) => b,
                    (_, true) => a,
                    _ => continue,
                };
                let complement = self.negate(&format!("{at}/oneOf/{other}"), at, Complement::Subset, 0).unwrap_or(Node::Never);
                parts.push(self.push(complement, at));
            }
            if parts.len() == 1 {
                out.push(id);
                continue;
            }
            match merge::intersect_all(self, &parts, at, "oneOf").ok()? {
                Node::Never => {}
                node => out.push(self.push(node, at)),
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// Every value, as a [`Typed`] (arrays and objects of free values).
    fn all_types(&self) -> Typed {
        Typed {
            null: true,
            boolean: true,
            number: Some(NumberRule::default()),
            string: Some(StringRule::default()),
            array: Some(ArrayRule { items: Some(self.any), items_any: true, ..ArrayRule::default() }),
            object: Some(ObjectRule { additional: Some(self.any), additional_any: true, ..ObjectRule::default() }),
            unlisted_numbers: false,
        }
    }

    /// An object rule that only constrains one property.
    fn object_with(&self, property: Property) -> ObjectRule {
        ObjectRule { properties: vec![property], additional: Some(self.any), additional_any: true, ..ObjectRule::default() }
    }

    /// Every value but the listed ones; `None` if one is an array or object.
    fn negate_literals(&mut self, values: &[Value]) -> Option<Node> {
        let listed = |v: &Value| values.iter().any(|w| json_equal(v, w));
        let mut t = self.all_types();
        t.null = !listed(&Value::Null);
        t.boolean = false;
        let mut branches = Vec::new();
        let booleans: Vec<Value> = [false, true].into_iter().map(Value::Bool).filter(|b| !listed(b)).collect();
        if !booleans.is_empty() {
            branches.push(self.push(Node::Literals(booleans), ""));
        }
        let mut numbers = Vec::new();
        for v in values {
            match v {
                Value::String(s) => t.string.as_mut().expect("all types").excluded.push(s.clone()),
                Value::Number(n) => numbers.push(n.as_f64()?),
                Value::Array(_) | Value::Object(_) => return None,
                _ => {}
            }
        }
        if !numbers.is_empty() {
            // The open intervals around and between the listed numbers.
            t.number = None;
            numbers.sort_by(f64::total_cmp);
            numbers.dedup();
            let mut low: Option<f64> = None;
            for &n in numbers.iter().chain([f64::INFINITY].iter()) {
                let rule = NumberRule {
                    minimum: low.map(|value| Bound { value, exclusive: true }),
                    maximum: n.is_finite().then_some(Bound { value: n, exclusive: true }),
                    ..NumberRule::default()
                };
                branches.push(self.push(Node::Typed(Typed { number: Some(rule), ..Typed::default() }), ""));
                low = Some(n);
            }
        }
        branches.insert(0, self.push(Node::Typed(t), ""));
        Some(union(branches))
    }
}

fn union(branches: Vec<NodeId>) -> Node {
    match branches.len() {
        0 => Node::Never,
        1 => Node::Ref(branches[0]),
        _ => Node::AnyOf(branches),
    }
}
