//! `dependentRequired`, `dependentSchemas` and draft-07 `dependencies`, as
//! exact unions the IR already expresses.
//!
//! "If `a` is present, then `S`" is the union of two cases:
//! - `a` is absent: an object whose property `a` has the false schema (a
//!   false property is never emitted, and its name is kept out of additional
//!   properties), or any value that is not an object;
//! - `a` is present: an object that requires `a`, intersected with `S`
//!   (`S` is `{"required": [...]}` for `dependentRequired`).
//!
//! Each dependency is one such union, intersected with the schema's other
//! keywords like an `allOf` part; the intersection distributes over the
//! unions, so `n` dependencies make up to `2^n` object branches (bounded by
//! the merge's union limit, a clean "too large" beyond it).

use serde_json::{Map, Value};

use super::error::{escape_token, SchemaError};
use super::merge;
use super::reader::Reader;
use super::{Node, NodeId, ObjectRule, Property, Typed};

impl Reader<'_> {
    /// The unions that the dependency keywords of `map` stand for, one per
    /// dependency, to be intersected with the rest of the schema.
    pub(super) fn read_dependencies(&mut self, map: &Map<String, Value>, at: &str) -> Result<Vec<NodeId>, SchemaError> {
        let mut parts = Vec::new();
        for keyword in ["dependentRequired", "dependentSchemas", "dependencies"] {
            let Some(value) = map.get(keyword) else { continue };
            let Value::Object(deps) = value else {
                return Err(SchemaError::malformed(keyword, at, "must be an object"));
            };
            for (name, dep) in deps {
                let pointer = format!("{at}/{keyword}/{}", escape_token(name));
                // Draft 07's `dependencies` takes either form.
                let names = match (keyword, dep) {
                    ("dependentSchemas", _) | ("dependencies", Value::Object(_) | Value::Bool(_)) => None,
                    (_, Value::Array(names)) => Some(
                        names
                            .iter()
                            .map(|n| n.as_str().map(str::to_string))
                            .collect::<Option<Vec<_>>>()
                            .ok_or_else(|| SchemaError::malformed(keyword, at, "must map names to arrays of strings"))?,
                    ),
                    _ => return Err(SchemaError::malformed(keyword, at, "must map names to arrays of strings or schemas")),
                };
                let present = self.required_object(std::iter::once(name.clone()).chain(names.iter().flatten().cloned()), at);
                let present = match names {
                    Some(_) => present,
                    None => {
                        let then = self.read_at(&pointer)?;
                        let node = merge::intersect_all(self, &[present, then], at, keyword)?;
                        self.push(node, at)
                    }
                };
                let absent = self.absent(name, at);
                let union = [absent, present].into_iter().filter(|&id| !matches!(self.nodes[id], Node::Never)).collect();
                parts.push(self.push(Node::AnyOf(union), at));
            }
        }
        Ok(parts)
    }

    /// Objects that hold all of `names` (any values), and nothing else.
    fn required_object(&mut self, names: impl Iterator<Item = String>, at: &str) -> NodeId {
        let mut rule = ObjectRule { additional: Some(self.any), additional_any: true, ..ObjectRule::default() };
        for name in names {
            if !rule.properties.iter().any(|p| p.name == name) {
                rule.properties.push(Property { name, node: self.any, required: true });
            }
        }
        self.push(Node::Typed(Typed { object: Some(rule), ..Typed::default() }), at)
    }

    /// Every value but an object holding `name`.
    fn absent(&mut self, name: &str, at: &str) -> NodeId {
        let never = self.push(Node::Never, at);
        let mut all = Typed::any();
        all.object = Some(ObjectRule {
            properties: vec![Property { name: name.to_string(), node: never, required: false }],
            additional: Some(self.any),
            additional_any: true,
            ..ObjectRule::default()
        });
        self.push(Node::Typed(all), at)
    }
}
