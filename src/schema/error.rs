//! Errors raised while reading a JSON Schema into the IR.

use std::fmt;

/// A schema that strictly cannot enforce exactly, with the keyword and the
/// JSON pointer (RFC 6901) of the schema object that holds it.
///
/// ```
/// use strictly::schema::{compile, CompileOptions};
/// let err = compile(&serde_json::json!({"not": {"pattern": "^a"}}), &CompileOptions::default())
///     .unwrap_err();
/// assert_eq!(err.keyword(), Some("not"));
/// assert_eq!(err.pointer(), "");
/// assert_eq!(err.to_string(), "unsupported keyword `not` at `#`: the negation of `pattern` is not supported");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaError {
    kind: SchemaErrorKind,
    pointer: String,
}

/// What went wrong; see [`SchemaError::kind`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SchemaErrorKind {
    /// A keyword of the JSON Schema vocabularies that strictly does not enforce.
    Unsupported {
        /// The keyword, e.g. `not` or `format`.
        keyword: String,
        /// Why it cannot be enforced.
        why: String,
    },
    /// A keyword that is in no JSON Schema vocabulary strictly knows.
    UnknownKeyword {
        /// The keyword as written.
        keyword: String,
    },
    /// A supported keyword with a value or combination strictly cannot enforce exactly.
    Inexact {
        /// The keyword, e.g. `pattern`.
        keyword: String,
        /// What in its value cannot be enforced exactly.
        why: String,
    },
    /// The schema is not a well-formed JSON Schema.
    Malformed {
        /// The keyword whose value is malformed.
        keyword: String,
        /// What is wrong with it.
        why: String,
    },
    /// A `$ref` strictly cannot resolve (remote, or a dangling pointer).
    BadRef {
        /// The `$ref` value as written.
        reference: String,
        /// Why it cannot be resolved.
        why: String,
    },
    /// No instance can satisfy the schema.
    Unsatisfiable {
        /// Which constraints contradict each other.
        why: String,
    },
    /// The automaton would exceed its size or time limit.
    TooLarge {
        /// Which limit was exceeded, and by what.
        why: String,
    },
}

impl SchemaError {
    pub(crate) fn new(kind: SchemaErrorKind, pointer: &str) -> Self {
        Self { kind, pointer: pointer.to_string() }
    }
    pub(crate) fn unsupported(keyword: &str, pointer: &str, why: &str) -> Self {
        Self::new(SchemaErrorKind::Unsupported { keyword: keyword.into(), why: why.into() }, pointer)
    }
    pub(crate) fn inexact(keyword: &str, pointer: &str, why: impl Into<String>) -> Self {
        Self::new(SchemaErrorKind::Inexact { keyword: keyword.into(), why: why.into() }, pointer)
    }
    pub(crate) fn malformed(keyword: &str, pointer: &str, why: impl Into<String>) -> Self {
        Self::new(SchemaErrorKind::Malformed { keyword: keyword.into(), why: why.into() }, pointer)
    }
    pub(crate) fn too_large(pointer: &str, why: impl Into<String>) -> Self {
        Self::new(SchemaErrorKind::TooLarge { why: why.into() }, pointer)
    }

    /// The error's kind.
    pub fn kind(&self) -> &SchemaErrorKind {
        &self.kind
    }

    /// The JSON pointer of the schema object at fault (`""` is the root).
    pub fn pointer(&self) -> &str {
        &self.pointer
    }

    /// The keyword at fault, when there is one.
    pub fn keyword(&self) -> Option<&str> {
        match &self.kind {
            SchemaErrorKind::Unsupported { keyword, .. }
            | SchemaErrorKind::UnknownKeyword { keyword }
            | SchemaErrorKind::Inexact { keyword, .. }
            | SchemaErrorKind::Malformed { keyword, .. } => Some(keyword),
            SchemaErrorKind::BadRef { .. } => Some("$ref"),
            _ => None,
        }
    }

    /// Which of the four kinds of refusal this is (coverage reports group by it).
    pub fn class(&self) -> RefusalClass {
        match &self.kind {
            SchemaErrorKind::Unsupported { .. } | SchemaErrorKind::UnknownKeyword { .. } => RefusalClass::UnsupportedKeyword,
            // Remote references and anchors are valid JSON Schema strictly does not resolve.
            SchemaErrorKind::BadRef { why, .. } if why.contains("supported") => RefusalClass::UnsupportedKeyword,
            SchemaErrorKind::Inexact { .. } => RefusalClass::Inexact,
            SchemaErrorKind::TooLarge { .. } => RefusalClass::TooLarge,
            SchemaErrorKind::Malformed { .. } | SchemaErrorKind::BadRef { .. } | SchemaErrorKind::Unsatisfiable { .. } => {
                RefusalClass::InvalidSchema
            }
        }
    }

    /// A short stable label for the error class, used in coverage reports.
    pub fn label(&self) -> String {
        match &self.kind {
            SchemaErrorKind::Unsupported { keyword, .. } => format!("unsupported:{keyword}"),
            SchemaErrorKind::UnknownKeyword { .. } => "unknown-keyword".into(),
            SchemaErrorKind::Inexact { keyword, .. } => format!("inexact:{keyword}"),
            SchemaErrorKind::Malformed { keyword, .. } => format!("malformed:{keyword}"),
            SchemaErrorKind::BadRef { why, .. } if why.contains("supported") => "unsupported:$ref".into(),
            SchemaErrorKind::BadRef { .. } => "bad-ref".into(),
            SchemaErrorKind::Unsatisfiable { .. } => "unsatisfiable".into(),
            SchemaErrorKind::TooLarge { .. } => "too-large".into(),
        }
    }
}

/// The four kinds of refusal, as coverage reports count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefusalClass {
    /// A keyword strictly does not enforce at all (`uniqueItems`, `if`, a
    /// standard `format` it lacks, a remote `$ref`; unknown keywords under
    /// [`crate::schema::UnknownKeywords::Deny`]).
    UnsupportedKeyword,
    /// A supported keyword whose value or combination strictly cannot enforce exactly.
    Inexact,
    /// Over a size, depth or time limit.
    TooLarge,
    /// Not a well-formed schema, a dangling `$ref`, or a schema no value satisfies.
    InvalidSchema,
}

impl RefusalClass {
    /// Every class, in report order.
    pub const ALL: [RefusalClass; 4] = [Self::UnsupportedKeyword, Self::Inexact, Self::TooLarge, Self::InvalidSchema];

    /// The class as a report shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnsupportedKeyword => "unsupported keyword",
            Self::Inexact => "inexact",
            Self::TooLarge => "too large",
            Self::InvalidSchema => "invalid schema",
        }
    }
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = format!("#{}", self.pointer);
        match &self.kind {
            SchemaErrorKind::Unsupported { keyword, why } => {
                write!(f, "unsupported keyword `{keyword}` at `{at}`: {why}")
            }
            SchemaErrorKind::UnknownKeyword { keyword } => write!(
                f,
                "unknown keyword `{keyword}` at `{at}`: not part of JSON Schema, so strictly cannot tell whether it constrains the value"
            ),
            SchemaErrorKind::Inexact { keyword, why } => {
                write!(f, "cannot enforce `{keyword}` exactly at `{at}`: {why}")
            }
            SchemaErrorKind::Malformed { keyword, why } => {
                write!(f, "malformed `{keyword}` at `{at}`: {why}")
            }
            SchemaErrorKind::BadRef { reference, why } => {
                write!(f, "cannot resolve `$ref` \"{reference}\" at `{at}`: {why}")
            }
            SchemaErrorKind::Unsatisfiable { why } => {
                write!(f, "schema at `{at}` is unsatisfiable: {why}")
            }
            SchemaErrorKind::TooLarge { why } => write!(f, "schema at `{at}` is too large: {why}"),
        }
    }
}

impl std::error::Error for SchemaError {}

/// Escapes one reference token for a JSON pointer (RFC 6901).
pub(crate) fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}
