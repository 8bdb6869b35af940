//! A browser-like HTTP client of the operators' console on the admin listener: form posts,
//! the session cookie, the Origin header, as a browser sends them.

use crate::Edge;

/// One answer: status, headers (lower-case names), body.
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    /// The page.
    pub body: String,
}

impl Answer {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of the first hidden field named `name` on the page.
    pub fn field(&self, name: &str) -> String {
        let needle = format!(r#"name="{name}" value=""#);
        let at = self
            .body
            .find(&needle)
            .unwrap_or_else(|| panic!("a {name} field: {}", self.body));
        let rest = &self.body[at + needle.len()..];
        rest[..rest.find('"').expect("a closing quote")].to_owned()
    }

    /// The values of every field named `name`, in page order.
    pub fn fields(&self, name: &str) -> Vec<String> {
        let needle = format!(r#"name="{name}" value=""#);
        self.body
            .match_indices(&needle)
            .map(|(at, _)| {
                let rest = &self.body[at + needle.len()..];
                rest[..rest.find('"').expect("a closing quote")].to_owned()
            })
            .collect()
    }
}

/// A request to the admin listener: `cookie` is the session id, `origin` the Origin header (none
/// when `None`), `form` the urlencoded body of a POST.
pub async fn send(
    edge: &Edge,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
    form: &[(&str, &str)],
) -> Answer {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let host = edge.admin.to_string();
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n");
    if let Some(c) = cookie {
        head.push_str(&format!(
            // A browser sends the host's other cookies too: the console must pick its own.
            "cookie: theme=dark; edge_console_{}={c}\r\n",
            edge.admin.port()
        ));
    }
    if let Some(o) = origin {
        head.push_str(&format!("origin: {o}\r\n"));
    }
    if method == "POST" {
        head.push_str("content-type: application/x-www-form-urlencoded\r\n");
    }
    head.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    let mut tcp = tokio::net::TcpStream::connect(edge.admin)
        .await
        .expect("connect to the admin listener");
    tcp.write_all(head.as_bytes()).await.expect("write");
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.expect("read");
    let (head, body) = out.split_once("\r\n\r\n").expect("http response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// Percent-encodes a form value (or a query's).
pub fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// This listener's own Origin.
pub fn origin(edge: &Edge) -> String {
    format!("http://{}", edge.admin)
}

/// Logs in with `credential`; the session id.
pub async fn log_in(edge: &Edge, credential: &str) -> String {
    let o = origin(edge);
    let a = send(
        edge,
        "POST",
        "/console/login",
        None,
        Some(&o),
        &[("credential", credential)],
    )
    .await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(a.header("location"), Some("/console"));
    let name = format!("edge_console_{}=", edge.admin.port());
    let set = a.header("set-cookie").expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(set.contains(attr), "{set}");
    }
    set.split(';')
        .next()
        .and_then(|c| c.strip_prefix(&name))
        .expect("the session cookie")
        .to_owned()
}
