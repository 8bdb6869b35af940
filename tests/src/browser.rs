//! A headless Chromium driven over the DevTools protocol, for tests of the operators' console.
//! The protocol runs over a pipe (`--remote-debugging-pipe`: requests on the browser's fd 3,
//! answers on fd 4, each a JSON message ended by NUL), so no WebSocket client is needed; a shell
//! hands the browser our stdin and stdout as those descriptors.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long one protocol call or one wait may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// A browser with one page. Killed on drop.
pub struct Browser {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts `chromium-headless-shell` with a fresh profile and a `width`x`height` page.
    pub fn start(width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().expect("a profile directory");
        let bin = crate::tool("chromium-headless-shell");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null"#)
            .arg(bin)
            .args([
                "--remote-debugging-pipe",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                &format!("--user-data-dir={}", profile.path().display()),
                &format!("--window-size={width},{height}"),
                "about:blank",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, messages) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut buf = Vec::new();
                match r.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        buf.pop();
                        if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                            && tx.send(v).is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
        let mut b = Browser {
            child,
            stdin,
            messages,
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("a target").to_owned();
        let attached = b.call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        b.session = attached["sessionId"]
            .as_str()
            .expect("a session")
            .to_owned();
        b.page_call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
        b
    }

    fn send(&mut self, method: &str, params: Value, session: Option<String>) -> Value {
        let v = self.exchange(method, params, session);
        assert!(v.get("error").is_none(), "{method}: {v}");
        v["result"].clone()
    }

    /// One protocol call: the whole answer, an error included.
    fn exchange(&mut self, method: &str, params: Value, session: Option<String>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = Value::String(s);
        }
        let mut bytes = serde_json::to_vec(&msg).expect("json");
        bytes.push(0);
        self.stdin.write_all(&bytes).expect("write to chromium");
        self.stdin.flush().expect("flush");
        let until = Instant::now() + TIMEOUT;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(v) if v["id"] == id => return v,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("{method}: no answer from chromium"),
                Err(RecvTimeoutError::Disconnected) => panic!("{method}: chromium exited"),
            }
        }
    }

    /// A browser-wide call.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, None)
    }

    /// A call to the page.
    pub fn page_call(&mut self, method: &str, params: Value) -> Value {
        let s = self.session.clone();
        self.send(method, params, Some(s))
    }

    /// Opens `url` in the page.
    pub fn goto(&mut self, url: &str) {
        self.page_call("Page.navigate", json!({"url": url}));
    }

    /// The value of `expression` evaluated in the page (as a DevTools console would: the page's
    /// Content-Security-Policy does not apply to it).
    pub fn eval(&mut self, expression: &str) -> Value {
        let r = self.page_call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        r["result"]["value"].clone()
    }

    /// A PNG of the page as it is shown now.
    pub fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine as _;
        let r = self.page_call("Page.captureScreenshot", json!({"format": "png"}));
        base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("image data"))
            .expect("base64")
    }

    /// Waits until `expression` is true in a loaded page.
    pub fn wait_for(&mut self, expression: &str) {
        let until = Instant::now() + TIMEOUT;
        let check = format!("document.readyState === 'complete' && !!({expression})");
        let session = self.session.clone();
        let params = json!({"expression": check, "returnByValue": true, "awaitPromise": true});
        while Instant::now() < until {
            // Asked while the page navigates (a form just sent), the protocol answers with an
            // error: not yet, as for false.
            let v = self.exchange("Runtime.evaluate", params.clone(), Some(session.clone()));
            if v["result"]["result"]["value"] == Value::Bool(true) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let text = self.eval("document.body ? document.body.innerText : ''");
        panic!("waited in vain for {expression}; the page says: {text}");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
