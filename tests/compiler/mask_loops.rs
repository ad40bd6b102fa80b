//! Masks on MaskBench schemas equal a plain trie walk over the grammar's DFA, token by token
//! along each schema's first valid instance: the shortcuts of a state's first mask (subtrees
//! taken whole where their bytes loop the state to itself or keep it alive, runs, string
//! bodies, the guided walk) add no token and lose none.

use std::sync::Arc;

use strictly::automaton::Grammar;
use strictly::constraint::{Constraint, TokenAutomaton};
use strictly::coverage::serializations;
use strictly::schema::{self, CompileOptions};

use crate::common;
use crate::maskbench::records;
use crate::seed_schemas::PlainDfa;

/// Schemas whose first masks walk the most of the trie: many declared keys beside any other
/// key, strings under an unanchored pattern, bounded keys and strings, formats, and the four
/// slowest first masks of `strictly coverage` before live subtrees were taken whole.
const CHOSEN: [&str; 12] = [
    "Github_easy---o42983",
    "Github_hard---o44202",
    "Github_medium---o13694",
    "Github_medium---o45264",
    "Github_hard---o30369",
    "Github_easy---o33942",
    "Github_easy---o9814",
    "Github_medium---o5028",
    "Github_hard---o366",
    "Github_medium---o82331",
    "Github_medium---o61609",
    "Github_hard---o37609",
];

/// Tokens compared per schema (each comparison walks the whole trie without shortcuts).
const TOKENS: usize = 80;

#[test]
fn masks_equal_a_plain_trie_walk_on_a_maskbench_sample() {
    let records = records();
    // The chosen schemas and every 300th of the others.
    let sample = records.iter().enumerate().filter(|(i, r)| CHOSEN.contains(&r.id.as_str()) || i % 300 == 0).map(|(_, r)| r);
    let (mut schemas, mut masks, mut chosen) = (0, 0, Vec::new());
    for record in sample {
        let options = CompileOptions::default();
        let Ok(ir) = schema::compile(&record.schema, &options) else { continue };
        let Ok(grammar) = Grammar::from_ir(&ir, &options, std::time::Instant::now()) else { continue };
        let Some(valid) = record.tests.iter().find(|t| t.valid) else { continue };
        let Some(text) = serializations(&ir, &valid.data).into_iter().find(|s| grammar.matches(s.as_bytes())) else { continue };
        schemas += 1;
        if CHOSEN.contains(&record.id.as_str()) {
            chosen.push(record.id.clone());
        }
        masks += masks_equal_along(&grammar, &text, TOKENS, &record.id).0;
    }
    // A chosen schema whose instance this compiler serialises differently is left out.
    assert!(chosen.len() >= 6, "chosen schemas compared: {chosen:?}");
    assert!(schemas >= 30 && masks >= 1500, "{schemas} schemas, {masks} masks compared");
}

/// String bodies that every string of text keeps alive, though the grammar holds no plain
/// string there: the `.*` of an unanchored pattern, a `patternProperties` key (a product with
/// the declared names), a key that still shares a prefix with a declared name (beside two
/// names, and beside three hundred), and a pattern
/// beside `maxLength` (a product that counts characters), up to and past where the count
/// leaves too little room for the longest token. Their masks take text tokens whole; they
/// still equal the plain walk at each token.
#[test]
fn text_universal_masks_equal_a_plain_trie_walk() {
    let field = |pattern: &str| serde_json::json!({"type": "string", "pattern": pattern});
    let long = "words and more words ".repeat(4);
    let cases = [
        (field("rocket_document"), r#""see the rocket_document here""#.to_string()),
        (field(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}"), r#""at 2024-01-31T12:00:59.123456 UTC""#.to_string()),
        (field("(alpha|beta|gamma)[0-9]+$"), r#""release beta42""#.to_string()),
        (field(r"^v\d+|snapshot"), r#""nightly-snapshot ü ok \"quoted\"""#.to_string()),
        (serde_json::json!({"type": "string", "pattern": "[a-z ]+", "maxLength": 90}), format!("{:?}", long.trim_end())),
        // Counted to `maxLength`: before a name character the last one must be one, after it
        // any text; the product's states carry what text they surely take and the most.
        (
            serde_json::json!({"type": "string", "pattern": "[a-zA-Z0-9_.-]+", "minLength": 3, "maxLength": 40}),
            r#""); (!) ü body—of the table, then more!!""#.to_string(),
        ),
        (
            serde_json::json!({"type": "object", "properties": {"name": {"type": "string"}},
                               "patternProperties": {"after_[create|update]": {"type": "integer"}}}),
            r#"{"name":"x","after_create_hook":1,"xafter_u":2}"#.to_string(),
        ),
        (
            serde_json::json!({"type": "object", "properties": {"name": {"type": "string"}, "names": {"type": "string"}}}),
            r#"{"name":"x","nam":1,"namesake":"y"}"#.to_string(),
        ),
        // Hundreds of declared names beside any other key: the first key's set is too large to
        // search, and the key complement's marked roots take the string plan.
        (
            serde_json::json!({"type": "object", "properties": (0..300).map(|i| (format!("field_{i:03}"), serde_json::json!({"type": "integer"})))
                                                                  .collect::<serde_json::Map<_, _>>()}),
            r#"{"field_007":1,"field_299":6,"field_0079x":2,"fie":3,"zz ü tail":4,"field_00 7":5}"#.to_string(),
        ),
        // `oneOf` branches told apart by their `outputFileName`: each is carved out of the
        // others, so `commentMode` is either one of the words or (in the other branches) any
        // string but them, a pattern product whose states are marked.
        (
            serde_json::json!({"type": "array", "items": {"$ref": "#/$defs/bundle"}, "$defs": {"bundle": {
            "required": ["outputFileName"],
            "properties": {"minify": {"type": "object", "properties": {"enabled": {"type": "boolean"}}}, "outputFileName": {"type": "string"}},
            "oneOf": [
                {"properties": {"outputFileName": {"pattern": "\\.js$"}, "minify": {"properties": {"renameLocals": {"type": "boolean"}}}}},
                {"properties": {"outputFileName": {"pattern": "\\.css$"},
                                "minify": {"properties": {"commentMode": {"enum": ["none", "all", "hacks", "important"]}}}}},
                {"properties": {"outputFileName": {"pattern": "\\.(html|htm)$"}, "minify": {"properties": {"preserveCase": {"type": "boolean"}}}}}
            ]}}}),
            r#"[{"minify":{"enabled":true,"commentMode":"hacks and more ü \"q\"","preserveCase":"no"},"outputFileName":"a.js"}]"#
                .to_string(),
        ),
    ];
    let mut masks = 0;
    for (schema, text) in cases {
        let schema = match schema.get("type") {
            Some(t) if t == "string" => serde_json::json!({"type": "object", "properties": {"a": schema},
                                                          "required": ["a"], "additionalProperties": false}),
            _ => schema,
        };
        let text = if text.starts_with(['{', '[']) { text } else { format!(r#"{{"a":{text}}}"#) };
        let grammar = Grammar::compile(&schema, &CompileOptions::default()).unwrap();
        assert!(grammar.matches(text.as_bytes()), "{schema}: {text}");
        let (compared, mut c) = masks_equal_along(&grammar, &text, usize::MAX, &schema.to_string());
        masks += compared;
        assert!(c.is_accepting().unwrap(), "{schema}: {text} ends the value");
    }
    assert!(masks >= 80, "{masks} masks compared");
}

/// Compares, at each of the first `limit` tokens of `text`, the constraint's mask with a plain
/// walk of the trie over the grammar's DFA, then takes the token; panics at the first mask
/// that differs, naming `label`. Returns how many masks were compared, and the constraint.
fn masks_equal_along(grammar: &Grammar, text: &str, limit: usize, label: &str) -> (usize, Constraint) {
    let tokenizer = common::tokenizer();
    let vocab = tokenizer.vocab().clone();
    let mut c = Constraint::new(Arc::new(TokenAutomaton::new(grammar.clone(), vocab.clone())));
    let mut plain = PlainDfa { walker: grammar.walker() };
    let mut state = plain.walker.start();
    let mut masks = 0;
    for id in tokenizer.encode_plain(text).unwrap().into_iter().take(limit) {
        // Bit sets, not ordered sets: this runs for every mask compared.
        let mut expected = vec![false; vocab.len()];
        vocab.trie().walk(&mut plain, state, |t, _| expected[t as usize] = true);
        let mut got = vec![false; vocab.len()];
        c.mask().unwrap().iter().filter(|&t| Some(t) != vocab.eos()).for_each(|t| got[t as usize] = true);
        let differ: Vec<String> = (0..got.len())
            .filter(|&t| got[t] != expected[t])
            .take(5)
            .map(|t| format!("{}{:?}", if got[t] { "+" } else { "-" }, String::from_utf8_lossy(vocab.token_bytes(t as u32))))
            .collect();
        assert!(differ.is_empty(), "{label}: masks differ after {:?}: {differ:?}", String::from_utf8_lossy(c.bytes()));
        masks += 1;
        c.advance(id).unwrap_or_else(|e| panic!("{label}: the text's token {id}: {e}"));
        for &b in vocab.token_bytes(id) {
            state = plain.walker.step(state, b).unwrap();
        }
    }
    (masks, c)
}
