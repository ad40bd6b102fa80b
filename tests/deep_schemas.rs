//! Deep schemas compile or fail cleanly, never overflow the stack: on the main
//! thread and on a 2 MB worker thread (what a server's pool gives a request).
//!
//! A plain `main` (`harness = false`), so that "the main thread" is the
//! process's own, not a test-harness worker.

use serde_json::{json, Value};
use strictly::automaton::Grammar;
use strictly::schema::{CompileOptions, SchemaErrorKind};

/// `{"type":"array","items":{...}}`, `depth` levels of arrays around a string.
fn nested_arrays(depth: usize) -> Value {
    // Not `json!` around the inner value: it would serialise it again,
    // recursively, at every level.
    let mut schema = json!({"type": "string"});
    for _ in 0..depth {
        let mut level = serde_json::Map::new();
        level.insert("type".into(), json!("array"));
        level.insert("items".into(), schema);
        schema = Value::Object(level);
    }
    schema
}

/// Takes a nested-array schema apart level by level: dropping it whole
/// recurses once per level (serde_json's own drop), which is the test's
/// stack, not the compiler's.
fn dismantle(mut schema: Value) {
    while let Some(inner) = schema.as_object_mut().and_then(|m| m.remove("items")) {
        schema = inner;
    }
}

/// `d0` → `d1` → … → `d{n-1}` → a string, every link a bare `$ref`.
fn ref_chain(n: usize) -> Value {
    let mut defs = serde_json::Map::new();
    for i in 0..n {
        let link = if i + 1 == n { json!({"type": "string", "maxLength": 3}) } else { json!({"$ref": format!("#/$defs/d{}", i + 1)}) };
        defs.insert(format!("d{i}"), link);
    }
    json!({"$defs": defs, "$ref": "#/$defs/d0"})
}

/// `d0` → … → `d{n-1}`, each link an object whose one property refers to the next.
fn property_chain(n: usize) -> Value {
    let mut defs = serde_json::Map::new();
    for i in 0..n {
        let link = if i + 1 == n {
            json!({"type": "integer"})
        } else {
            json!({"type": "object", "properties": {"next": {"$ref": format!("#/$defs/d{}", i + 1)}}, "additionalProperties": false})
        };
        defs.insert(format!("d{i}"), link);
    }
    json!({"$defs": defs, "$ref": "#/$defs/d0"})
}

fn check_all() {
    // A long chain of bare `$ref`s is followed by iteration: it compiles.
    let g = Grammar::compile(&ref_chain(5_000), &CompileOptions::default()).expect("a $ref chain compiles");
    assert!(g.matches(br#""abc""#) && !g.matches(br#""abcd""#));

    // 10,000 nested arrays: refused as too deep, at the pointer where the
    // limit is reached.
    let deep = nested_arrays(10_000);
    let err = Grammar::compile(&deep, &CompileOptions::default()).expect_err("too deep to compile");
    assert!(matches!(err.kind(), SchemaErrorKind::TooLarge { .. }), "{err}");
    assert!(err.pointer().starts_with("/items/items/"), "{}", err.pointer());
    assert!(err.to_string().contains("nest more than"), "{err}");
    dismantle(deep);

    // Within the limit, deep nesting still compiles and means what it says.
    let deep = nested_arrays(100);
    let g = Grammar::compile(&deep, &CompileOptions::default()).expect("100 levels compile");
    let text = format!("{}\"x\"{}", "[".repeat(100), "]".repeat(100));
    assert!(g.matches(text.as_bytes()));
    assert!(!g.matches(format!("{}\"x\"{}", "[".repeat(99), "]".repeat(99)).as_bytes()));

    // A chain of objects 5,000 long nests in the reader: refused cleanly.
    let err = Grammar::compile(&property_chain(5_000), &CompileOptions::default()).expect_err("too deep");
    assert!(matches!(err.kind(), SchemaErrorKind::TooLarge { .. }), "{err}");
    assert!(err.pointer().starts_with("/$defs/d"), "{}", err.pointer());

    // Intersections of two deep recursive schemas nest too: bounded.
    let tree = json!({
        "$defs": {
            "a": {"type": "array", "items": {"$ref": "#/$defs/a"}},
            "b": {"type": "array", "maxItems": 5, "items": {"$ref": "#/$defs/b"}}
        },
        "allOf": [{"$ref": "#/$defs/a"}, {"$ref": "#/$defs/b"}]
    });
    match Grammar::compile(&tree, &CompileOptions::default()) {
        Ok(g) => assert!(g.matches(b"[[]]") && !g.matches(b"[1]")),
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    // A free value nested by option as deep as asked: bounded by the lowering.
    let options = CompileOptions { any_value_depth: 100_000, ..CompileOptions::default() };
    let err = Grammar::compile(&json!({}), &options).expect_err("too deep to lower");
    assert!(matches!(err.kind(), SchemaErrorKind::TooLarge { .. }), "{err}");

    // `enum` values nested deeper than the limit are refused before any
    // recursive comparison.
    let mut value = json!(1);
    for _ in 0..1_000 {
        value = Value::Array(vec![value]);
    }
    let err = Grammar::compile(&json!({"enum": [value]}), &CompileOptions::default()).expect_err("too deep");
    assert!(err.to_string().contains("`enum` holds values nested"), "{err}");
    let mut value = value;
    while let Some(inner) = value.as_array_mut().and_then(Vec::pop) {
        value = inner;
    }
}

fn main() {
    check_all();
    println!("deep schemas on the main thread: ok");
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(check_all)
        .expect("spawn a 2 MB worker")
        .join()
        .expect("deep schemas on a 2 MB worker thread");
    println!("deep schemas on a 2 MB worker thread: ok");
}
