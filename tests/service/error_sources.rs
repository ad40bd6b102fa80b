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
