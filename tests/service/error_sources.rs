//! Errors keep their sources: converted into `strictly::Error`, the chain of `source()` reaches
//! the error behind them (the JSON parser's, the HTTP client's, PostgreSQL's own SQLSTATE), and
//! the message a user sees is the one it always was.

use crate::common;
use common::rt;

use std::time::{Duration, Instant};

use serde_json::json;
use strictly::backend::openai::OpenAiBackend;
use strictly::backend::{Backend, BackendError, OpenAiSettings, SchemaSpec, WireMode};
use strictly::chat::{ChatMessage, Role};
use strictly::store::{PgStore, StoreConfig, StoreError};

use common::pg::Postgres;

/// The first error of type `E` in `err`'s chain of sources, `err` included.
fn find<'a, E: std::error::Error + 'static>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a E> {
    std::iter::successors(Some(err), |&e| e.source()).find_map(|e| e.downcast_ref::<E>())
}

fn spec() -> SchemaSpec {
    SchemaSpec {
        name: "answer".into(),
        schema: json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"], "additionalProperties": false}),
    }
}

fn settings(base: &str, mode: WireMode) -> OpenAiSettings {
    OpenAiSettings {
        base_url: Some(format!("{base}/v1")),
        model: "m".into(),
        mode,
        retries: 0,
        timeout: Duration::from_secs(5),
        ..OpenAiSettings::default()
    }
}

#[test]
fn an_unparsable_reply_keeps_the_json_parsers_error() {
    let backend = OpenAiBackend::new(settings("http://127.0.0.1:9", WireMode::Chat), Some("k".into())).unwrap();
    let body = json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "not json"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    });
    let spec = spec();
    let validator = jsonschema::validator_for(&spec.schema).unwrap();
    let err = backend.interpret(&body, &spec, &validator, Instant::now()).unwrap_err();
    assert!(matches!(err, BackendError::Parse { .. }), "{err:?}");
    assert_eq!(err.kind(), "parse");
    let err = strictly::Error::from(err);
    assert_eq!(err.to_string(), "the output did not parse as JSON: expected ident at line 1 column 2 in \"not json\"");
    let json = find::<serde_json::Error>(&err).expect("the chain reaches serde_json's error");
    assert!(json.is_syntax() && json.line() == 1 && json.column() == 2, "{json:?}");
}

#[test]
fn a_refused_connection_keeps_the_http_clients_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let backend = OpenAiBackend::new(settings(&base, WireMode::Chat), None).unwrap();
    let messages = [ChatMessage { role: Role::User, content: "hi".into() }];
    let err = rt().block_on(backend.complete(&messages, &spec())).unwrap_err();
    let BackendError::Transport { attempts: 1, message, .. } = &err else { panic!("{err:?}") };
    assert!(message.to_lowercase().contains("refused"), "{message}");
    let err = strictly::Error::from(err);
    let http = find::<reqwest::Error>(&err).expect("the chain reaches reqwest's error");
    assert!(http.is_connect(), "{http:?}");
    let io = find::<std::io::Error>(&err).expect("and the socket's");
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn a_failed_query_keeps_postgres_own_error() {
    let pg = Postgres::start("sources");
    rt().block_on(async {
        let config = StoreConfig { url: Some(pg.url()), connect_timeout: Duration::from_secs(3), ..StoreConfig::default() };
        let store = PgStore::connect(&pg.url(), &config).await.unwrap();
        // The table the query reads is gone: the server answers with SQLSTATE 42P01.
        pg.client().await.execute("DROP TABLE decisions", &[]).await.unwrap();
        let err = store.record("some-id").await.unwrap_err();
        assert!(matches!(err, StoreError::Query { .. }), "{err:?}");
        let shown = err.to_string();
        assert!(shown.starts_with("store query failed: db error") && shown.contains("\"decisions\" does not exist"), "{shown}");
        let err = strictly::Error::from(err);
        let db = find::<tokio_postgres::Error>(&err).expect("the chain reaches tokio-postgres's error");
        assert_eq!(db.code(), Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE), "{db:?}");

        // A URL the driver cannot read: its parser's error is the source.
        let err = PgStore::connect("postgres://strictly:pw@127.0.0.1:notaport/db", &config).await.err().expect("a bad URL fails");
        assert!(matches!(err, StoreError::Url { .. }), "{err:?}");
        assert!(find::<tokio_postgres::Error>(&strictly::Error::from(err)).is_some());
    });
}

#[test]
fn a_reply_that_is_not_json_keeps_the_json_parsers_error() {
    // A server that answers every request 200 with a body that is not JSON.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 65536];
            let _ = s.read(&mut buf);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 8\r\nconnection: close\r\n\r\nnot json");
        }
    });
    let backend = OpenAiBackend::new(settings(&base, WireMode::Chat), None).unwrap();
    let messages = [ChatMessage { role: Role::User, content: "hi".into() }];
    let err = rt().block_on(backend.complete(&messages, &spec())).unwrap_err();
    assert!(matches!(err, BackendError::Protocol { .. }), "{err:?}");
    assert!(!err.is_violation(), "a broken reply is the server's fault, not a schema violation");
    let err = strictly::Error::from(err);
    assert_eq!(err.to_string(), "unexpected reply: the reply is not JSON (expected ident at line 1 column 2)");
    let json = find::<serde_json::Error>(&err).expect("the chain reaches serde_json's error");
    assert!(json.is_syntax(), "{json:?}");
}

#[test]
fn gguf_metadata_cut_short_or_not_utf8_keeps_the_cause() {
    let dir = common::temp_dir("sources", "gguf");
    // The GGUF head: magic, version 3, no tensors, one key-value pair, then the key's length.
    let head = |key_len: u64| {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&key_len.to_le_bytes());
        b
    };
    let cut = dir.join("cut.gguf");
    let mut bytes = head(100);
    bytes.extend_from_slice(b"abc");
    std::fs::write(&cut, bytes).unwrap();
    let err = strictly::Error::from(strictly::tokenizer::read_gguf_metadata(&cut).unwrap_err());
    assert!(err.to_string().starts_with("GGUF metadata is malformed: "), "{err}");
    let io = find::<std::io::Error>(&err).expect("the chain reaches the read's error");
    assert_eq!(io.kind(), std::io::ErrorKind::UnexpectedEof);

    let latin = dir.join("latin.gguf");
    let mut bytes = head(2);
    bytes.extend_from_slice(&[0xff, 0xfe]);
    std::fs::write(&latin, bytes).unwrap();
    let err = strictly::Error::from(strictly::tokenizer::read_gguf_metadata(&latin).unwrap_err());
    let utf8 = find::<std::string::FromUtf8Error>(&err).expect("the chain reaches the UTF-8 check's error");
    assert_eq!(utf8.as_bytes(), &[0xff, 0xfe]);
}

#[test]
fn harness_files_keep_the_file_systems_and_parsers_errors() {
    let dir = common::temp_dir("sources", "harness");
    let missing = dir.join("missing.csv");
    let err = strictly::eval::read_rows(&missing).unwrap_err();
    assert!(err.to_string().starts_with(&format!("cannot read {}: ", missing.display())), "{err}");
    let csv = find::<csv::Error>(&err).expect("the chain reaches the CSV reader's error");
    // csv's error holds the file system's without naming it as its source.
    let csv::ErrorKind::Io(io) = csv.kind() else { panic!("{csv:?}") };
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);

    // An A/B run file whose second line is not a row.
    std::fs::write(dir.join("rows-k.jsonl"), b"{\"side\":\n{}\n").unwrap();
    let Err(err) = strictly::ab::Store::open(&dir, "k") else { panic!("a bad line opened") };
    assert!(err.to_string().contains("rows-k.jsonl: line 1: "), "{err}");
    assert!(find::<serde_json::Error>(&err).is_some(), "the chain reaches serde_json's error: {err:?}");
}
