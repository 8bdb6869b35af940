//! One log event per request (method, path, status, latency, request id) and its metrics, as a
//! Layer + Service with its own future (no box per request).
//! Cheaper than a span per request at INFO: the per-request span is DEBUG (enable it with
//! `--log edge=debug,info` to tie handler logs to request ids). Server errors (5xx) are always
//! logged, even with the access log off.
//! With JSON logs the line is formatted here, straight into the log writer's buffer, in the very
//! JSON tracing-subscriber writes for it (same keys, same order; a test holds the two equal):
//! through tracing and its JSON layer the line cost a third of a state Get's CPU.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Instant, SystemTime};

use axum::extract::Request;
use http::{HeaderValue, Method, Uri};
use tower::{Layer, Service};
use tracing::Span;

/// The target of the access log's lines (this module's path, as tracing names it).
const TARGET: &str = "edge::layers::access_log";

/// Adds [`AccessLog`] around a service.
#[derive(Debug, Clone, Copy)]
pub struct AccessLogLayer {
    every_request: bool,
}

impl AccessLogLayer {
    /// `every_request`: log successes too, not only server errors.
    pub fn layer(every_request: bool) -> Self {
        AccessLogLayer { every_request }
    }
}

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AccessLog {
            inner,
            every_request: self.every_request,
        }
    }
}

/// The middleware.
#[derive(Debug, Clone)]
pub struct AccessLog<S> {
    inner: S,
    every_request: bool,
}

impl<S, B> Service<Request> for AccessLog<S>
where
    S: Service<Request, Response = http::Response<B>>,
    S::Future: Unpin,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = Logged<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let start = Instant::now();
        let method = req.method().clone();
        // Clones of shared buffers, not copies: most requests never log them.
        let uri = req.uri().clone();
        let id = req
            .headers()
            .get(&crate::layers::request_id::REQUEST_ID)
            .cloned();
        let traced = crate::trace::enabled();
        let span = if traced {
            // Named by its route, never the raw path; a client's traceparent is its parent.
            crate::trace::request_span(
                &method,
                || crate::stats::route_label(uri.path()),
                req.headers()
                    .get("traceparent")
                    .and_then(|v| v.to_str().ok()),
            )
        } else {
            tracing::debug_span!("request", method = %method, path = %uri.path(), request_id = %id_str(&id))
        };
        // The whole request runs in its span, the access log line included.
        let inner = span.in_scope(|| self.inner.call(req));
        Logged {
            inner,
            // The trace span is the exporter's alone; the debug span shows in tracing's line.
            own_line: traced || span.is_disabled(),
            span,
            request: Some(Seen {
                start,
                method,
                uri,
                id,
                every_request: self.every_request,
            }),
        }
    }
}

fn id_str(id: &Option<HeaderValue>) -> &str {
    id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// What the line needs of the request.
struct Seen {
    start: Instant,
    method: Method,
    uri: Uri,
    id: Option<HeaderValue>,
    every_request: bool,
}

/// The response future: polls the inner one in the request's span, then logs and counts.
pub struct Logged<F> {
    inner: F,
    span: Span,
    /// The line may skip tracing (JSON logs, no span of tracing's to show in it).
    own_line: bool,
    request: Option<Seen>,
}

impl<F, B, E> Future for Logged<F>
where
    F: Future<Output = Result<http::Response<B>, E>> + Unpin,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let _entered = this.span.enter();
        let result = ready!(Pin::new(&mut this.inner).poll(cx));
        if let (Ok(res), Some(seen)) = (&result, this.request.take()) {
            seen.log(res.status().as_u16(), &this.span, this.own_line);
        }
        Poll::Ready(result)
    }
}

impl Seen {
    fn log(self, status: u16, span: &Span, own_line: bool) {
        let elapsed = self.start.elapsed();
        let method = &self.method;
        let path = self.uri.path();
        crate::stats::http_request(path, status, elapsed);
        crate::trace::record_status(span, status);
        let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let request_id = id_str(&self.id);
        if status >= 500 {
            let trace_id = crate::trace::trace_id(span);
            tracing::warn!(%method, %path, status, latency_us, %request_id, trace_id, "request failed");
        } else if self.every_request {
            let trace_id = crate::trace::trace_id(span);
            match crate::log_lines::json_sink() {
                Some(sink) if own_line && tracing::enabled!(tracing::Level::INFO) => {
                    sink.line(|out| {
                        let line = Line {
                            method: method.as_str(),
                            path,
                            status,
                            latency_us,
                            request_id,
                            trace_id: &trace_id,
                        };
                        line.write(out, SystemTime::now());
                    });
                }
                _ => {
                    tracing::info!(%method, %path, status, latency_us, %request_id, trace_id, "request")
                }
            }
        }
    }
}

/// An access log line's fields.
struct Line<'a> {
    method: &'a str,
    path: &'a str,
    status: u16,
    latency_us: u64,
    request_id: &'a str,
    trace_id: &'a str,
}

impl Line<'_> {
    /// Appends the line as tracing-subscriber's JSON layer writes it (`flatten_event`, no span),
    /// `\n` included.
    fn write(&self, out: &mut Vec<u8>, now: SystemTime) {
        let mut n = itoa::Buffer::new();
        out.extend_from_slice(b"{\"timestamp\":\"");
        timestamp(out, now);
        out.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"request\",\"method\":\"");
        escaped(out, self.method);
        out.extend_from_slice(b"\",\"path\":\"");
        escaped(out, self.path);
        out.extend_from_slice(b"\",\"status\":");
        out.extend_from_slice(n.format(self.status).as_bytes());
        out.extend_from_slice(b",\"latency_us\":");
        out.extend_from_slice(n.format(self.latency_us).as_bytes());
        out.extend_from_slice(b",\"request_id\":\"");
        escaped(out, self.request_id);
        out.extend_from_slice(b"\",\"trace_id\":\"");
        escaped(out, self.trace_id);
        out.extend_from_slice(b"\",\"target\":\"");
        out.extend_from_slice(TARGET.as_bytes());
        out.extend_from_slice(b"\"}\n");
    }
}

/// A JSON string's contents, escaped as serde_json escapes them.
fn escaped(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            0..=0x1f => 0,
            _ => continue,
        };
        out.extend_from_slice(&bytes[from..i]);
        if short == 0 {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(&[b'\\', short]);
        }
        from = i + 1;
    }
    out.extend_from_slice(&bytes[from..]);
}

thread_local! {
    /// The last second formatted on this thread and its `YYYY-MM-DDTHH:MM:SS`: the date is worked
    /// out once a second, not per line.
    static SECOND: std::cell::Cell<(u64, [u8; 19])> = const { std::cell::Cell::new((u64::MAX, [0; 19])) };
}

/// `now` in UTC as tracing-subscriber writes it: `2026-12-08T01:36:13.123456Z`.
fn timestamp(out: &mut Vec<u8>, now: SystemTime) {
    let since = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != secs {
        text = civil(secs);
        SECOND.set((secs, text));
    }
    out.extend_from_slice(&text);
    let micros = since.subsec_micros();
    let mut digits = [b'.', b'0', b'0', b'0', b'0', b'0', b'0', b'Z'];
    let mut n = itoa::Buffer::new();
    let m = n.format(micros).as_bytes();
    digits[7 - m.len()..7].copy_from_slice(m);
    out.extend_from_slice(&digits);
}

/// `YYYY-MM-DDTHH:MM:SS` of seconds since the epoch (UTC; years past 9999 keep four digits).
fn civil(secs: u64) -> [u8; 19] {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Days to a civil date (H. Hinnant's algorithm, the epoch shifted to 0000-03-01).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = (yoe + era * 400 + u64::from(month <= 2)) % 10_000;
    let mut t = *b"0000-00-00T00:00:00";
    let mut put = |at: usize, width: usize, mut v: u64| {
        for i in (at..at + width).rev() {
            t[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, rem / 3600);
    put(14, 2, rem / 60 % 60);
    put(17, 2, rem % 60);
    t
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The line as tracing-subscriber's JSON layer writes it, configured as telemetry does.
    fn through_tracing(line: &Line<'_>) -> String {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(move || writer.clone())
            .finish();
        let (method, path, status, latency_us, request_id, trace_id) = (
            line.method,
            line.path,
            line.status,
            line.latency_us,
            line.request_id,
            line.trace_id,
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: TARGET, %method, %path, status, latency_us, %request_id, trace_id, "request");
        });
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    fn ours(line: &Line<'_>, now: SystemTime) -> String {
        let mut out = Vec::new();
        line.write(&mut out, now);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_line_is_the_json_tracing_writes() {
        let id = "req-\"quoted\"\\back\tslash\u{1}";
        for line in [
            Line {
                method: "POST",
                path: "/aicore.state.v1.StateService/Get",
                status: 200,
                latency_us: 123,
                request_id: "0b6c3f5e-7d3b-4c1e-9a55-2f1f4c9a1e77",
                trace_id: "",
            },
            Line {
                method: "GET",
                path: "/v1/caf\u{e9}/\"x\"",
                status: 404,
                latency_us: u64::MAX,
                request_id: id,
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
            },
        ] {
            let theirs = through_tracing(&line);
            let now = SystemTime::now();
            let mine = ours(&line, now);
            // Everything after the timestamp is byte for byte the same.
            let rest = |s: &str| s[s.find("\",\"level\"").unwrap()..].to_owned();
            assert_eq!(rest(&mine), rest(&theirs));
            assert!(mine.starts_with("{\"timestamp\":\""));
            let parsed: serde_json::Value = serde_json::from_str(&mine).unwrap();
            assert_eq!(parsed["request_id"], line.request_id);
            assert_eq!(parsed["path"], line.path);
        }
    }

    #[test]
    fn timestamps_read_as_tracing_writes_them() {
        let at = |secs: u64, micros: u64| {
            let mut out = Vec::new();
            timestamp(
                &mut out,
                SystemTime::UNIX_EPOCH + Duration::from_micros(secs * 1_000_000 + micros),
            );
            String::from_utf8(out).unwrap()
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(946_684_800, 7), "2000-01-01T00:00:00.000007Z");
        assert_eq!(at(1_709_251_199, 999_999), "2024-02-29T23:59:59.999999Z");
        assert_eq!(at(1_796_693_773, 123_456), "2026-12-08T01:36:13.123456Z");
        // The cached second, then the next one.
        assert_eq!(at(1_796_693_773, 5), "2026-12-08T01:36:13.000005Z");
        assert_eq!(at(1_796_693_774, 5), "2026-12-08T01:36:14.000005Z");
        // The current time, against tracing-subscriber's own clock formatting within a second.
        let now = at(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            0,
        );
        assert_eq!(now.len(), "1970-01-01T00:00:00.000000Z".len());
    }
}
