//! Local references: reading the schema at a JSON pointer (memoised, with
//! chains of bare `$ref`s followed by iteration), and the pointer a `$ref`
//! names (`#/...`, percent-encoded, or the document's own `$id`).

use serde_json::{Map, Value};

use super::error::{SchemaError, SchemaErrorKind};
use super::keywords::constrains;
use super::reader::Reader;
use super::{Node, NodeId};

impl<'a> Reader<'a> {
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

    pub(super) fn schema_at(&self, pointer: &str) -> Result<&'a Value, SchemaError> {
        self.root.pointer(pointer).ok_or_else(|| {
            SchemaError::new(SchemaErrorKind::BadRef { reference: format!("#{pointer}"), why: "no schema at that pointer".into() }, pointer)
        })
    }

    /// When the schema at `pointer` is a `$ref` with nothing beside it but
    /// annotations, the pointer where its chain of such `$ref`s ends: the
    /// first schema that is more than a `$ref`, one already read, or the
    /// start of a cycle. `None` when the schema is not a bare `$ref`.
    pub(super) fn pure_ref_chain_end(&mut self, schema: &'a Value, pointer: &str) -> Result<Option<String>, SchemaError> {
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

    pub(super) fn resolve_ref(&mut self, reference: &Value, at: &str) -> Result<NodeId, SchemaError> {
        let pointer = self.ref_pointer(reference, at)?;
        self.read_at(&pointer)
    }

    /// The JSON pointer a local `$ref` names.
    pub(super) fn ref_pointer(&self, reference: &Value, at: &str) -> Result<String, SchemaError> {
        let r = reference.as_str().ok_or_else(|| SchemaError::malformed("$ref", at, "must be a string"))?;
        let bad = |why: &str| SchemaError::new(SchemaErrorKind::BadRef { reference: r.into(), why: why.into() }, at);
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
