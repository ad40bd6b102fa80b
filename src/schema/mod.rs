//! JSON Schema → typed intermediate representation (IR).
//!
//! This is the first of two passes (the second, the `automaton` module, lowers
//! the IR to a byte automaton). The reader accepts drafts 2020-12, 2019-09,
//! 07, 06 and 04, resolves local `$ref`s (recursion included), merges `allOf`
//! exactly where it can, and refuses everything it cannot enforce exactly with
//! a [`SchemaError`] that names the keyword and its JSON pointer.
//!
//! ```
//! use strictly::schema::{compile, CompileOptions, Node};
//! let ir = compile(&serde_json::json!({"type": ["string", "null"], "maxLength": 3}),
//!                  &CompileOptions::default()).unwrap();
//! let Node::Typed(t) = ir.node(ir.root()) else { panic!() };
//! assert!(t.null && t.string.as_ref().unwrap().max_len == Some(3));
//! ```

mod admits;
mod conditional;
mod contains;
mod dependencies;
mod disjoint;
mod error;
mod format;
mod keywords;
pub mod lint;
mod merge;
mod names;
mod negate;
mod reader;
mod refs;
mod rules;

pub use error::{RefusalClass, SchemaError, SchemaErrorKind};
pub(crate) use reader::json_equal;
pub(crate) use rules::{decimal_parts, is_decimal_multiple};

use serde_json::Value;

/// Index of a node in an [`Ir`].
pub type NodeId = usize;

/// What to do with keywords that belong to no JSON Schema vocabulary
/// (vendor extensions such as `x-order` or `markdownDescription`) and with
/// `format` names no draft defines (`int32`, `color`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnknownKeywords {
    /// Treat them as annotations, as JSON Schema says validators do (the
    /// default). They cannot constrain a valid instance, so ignoring them
    /// never admits an invalid one; [`Ir::ignored`] lists each with its pointer.
    #[default]
    Ignore,
    /// Refuse the schema, naming the keyword and its pointer.
    #[serde(alias = "reject")]
    Deny,
}

/// A keyword read as an annotation because no JSON Schema draft defines it
/// (see [`UnknownKeywords::Ignore`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct IgnoredKeyword {
    /// The JSON pointer of the schema object that holds it (`""` is the root).
    pub pointer: String,
    /// The keyword, e.g. `x-order`; `format` for an unknown format name.
    pub keyword: String,
    /// For `format`, the name no draft defines.
    pub format: Option<String>,
}

impl std::fmt::Display for IgnoredKeyword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.format {
            Some(name) => write!(f, "`format` \"{name}\" at `#{}`", self.pointer),
            None => write!(f, "`{}` at `#{}`", self.keyword, self.pointer),
        }
    }
}

/// Options for reading a schema. Every field documents its default.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompileOptions {
    /// Keywords outside JSON Schema. Default: [`UnknownKeywords::Ignore`].
    pub unknown_keywords: UnknownKeywords,
    /// Accept a `oneOf` whose branches may overlap by treating it as `anyOf`.
    /// Unsound (an instance matching two branches is invalid), so off by default.
    pub lenient_one_of: bool,
    /// How many times one recursive `$ref` may be entered on a path. Default 6.
    pub max_recursion_depth: usize,
    /// Nesting depth of free-form values (`{}` / `true` schemas). Default 3.
    pub any_value_depth: usize,
    /// Allow whitespace between tokens (up to this many bytes of `[ \n]`), or
    /// `None` for compact output. Default `None`.
    pub whitespace: Option<usize>,
    /// NFA size limit in states. Default 2,000,000.
    pub max_nfa_states: usize,
    /// Work limit of one compilation, in steps, counted apart for reading and for lowering:
    /// the reader's intersections and negations, the lowering's NFA states, explored string
    /// products and `uniqueItems` sets. Past it the schema is refused as too large, with the
    /// pointer where the work ran out. A limit in work, not time: a schema compiles or not
    /// whatever the machine's load. Default 2,000,000.
    pub max_work: u64,
    /// The most NFA states one DFA state of the automaton may hold: the work of a token
    /// mask grows with it, since each DFA transition a mask builds steps the whole set
    /// (see [`crate::automaton::cost`]). Past it the schema is refused as too large, with
    /// the pointer of the subschema whose alternatives stay alive side by side. Measured
    /// on the first DFA states from the start, in NFA states, not time. Default 10,000.
    pub max_mask_work: usize,
}

impl Default for CompileOptions {
    fn default() -> Self {
        Self {
            unknown_keywords: UnknownKeywords::Ignore,
            lenient_one_of: false,
            max_recursion_depth: 6,
            any_value_depth: 3,
            whitespace: None,
            max_nfa_states: 2_000_000,
            max_work: 2_000_000,
            max_mask_work: 10_000,
        }
    }
}

/// The typed form of a schema: an arena of nodes and a root.
#[derive(Debug, Clone)]
pub struct Ir {
    nodes: Vec<Node>,
    pointers: Vec<String>,
    root: NodeId,
    draft4: bool,
    ignored: Vec<IgnoredKeyword>,
}

impl Ir {
    /// The root node.
    pub fn root(&self) -> NodeId {
        self.root
    }
    /// A node by id.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }
    /// The JSON pointer a node was read from (for error messages).
    pub fn pointer(&self, id: NodeId) -> &str {
        &self.pointers[id]
    }
    /// The keywords read as annotations because no draft defines them, in
    /// pointer order (empty under [`UnknownKeywords::Deny`], which refuses them).
    pub fn ignored(&self) -> &[IgnoredKeyword] {
        &self.ignored
    }
    /// Whether `1.0` counts as an integer (every draft but 04).
    pub fn integral_floats_are_integers(&self) -> bool {
        !self.draft4
    }
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    /// Whether the arena is empty (never, for a compiled schema).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// One schema, reduced to what the automaton enforces.
// `Typed` is much larger than the other variants; the nodes live in one arena that is read on
// every lowering step, where a box would add an indirection for the common case.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Any JSON value (`true`, `{}`).
    Any,
    /// No value (`false`); dropped from unions, an error where required.
    Never,
    /// Exactly one of these values (`enum`, `const`), in schema order.
    Literals(Vec<Value>),
    /// A union over JSON types, each with its own constraints.
    Typed(Typed),
    /// Any of these nodes (`anyOf`, disjoint `oneOf`, distributed `type`).
    AnyOf(Vec<NodeId>),
    /// A reference to another node; recursion goes through these.
    Ref(NodeId),
}

/// The JSON types a node admits, with the constraints for each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Typed {
    /// Whether `null` is admitted.
    pub null: bool,
    /// Whether `true` and `false` are admitted.
    pub boolean: bool,
    /// The constraints on numbers; None when numbers are not admitted.
    pub number: Option<NumberRule>,
    /// The constraints on strings; None when strings are not admitted.
    pub string: Option<StringRule>,
    /// The constraints on arrays; None when arrays are not admitted.
    pub array: Option<ArrayRule>,
    /// The constraints on objects; None when objects are not admitted.
    pub object: Option<ObjectRule>,
    /// The schema may also admit numbers that `number` leaves out: the non-integral ones of a
    /// complement of `type: integer`, which the IR cannot single out. The lowering leaves them
    /// out (a sound subset); a proof that two schemas share no value counts them in.
    pub unlisted_numbers: bool,
}

impl Typed {
    /// All types, unconstrained.
    pub fn any() -> Self {
        Self {
            null: true,
            boolean: true,
            number: Some(NumberRule::default()),
            string: Some(StringRule::default()),
            array: Some(ArrayRule::default()),
            object: Some(ObjectRule::default()),
            unlisted_numbers: false,
        }
    }

    /// Whether the unlisted numbers of one side may meet the other's numbers, listed or not
    /// ([`Self::unlisted_numbers`]).
    pub(crate) fn unlisted_numbers_meet(&self, other: &Typed) -> bool {
        (self.unlisted_numbers && (other.number.is_some() || other.unlisted_numbers)) || (other.unlisted_numbers && self.number.is_some())
    }

    /// Whether the node admits no value at all, unlisted numbers included.
    pub fn is_empty(&self) -> bool {
        !self.null
            && !self.boolean
            && self.number.is_none()
            && self.string.is_none()
            && self.array.is_none()
            && self.object.is_none()
            && !self.unlisted_numbers
    }
}

/// A numeric bound; `exclusive` for `exclusiveMinimum`/`exclusiveMaximum`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    /// The bound's value.
    pub value: f64,
    /// Whether the value itself is excluded (`exclusiveMinimum`/`exclusiveMaximum`).
    pub exclusive: bool,
}

/// Constraints on numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NumberRule {
    /// Only integers (`type: integer`, or `multipleOf` an integer).
    pub integer: bool,
    /// The lower bound (`minimum` or `exclusiveMinimum`); None when numbers are unbounded below.
    pub minimum: Option<Bound>,
    /// The upper bound (`maximum` or `exclusiveMaximum`); None when numbers are unbounded above.
    pub maximum: Option<Bound>,
    /// `multipleOf` as `multiple_of × 10^-decimal_places` (`0.25` is 25 and 2).
    pub multiple_of: Option<u64>,
    /// The decimal places of `multipleOf` (0 for an integer divisor).
    pub decimal_places: u32,
}

/// String formats strictly enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `date-time`: an RFC 3339 date and time with a `Z` or numeric offset.
    DateTime,
    /// `date`: an RFC 3339 full date, `YYYY-MM-DD`.
    Date,
    /// `time`: an RFC 3339 time with a `Z` or numeric offset.
    Time,
    /// `email`: a subset of RFC 5321 addresses (lowercase letters and digits).
    Email,
    /// `uuid`: a lowercase hyphenated RFC 4122 UUID.
    Uuid,
    /// `ipv4`: a dotted-quad address.
    Ipv4,
    /// `ipv6`: a lowercase RFC 4291 address, compressed or not.
    Ipv6,
    /// `uri`: a subset of absolute RFC 3986 URIs (http, https, ftp, urn, mailto, file).
    Uri,
    /// `hostname`: an RFC 1123 hostname of at most four labels.
    Hostname,
    /// `uri-reference`, `iri`, `iri-reference`: enforced as [`Format::Uri`]
    /// (absolute URIs are all three), a sound subset.
    UriReference,
    /// `json-pointer`: a subset without `~` escapes.
    JsonPointer,
    /// `regex`: a subset (literal words), every one a valid ECMA-262 regex.
    Regex,
    /// `duration`: a subset of ISO 8601 durations (one or two units).
    Duration,
}

impl Format {
    /// Parses a `format` value; `None` for formats strictly cannot enforce.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "date-time" => Self::DateTime,
            "date" => Self::Date,
            "time" => Self::Time,
            "email" => Self::Email,
            "uuid" => Self::Uuid,
            "ipv4" => Self::Ipv4,
            "ipv6" => Self::Ipv6,
            "uri" => Self::Uri,
            "hostname" => Self::Hostname,
            "uri-reference" | "iri" | "iri-reference" => Self::UriReference,
            "json-pointer" => Self::JsonPointer,
            "regex" => Self::Regex,
            "duration" => Self::Duration,
            _ => return None,
        })
    }

    /// Whether a JSON Schema draft (04 to 2020-12) defines this format name.
    /// Other names (`int32`, `color`, `topic`, …) are annotations to a
    /// validator, as unknown as an unknown keyword.
    pub fn is_standard(name: &str) -> bool {
        const STANDARD: &[&str] = &[
            "date-time",
            "date",
            "time",
            "duration",
            "email",
            "idn-email",
            "hostname",
            "idn-hostname",
            "ipv4",
            "ipv6",
            "uri",
            "uri-reference",
            "iri",
            "iri-reference",
            "uuid",
            "uri-template",
            "json-pointer",
            "relative-json-pointer",
            "regex",
        ];
        STANDARD.contains(&name)
    }
}

/// Constraints on strings. Lengths count Unicode code points, as JSON Schema does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StringRule {
    /// `minLength`, in characters (0 when absent).
    pub min_len: usize,
    /// `maxLength`, in characters; None when absent.
    pub max_len: Option<usize>,
    /// `pattern`: an unanchored ECMA-262 regex, with the pointer it came from.
    pub pattern: Option<(String, String)>,
    /// The `format` strictly enforces; None without a `format`, or for one it ignores as an annotation.
    pub format: Option<Format>,
    /// Values the string must not take (`not` with `enum`/`const`).
    pub excluded: Vec<String>,
}

/// Constraints on arrays.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArrayRule {
    /// `prefixItems` (or the array form of `items` in older drafts).
    pub prefix: Vec<NodeId>,
    /// Schema for items after the prefix; `None` means no further items.
    pub items: Option<NodeId>,
    /// `minItems` (0 when absent).
    pub min_items: usize,
    /// `maxItems`; None when absent.
    pub max_items: Option<usize>,
    /// Set when `items` is absent (any item allowed): lowered as a free value.
    pub items_any: bool,
    /// `contains` with `minContains`/`maxContains`; `None` without `contains`
    /// (or when it cannot fail: `minContains: 0` and no maximum).
    pub contains: Option<Contains>,
    /// `uniqueItems: true` (and more than one item possible): no two items
    /// equal as JSON values. Lowered only where the items form a small
    /// finite set of values (see `automaton::lower::unique`).
    pub unique: bool,
}

/// `contains`, split per position: each element schema intersected with the
/// `contains` schema (a hit, which counts) and with its complement (a miss).
/// The lowering counts hits, so the language is exact.
#[derive(Debug, Clone, PartialEq)]
pub struct Contains {
    /// The `contains` schema.
    pub schema: NodeId,
    /// Its exact complement.
    pub complement: NodeId,
    /// Per prefix position, then one entry for `items`: the element values
    /// that match `contains` (`None`: no value does).
    pub hits: Vec<Option<NodeId>>,
    /// The same positions: the element values that do not match it.
    pub misses: Vec<Option<NodeId>>,
    /// `minContains` (default 1).
    pub min: usize,
    /// `maxContains`.
    pub max: Option<usize>,
}

/// One declared property.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// The property's key, as written in `properties`.
    pub name: String,
    /// The node of the property's value schema.
    pub node: NodeId,
    /// Whether the property is in `required`.
    pub required: bool,
}

/// One `patternProperties` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PatternProperty {
    /// The ECMA-262 regex (unanchored), as written.
    pub pattern: String,
    /// The pointer of the schema holding `patternProperties`, for errors.
    pub pointer: String,
    /// The node of the schema that values of matching keys follow.
    pub node: NodeId,
}

/// Constraints on objects. Properties are emitted in this order.
///
/// The rule is exact as read: a declared property's node already includes
/// the schemas of the patterns its name matches, and `additional` covers the
/// keys that match neither a declared name nor a pattern.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObjectRule {
    /// The declared properties, in emission order.
    pub properties: Vec<Property>,
    /// Schema for other keys; `None` when `additionalProperties` is false.
    /// Beside `patterns`, only for keys that match no pattern.
    pub additional: Option<NodeId>,
    /// True when `additionalProperties` was absent or `true`.
    pub additional_any: bool,
    /// `patternProperties`, in schema order.
    pub patterns: Vec<PatternProperty>,
    /// With several patterns: the intersection of all their schemas, which
    /// the lowering gives a key that matches more than one (a sound subset);
    /// `None` when they have no common value.
    pub patterns_all: Option<NodeId>,
    /// `minProperties`: members present, declared or not.
    pub min_props: usize,
    /// `maxProperties`.
    pub max_props: Option<usize>,
    /// `propertyNames` as a rule on keys (`None`: any key). Declared
    /// properties it refuses are already false.
    pub names: Option<StringRule>,
}

/// Reads a schema into the IR.
///
/// # Errors
/// A [`SchemaError`] naming the keyword and pointer of anything strictly
/// cannot enforce exactly.
pub fn compile(schema: &Value, options: &CompileOptions) -> Result<Ir, SchemaError> {
    on_compiler_stack(|| read(schema, options))
}

/// [`compile`] on the caller's stack (for callers already on the compiler's).
pub(crate) fn read(schema: &Value, options: &CompileOptions) -> Result<Ir, SchemaError> {
    reader::Reader::new(schema, options).read_root()
}

/// Stack of the thread the compiler's recursive passes run on. Their depth
/// is bounded (128 nested schemas while reading, 256 nested values while
/// lowering), and at their deepest they use about 1.3 MB in a release
/// build, several times that in a debug build: 64 MB holds either, whatever
/// the caller's own stack (a server's 2 MB worker threads included). The
/// memory is reserved, not committed: only the pages a compilation touches
/// are used.
const COMPILER_STACK: usize = 64 << 20;

/// Runs a compilation on a thread with [`COMPILER_STACK`] bytes of stack,
/// so that no schema can overflow the caller's (about 20 µs per call).
pub(crate) fn on_compiler_stack<T: Send>(compile: impl FnOnce() -> Result<T, SchemaError> + Send) -> Result<T, SchemaError> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("strictly-compile".into())
            .stack_size(COMPILER_STACK)
            .spawn_scoped(scope, compile)
            .map_err(|e| SchemaError::too_large("", format!("cannot start the compiler's thread: {e}")))?;
        thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The independent validator for a schema: the `jsonschema` crate, formats checked. Every
/// guarantee strictly states is checked against it (outputs, walks, remote replies), never
/// against strictly's own automaton. (Feature `validate`, on by default.)
#[cfg(feature = "validate")]
pub fn validator(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options().should_validate_formats(true).build(schema).map_err(|e| e.to_string())
}
