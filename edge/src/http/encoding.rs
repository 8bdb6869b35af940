//! gzip for whole bodies: requests with `Content-Encoding: gzip` are inflated under the body
//! limit (the inflated size counts, so a compression bomb is a 413, never memory), and replies
//! above a threshold are deflated when the client accepts gzip. Streams (SSE) are never
//! compressed: a proxy would buffer them, and each event must reach the client at once.
//!
//! Bodies here are whole and bounded (at most the body limit), so plain synchronous flate2 is
//! enough: there is no stream to interleave with.

use std::io::{Read as _, Write as _};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use handlers::Status;
use http::{HeaderMap, HeaderValue, header};

/// Replies smaller than this go out as they are: below it gzip saves a few bytes at most, and
/// most unary replies (a state Get, a balance) are far smaller, so they pay nothing.
pub const MIN_COMPRESS_BYTES: usize = 1024;

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

/// The body's encoding from `Content-Encoding` (and, for streaming calls, Connect's
/// `Connect-Content-Encoding`); anything but gzip and identity is `unimplemented`, as Connect
/// says, with the encodings this server takes in `Accept-Encoding`.
pub fn request_encoding(headers: &HeaderMap, stream: bool) -> Result<Encoding, Status> {
    let value = headers.get(header::CONTENT_ENCODING).or_else(|| {
        stream
            .then(|| headers.get("connect-content-encoding"))
            .flatten()
    });
    match value.map(HeaderValue::as_bytes) {
        None => Ok(Encoding::Identity),
        Some(v) if v.eq_ignore_ascii_case(b"identity") => Ok(Encoding::Identity),
        Some(v) if v.eq_ignore_ascii_case(b"gzip") => Ok(Encoding::Gzip),
        Some(_) => Err(Status::unimplemented(
            "request Content-Encoding must be gzip or identity",
        )),
    }
}

/// The body as sent, inflated if it is gzip: at most `limit` bytes after inflating.
pub fn decode(body: Bytes, encoding: Encoding, limit: usize) -> Result<Bytes, Status> {
    match encoding {
        Encoding::Identity => Ok(body),
        Encoding::Gzip => {
            let mut out = Vec::with_capacity((body.len() * 4).min(limit));
            let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
            // Every member: a multi-member body is valid gzip, and stopping after the first
            // would let the edge see less than a proxy in front of it saw.
            flate2::read::MultiGzDecoder::new(&body[..])
                .take(cap)
                .read_to_end(&mut out)
                .map_err(|_| Status::invalid_argument("the gzip request body does not inflate"))?;
            if out.len() > limit {
                return Err(Status::payload_too_large(format!(
                    "request body is larger than {limit} bytes once inflated"
                )));
            }
            Ok(Bytes::from(out))
        }
    }
}

/// Whether `Accept-Encoding` allows gzip: a `gzip` entry decides by its weight (`q=0` refuses),
/// else a `*` entry does, else no.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let (mut gzip, mut any) = (None, None);
    for item in headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let allowed = !parts.any(|p| {
            let p = p.trim();
            let weight = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q="));
            weight
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        if coding.eq_ignore_ascii_case("gzip") {
            gzip = Some(allowed);
        } else if coding == "*" {
            any = Some(allowed);
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// gzip at level 1: most of JSON's redundancy for a fraction of the CPU of higher levels (a
/// replica's cores are shared by every player).
pub fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 3),
        flate2::Compression::fast(),
    );
    enc.write_all(bytes).ok()?;
    enc.finish().ok()
}

/// A whole reply with `content_type`, gzip-compressed when the client accepts it and it is large
/// enough to gain.
pub fn reply(request: &HeaderMap, content_type: HeaderValue, bytes: Bytes) -> Response {
    let large = bytes.len() >= MIN_COMPRESS_BYTES;
    let packed = if large && accepts_gzip(request) {
        gzip(&bytes).filter(|z| z.len() < bytes.len())
    } else {
        None
    };
    let mut res = match packed {
        Some(z) => {
            let mut res = Response::new(Body::from(z));
            res.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            res
        }
        None => Response::new(Body::from(bytes)),
    };
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    if large {
        // Caches must keep the two forms apart.
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn encodings_of_requests() {
        let enc = |h: &HeaderMap, stream| request_encoding(h, stream).unwrap();
        assert_eq!(enc(&headers(&[]), false), Encoding::Identity);
        let gz = headers(&[("content-encoding", "GZIP")]);
        assert_eq!(enc(&gz, false), Encoding::Gzip);
        let br = headers(&[("content-encoding", "br")]);
        assert_eq!(
            request_encoding(&br, false).unwrap_err().code(),
            handlers::Code::Unimplemented
        );
        let connect = headers(&[("connect-content-encoding", "gzip")]);
        assert_eq!(enc(&connect, true), Encoding::Gzip);
        assert_eq!(enc(&connect, false), Encoding::Identity);
    }

    #[test]
    fn inflating_is_bounded_and_checked() {
        let json = br#"{"key":"save.slot1"}"#;
        let z = gzip(json).unwrap();
        assert_eq!(
            decode(Bytes::from(z.clone()), Encoding::Gzip, 100).unwrap(),
            &json[..]
        );
        // Exactly at the limit passes; one over is 413.
        assert!(decode(Bytes::from(z.clone()), Encoding::Gzip, json.len()).is_ok());
        let over = decode(Bytes::from(z), Encoding::Gzip, json.len() - 1).unwrap_err();
        assert_eq!(over.code(), handlers::Code::ResourceExhausted);
        // A bomb: 64 MiB of zeros in a few KiB stops at the limit.
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 64 << 20]).unwrap();
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 128 * 1024, "{}", bomb.len());
        let e = decode(Bytes::from(bomb), Encoding::Gzip, 256 * 1024).unwrap_err();
        assert!(e.message().contains("once inflated"), "{}", e.message());
        let bad = decode(Bytes::from_static(b"not gzip"), Encoding::Gzip, 100).unwrap_err();
        assert_eq!(bad.code(), handlers::Code::InvalidArgument);
        // Two members are both read; junk after a member is refused, not ignored.
        let mut two = gzip(b"{\"a\":").unwrap();
        two.extend(gzip(b"1}").unwrap());
        assert_eq!(
            decode(Bytes::from(two), Encoding::Gzip, 100).unwrap(),
            &b"{\"a\":1}"[..]
        );
        let mut junk = gzip(json).unwrap();
        junk.extend_from_slice(b"trailing junk");
        assert!(decode(Bytes::from(junk), Encoding::Gzip, 100).is_err());
    }

    #[test]
    fn accept_encoding() {
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "gzip, deflate, br"
        )])));
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "br;q=1.0, gzip;q=0.8"
        )])));
        assert!(accepts_gzip(&headers(&[("accept-encoding", "*")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[(
            "accept-encoding",
            "gzip;Q=0, *"
        )])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "*;q=0")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "identity")])));
        assert!(!accepts_gzip(&headers(&[])));
    }

    #[test]
    fn only_large_replies_are_compressed() {
        let accept = headers(&[("accept-encoding", "gzip")]);
        let ct = HeaderValue::from_static("application/json");
        let small = reply(&accept, ct.clone(), Bytes::from_static(b"{}"));
        assert!(small.headers().get(header::CONTENT_ENCODING).is_none());
        assert!(small.headers().get(header::VARY).is_none());
        let big = Bytes::from(format!("[{}]", vec!["\"hero\""; 400].join(",")));
        let res = reply(&accept, ct.clone(), big.clone());
        assert_eq!(res.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(res.headers()[header::VARY], "accept-encoding");
        let plain = reply(&HeaderMap::new(), ct, big);
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(plain.headers()[header::VARY], "accept-encoding");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_accept_encoding_is_read(v in "[ -~]{0,80}") {
                let mut h = HeaderMap::new();
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(header::ACCEPT_ENCODING, v);
                }
                let _ = accepts_gzip(&h);
            }

            #[test]
            fn gzip_round_trips_and_garbage_is_refused(
                body in proptest::collection::vec(any::<u8>(), 0..4096),
                junk in proptest::collection::vec(any::<u8>(), 0..64),
            ) {
                let z = gzip(&body).unwrap();
                prop_assert_eq!(decode(Bytes::from(z), Encoding::Gzip, 4096).unwrap(), body);
                let _ = decode(Bytes::from(junk), Encoding::Gzip, 4096);
            }
        }
    }
}
