//! Strings: free and length-bounded bodies, `pattern`s and `format`s (alone
//! when their regex already keeps to the lengths, else through a product
//! that counts characters), and strings that must differ from some words.

use regex_automata::util::primitives::StateID;
use regex_syntax::hir::Hir;

use super::super::regex;
use super::{product, Built, Lowerer};
use crate::schema::{SchemaError, StringRule};

/// `maxLength` above this (and above `minLength`) is lowered as this many.
const MAX_UNROLL_CHARS: usize = 1024;
/// The same for strings that are also bound by a `pattern` or `format`,
/// whose lengths are counted in a product automaton.
const MAX_PRODUCT_CHARS: usize = 256;

impl Lowerer<'_> {
    pub(super) fn string(&mut self, rule: &StringRule, next: StateID) -> Built {
        let close = self.lit(b"\"", next)?;
        let body = match (&rule.format, &rule.pattern) {
            _ if !rule.excluded.is_empty() => {
                let mut regexes = Vec::new();
                if let Some(format) = rule.format {
                    regexes.push(regex::parse(format.regex()).map_err(|e| SchemaError::too_large(&self.at, e))?);
                }
                let pattern = rule.pattern.as_ref().map_or("", |(p, _)| p.as_str());
                let at = rule.pattern.as_ref().map_or(self.at.clone(), |(_, at)| at.clone());
                regexes.push(regex::full_match(pattern).map_err(|e| SchemaError::inexact("pattern", &at, e))?);
                self.string_product(rule, regexes, close)?
            }
            (None, None) => {
                // Very long bounded strings are unrolled only this far: a subset, so sound.
                let max = rule.max_len.map(|m| m.min(MAX_UNROLL_CHARS.max(rule.min_len)));
                self.repeat(rule.min_len, max, close, &mut |l, n| l.any_char(n))?
            }
            (Some(format), None) => {
                let hir = regex::parse(format.regex()).map_err(|e| SchemaError::too_large(&self.at, e))?;
                if self.lengths_implied(rule, regex::char_len(&hir)) {
                    self.hir(&hir, close)?
                } else {
                    self.string_product(rule, vec![hir], close)?
                }
            }
            (None, Some((pattern, at))) => {
                let source = regex::ecma_to_rust(pattern).map_err(|e| SchemaError::inexact("pattern", at, e))?;
                let hir = regex::parse(&source).map_err(|e| SchemaError::inexact("pattern", at, e))?;
                let branches = regex::branches(&hir).map_err(|e| SchemaError::inexact("pattern", at, e))?;
                let implied = branches.iter().all(|branch| {
                    let (lo, hi) = regex::char_len(&branch.hir);
                    let unanchored = !branch.anchored_start || !branch.anchored_end;
                    self.lengths_implied(rule, (lo, if unanchored { None } else { hi }))
                });
                if implied {
                    let mut alts = Vec::new();
                    for branch in branches {
                        let tail = if branch.anchored_end { close } else { self.any_chars(close)? };
                        let Some(mid) = self.hir(&branch.hir, tail)? else { continue };
                        alts.push(Some(if branch.anchored_start { mid } else { self.any_chars(mid)? }));
                    }
                    self.union_opt(alts)?
                } else {
                    let hir = regex::full_match(pattern).map_err(|e| SchemaError::inexact("pattern", at, e))?;
                    self.string_product(rule, vec![hir], close)?
                }
            }
            (Some(format), Some((pattern, at))) => {
                let format = regex::parse(format.regex()).map_err(|e| SchemaError::too_large(&self.at, e))?;
                let pattern = regex::full_match(pattern).map_err(|e| SchemaError::inexact("pattern", at, e))?;
                self.string_product(rule, vec![format, pattern], close)?
            }
        };
        match body {
            Some(body) => Ok(Some(self.lit(b"\"", body)?)),
            None => Ok(None),
        }
    }

    /// String bodies matching every one of `regexes` (whole-string HIRs)
    /// within the length bounds: an intersection, built as a product.
    /// `maxLength` above [`MAX_PRODUCT_CHARS`] (and `minLength`) is lowered
    /// as that many characters: a subset, so sound.
    pub(super) fn string_product(&mut self, rule: &StringRule, regexes: Vec<Hir>, close: StateID) -> Built {
        let all = (1u64 << regexes.len()) - 1;
        let max_chars = rule.max_len.map(|m| m.min(MAX_PRODUCT_CHARS.max(rule.min_len)));
        let excluded: Vec<&str> = rule.excluded.iter().map(String::as_str).collect();
        let spec = product::Product { regexes: &regexes, excluded: &excluded, min_chars: rule.min_len, max_chars };
        self.product(&spec, &mut |_, mask| Ok((mask == all).then_some(close)))
    }

    /// Whether a regex matching `lo..=hi` characters already keeps to the
    /// rule's `minLength`/`maxLength`.
    pub(super) fn lengths_implied(&self, rule: &StringRule, (lo, hi): (usize, Option<usize>)) -> bool {
        lo >= rule.min_len && rule.max_len.is_none_or(|max| hi.is_some_and(|h| h <= max))
    }
}
