//! The type-specific keywords of one schema object read into rules: numbers
//! (bounds, `multipleOf`, integer formats), strings (lengths, `pattern`,
//! `format`), arrays (prefix, items, `contains`) and objects (properties,
//! `required`, additional and pattern properties, counts, names).

use serde_json::{Map, Value};

use super::error::{escape_token, SchemaError, SchemaErrorKind};
use super::keywords::Draft;
use super::merge;
use super::reader::Reader;
use super::{
    ArrayRule, Bound, Format, IgnoredKeyword, Node, NodeId, NumberRule, ObjectRule, PatternProperty, Property, StringRule, UnknownKeywords,
};

impl Reader<'_> {
    pub(super) fn read_number(&mut self, map: &Map<String, Value>, at: &str) -> Result<NumberRule, SchemaError> {
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
            // Not `m <= 0.0`: NaN must be refused too.
            if m.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                return Err(SchemaError::malformed("multipleOf", at, "must be greater than 0"));
            }
            // The divisor as the decimal it is written as (its shortest
            // round-trip form, as the validators read it).
            let (mantissa, places) = decimal_parts(m).filter(|&(d, p)| d < 1_000_000_000_000_000 && p <= 15).ok_or_else(|| {
                SchemaError::inexact("multipleOf", at, "divisors with more than 15 significant digits or decimal places are not supported")
            })?;
            if places == 0 {
                rule.integer = true;
                if m > 1.0 {
                    rule.multiple_of = Some(mantissa as u64);
                }
            } else {
                rule.multiple_of = Some(mantissa as u64);
                rule.decimal_places = places;
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

    pub(super) fn read_string(&mut self, map: &Map<String, Value>, at: &str) -> Result<StringRule, SchemaError> {
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

    pub(super) fn read_array(&mut self, map: &Map<String, Value>, at: &str) -> Result<ArrayRule, SchemaError> {
        let mut rule = ArrayRule {
            min_items: count(map, "minItems", at)?.unwrap_or(0),
            max_items: count(map, "maxItems", at)?,
            ..ArrayRule::default()
        };
        let tuple_form = matches!(map.get("items"), Some(Value::Array(_)));
        let (prefix_key, rest_key) = if tuple_form { ("items", "additionalItems") } else { ("prefixItems", "items") };
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
        rule.unique = match map.get("uniqueItems") {
            None | Some(Value::Bool(false)) => false,
            // One item is always unique.
            Some(Value::Bool(true)) => rule.max_items.is_none_or(|m| m > 1),
            Some(_) => return Err(SchemaError::malformed("uniqueItems", at, "must be a boolean")),
        };
        Ok(rule)
    }

    pub(super) fn read_object(&mut self, map: &Map<String, Value>, at: &str) -> Result<ObjectRule, SchemaError> {
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
                if required && matches!(self.nodes[node], Node::Never) {
                    return Err(SchemaError::new(
                        SchemaErrorKind::Unsatisfiable { why: format!("required property \"{name}\" has a false schema") },
                        at,
                    ));
                }
                // A false property stays declared: its name is then excluded
                // from additional properties, and the lowering never emits it.
                rule.properties.push(Property { name: name.clone(), node, required });
            }
        }
        for name in &required {
            if rule.properties.iter().any(|p| &p.name == name) || map.get("properties").and_then(|p| p.get(name)).is_some() {
                continue;
            }
            let node = merge::undeclared(self, &rule, name, at)?.ok_or_else(|| {
                SchemaError::new(
                    SchemaErrorKind::Unsatisfiable { why: format!("\"{name}\" is required but additionalProperties is false") },
                    at,
                )
            })?;
            rule.properties.push(Property { name: name.clone(), node, required: true });
        }
        self.read_property_names(map, at, &mut rule)?;
        Ok(rule)
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

/// A finite `f64` as the decimal its shortest round-trip form writes:
/// `(mantissa, places)` with value `mantissa × 10^-places` (`0.25` is
/// `(25, 2)`); `None` when the mantissa overflows.
pub(crate) fn decimal_parts(v: f64) -> Option<(i128, u32)> {
    if !v.is_finite() {
        return None;
    }
    let text = format!("{v}");
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.as_str()),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let frac = frac.trim_end_matches('0');
    let mut mantissa: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        mantissa = mantissa.checked_mul(10)?.checked_add(i128::from(b.checked_sub(b'0')?))?;
    }
    Some((if negative { -mantissa } else { mantissa }, u32::try_from(frac.len()).ok()?))
}

/// Whether `x` is a multiple of `multiple × 10^-places`, in decimal
/// arithmetic over `x`'s shortest round-trip form (the `jsonschema` crate's
/// semantics for the values strictly emits).
pub(crate) fn is_decimal_multiple(x: f64, multiple: u64, places: u32) -> bool {
    let Some((mantissa, x_places)) = decimal_parts(x) else { return false };
    // x / m = mantissa × 10^places / (multiple × 10^x_places)
    let scale = |v: i128, p: u32| 10i128.checked_pow(p).and_then(|s| v.checked_mul(s));
    let shared = places.min(x_places);
    match (scale(mantissa, places - shared), scale(i128::from(multiple), x_places - shared)) {
        (Some(a), Some(b)) if b != 0 => a % b == 0,
        _ => false,
    }
}
