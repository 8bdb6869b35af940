//! A real nats-server (with JetStream) on a free loopback port, for the duration of a test.

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
        let port = free_port();
        let conf = dir.path().join("nats.conf");
        let store = dir.path().join("js");
        std::fs::write(
            &conf,
            format!(
                "listen: 127.0.0.1:{port}\njetstream {{ store_dir: {:?} }}\n{extra}\n",
                store.display().to_string()
            ),
        )
        .expect("write conf");
        let mut nats = Nats {
            child: None,
            port,
            conf,
            _dir: dir,
        };
        nats.spawn();
        nats
    }

    fn spawn(&mut self) {
        let which = Command::new("sh")
            .args(["-c", "command -v nats-server"])
            .output();
        assert!(
            which.is_ok_and(|o| o.status.success()),
            "nats-server is not installed: run scripts/test (it installs it) or apt-get install nats-server"
        );
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nats-server did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}
