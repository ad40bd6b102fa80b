//! `propertyNames`: a rule every key of an object must satisfy.
//!
//! A string schema becomes [`ObjectRule::names`]: the lowering builds the
//! keys of additional properties from it (minus the declared names), and a
//! declared property whose name it refuses is never emitted (an error when
//! required). A list of names (`enum`) is a finite key set: the names not
//! yet declared are declared with the schema their key would take, and no
//! other key is allowed. `false`, or a schema no string satisfies, allows
//! no key at all. Anything else is refused with `propertyNames` as keyword.

use serde_json::{Map, Value};

use super::error::{SchemaError, SchemaErrorKind};
use super::merge;
use super::reader::Reader;
use super::{Node, ObjectRule, Property, StringRule};

impl Reader<'_> {
    /// Applies the `propertyNames` of `map` (if any) to an object rule already read.
    pub(super) fn read_property_names(&mut self, map: &Map<String, Value>, at: &str, rule: &mut ObjectRule) -> Result<(), SchemaError> {
        if !map.contains_key("propertyNames") {
            return Ok(());
        }
        let id = self.read_at(&format!("{at}/propertyNames"))?;
        match merge::resolve(self, id, at, "propertyNames")? {
            Node::Any => {}
            Node::Never => rule.max_props = Some(0),
            Node::Typed(t) => match t.string {
                None => rule.max_props = Some(0),
                Some(names) => {
                    rule.names = Some(names);
                    restrict_names(self, rule, at)?;
                }
            },
            Node::Literals(values) => {
                let names: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
                for p in &mut rule.properties {
                    if !names.contains(&p.name.as_str()) {
                        refuse_name(self, p, at)?;
                    }
                }
                for name in names {
                    if rule.properties.iter().any(|p| p.name == name) {
                        continue;
                    }
                    if let Some(node) = merge::undeclared(self, rule, name, at)? {
                        rule.properties.push(Property { name: name.to_string(), node, required: false });
                    }
                }
                rule.additional = None;
                rule.additional_any = false;
                rule.patterns.clear();
                rule.patterns_all = None;
            }
            Node::AnyOf(_) | Node::Ref(_) => {
                return Err(SchemaError::inexact("propertyNames", at, "only a string schema or a list of names is supported"));
            }
        }
        Ok(())
    }
}

/// Declared properties whose names the rule's `names` refuses are never
/// emitted; an error when one of them is required.
pub(super) fn restrict_names(r: &mut Reader, rule: &mut ObjectRule, at: &str) -> Result<(), SchemaError> {
    let Some(names) = rule.names.clone() else { return Ok(()) };
    for p in &mut rule.properties {
        if !admits_name(&names, &p.name)? {
            refuse_name(r, p, at)?;
        }
    }
    Ok(())
}

/// Whether a key satisfies a `propertyNames` rule.
pub(super) fn admits_name(names: &StringRule, name: &str) -> Result<bool, SchemaError> {
    names.admits(name)
}

fn refuse_name(r: &mut Reader, p: &mut Property, at: &str) -> Result<(), SchemaError> {
    if p.required {
        return Err(SchemaError::new(
            SchemaErrorKind::Unsatisfiable { why: format!("required property \"{}\" fails `propertyNames`", p.name) },
            at,
        ));
    }
    p.node = r.push(Node::Never, at);
    Ok(())
}
