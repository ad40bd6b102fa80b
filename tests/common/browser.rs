//! Debian's headless Chromium, driven over WebDriver: chromedriver on a free loopback port,
//! a fresh profile in a temporary folder, and both gone when the [`Browser`] is dropped.
//!
//! Missing binaries fail the test with the packages to install (`chromium`,
//! `chromium-driver`): the CI script installs them, so a skip would only hide a broken setup.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder};
use serde_json::json;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver (and the Chromium it starts, in the same process group) and the profile
/// folder: killed and removed on drop, whether the test passed or panicked.
struct Driver {
    child: Child,
    profile: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole process group: chromedriver and every Chromium process it started.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A WebDriver session in a headless Chromium.
pub struct Browser {
    /// The session.
    pub client: Client,
    _driver: Driver,
}

fn require(path: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: the browser tests need Debian's `chromium` and `chromium-driver` \
         packages (apt-get install chromium chromium-driver; .ci/run installs them)"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a session in a headless Chromium
    /// with a fresh profile.
    pub async fn start() -> Browser {
        require(CHROMEDRIVER);
        require(CHROMIUM);
        let profile = std::env::temp_dir().join(format!("strictly-chromium-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&profile).unwrap();
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let driver = Driver { child, profile: profile.clone() };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // chromedriver listens within a second or two; give it at most 20.
        let mut tries = 0;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            tries += 1;
            assert!(tries < 100, "chromedriver did not listen on {addr}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut caps = Capabilities::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://{addr}"))
            .await
            .unwrap_or_else(|e| panic!("cannot open a Chromium session through chromedriver: {e}"));
        Browser { client, _driver: driver }
    }

    /// Ends the session (Chromium exits); chromedriver goes when the value is dropped.
    pub async fn close(self) {
        let Browser { client, _driver } = self;
        let _ = client.close().await;
    }
}
