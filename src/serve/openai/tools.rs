//! Function tools: their output schema (an `anyOf` of `{"name", "arguments"}` branches) and instructions.

use serde_json::{json, Map, Value};

use super::types::{ToolChoice, ToolSpec};
use super::ApiError;

/// `$defs`/`definitions` of a tool's parameters moved under the wrapper's root with a prefix,
/// and every local `$ref` to them rewritten, so the tool's schema means the same inside the
/// `anyOf`.
fn hoist_defs(params: &Value, prefix: &str, defs: &mut Map<String, Value>) -> Value {
    fn rewrite(v: &Value, prefix: &str) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| k.as_str() != "$defs" && k.as_str() != "definitions")
                    .map(|(k, v)| {
                        let v = match (k.as_str(), v.as_str()) {
                            ("$ref", Some(r)) => {
                                let r = r.strip_prefix("#/$defs/").or_else(|| r.strip_prefix("#/definitions/")).map_or_else(
                                    || if r == "#" { format!("#/$defs/{prefix}root") } else { r.to_owned() },
                                    |name| format!("#/$defs/{prefix}{name}"),
                                );
                                Value::String(r)
                            }
                            _ => rewrite(v, prefix),
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(|x| rewrite(x, prefix)).collect()),
            other => other.clone(),
        }
    }
    for key in ["$defs", "definitions"] {
        if let Some(Value::Object(d)) = params.get(key) {
            for (name, schema) in d {
                defs.insert(format!("{prefix}{name}"), rewrite(schema, prefix));
            }
        }
    }
    let body = rewrite(params, prefix);
    if params.to_string().contains("\"#\"") {
        defs.insert(format!("{prefix}root"), body.clone());
    }
    body
}

/// A function tool, from either API's shape.
pub(super) struct Tool {
    name: String,
    description: String,
    parameters: Value,
}

pub(super) fn parse_tools(tools: &[ToolSpec], param: &'static str) -> Result<Vec<Tool>, ApiError> {
    tools
        .iter()
        .map(|t| {
            if t.kind.as_deref() != Some("function") {
                return Err(ApiError::invalid_param(param, "only function tools are supported"));
            }
            // Chat nests the function; Responses is flat.
            let f = t.function.as_ref().unwrap_or(&t.flat);
            let name = f.name.as_deref().ok_or_else(|| ApiError::invalid_param(param, "a function tool needs a name"))?;
            if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(ApiError::invalid_param(param, format!("function name `{name}` must be 1 to 64 of a-z, A-Z, 0-9, _ and -")));
            }
            Ok(Tool {
                name: name.to_owned(),
                description: f.description.clone().unwrap_or_default(),
                parameters: f
                    .parameters
                    .clone()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}, "additionalProperties": false})),
            })
        })
        .collect()
}

/// The output schema and the instructions for function tools under a `tool_choice`.
pub(super) fn tools_schema(tools: &[Tool], choice: Option<&ToolChoice>, refusal: bool) -> Result<Option<(Value, String)>, ApiError> {
    let mode = match choice {
        Some(ToolChoice::Mode(m)) => Some(m.as_str()),
        _ => None,
    };
    let (chosen, auto): (Vec<&Tool>, bool) = match (mode, choice.and_then(ToolChoice::named)) {
        (Some("none"), _) => return Ok(None),
        (Some("auto") | None, None) => (tools.iter().collect(), true),
        (Some("required"), _) => (tools.iter().collect(), false),
        (None, Some(n)) => match tools.iter().find(|t| t.name == n) {
            Some(t) => (vec![t], false),
            None => return Err(ApiError::invalid_param("tool_choice", format!("tool_choice names `{n}`, which is not among the tools"))),
        },
        (Some(other), _) => {
            return Err(ApiError::invalid_param("tool_choice", format!("tool_choice `{other}` is not none, auto or required")))
        }
    };
    if chosen.is_empty() {
        return Ok(None);
    }
    let mut defs = Map::new();
    let mut branches: Vec<Value> = chosen
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({
                "type": "object",
                "properties": {"name": {"const": t.name}, "arguments": hoist_defs(&t.parameters, &format!("t{i}_"), &mut defs)},
                "required": ["name", "arguments"],
                "additionalProperties": false
            })
        })
        .collect();
    if auto {
        branches.insert(0, json!({"type": "object", "properties": {"content": {"type": "string"}}, "required": ["content"], "additionalProperties": false}));
    }
    if refusal {
        // No tool branch has a `refusal` key, so a refusal object is never a tool call.
        branches.push(super::refusal::schema());
    }
    let mut schema = if branches.len() == 1 { branches.pop().expect("one") } else { json!({"anyOf": branches}) };
    if !defs.is_empty() {
        schema["$defs"] = Value::Object(defs);
    }
    let list: Vec<String> = chosen.iter().map(|t| format!("- {}: {} Arguments: {}", t.name, t.description, t.parameters)).collect();
    let how = if auto {
        "Answer with a JSON object: {\"content\": \"your answer\"}, or call one function with {\"name\": \"<function>\", \"arguments\": {...}}."
    } else {
        "Call one function: answer with {\"name\": \"<function>\", \"arguments\": {...}}."
    };
    Ok(Some((schema, format!("You can call these functions:\n{}\n{how}", list.join("\n")))))
}
