//! Test support: start the real `edge` binary on free ports with a temporary data directory, and
//! talk to it over real TLS (HTTP/1.1 or HTTP/2).

// Test support: a failure here must fail the test loudly, so panicking is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod bench;
pub mod browser;
pub mod client;
pub mod cluster;
pub mod console_http;
pub mod layout;
pub mod load;
pub mod nats;
pub mod scenarios;
pub mod sse;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use client::{Client, Response};

/// The `edge` binary under test: `$EDGE_BIN`, else next to the test executable's target dir.
pub fn edge_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("EDGE_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/edge
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = profile_dir.join("edge");
    assert!(
        bin.is_file(),
        "edge binary not found at {}; build it first (`cargo build -p edge`, as scripts/test does) or set EDGE_BIN",
        bin.display()
    );
    refuse_stale(&bin);
    bin
}

/// Panics if a source the binary is built from is newer than the binary: a plain `cargo test`
/// after an edit would otherwise test the old code.
fn refuse_stale(bin: &Path) {
    let built = std::fs::metadata(bin)
        .and_then(|m| m.modified())
        .expect("binary mtime");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut stack: Vec<PathBuf> = [
        "edge/src",
        "edge/Cargo.toml",
        "handlers/src",
        "handlers/data",
        "handlers/Cargo.toml",
        "proto/proto",
        "proto/src",
        "proto/build.rs",
        "proto/Cargo.toml",
        "Cargo.lock",
    ]
    .iter()
    .map(|p| root.join(p))
    .collect();
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if meta.modified().is_ok_and(|m| m > built) {
            panic!(
                "{} is newer than the edge binary {}: it would test old code. Build it first \
                 (`cargo build -p edge`, as scripts/test does)",
                path.display(),
                bin.display()
            );
        }
    }
}

/// Lines of output kept per process.
const MAX_LOG_LINES: usize = 100_000;

/// A running edge process. Killed on drop.
pub struct Edge {
    child: Option<Child>,
    /// The HTTPS address.
    pub https: SocketAddr,
    /// The admin address.
    pub admin: SocketAddr,
    /// The data directory (kept across restarts).
    pub data_dir: PathBuf,
    _tmp: Option<Arc<tempfile::TempDir>>,
    tmp_shared: Arc<tempfile::TempDir>,
    args: Vec<String>,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Edge {
    /// Starts edge with a fresh data directory and `extra` flags.
    pub fn start(extra: &[&str]) -> Edge {
        let tmp = Arc::new(tempfile::tempdir().expect("tempdir"));
        let data_dir = tmp.path().join("data");
        Edge::spawn(
            tmp,
            data_dir,
            extra.iter().map(|s| (*s).to_owned()).collect(),
        )
    }

    /// Starts `edge worker` with a fresh data directory and `extra` flags (e.g. `--nats`,
    /// `--services`); returns once it serves.
    pub fn start_worker(extra: &[&str]) -> Edge {
        let tmp = Arc::new(tempfile::tempdir().expect("tempdir"));
        let data_dir = tmp.path().join("data");
        let mut args = vec!["worker".to_owned()];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Edge::spawn(tmp, data_dir, args)
    }

    /// Starts edge with files limited to `blocks` 512-byte blocks (SIGXFSZ ignored), so a write
    /// past the limit fails as it does on a full disk.
    pub fn start_with_file_limit(blocks: u64, extra: &[&str]) -> Edge {
        let tmp = Arc::new(tempfile::tempdir().expect("tempdir"));
        let data_dir = tmp.path().join("data");
        let mut args = vec![format!("@ulimit-f={blocks}")];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Edge::spawn(tmp, data_dir, args)
    }

    fn spawn(tmp: Arc<tempfile::TempDir>, data_dir: PathBuf, args: Vec<String>) -> Edge {
        let limit = args
            .first()
            .and_then(|a| a.strip_prefix("@ulimit-f="))
            .map(str::to_owned);
        let args: Vec<String> = args
            .into_iter()
            .filter(|a| !a.starts_with("@ulimit-f="))
            .collect();
        let mut cmd = match &limit {
            Some(blocks) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!(
                        "trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\""
                    ))
                    .arg(edge_bin());
                c
            }
            None => Command::new(edge_bin()),
        };
        let mut child = cmd
            .args(&args)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .arg("--data-dir")
            .arg(&data_dir)
            .env_remove("EDGE_CONFIG")
            // Every edge and worker signs what it sends over NATS and answers only what is
            // signed, as in production; a test that wants otherwise passes the flag.
            .env("EDGE_NATS_SIGNING_KEYS", nats::SIGNING_KEYS)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn edge");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            let mut started = false;
            let none = SocketAddr::from(([0, 0, 0, 0], 0));
            // A worker logs its admin address before it is ready, and serves no HTTPS.
            let mut worker_admin = none;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !started && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    let addr = |k: &str| v[k].as_str().and_then(|s| s.parse::<SocketAddr>().ok());
                    if v["message"] == "admin listening"
                        && let Some(a) = addr("admin")
                    {
                        worker_admin = a;
                    } else if v["message"] == "worker ready" {
                        started = true;
                        let _ = tx.send((none, worker_admin));
                    } else if v["message"] == "listening"
                        && let (Some(h), Some(a)) = (addr("https"), addr("admin"))
                    {
                        started = true;
                        let _ = tx.send((h, a));
                    }
                }
                let mut logs = sink.lock().expect("logs");
                // Under load (benchmarks) keep a bounded window, not every access line.
                if logs.len() < MAX_LOG_LINES {
                    logs.push(line);
                }
            }
        });
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("logs").push(line);
            }
        });
        let (https, admin) = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addrs) => addrs,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "edge did not start; output:\n{}",
                    logs.lock().expect("logs").join("\n")
                );
            }
        };
        Edge {
            child: Some(child),
            https,
            admin,
            data_dir,
            _tmp: None,
            tmp_shared: tmp,
            args,
            logs,
        }
    }

    /// Stops (SIGKILL) and starts again on the same data directory.
    pub fn restart(mut self) -> Edge {
        self.kill();
        let tmp = Arc::clone(&self.tmp_shared);
        Edge::spawn(tmp, self.data_dir.clone(), self.args.clone())
    }

    /// Stops (SIGKILL) and starts again on the same data directory with other flags.
    pub fn restart_with(mut self, extra: &[&str]) -> Edge {
        self.kill();
        let tmp = Arc::clone(&self.tmp_shared);
        let args = extra.iter().map(|s| (*s).to_owned()).collect();
        Edge::spawn(tmp, self.data_dir.clone(), args)
    }

    /// The development CA the server generated.
    pub fn ca(&self) -> PathBuf {
        self.data_dir.join("tls").join("ca.pem")
    }

    /// A client that trusts this server's CA.
    pub fn client(&self) -> Client {
        Client::new(&self.ca(), self.https)
    }

    /// Everything the process printed so far.
    pub fn logs(&self) -> String {
        self.logs.lock().expect("logs").join("\n")
    }

    /// GETs a path on the admin listener (plain HTTP on loopback) as JSON.
    pub async fn admin_json(&self, path: &str) -> serde_json::Value {
        serde_json::from_str(&self.admin_text(path).await).expect("admin JSON")
    }

    /// Sends `head` (request line and headers, without the blank line) and `body` to the admin
    /// listener: (status, body).
    pub async fn admin_raw(&self, head: &str, body: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut tcp = tokio::net::TcpStream::connect(self.admin)
            .await
            .expect("admin connect");
        let req = format!(
            "{head}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        tcp.write_all(req.as_bytes()).await.expect("admin write");
        let mut out = String::new();
        tcp.read_to_string(&mut out).await.expect("admin read");
        let (head, body) = out.split_once("\r\n\r\n").expect("http response");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status");
        (status, body.to_owned())
    }

    /// The value of an unlabelled metric from `/metrics` (0 when absent).
    pub async fn gauge(&self, name: &str) -> f64 {
        let text = self.admin_text("/metrics").await;
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(' '))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0.0)
    }

    /// GETs a path on the admin listener; the body of a 200.
    pub async fn admin_text(&self, path: &str) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut tcp = tokio::net::TcpStream::connect(self.admin)
            .await
            .expect("admin connect");
        let req = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
        tcp.write_all(req.as_bytes()).await.expect("admin write");
        let mut out = String::new();
        tcp.read_to_string(&mut out).await.expect("admin read");
        let (head, body) = out.split_once("\r\n\r\n").expect("http response");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        body.to_owned()
    }

    /// A service key made with `edge keys create` against this running edge (its redb file is
    /// held, so the command goes through the admin listener): the key from stdout's last line.
    pub fn service_key(&self, name: &str, scopes: &str) -> String {
        let admin = self.admin.to_string();
        let data_dir = self.data_dir.to_str().expect("utf-8 path");
        let (code, out, err) = run_edge(&[
            "keys",
            "create",
            "--data-dir",
            data_dir,
            "--admin-listen",
            &admin,
            "--name",
            name,
            "--scope",
            scopes,
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("held by a running edge"), "{err}");
        let key = out.lines().last().expect("a key").to_owned();
        assert!(key.starts_with("edge_"), "{out}");
        key
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Resident memory of the process, in KiB (Linux).
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Sends a signal by name ("TERM", "INT").
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A service key made with `edge keys create` straight into the JetStream store at `nats_url`.
pub fn jetstream_service_key(nats_url: &str, name: &str, scopes: &str) -> String {
    let (code, out, err) = run_edge(&[
        "keys",
        "create",
        "--nats",
        nats_url,
        "--store",
        "jetstream",
        "--name",
        name,
        "--scope",
        scopes,
    ]);
    assert_eq!(code, 0, "{err}");
    out.lines().last().expect("a key").to_owned()
}

/// A tool that `scripts/tools` installs under `target/tools` (e.g. `api/bin/schemathesis`), or
/// one on the PATH (`chromium-headless-shell`); panics saying how to install it.
pub fn tool(name: &str) -> PathBuf {
    let local = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/tools")
        .join(name);
    if local.is_file() {
        return local;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!("{name} is not installed; run scripts/tools (scripts/test does) and rerun")
    })
}

/// Runs `edge` with `args` to completion: (exit code, stdout, stderr).
pub fn run_edge(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(edge_bin())
        .args(args)
        .env_remove("EDGE_CONFIG")
        .output()
        .expect("run edge");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Polls `check` every 50 ms until it holds; fails the test, saying `what`, after `within`.
/// What tests wait on instead of sleeping.
pub async fn eventually(
    within: std::time::Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> bool,
) {
    let deadline = std::time::Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not within {within:?}: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
