//! Reads a `serde_json::Value` schema into the [`Ir`](super::Ir).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::error::{escape_token, SchemaError, SchemaErrorKind};
use super::merge;
use super::negate::Complement;
use super::{
    ArrayRule, Bound, CompileOptions, Format, IgnoredKeyword, Ir, Node, NodeId, NumberRule, ObjectRule, PatternProperty,
    Property, StringRule, Typed, UnknownKeywords,
};

/// JSON Schema drafts, oldest first; only the differences strictly cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Draft {
    D4,
    D6,
    D7,
    D2019,
    D2020,
}

impl Draft {
    fn detect(root: &Value) -> Self {
        let uri = root.get("$schema").and_then(Value::as_str).unwrap_or("");
        if uri.contains("draft-04") {
            Draft::D4
        } else if uri.contains("draft-06") {
            Draft::D6
        } else if uri.contains("draft-07") {
            Draft::D7
        } else if uri.contains("2019-09") {
            Draft::D2019
        } else {
            Draft::D2020
        }
    }
}

/// Schema nodes one reading may create.
const MAX_NODES: usize = 200_000;

/// How deeply the reader's recursive passes (reading, intersecting,
/// filtering literals) may nest before the schema is refused as too deep.
/// Measured in a release build: about 10 KB of stack per level (1.3 MB at
/// the limit), which the compiler's own thread holds many times over (see
/// `on_compiler_stack`).
pub(crate) const MAX_NESTING: usize = 128;

/// Keywords that only annotate: ignored.
pub(super) const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "examples",
    "default",
    "$comment",
    "$schema",
    "$id",
    "deprecated",
    "readOnly",
    "writeOnly",
    // Containers for definitions; their contents are read when referenced.
    "$defs",
    "definitions",
    // The content vocabulary is annotation-only in drafts 7 and 2020-12.
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
    "$anchor",
];

/// Keywords strictly enforces.
const SUPPORTED: &[&str] = &[
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "anyOf",
    "oneOf",
    "allOf",
    "$ref",
    "items",
    "prefixItems",
    "additionalItems",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "patternProperties",
    "not",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "minProperties",
    "maxProperties",
    "if",
    "then",
    "else",
    "propertyNames",
    "contains",
    "minContains",
    "maxContains",
];

/// Keywords of the JSON Schema vocabularies that strictly refuses, and why.
const REFUSED: &[(&str, &str)] = &[
    ("uniqueItems", "uniqueness of items cannot be enforced by a finite automaton"),
    ("unevaluatedProperties", "unevaluated properties are supported only where no in-place applicator (`allOf`, `anyOf`, `oneOf`, `not`, `if`, `$ref`, `dependentSchemas`) stands beside them"),
    ("unevaluatedItems", "unevaluated items are supported only where no in-place applicator (`allOf`, `anyOf`, `oneOf`, `not`, `if`, `$ref`, `dependentSchemas`) nor `contains` stands beside them"),
    ("$dynamicRef", "dynamic references are not supported"),
    ("$dynamicAnchor", "dynamic references are not supported"),
    ("$recursiveRef", "recursive references (2019-09) are not supported"),
    ("$recursiveAnchor", "recursive references (2019-09) are not supported"),
    ("$vocabulary", "custom vocabularies are not supported"),
];

/// Keywords that constrain a value (as opposed to annotations), used to tell
/// whether `$ref` has constraining siblings.
pub(super) fn constrains(keyword: &str) -> bool {
    SUPPORTED.contains(&keyword) || REFUSED.iter().any(|(k, _)| *k == keyword)
}

pub(crate) struct Reader<'a> {
    pub(super) root: &'a Value,
    pub(super) draft: Draft,
    options: &'a CompileOptions,
    pub(crate) nodes: Vec<Node>,
    pub(crate) pointers: Vec<String>,
    /// Nodes already read, by the JSON pointer of their schema.
    by_pointer: HashMap<String, NodeId>,
    /// Nodes whose reading is under way (a `$ref` to one is recursive).
    in_progress: Vec<bool>,
    pub(super) any: NodeId,
    /// Schemas negated so far (bounded: see `negate.rs`).
    pub(super) negations: usize,
    /// Nesting of the recursive passes under way (see [`MAX_NESTING`]).
    nesting: usize,
    /// Keywords no draft defines, read as annotations.
    ignored: std::collections::BTreeSet<IgnoredKeyword>,
    started: std::time::Instant,
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
            started: std::time::Instant::now(),
        };
        reader.any = reader.push(Node::Any, "");
        reader
    }

    pub(crate) fn read_root(mut self) -> Result<Ir, SchemaError> {
        let root = self.read_at("")?;
        if matches!(self.nodes[root], Node::Never) {
            return Err(SchemaError::new(
                SchemaErrorKind::Unsatisfiable { why: "the schema admits no value".into() },
                "",
            ));
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

    /// Refuses a schema whose reading outgrows the node or time limits
    /// (intersections and complements can multiply nodes).
    pub(crate) fn check_budget(&self, at: &str) -> Result<(), SchemaError> {
        if self.nodes.len() > MAX_NODES {
            return Err(SchemaError::too_large(at, format!("reading needs more than {MAX_NODES} schema nodes")));
        }
        if self.started.elapsed().as_millis() > u128::from(self.options.time_limit_ms) {
            return Err(SchemaError::too_large(at, format!("compilation took longer than {} ms", self.options.time_limit_ms)));
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

    /// Reads the schema at a JSON pointer into the root document, memoised.
    pub(super) fn read_at(&mut self, pointer: &str) -> Result<NodeId, SchemaError> {
        if let Some(&id) = self.by_pointer.get(pointer) {
            return Ok(id);
        }
        let schema = self.schema_at(pointer)?;
        // A chain of schemas that are nothing but a `$ref` (`a` → `b` → … → `z`)
        // is followed by iteration, not recursion: every link becomes a `Ref` to
        // the chain's end, so neither the reader nor the lowering nests per link.
        if let Some(end) = self.pure_ref_chain_end(schema, pointer)? {
            let id = self.push(Node::Never, pointer);
            self.by_pointer.insert(pointer.to_string(), id);
            let target = self.read_at(&end)?;
            self.nodes[id] = Node::Ref(target);
            return Ok(id);
        }
        let id = self.push(Node::Never, pointer);
        self.by_pointer.insert(pointer.to_string(), id);
        self.in_progress[id] = true;
        let node = self.nested(pointer, |r| r.read_schema(schema, pointer))?;
        self.nodes[id] = node;
        self.in_progress[id] = false;
        Ok(id)
    }

    fn schema_at(&self, pointer: &str) -> Result<&'a Value, SchemaError> {
        self.root.pointer(pointer).ok_or_else(|| {
            SchemaError::new(
                SchemaErrorKind::BadRef { reference: format!("#{pointer}"), why: "no schema at that pointer".into() },
                pointer,
            )
        })
    }

    /// When the schema at `pointer` is a `$ref` with nothing beside it but
    /// annotations, the pointer where its chain of such `$ref`s ends: the
    /// first schema that is more than a `$ref`, one already read, or the
    /// start of a cycle. `None` when the schema is not a bare `$ref`.
    fn pure_ref_chain_end(&mut self, schema: &'a Value, pointer: &str) -> Result<Option<String>, SchemaError> {
        fn bare_ref(schema: &Value) -> Option<(&Map<String, Value>, &Value)> {
            let map = schema.as_object()?;
            let reference = map.get("$ref")?;
            map.keys().all(|k| k == "$ref" || !constrains(k)).then_some((map, reference))
        }
        let Some(mut link) = bare_ref(schema) else { return Ok(None) };
        let mut at = pointer.to_string();
        let mut seen = std::collections::HashSet::from([at.clone()]);
        loop {
            let (map, reference) = link;
            self.check_keywords(map, &at)?;
            let next = self.ref_pointer(reference, &at)?;
            if self.by_pointer.contains_key(&next) || !seen.insert(next.clone()) {
                return Ok(Some(next));
            }
            match bare_ref(self.schema_at(&next)?) {
                Some(l) => {
                    link = l;
                    at = next;
                }
                None => return Ok(Some(next)),
            }
        }
    }

    fn read_schema(&mut self, schema: &Value, at: &str) -> Result<Node, SchemaError> {
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
                let overlaps = merge::overlapping_pairs(self, &ids, at)?;
                if let Some(&(i, j)) = overlaps.first() {
                    ids = self.exclusive_branches(&ids, &overlaps, at).ok_or_else(|| merge::overlap_error(i, j, at))?;
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

    fn resolve_ref(&mut self, reference: &Value, at: &str) -> Result<NodeId, SchemaError> {
        let pointer = self.ref_pointer(reference, at)?;
        self.read_at(&pointer)
    }

    /// The JSON pointer a local `$ref` names.
    pub(super) fn ref_pointer(&self, reference: &Value, at: &str) -> Result<String, SchemaError> {
        let r = reference
            .as_str()
            .ok_or_else(|| SchemaError::malformed("$ref", at, "must be a string"))?;
        let bad = |why: &str| {
            SchemaError::new(SchemaErrorKind::BadRef { reference: r.into(), why: why.into() }, at)
        };
        let Some(fragment) = r.strip_prefix('#') else {
            // A reference to the document's own `$id` is local.
            let own_id = self.root.get("$id").or_else(|| self.root.get("id")).and_then(Value::as_str);
            if let Some((base, frag)) = r.split_once('#') {
                if Some(base) == own_id {
                    return self.ref_pointer(&Value::String(format!("#{frag}")), at);
                }
            } else if Some(r) == own_id {
                return Ok(String::new());
            }
            return Err(bad("only local references (`#...`) are supported"));
        };
        let pointer = percent_decode(fragment).ok_or_else(|| bad("malformed percent-encoding"))?;
        if !pointer.is_empty() && !pointer.starts_with('/') {
            return Err(bad("anchors are not supported; use a JSON pointer"));
        }
        if self.root.pointer(&pointer).is_none() {
            return Err(bad("no schema at that pointer"));
        }
        Ok(pointer)
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
        let type_specific = map
            .iter()
            .any(|(k, v)| TYPE_KEYWORDS.iter().any(|(kw, _)| kw == k) && !(k.starts_with("unevaluated") && is_no_op(k, v, map)));
        if types.is_none() && !type_specific {
            return Ok(match literals {
                Some(values) => Node::Literals(values),
                None => Node::Any,
            });
        }

        let mut typed = Typed {
            null: has("null"),
            boolean: has("boolean"),
            ..Typed::default()
        };
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
            let kept = merge::filter_literals(self, values, &typed, at)?;
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

    fn read_number(&mut self, map: &Map<String, Value>, at: &str) -> Result<NumberRule, SchemaError> {
        let num = |k: &str| -> Result<Option<f64>, SchemaError> {
            match map.get(k) {
                None => Ok(None),
                Some(Value::Number(n)) => Ok(n.as_f64()),
                Some(Value::Bool(_)) if self.draft == Draft::D4 && k.starts_with("exclusive") => Ok(None),
                Some(_) => Err(SchemaError::malformed(k, at, "must be a number")),
            }
        };
        let flag = |k: &str| self.draft == Draft::D4 && map.get(k) == Some(&Value::Bool(true));
        let mut rule = NumberRule::default();
        if let Some(v) = num("minimum")? {
            rule.minimum = Some(Bound { value: v, exclusive: flag("exclusiveMinimum") });
        }
        if let Some(v) = num("maximum")? {
            rule.maximum = Some(Bound { value: v, exclusive: flag("exclusiveMaximum") });
        }
        if let Some(v) = num("exclusiveMinimum")? {
            rule.minimum = merge::tighter_min(rule.minimum, Bound { value: v, exclusive: true });
        }
        if let Some(v) = num("exclusiveMaximum")? {
            rule.maximum = merge::tighter_max(rule.maximum, Bound { value: v, exclusive: true });
        }
        if let Some(m) = num("multipleOf")? {
            if !(m > 0.0) {
                return Err(SchemaError::malformed("multipleOf", at, "must be greater than 0"));
            }
            if m.fract() != 0.0 || m > 1e15 {
                return Err(SchemaError::inexact("multipleOf", at, "only integer divisors are supported"));
            }
            rule.integer = true;
            if m > 1.0 {
                rule.multiple_of = Some(m as u64);
            }
        }
        // OpenAPI's integer formats, enforced as a sound restriction (JSON
        // Schema itself gives them no meaning). Unbounded integers are
        // emitted with at most 18 digits, which `int64` already contains;
        // `int32` bounds are skipped beside `multipleOf`, which takes none.
        match map.get("format").and_then(Value::as_str) {
            Some("int64") => rule.integer = true,
            Some("int32") => {
                rule.integer = true;
                if rule.multiple_of.is_none() {
                    rule.minimum = merge::tighter_min(rule.minimum, Bound { value: -2_147_483_648.0, exclusive: false });
                    rule.maximum = merge::tighter_max(rule.maximum, Bound { value: 2_147_483_647.0, exclusive: false });
                }
            }
            _ => {}
        }
        Ok(rule)
    }

    fn read_string(&mut self, map: &Map<String, Value>, at: &str) -> Result<StringRule, SchemaError> {
        let mut rule = StringRule {
            min_len: count(map, "minLength", at)?.unwrap_or(0),
            max_len: count(map, "maxLength", at)?,
            ..StringRule::default()
        };
        if let Some(p) = map.get("pattern") {
            let p = p.as_str().ok_or_else(|| SchemaError::malformed("pattern", at, "must be a string"))?;
            rule.pattern = Some((p.to_string(), at.to_string()));
        }
        if let Some(f) = map.get("format") {
            let name = f.as_str().ok_or_else(|| SchemaError::malformed("format", at, "must be a string"))?;
            rule.format = match Format::parse(name) {
                Some(format) => Some(format),
                // A name no draft defines is an annotation to a validator, as
                // unknown as an unknown keyword: ignored only when those are.
                None if self.options.unknown_keywords == UnknownKeywords::Ignore && !Format::is_standard(name) => {
                    self.ignored.insert(IgnoredKeyword { pointer: at.into(), keyword: "format".into(), format: Some(name.into()) });
                    None
                }
                None => {
                    return Err(SchemaError::unsupported("format", at, &format!("format \"{name}\" is not supported")));
                }
            };
        }
        Ok(rule)
    }

    fn read_array(&mut self, map: &Map<String, Value>, at: &str) -> Result<ArrayRule, SchemaError> {
        let mut rule = ArrayRule {
            min_items: count(map, "minItems", at)?.unwrap_or(0),
            max_items: count(map, "maxItems", at)?,
            ..ArrayRule::default()
        };
        let tuple_form = matches!(map.get("items"), Some(Value::Array(_)));
        let (prefix_key, rest_key) = if tuple_form {
            ("items", "additionalItems")
        } else {
            ("prefixItems", "items")
        };
        if let Some(prefix) = map.get(prefix_key) {
            let Value::Array(prefix) = prefix else {
                return Err(SchemaError::malformed(prefix_key, at, "must be an array"));
            };
            for i in 0..prefix.len() {
                rule.prefix.push(self.read_at(&format!("{at}/{prefix_key}/{i}"))?);
            }
        }
        // Beside no applicator, `unevaluatedItems` takes the items `items`
        // would (see `unevaluated_is_local`); `check_keywords` refused it otherwise.
        let rest_key = match map.get(rest_key) {
            None if map.get("unevaluatedItems").is_some_and(|v| v != &Value::Bool(true)) => "unevaluatedItems",
            _ => rest_key,
        };
        match map.get(rest_key) {
            Some(_) => {
                let id = self.read_at(&format!("{at}/{rest_key}"))?;
                rule.items = (!matches!(self.nodes[id], Node::Never)).then_some(id);
                rule.items_any = matches!(self.nodes[id], Node::Any);
            }
            None => {
                rule.items = Some(self.any);
                rule.items_any = true;
            }
        }
        rule.contains = self.read_contains(map, &rule, at)?;
        Ok(rule)
    }

    fn read_object(&mut self, map: &Map<String, Value>, at: &str) -> Result<ObjectRule, SchemaError> {
        let required: Vec<String> = match map.get("required") {
            None => Vec::new(),
            Some(Value::Array(names)) => names
                .iter()
                .map(|n| n.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| SchemaError::malformed("required", at, "must be an array of strings"))?,
            Some(Value::Bool(_)) if self.draft == Draft::D4 => Vec::new(),
            Some(_) => return Err(SchemaError::malformed("required", at, "must be an array")),
        };
        let mut rule = ObjectRule {
            min_props: count(map, "minProperties", at)?.unwrap_or(0),
            max_props: count(map, "maxProperties", at)?,
            ..ObjectRule::default()
        };
        // Beside no applicator, `unevaluatedProperties` takes the members
        // `additionalProperties` would (see `unevaluated_is_local`).
        let additional_key = match map.get("additionalProperties") {
            None if map.get("unevaluatedProperties").is_some_and(|v| v != &Value::Bool(true)) => "unevaluatedProperties",
            _ => "additionalProperties",
        };
        match map.get(additional_key) {
            None => {
                rule.additional = Some(self.any);
                rule.additional_any = true;
            }
            Some(_) => {
                let id = self.read_at(&format!("{at}/{additional_key}"))?;
                rule.additional_any = matches!(self.nodes[id], Node::Any);
                rule.additional = (!matches!(self.nodes[id], Node::Never)).then_some(id);
            }
        }
        if let Some(patterns) = map.get("patternProperties") {
            let Value::Object(patterns) = patterns else {
                return Err(SchemaError::malformed("patternProperties", at, "must be an object"));
            };
            for pattern in patterns.keys() {
                crate::pattern::full_match(pattern).map(|_| ()).map_err(|e| SchemaError::inexact("patternProperties", at, e))?;
                let node = self.read_at(&format!("{at}/patternProperties/{}", escape_token(pattern)))?;
                rule.patterns.push(PatternProperty { pattern: pattern.clone(), pointer: at.to_string(), node });
            }
            if rule.patterns.len() > 1 {
                let nodes: Vec<NodeId> = rule.patterns.iter().map(|p| p.node).collect();
                // Only a sound choice for keys that match several patterns:
                // without a common value, such keys are left out.
                rule.patterns_all = match merge::intersect_all(self, &nodes, at, "patternProperties") {
                    Ok(Node::Never) | Err(_) => None,
                    Ok(node) => Some(self.push(node, at)),
                };
            }
        }
        if let Some(props) = map.get("properties") {
            let Value::Object(props) = props else {
                return Err(SchemaError::malformed("properties", at, "must be an object"));
            };
            for name in props.keys() {
                let node = self.read_at(&format!("{at}/properties/{}", escape_token(name)))?;
                // A declared name that matches patterns takes their schemas too.
                let node = merge::with_matching_patterns(self, &rule, name, node, at)?;
                let required = required.contains(name);
                if matches!(self.nodes[node], Node::Never) {
                    if required {
                        return Err(SchemaError::new(
                            SchemaErrorKind::Unsatisfiable {
                                why: format!("required property \"{name}\" has a false schema"),
                            },
                            at,
                        ));
                    }
                }
                // A false property stays declared: its name is then excluded
                // from additional properties, and the lowering never emits it.
                rule.properties.push(Property { name: name.clone(), node, required });
            }
        }
        for name in &required {
            if rule.properties.iter().any(|p| &p.name == name)
                || map.get("properties").and_then(|p| p.get(name)).is_some()
            {
                continue;
            }
            let node = merge::undeclared(self, &rule, name, at)?.ok_or_else(|| {
                SchemaError::new(
                    SchemaErrorKind::Unsatisfiable {
                        why: format!("\"{name}\" is required but additionalProperties is false"),
                    },
                    at,
                )
            })?;
            rule.properties.push(Property { name: name.clone(), node, required: true });
        }
        self.read_property_names(map, at, &mut rule)?;
        Ok(rule)
    }
}

/// Keywords that only apply to one type, so that a schema without `type`
/// that uses them still admits every other type.
const TYPE_KEYWORDS: &[(&str, &str)] = &[
    ("minimum", "number"),
    ("maximum", "number"),
    ("exclusiveMinimum", "number"),
    ("exclusiveMaximum", "number"),
    ("multipleOf", "number"),
    ("minLength", "string"),
    ("maxLength", "string"),
    ("pattern", "string"),
    ("format", "string"),
    ("items", "array"),
    ("prefixItems", "array"),
    ("additionalItems", "array"),
    ("minItems", "array"),
    ("maxItems", "array"),
    ("contains", "array"),
    ("properties", "object"),
    ("required", "object"),
    ("additionalProperties", "object"),
    ("patternProperties", "object"),
    ("minProperties", "object"),
    ("maxProperties", "object"),
    ("propertyNames", "object"),
    ("unevaluatedProperties", "object"),
    ("unevaluatedItems", "array"),
];

/// Refused keywords whose value makes them a no-op.
pub(super) fn is_no_op(keyword: &str, value: &Value, map: &Map<String, Value>) -> bool {
    match keyword {
        "uniqueItems" => value == &Value::Bool(false) || map.get("maxItems").and_then(Value::as_u64).is_some_and(|m| m <= 1),
        // `additionalProperties` (or `items` past the prefix) evaluates every
        // member the other keywords leave, so nothing is left unevaluated.
        "unevaluatedProperties" => value == &Value::Bool(true) || map.contains_key("additionalProperties"),
        "unevaluatedItems" => {
            value == &Value::Bool(true)
                || match map.get("items") {
                    Some(Value::Array(_)) => map.contains_key("additionalItems"),
                    Some(_) => true,
                    None => false,
                }
        }
        "$vocabulary" | "$dynamicAnchor" | "$recursiveAnchor" => true,
        // `then`/`else` without `if` have no effect, nor `if` without them.
        "then" | "else" => !map.contains_key("if"),
        "if" => !map.contains_key("then") && !map.contains_key("else"),
        _ => false,
    }
}

/// Keywords that apply other schemas to the same instance: the members or
/// items those evaluate count as evaluated for `unevaluated*` beside them.
const IN_PLACE_APPLICATORS: &[&str] = &[
    "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref", "$dynamicRef", "$recursiveRef", "dependentSchemas",
    "dependencies",
];

/// Whether `unevaluatedProperties` / `unevaluatedItems` sees only the
/// keywords of its own schema object (no in-place applicator beside it, and
/// for items no `contains`). Then the members it applies to are exactly those
/// `additionalProperties` (or `items` past the prefix) would take, and it is
/// read as that keyword: an exact rewrite (see `Reader::read_object`).
pub(super) fn unevaluated_is_local(keyword: &str, map: &Map<String, Value>) -> bool {
    let local = !map.keys().any(|k| IN_PLACE_APPLICATORS.contains(&k.as_str()));
    match keyword {
        "unevaluatedProperties" => local,
        "unevaluatedItems" => local && !map.contains_key("contains"),
        _ => false,
    }
}

pub(super) fn count(map: &Map<String, Value>, keyword: &str, at: &str) -> Result<Option<usize>, SchemaError> {
    match map.get(keyword) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            let v = n.as_f64().unwrap_or(-1.0);
            if v < 0.0 || v.fract() != 0.0 {
                return Err(SchemaError::malformed(keyword, at, "must be a non-negative integer"));
            }
            Ok(Some(v.min(usize::MAX as f64) as usize))
        }
        Some(_) => Err(SchemaError::malformed(keyword, at, "must be a non-negative integer")),
    }
}

/// JSON equality as JSON Schema defines it (1 == 1.0).
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
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

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
