//! The client's address: the TCP peer, unless the peer is a trusted proxy (in production the ALB's
//! subnets), in which case the right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
//! The left-most entries are whatever the client wrote, so they are never believed.

use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use ipnet::IpNet;
use tower::{Layer, Service};

/// The TCP peer of a connection (the load balancer, in production), set by the server on every
/// request.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// The address a request is attributed to (rate limits, logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Networks whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses CIDRs (`10.0.0.0/8`) or single addresses.
    pub fn parse(items: &[String]) -> Result<Self, String> {
        items
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                let s = s.trim();
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("trusted proxy {s:?} is not a CIDR or an IP address"))
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client address for a peer and its `X-Forwarded-For` values (in header order).
pub fn resolve<'a>(
    peer: IpAddr,
    forwarded: impl Iterator<Item = &'a str>,
    trusted: &TrustedProxies,
) -> IpAddr {
    let peer = canonical(peer);
    if !trusted.trusts(peer) {
        return peer;
    }
    let entries: Vec<&str> = forwarded
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut last = peer;
    for entry in entries.iter().rev() {
        // An entry that is not an address was not written by a proxy we trust: stop there.
        let Ok(ip) = entry.parse::<IpAddr>().map(canonical) else {
            break;
        };
        if !trusted.trusts(ip) {
            return ip;
        }
        last = ip;
    }
    last
}

/// Adds [`ClientAddr`] to every request.
#[derive(Clone)]
pub struct ClientAddrLayer {
    trusted: Arc<TrustedProxies>,
}

impl ClientAddrLayer {
    /// Believes `X-Forwarded-For` only from `trusted` peers.
    pub fn layer(trusted: TrustedProxies) -> Self {
        ClientAddrLayer {
            trusted: Arc::new(trusted),
        }
    }
}

impl<S> Layer<S> for ClientAddrLayer {
    type Service = ClientAddrService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ClientAddrService {
            inner,
            trusted: Arc::clone(&self.trusted),
        }
    }
}

/// The middleware.
#[derive(Clone)]
pub struct ClientAddrService<S> {
    inner: S,
    trusted: Arc<TrustedProxies>,
}

impl<S: Service<Request>> Service<Request> for ClientAddrService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        if let Some(PeerAddr(peer)) = req.extensions().get::<PeerAddr>().copied() {
            let values = req
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok());
            let addr = resolve(peer.ip(), values, &self.trusted);
            req.extensions_mut().insert(ClientAddr(addr));
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_are_the_client() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        assert_eq!(
            resolve(ip("203.0.113.9"), ["1.2.3.4"].into_iter(), &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn right_most_untrusted_entry_behind_trusted_proxies() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8".into(), "192.168.1.1".into()]).unwrap();
        // The client wrote "6.6.6.6"; the ALB appended the real address.
        let got = resolve(
            ip("10.0.1.2"),
            ["6.6.6.6, 198.51.100.7"].into_iter(),
            &trusted,
        );
        assert_eq!(got, ip("198.51.100.7"));
        // Several proxies, split over two header lines.
        let got = resolve(
            ip("10.0.1.2"),
            ["6.6.6.6, 198.51.100.7", "192.168.1.1"].into_iter(),
            &trusted,
        );
        assert_eq!(got, ip("198.51.100.7"));
        // Garbage left of the proxies' entries is never reached; garbage right of them stops trust.
        let got = resolve(
            ip("10.0.1.2"),
            ["not-an-ip, 198.51.100.7"].into_iter(),
            &trusted,
        );
        assert_eq!(got, ip("198.51.100.7"));
        let got = resolve(ip("10.0.1.2"), ["198.51.100.7, junk"].into_iter(), &trusted);
        assert_eq!(got, ip("10.0.1.2"));
        // Nothing forwarded: the proxy itself.
        assert_eq!(
            resolve(ip("10.0.1.2"), std::iter::empty(), &trusted),
            ip("10.0.1.2")
        );
        // IPv4-mapped IPv6 peers are matched as IPv4.
        assert_eq!(
            resolve(
                ip("::ffff:10.0.1.2"),
                ["198.51.100.7"].into_iter(),
                &trusted
            ),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn bad_cidrs_are_refused() {
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["alb".into()]).is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use std::net::Ipv4Addr;

        /// An address outside 10.0.0.0/8 (the trusted network below).
        fn outside() -> impl Strategy<Value = IpAddr> {
            (11u8..=223, any::<[u8; 3]>())
                .prop_map(|(a, [b, c, d])| IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
        }

        fn inside() -> impl Strategy<Value = IpAddr> {
            any::<[u8; 3]>().prop_map(|[b, c, d]| IpAddr::V4(Ipv4Addr::new(10, b, c, d)))
        }

        proptest! {
            #[test]
            fn any_header_resolves_to_an_address(
                values in proptest::collection::vec(".{0,64}", 0..4),
                peer in inside(),
            ) {
                let trusted = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
                let _ = resolve(peer, values.iter().map(String::as_str), &trusted);
            }

            #[test]
            fn the_right_most_untrusted_hop_is_the_client(
                spoofed in proptest::collection::vec(outside(), 0..4),
                client in outside(),
                proxies in proptest::collection::vec(inside(), 0..4),
                peer in inside(),
                split in any::<bool>(),
            ) {
                let trusted = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
                let hops: Vec<String> = spoofed.iter().chain([&client]).chain(&proxies)
                    .map(ToString::to_string).collect();
                // One header or one per hop: the same list.
                let joined = hops.join(", ");
                let got = if split {
                    resolve(peer, hops.iter().map(String::as_str), &trusted)
                } else {
                    resolve(peer, [joined.as_str()].into_iter(), &trusted)
                };
                prop_assert_eq!(got, client);
                // An untrusted peer is the client, whatever it claims.
                prop_assert_eq!(resolve(client, [joined.as_str()].into_iter(), &trusted), client);
            }
        }
    }
}
