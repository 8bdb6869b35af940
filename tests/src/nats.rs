//! A real nats-server (with JetStream) on a free loopback port, for the duration of a test; and
//! the signature edges put on what they send over NATS, made here independently of the binary
//! (so a test can sign, or forge, a request as a raw NATS client would).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nats-server. Killed on drop.
pub struct Nats {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    conf: PathBuf,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Nats {
    /// Starts a server; `extra` is appended to its config file (e.g. `max_payload: 4096`).
    pub fn start(extra: &str) -> Nats {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("nats.conf");
        let store = dir.path().join("js");
        let mut nats = Nats {
            child: None,
            port: 0,
            conf,
            _dir: dir,
        };
        // A port found free can be taken by a parallel test before this server binds it; then
        // this server exits and another port is tried.
        for _ in 0..5 {
            nats.port = free_port();
            std::fs::write(
                &nats.conf,
                format!(
                    "listen: 127.0.0.1:{}\njetstream {{ store_dir: {:?} }}\n{extra}\n",
                    nats.port,
                    store.display().to_string()
                ),
            )
            .expect("write conf");
            if nats.try_spawn() {
                return nats;
            }
        }
        panic!("nats-server did not start (5 ports tried)");
    }

    fn spawn(&mut self) {
        assert!(
            self.try_spawn(),
            "nats-server did not start again on port {}",
            self.port
        );
    }

    /// Starts the server; true once *this* server listens (its ports file appears), false if it
    /// exited (e.g. the port was taken).
    fn try_spawn(&mut self) -> bool {
        let which = Command::new("sh")
            .args(["-c", "command -v nats-server"])
            .output();
        assert!(
            which.is_ok_and(|o| o.status.success()),
            "nats-server is not installed: run scripts/test (it installs it) or apt-get install nats-server"
        );
        let ports_dir = self._dir.path().join("ports");
        let _ = std::fs::remove_dir_all(&ports_dir);
        std::fs::create_dir_all(&ports_dir).expect("ports dir");
        let mut child = Command::new("nats-server")
            .arg("-c")
            .arg(&self.conf)
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        let ports_file = ports_dir.join(format!("nats-server_{}.ports", child.id()));
        let start = Instant::now();
        loop {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return false;
            }
            if ports_file.exists() && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                self.child = Some(child);
                return true;
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends a signal by name ("STOP" freezes it, "CONT" thaws it).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// A client for the test's own use (fake workers, $SRV queries).
    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url())
            .await
            .expect("connect to nats")
    }

    /// A client logged in as `user` (its inboxes under `_INBOX.<user>`, as the binary's), and
    /// the errors the server sends it (permission violations).
    pub async fn client_as(
        &self,
        user: &str,
        password: &str,
    ) -> (
        async_nats::Client,
        tokio::sync::mpsc::UnboundedReceiver<String>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::new()
            .user_and_password(user.into(), password.into())
            .custom_inbox_prefix(format!("_INBOX.{user}"))
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(e) = event {
                        let _ = tx.send(e.to_string());
                    }
                }
            })
            .connect(self.url())
            .await
            .expect("connect to nats as a user");
        (client, rx)
    }
}

/// The signing keys every edge and worker the harness starts is given (`EDGE_NATS_SIGNING_KEYS`),
/// unless a test passes `--nats-signing-keys` itself.
pub const SIGNING_KEYS: &str = "e2e:ZTJlLXRlc3Qtc2lnbmluZy1rZXktMzItYnl0ZXMtbG9uZyEh";

/// The headers a signature covers, in order (the binary's `nats::signing::SIGNED`).
const SIGNED: [&str; 8] = [
    "Edge-Deadline-Ms",
    "X-Request-Id",
    "Edge-Principal",
    "Edge-Session",
    "Edge-Call-Chain",
    "Edge-Origin",
    "Idempotency-Key",
    "Edge-Client-Addr",
];

/// Signs a request for `subject` with `key` (`id:base64`) as an edge would at `issued_ms`.
pub fn sign_at(key: &str, subject: &str, h: &mut async_nats::HeaderMap, issued_ms: u64) {
    use base64::Engine as _;
    let (id, secret) = key.split_once(':').expect("id:secret");
    let secret = base64::engine::general_purpose::STANDARD
        .decode(secret)
        .expect("base64 secret");
    let mut msg = b"edge-nats-request-v1".to_vec();
    let mut field = |b: &[u8]| {
        msg.extend_from_slice(&u32::try_from(b.len()).unwrap().to_be_bytes());
        msg.extend_from_slice(b);
    };
    field(subject.as_bytes());
    field(id.as_bytes());
    field(issued_ms.to_string().as_bytes());
    for n in SIGNED {
        field(h.get(n).map_or("", |v| v.as_str()).as_bytes());
    }
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret),
        &msg,
    );
    let mac = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.as_ref());
    h.insert("Edge-Auth", format!("{id} {issued_ms} {mac}").as_str());
}

/// Signs a request for `subject` with the harness's key, now.
pub fn sign(subject: &str, h: &mut async_nats::HeaderMap) {
    sign_at(SIGNING_KEYS, subject, h, now_ms());
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap())
        .unwrap()
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Watches `inbox` (a spy's `_INBOX.>` subscription) for `within`: whether the edge published a
/// stream's cancel, and how many stream messages (`Edge-Seq`) the worker still sent after it.
pub async fn messages_after_cancel(
    inbox: &mut async_nats::Subscriber,
    within: Duration,
) -> (bool, usize) {
    use futures_util::StreamExt as _;
    let mut cancelled = false;
    let mut after = 0;
    let until = Instant::now() + within;
    while let Ok(Some(m)) = tokio::time::timeout_at(until.into(), inbox.next()).await {
        if m.subject.ends_with(".cancel") {
            cancelled = true;
        } else if cancelled
            && m.headers
                .as_ref()
                .is_some_and(|h| h.get("Edge-Seq").is_some())
        {
            after += 1;
        }
    }
    (cancelled, after)
}
