//! A throwaway PostgreSQL cluster for the store tests: `initdb` in a temporary directory, the
//! server on a free loopback port with its socket in that directory, removed on drop (pass or
//! fail). As root, `initdb` and `pg_ctl` run as the `postgres` user (PostgreSQL refuses root).
//!
//! Local (socket) connections are trusted; TCP connections need the password (SCRAM), so a
//! wrong password is a real authentication failure.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The superuser's name and password in every test cluster.
pub const USER: &str = "strictly";
pub const PASSWORD: &str = "test-password-9f3k";

/// A running (or stopped) test cluster.
pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
}

/// The directory holding `initdb` and `pg_ctl`: from `PATH`, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian's layout).
fn bin_dir() -> PathBuf {
    if let Ok(path) = std::env::var("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return dir;
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (Debian: apt-get install postgresql; .ci/run does it)")
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().expect("no /usr/lib/postgresql/*/bin/initdb").1
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Postgres {
    /// Creates and starts a cluster named `name` (part of its directory's name).
    pub fn start(name: &str) -> Postgres {
        let as_postgres = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
        let dir = std::env::temp_dir().join(format!("strictly-pg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pg = Postgres { dir, bin: bin_dir(), as_postgres, port: free_port() };
        if as_postgres {
            let out = Command::new("id").args(["-u", "postgres"]).output().unwrap();
            assert!(out.status.success(), "no `postgres` user to run the cluster as");
            let uid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
            let gid: u32 = {
                let out = Command::new("id").args(["-g", "postgres"]).output().unwrap();
                String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
            };
            std::os::unix::fs::chown(&pg.dir, Some(uid), Some(gid)).unwrap();
        }
        let pwfile = pg.dir.join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if as_postgres {
            std::os::unix::fs::chown(&pwfile, Some(std::fs::metadata(&pg.dir).unwrap().uid()), None).unwrap();
        }
        pg.run(
            "initdb",
            &[
                "-D",
                pg.data().to_str().unwrap(),
                "-U",
                USER,
                "--pwfile",
                pwfile.to_str().unwrap(),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        pg.start_server();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The directory (holds the socket and the server's log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(tool);
        let out = if self.as_postgres {
            Command::new("runuser").args(["-u", "postgres", "--"]).arg(&exe).args(args).output()
        } else {
            Command::new(&exe).args(args).output()
        }
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub fn start_server(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=100", self.port, self.dir.display());
        self.run(
            "pg_ctl",
            &["-D", self.data().to_str().unwrap(), "-l", self.dir.join("log").to_str().unwrap(), "-o", &options, "-w", "-t", "60", "start"],
        );
    }

    /// Stops the server (fast: open connections are closed).
    pub fn stop_server(&self) {
        self.run("pg_ctl", &["-D", self.data().to_str().unwrap(), "-m", "fast", "-w", "stop"]);
    }

    /// The URL over TCP with the right password.
    pub fn url(&self) -> String {
        self.url_with(PASSWORD)
    }

    /// The URL over TCP with `password`.
    pub fn url_with(&self, password: &str) -> String {
        format!("postgres://{USER}:{password}@127.0.0.1:{}/postgres", self.port)
    }

    /// A connection of the test's own (tokio-postgres, the driver beside the code under test;
    /// the SQL is the test's), for checking what the store wrote.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls).await.expect("the test connects");
        tokio::spawn(conn);
        client
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        if data.join("postmaster.pid").exists() {
            let exe = self.bin.join("pg_ctl");
            let args = ["-D", data.to_str().unwrap_or_default(), "-m", "immediate", "-w", "stop"];
            let _ = if self.as_postgres {
                Command::new("runuser").args(["-u", "postgres", "--"]).arg(&exe).args(args).output()
            } else {
                Command::new(&exe).args(args).output()
            };
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
