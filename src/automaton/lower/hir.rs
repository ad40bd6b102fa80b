//! Regexes (`regex_syntax` HIRs) lowered into the NFA, each character
//! JSON-escaped as it appears inside a string.

use regex_automata::util::primitives::StateID;
use regex_syntax::hir::{Class, Hir, HirKind};

use super::{Built, Lowerer};
use crate::schema::SchemaError;

impl Lowerer<'_> {
    /// Lowers a regex HIR; characters are JSON-escaped as inside a string.
    pub(crate) fn hir(&mut self, hir: &Hir, next: StateID) -> Built {
        match hir.kind() {
            HirKind::Empty => Ok(Some(next)),
            HirKind::Literal(lit) => {
                let text = String::from_utf8_lossy(&lit.0).into_owned();
                let mut state = next;
                for c in text.chars().rev() {
                    match self.json_char(&[(c, c)], state)? {
                        Some(s) => state = s,
                        None => return Ok(None),
                    }
                }
                Ok(Some(state))
            }
            HirKind::Class(Class::Unicode(class)) => {
                let ranges: Vec<(char, char)> = class.ranges().iter().map(|r| (r.start(), r.end())).collect();
                self.json_char(&ranges, next)
            }
            HirKind::Class(Class::Bytes(class)) => {
                let mut ranges = Vec::new();
                for r in class.ranges() {
                    if r.end() > 0x7f {
                        return Err(SchemaError::inexact("pattern", &self.at, "byte classes beyond ASCII are not supported"));
                    }
                    ranges.push((r.start() as char, r.end() as char));
                }
                self.json_char(&ranges, next)
            }
            HirKind::Look(_) => Err(SchemaError::inexact("pattern", &self.at, "anchors inside the pattern are not supported")),
            HirKind::Capture(c) => self.hir(&c.sub, next),
            HirKind::Repetition(r) => {
                let sub = (*r.sub).clone();
                self.repeat(r.min as usize, r.max.map(|m| m as usize), next, &mut |l, n| l.hir(&sub, n))
            }
            HirKind::Concat(parts) => {
                let mut state = next;
                for part in parts.iter().rev() {
                    match self.hir(part, state)? {
                        Some(s) => state = s,
                        None => return Ok(None),
                    }
                }
                Ok(Some(state))
            }
            HirKind::Alternation(alts) => {
                let mut out = Vec::new();
                for alt in alts {
                    out.push(self.hir(alt, next)?);
                }
                self.union_opt(out)
            }
        }
    }
}
