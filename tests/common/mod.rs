//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use strictly::tokenizer::GgufTokenizer;

/// `../shared` from the project root.
pub fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

/// One thread for candle's quantized matmuls in this test process (the binaries it starts get
/// theirs from [`strictly_command`]), unless `CANDLE_NUM_THREADS` says otherwise. candle's pool has the calling thread spin until
/// its workers finish; the harness runs two tests at once, so on 2 cores a worker is often
/// waiting for a core while its caller spins. A decode test then took 4 to 6 times as long, and
/// its CPU time was mostly spinning (`decode::a_completion_longer_than_the_cap...`: 52-61 s
/// wall, 14 s CPU with two threads; 9-15 s wall, 2.5 s CPU with one, beside other work). The
/// outputs are the same: each output row is one thread's dot products either way.
///
/// Called before the first model or encoder loads (the pool reads the variable once, when it
/// starts). `std::env::set_var` holds std's environment lock, which every `std::env` read in
/// the process also takes.
pub fn one_matmul_thread() {
    static SET: std::sync::Once = std::sync::Once::new();
    SET.call_once(|| {
        if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
            std::env::set_var("CANDLE_NUM_THREADS", "1");
        }
    });
}

/// The `strictly` binary as the tests run it: with one matmul thread, as
/// [`one_matmul_thread`] gives this process, unless `CANDLE_NUM_THREADS` is set.
#[cfg(all(feature = "cli", feature = "local"))]
pub fn strictly_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_strictly"));
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        command.env("CANDLE_NUM_THREADS", "1");
    }
    command
}

/// The default model, resolved once per test binary (fetched on first use).
pub fn model_path() -> PathBuf {
    one_matmul_thread();
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
    one_matmul_thread();
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
    one_matmul_thread();
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

/// The largest difference between two logit vectors, as a share of the first one's largest
/// magnitude.
pub fn relative_gap(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0f32, |m, x| m.max(x.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}
