//! `if`/`then`/`else` as the exact union
//! `anyOf(allOf(if, then), allOf(not if, else))`.
//!
//! The second branch needs the complement of `if`, built by `negate.rs`
//! exactly or not at all: where it cannot be built, the schema is refused
//! with `if` as the keyword. A missing `then` or `else` is `true`.

use serde_json::{Map, Value};

use super::error::{SchemaError, SchemaErrorKind};
use super::merge;
use super::negate::Complement;
use super::reader::Reader;
use super::{Node, NodeId};

impl Reader<'_> {
    /// The union `if`/`then`/`else` stands for, to be intersected with the
    /// rest of the schema; `None` without `if`, or when neither `then` nor
    /// `else` is given (then `if` only annotates).
    pub(super) fn read_conditional(&mut self, map: &Map<String, Value>, at: &str) -> Result<Option<NodeId>, SchemaError> {
        if !map.contains_key("if") || !(map.contains_key("then") || map.contains_key("else")) {
            return Ok(None);
        }
        let condition = self.read_at(&format!("{at}/if"))?;
        let branch = |r: &mut Self, keyword: &str, guard: NodeId| -> Result<NodeId, SchemaError> {
            let node = match map.contains_key(keyword) {
                true => {
                    let then = r.read_at(&format!("{at}/{keyword}"))?;
                    merge::intersect_all(r, &[guard, then], at, "if")?
                }
                false => Node::Ref(guard),
            };
            Ok(r.push(node, at))
        };
        let when = branch(self, "then", condition)?;
        let complement = self.negate(&format!("{at}/if"), at, Complement::Exact, 0).map_err(|e| match e.kind() {
            SchemaErrorKind::Unsupported { why, .. } => {
                SchemaError::unsupported("if", at, &format!("`else` needs the complement of `if`, which cannot be built: {why}"))
            }
            _ => e,
        })?;
        let complement = self.push(complement, at);
        let otherwise = branch(self, "else", complement)?;
        let union = [when, otherwise].into_iter().filter(|&id| !matches!(self.nodes[id], Node::Never)).collect();
        Ok(Some(self.push(Node::AnyOf(union), at)))
    }
}
