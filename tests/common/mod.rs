//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use strictly::tokenizer::GgufTokenizer;

/// `../shared` from the project root.
pub fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

/// The default model, resolved once per test binary (fetched on first use).
pub fn model_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| strictly::model::resolve::resolve(None).unwrap_or_else(|e| panic!("{e}"))).clone()
}

/// The default model's tokenizer, built from its GGUF metadata.
pub fn tokenizer() -> Arc<GgufTokenizer> {
    static TOK: OnceLock<Arc<GgufTokenizer>> = OnceLock::new();
    TOK.get_or_init(|| Arc::new(GgufTokenizer::from_gguf(&model_path()).expect("tokenizer builds"))).clone()
}

/// An empty folder for one test: `strictly-{area}-{name}-{pid}` under the system's temporary
/// folder, emptied first.
pub fn temp_dir(area: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strictly-{area}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The example routing config, `config/routing.example.toml`.
pub fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routing.example.toml")
}

/// A schema file from `grammars/`.
pub fn grammar(name: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("grammars").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("grammar exists")).expect("grammar is JSON")
}

/// The default sentence encoder, resolved and loaded once per test binary (fetched on first use).
#[cfg(feature = "local")]
pub fn encoder() -> Arc<strictly::encoder::SentenceEncoder> {
    static ENC: OnceLock<Arc<strictly::encoder::SentenceEncoder>> = OnceLock::new();
    ENC.get_or_init(|| {
        let dir = strictly::model::resolve::resolve_encoder(None).unwrap_or_else(|e| panic!("{e}"));
        Arc::new(strictly::encoder::SentenceEncoder::load(&dir).expect("the encoder loads"))
    })
    .clone()
}

#[cfg(all(unix, feature = "store"))]
pub mod pg;

#[cfg(all(unix, feature = "serve"))]
pub mod load;

#[cfg(all(unix, feature = "serve"))]
pub mod browser;

/// One multi-threaded runtime (4 workers) per test binary: servers started on it outlive the
/// test that made them. Every service test shares it, so a test whose server is slow to poll
/// does not hold up another's deadline. reqwest is built without a TLS provider of its own (feature `openai`),
/// so ring's is installed first.
#[cfg(feature = "serve")]
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        #[cfg(feature = "openai")]
        strictly::backend::openai::install_crypto_provider();
        tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap()
    })
}

/// The default model, loaded once per test binary (fetched on first use).
#[cfg(feature = "local")]
pub fn model() -> Arc<strictly::model::local::LocalModel> {
    use strictly::model::local::{LoadOptions, LocalModel};
    static MODEL: OnceLock<Arc<LocalModel>> = OnceLock::new();
    MODEL.get_or_init(|| Arc::new(LocalModel::load(&model_path(), &LoadOptions::default()).expect("the model loads"))).clone()
}
