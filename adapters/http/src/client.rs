//! Who the client is: its address (for rate limits), seen through trusted
//! proxies only, and whether it reached us over HTTPS (for HSTS).

use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipnet::IpNet;
use warp::http::HeaderMap;
use warp::Filter;

/// The TCP peer of the connection a request came on, put on each request by
/// the server loop ([`crate::serve`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAddr(pub(crate) SocketAddr);

/// The TCP peer of the request: from the server loop, or from warp's own
/// test requests.
pub(crate) fn peer() -> impl Filter<Extract = (Option<SocketAddr>,), Error = Infallible> + Copy {
    warp::ext::optional::<PeerAddr>()
        .and(warp::addr::remote())
        .map(|ours: Option<PeerAddr>, warps: Option<SocketAddr>| ours.map(|p| p.0).or(warps))
}

/// An address or a CIDR block, e.g. `10.0.0.1` or `10.0.0.0/8`, on `ipnet`.
/// An IPv4 block also holds the IPv4-mapped IPv6 forms of its addresses
/// (`::ffff:10.0.0.1`), which is how a dual-stack socket reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpBlock(IpNet);

impl IpBlock {
    /// Parses `ADDR` or `ADDR/PREFIX`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        text.parse::<IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
            .ok()
            .map(Self)
    }

    /// Whether `ip` lies in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.contains(&ip)
    }
}

impl fmt::Display for IpBlock {
    /// A whole-address block as the address, others as `ADDR/PREFIX`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.prefix_len() == self.0.max_prefix_len() {
            self.0.addr().fmt(f)
        } else {
            self.0.fmt(f)
        }
    }
}

/// The proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed
/// (`TRUSTED_PROXIES`). Empty by default: headers from clients are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpBlock>);

impl TrustedProxies {
    /// The accepted form, for messages.
    pub const FORM: &'static str =
        "a comma-separated list of IP addresses or CIDR blocks (e.g. 10.0.0.0/8, ::1)";

    /// From a comma-separated list of addresses and CIDR blocks; `None` if
    /// an entry does not parse.
    pub fn parse(list: &str) -> Option<Self> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(IpBlock::parse)
            .collect::<Option<Vec<_>>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|b| b.contains(ip))
    }

    /// The client's address: the TCP peer, or, when the peer is a trusted
    /// proxy, the nearest address in `X-Forwarded-For` that is not one.
    pub fn client_ip(&self, remote: Option<SocketAddr>, headers: &HeaderMap) -> IpAddr {
        let peer = remote.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        hops.into_iter()
            .rev()
            .find(|ip| !self.trusts(*ip))
            .unwrap_or(peer)
    }

    /// Whether a trusted proxy says the client used HTTPS.
    pub fn is_https(&self, remote: Option<SocketAddr>, forwarded_proto: Option<&str>) -> bool {
        remote.is_some_and(|a| self.trusts(a.ip()))
            && forwarded_proto
                .and_then(|p| p.split(',').next_back())
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
    }
}

impl fmt::Display for TrustedProxies {
    /// The list in the form it is read from.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, block) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            block.fmt(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().expect("header"));
        h
    }

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().expect("ip"), 40000))
    }

    #[test]
    fn blocks_match_their_addresses() {
        let b = IpBlock::parse("10.0.0.0/8").expect("block");
        assert!(b.contains("10.200.3.4".parse().expect("ip")));
        assert!(!b.contains("11.0.0.1".parse().expect("ip")));
        assert!(IpBlock::parse("::1")
            .expect("v6")
            .contains("::1".parse().expect("ip")));
        assert!(IpBlock::parse("127.0.0.1")
            .expect("v4")
            .contains("::ffff:127.0.0.1".parse().expect("mapped")));
        assert!(IpBlock::parse("10.0.0.0/33").is_none());
        assert!(IpBlock::parse("nope").is_none());
        assert!(
            IpBlock::parse("10.0.0.1/8").is_some(),
            "host bits are allowed"
        );
    }

    #[test]
    fn the_list_writes_itself_as_it_is_read() {
        let list =
            TrustedProxies::parse(" 10.0.0.0/8 ,::1, 192.168.1.7/32, fd00::/8,").expect("list");
        assert_eq!(list.to_string(), "10.0.0.0/8, ::1, 192.168.1.7, fd00::/8");
        assert_eq!(TrustedProxies::parse(&list.to_string()), Some(list));
        assert_eq!(TrustedProxies::parse("").expect("empty").to_string(), "");
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(peer("10.0.0.5"), &headers("1.2.3.4")),
            "10.0.0.5".parse::<IpAddr>().expect("ip")
        );
        let lb = TrustedProxies::parse("10.0.0.0/8").expect("list");
        assert_eq!(
            lb.client_ip(peer("10.0.0.5"), &headers("1.2.3.4")),
            "1.2.3.4".parse::<IpAddr>().expect("ip")
        );
        // A client cannot spoof past the proxy: the rightmost untrusted hop wins.
        assert_eq!(
            lb.client_ip(peer("10.0.0.5"), &headers("6.6.6.6, 1.2.3.4, 10.0.0.9")),
            "1.2.3.4".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(
            lb.client_ip(peer("8.8.8.8"), &headers("1.2.3.4")),
            "8.8.8.8".parse::<IpAddr>().expect("ip")
        );
        assert!(lb.is_https(peer("10.0.0.5"), Some("https")));
        assert!(!lb.is_https(peer("8.8.8.8"), Some("https")));
        assert!(!none.is_https(peer("10.0.0.5"), Some("https")));
    }
}
