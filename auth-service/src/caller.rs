//! Who is calling: the client address the throttles count, as the TCP peer or, behind a trusted
//! proxy, from `x-forwarded-for`.
//!
//! When the TCP peer is inside `--trusted-proxies`, the client is the right-most address of
//! `x-forwarded-for` that is not itself a trusted proxy (each proxy appends the address it
//! received the call from, so entries left of the first untrusted one could have been written by
//! the client and are ignored). Otherwise the header is ignored: anyone can send it.
//!
//! Throttles key IPv6 clients by their /64 ([`ClientAddr::throttle_key`]): one host usually owns
//! a whole /64, so counting per /128 would let it rotate addresses for free.

use std::{fmt, net::IpAddr, str::FromStr};

use ipnet::IpNet;
use tonic::Request;

/// The address a call is attributed to (`None` when the transport has no peer address, as on
/// a Unix socket; such calls share one throttle key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    /// The key the throttles count this client under: the address, or its /64 for IPv6
    /// (IPv4-mapped IPv6 addresses count as the IPv4 address).
    pub fn throttle_key(&self) -> String {
        match self.0.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => {
                let net = ipnet::Ipv6Net::new(v6, 64).expect("64 is a valid IPv6 prefix");
                net.trunc().to_string()
            }
            None => "unknown".into(),
        }
    }
}

impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ip) => write!(f, "{ip}"),
            None => f.write_str("unknown"),
        }
    }
}

/// The networks whose `x-forwarded-for` is believed (`--trusted-proxies`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Proxies in `networks`.
    pub fn new(networks: Vec<IpNet>) -> Self {
        TrustedProxies(networks)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client address of `request`.
    pub fn client<T>(&self, request: &Request<T>) -> ClientAddr {
        let peer = request.remote_addr().map(|a| a.ip());
        match peer {
            Some(ip) if self.trusts(ip) => ClientAddr(Some(self.forwarded_client(request, ip))),
            _ => ClientAddr(peer),
        }
    }

    /// The right-most untrusted `x-forwarded-for` entry (every entry of every header line, in
    /// order); the proxy itself when the header is missing or unreadable, the left-most entry
    /// when every hop is trusted.
    fn forwarded_client<T>(&self, request: &Request<T>, proxy: IpAddr) -> IpAddr {
        let mut hops = Vec::new();
        for value in request.metadata().get_all("x-forwarded-for") {
            let Ok(value) = value.to_str() else {
                return proxy;
            };
            for entry in value.split(',') {
                match entry.trim().parse::<IpAddr>() {
                    Ok(ip) => hops.push(ip),
                    Err(_) => return proxy,
                }
            }
        }
        let leftmost = hops.first().copied().unwrap_or(proxy);
        hops.into_iter()
            .rev()
            .find(|ip| !self.trusts(*ip))
            .unwrap_or(leftmost)
    }
}

/// Parses one `--trusted-proxies` entry: a CIDR (`10.0.0.0/8`) or a single address.
pub fn parse_network(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    IpNet::from_str(s)
        .or_else(|_| IpAddr::from_str(s).map(IpNet::from))
        .map_err(|_| format!("{s:?} is not an address or CIDR network (e.g. 10.0.0.0/8)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(peer: &str, forwarded: &[&str]) -> Request<()> {
        let mut request = Request::new(());
        for value in forwarded {
            request
                .metadata_mut()
                .append("x-forwarded-for", value.parse().expect("metadata"));
        }
        let peer: std::net::SocketAddr = peer.parse().expect("socket addr");
        request
            .extensions_mut()
            .insert(tonic::transport::server::TcpConnectInfo {
                local_addr: None,
                remote_addr: Some(peer),
            });
        request
    }

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(
            list.iter()
                .map(|s| parse_network(s).expect("net"))
                .collect(),
        )
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    #[test]
    fn the_header_is_ignored_unless_the_peer_is_a_trusted_proxy() {
        let none = TrustedProxies::default();
        let r = request("198.51.100.7:1234", &["203.0.113.9"]);
        assert_eq!(none.client(&r).0, ip("198.51.100.7"));
        let other = proxies(&["10.0.0.0/8"]);
        assert_eq!(other.client(&r).0, ip("198.51.100.7"));
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "192.0.2.1"]);
        // The client forged the first entry; the proxies appended the rest.
        let r = request(
            "10.0.0.5:443",
            &["1.2.3.4, 203.0.113.9", "192.0.2.1, 10.0.0.7"],
        );
        assert_eq!(trusted.client(&r).0, ip("203.0.113.9"));
        let only_proxies = request("10.0.0.5:443", &["10.1.1.1"]);
        assert_eq!(trusted.client(&only_proxies).0, ip("10.1.1.1"));
        let garbage = request("10.0.0.5:443", &["not-an-ip"]);
        assert_eq!(trusted.client(&garbage).0, ip("10.0.0.5"));
        let missing = request("10.0.0.5:443", &[]);
        assert_eq!(trusted.client(&missing).0, ip("10.0.0.5"));
    }

    #[test]
    fn ipv6_clients_are_counted_per_slash_64_and_mapped_ipv4_as_ipv4() {
        let a = ClientAddr(ip("2001:db8:1:2:aaaa::1"));
        let b = ClientAddr(ip("2001:db8:1:2:bbbb::2"));
        let c = ClientAddr(ip("2001:db8:1:3::1"));
        assert_eq!(a.throttle_key(), b.throttle_key());
        assert_ne!(a.throttle_key(), c.throttle_key());
        assert_eq!(a.throttle_key(), "2001:db8:1:2::/64");
        assert_eq!(
            ClientAddr(ip("::ffff:192.0.2.1")).throttle_key(),
            "192.0.2.1"
        );
    }

    #[test]
    fn networks_parse_as_cidrs_or_single_addresses_and_garbage_is_explained() {
        assert_eq!(parse_network("10.0.0.0/8").expect("cidr").prefix_len(), 8);
        assert_eq!(parse_network("192.0.2.1").expect("ip").prefix_len(), 32);
        assert!(parse_network("nope")
            .expect_err("bad")
            .contains("not an address"));
    }
}
