//! The schemas timed: the two seed schemas, then a fixed-stride sample of
//! MaskBench that all three engines accept (outlines probed in a child
//! process, so that a blow-up can be killed).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::engines::{ms, Engines};
use crate::PROBE_ENV;

pub struct Candidate {
    pub id: String,
    pub schema: Value,
}

pub fn seed_schemas() -> Vec<Candidate> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    ["support_classification", "search_products"]
        .iter()
        .map(|name| {
            let path = root.join(format!("grammars/{name}.schema.json"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Candidate { id: format!("seed/{name}"), schema: serde_json::from_str(&text).expect("seed schema JSON") }
        })
        .collect()
}

pub fn maskbench_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/maskbench/maskbench-dev.jsonl.gz")
}

/// Builds the outlines index in a child process (this binary, re-run with
/// `PROBE_ENV`), so that a build that blows up can be killed. Returns the
/// child's build time in ms, or why it was refused.
pub fn probe_outlines(schema: &Value, timeout: Duration) -> Result<f64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .env(PROBE_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(schema.to_string().as_bytes()).map_err(|e| e.to_string())?;
    }
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            let mut out = String::new();
            use std::io::Read;
            child.stdout.take().expect("stdout").read_to_string(&mut out).map_err(|e| e.to_string())?;
            let out = out.trim();
            return match out.strip_prefix("ok ") {
                Some(t) if status.success() => t.parse().map_err(|_| out.to_string()),
                _ => Err(out.strip_prefix("err ").unwrap_or(out).chars().take(160).collect()),
            };
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("index build over {} s", timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The child side of [`probe_outlines`].
pub fn probe_child() -> ! {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).expect("schema on stdin");
    let schema: Value = serde_json::from_str(&text).expect("schema JSON");
    let e = Engines::load();
    let t0 = Instant::now();
    match e.outlines(&schema) {
        Ok(index) => {
            black_box(index);
            println!("ok {}", ms(t0.elapsed()));
            std::process::exit(0)
        }
        Err(err) => {
            println!("err {}", err.replace('\n', " "));
            std::process::exit(1)
        }
    }
}

/// Walks the MaskBench file with a fixed stride and keeps the first `want`
/// schemas that all three engines accept. Also returns the refusals.
pub fn sample(e: &Engines, want: usize, stride: usize, timeout: Duration) -> (Vec<Candidate>, Vec<(String, &'static str, String)>) {
    let records = strictly::coverage::read_records(&maskbench_path()).expect("MaskBench file");
    let mut kept = Vec::new();
    let mut refused = Vec::new();
    for record in records.iter().step_by(stride) {
        if kept.len() == want {
            break;
        }
        let verdict = if !record.schema.is_object() {
            Err(("all", "not an object schema".to_string()))
        } else if let Err(why) = e.strictly(&record.schema) {
            Err(("strictly", why))
        } else if let Err(why) = e.llguidance(&record.schema) {
            Err(("llguidance", why))
        } else if let Err(why) = probe_outlines(&record.schema, timeout) {
            Err(("outlines-core", why))
        } else {
            Ok(())
        };
        match verdict {
            Ok(()) => kept.push(Candidate { id: record.id.clone(), schema: record.schema.clone() }),
            Err((engine, why)) => {
                let why: String = why.replace('\n', " ").chars().take(160).collect();
                eprintln!("  refused {} by {engine}: {why}", record.id);
                refused.push((record.id.clone(), engine, why));
            }
        }
    }
    (kept, refused)
}
