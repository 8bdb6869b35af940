//! A small HTTPS client over tokio-rustls and hyper that trusts one CA, for tests and benchmarks.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject as _;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A response, fully read.
#[derive(Debug)]
pub struct Response {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Response {
    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Connects to one server, trusting one CA.
#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    h2: Arc<rustls::ClientConfig>,
}

/// One open connection (HTTP/1.1 or HTTP/2, by ALPN).
pub enum Conn {
    /// HTTP/1.1.
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    /// HTTP/2.
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

fn config(ca: &Path, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).expect("read CA") {
        roots.add(cert.expect("CA cert")).expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut c = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // Full handshakes every time: a resumed session reports the certificate of the first one.
    c.resumption = rustls::client::Resumption::disabled();
    Arc::new(c)
}

impl Client {
    /// A client of `addr` trusting the PEM CA at `ca`.
    pub fn new(ca: &Path, addr: SocketAddr) -> Client {
        Client {
            addr,
            tls: config(ca, &[b"http/1.1"]),
            h2: config(ca, &[b"h2"]),
        }
    }

    /// A TLS stream to the server, handshake done, as "localhost".
    pub async fn tls(&self, h2: bool) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let cfg = if h2 {
            Arc::clone(&self.h2)
        } else {
            Arc::clone(&self.tls)
        };
        let name = ServerName::try_from("localhost").expect("name");
        TlsConnector::from(cfg).connect(name, tcp).await
    }

    /// The leaf certificate (DER) a new handshake presents.
    pub async fn peer_cert(&self) -> Vec<u8> {
        let tls = self.tls(false).await.expect("handshake");
        tls.get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .unwrap_or_default()
    }

    /// Opens a connection.
    pub async fn connect(&self, h2: bool) -> std::io::Result<Conn> {
        let tls = self.tls(h2).await?;
        let negotiated_h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(tls);
        if negotiated_h2 {
            let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(std::io::Error::other)?;
            tokio::spawn(conn);
            Ok(Conn::H2(send))
        } else {
            let (send, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(std::io::Error::other)?;
            tokio::spawn(conn);
            Ok(Conn::H1(send))
        }
    }

    /// One request on a new HTTP/1.1 connection.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Response {
        let mut conn = self.connect(false).await.expect("connect");
        conn.send(method, path, headers, body.into())
            .await
            .expect("request")
    }

    /// POSTs JSON to a Connect path, with an optional bearer token.
    pub async fn call(&self, path: &str, token: Option<&str>, json: serde_json::Value) -> Response {
        self.call_with(path, token, &[], json).await
    }

    /// [`Client::call`] with more headers (an `Idempotency-Key`, an `X-Forwarded-For`).
    pub async fn call_with(
        &self,
        path: &str,
        token: Option<&str>,
        extra: &[(&str, &str)],
        json: serde_json::Value,
    ) -> Response {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        headers.extend_from_slice(extra);
        self.request(
            Method::POST,
            path,
            &headers,
            serde_json::to_vec(&json).expect("json"),
        )
        .await
    }

    /// GET a path.
    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path, &[], Bytes::new()).await
    }
}

impl Conn {
    /// Sends one request and reads the whole response.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Response, hyper::Error> {
        let mut req = Request::builder().method(method).uri(path);
        if matches!(self, Conn::H1(_)) {
            req = req.header("host", "localhost");
        } else {
            req = req.uri(format!("https://localhost{path}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body)).expect("request");
        let res = match self {
            Conn::H1(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
            Conn::H2(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
        };
        let (parts, body) = res.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}
