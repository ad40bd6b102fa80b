//! One `strictly serve` process (the release binary) on 127.0.0.1, its RSS, and what it
//! recorded: the embedded audit file or PostgreSQL's `decisions` table.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running replica.
pub struct Replica {
    child: Child,
    pub base: String,
    pub dir: PathBuf,
}

pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

impl Replica {
    /// Spawns `strictly serve` with the example routing config (the local model, the vote by
    /// meaning) in `dir`, over PostgreSQL at `store_url` or the embedded store; waits for
    /// `/readyz` (the model warmed up).
    pub async fn start(dir: &Path, store_url: Option<&str>) -> Replica {
        std::fs::create_dir_all(dir).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_strictly"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routing.example.toml"))
            .env("RUST_LOG", "warn")
            .env_remove("STRICTLY_STORE_URL")
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap());
        if let Some(url) = store_url {
            cmd.env("STRICTLY_STORE_URL", url);
        }
        let mut child = cmd.spawn().expect("spawn strictly serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let Some(base) = line.trim().strip_prefix("listening on ").map(str::to_owned) else {
            let _ = child.wait();
            panic!("strictly serve did not start: {line:?}; {}", std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default());
        };
        assert!(base.starts_with("http://127.0.0.1:"), "the bench only targets loopback: {base}");
        let http = reqwest::Client::new();
        let started = Instant::now();
        while http.get(format!("{base}/readyz")).send().await.map(|r| r.status().as_u16()).ok() != Some(200) {
            assert!(started.elapsed() < Duration::from_secs(120), "{base} never got ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Replica { child, base, dir: dir.to_owned() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The store's commit time from the replica's `/metrics` (`strictly_record_write_seconds`):
    /// writes, mean ms, and the upper bound of the histogram bucket holding the p99, in ms.
    pub async fn commit_time(&self) -> Option<(u64, f64, f64)> {
        let text = reqwest::get(format!("{}/metrics", self.base)).await.ok()?.text().await.ok()?;
        let value = |l: &str| l.rsplit(' ').next()?.parse::<f64>().ok();
        let sum = text.lines().find(|l| l.starts_with("strictly_record_write_seconds_sum")).and_then(value)?;
        let count = text.lines().find(|l| l.starts_with("strictly_record_write_seconds_count")).and_then(value)?;
        let p99 = text
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("strictly_record_write_seconds_bucket{le=\"")?;
                let (le, _) = rest.split_once('"')?;
                Some((le.parse::<f64>().ok()?, value(l)?))
            })
            .find(|(_, cumulative)| *cumulative >= 0.99 * count)
            .map(|(le, _)| le * 1e3)?;
        Some((count as u64, sum / count.max(1.0) * 1e3, p99))
    }

    /// SIGTERM, then the exit code and the panics in its stderr.
    pub fn stop(mut self) -> (Option<i32>, usize) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let status = self.child.wait().unwrap();
        let stderr = std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default();
        (status.code(), stderr.matches("panicked").count())
    }
}

/// Each message id's records, by the path that decided each (examples, model, ...): what a
/// store holds, as the bench reads it.
pub type Records = HashMap<String, Vec<String>>;

/// The records in an embedded store's audit file (each line must be whole JSON).
pub fn embedded_records(dir: &Path) -> Records {
    let audit = std::fs::read_to_string(dir.join("logs/audit.jsonl")).unwrap_or_default();
    let mut out = Records::new();
    for l in audit.lines() {
        let v: Value = serde_json::from_str(l).expect("whole audit lines");
        let path = v["path"].as_str().unwrap_or("?").to_owned();
        out.entry(v["id"].as_str().unwrap_or_default().to_owned()).or_default().push(path);
    }
    out
}

/// The records in PostgreSQL's `decisions` (the bench's own query).
pub async fn postgres_records(db: &tokio_postgres::Client) -> Records {
    let rows = db.query("SELECT message_id, coalesce(path, '?') FROM decisions", &[]).await.unwrap();
    let mut out = Records::new();
    for r in rows {
        out.entry(r.get::<_, String>(0)).or_default().push(r.get(1));
    }
    out
}
