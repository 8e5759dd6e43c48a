//! The SSRF guard: callbacks never reach link-local or cloud-metadata addresses, checked on
//! the address actually connected to (names are resolved here, and every answer filtered).
//!
//! An IPv6 address that embeds an IPv4 address (IPv4-mapped and -compatible, SIIT, NAT64, 6to4,
//! Teredo) is judged by that IPv4 address too: a translator or relay on the path would deliver
//! it there.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether a callback may connect to `ip`.
pub fn address_allowed(ip: IpAddr, deny_private: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_allowed(v4, deny_private),
        IpAddr::V6(v6) => {
            v6_allowed(v6, deny_private) && embedded_v4(v6).into_iter().flatten().all(|v4| v4_allowed(v4, deny_private))
        }
    }
}

/// The IPv4 addresses an IPv6 address stands for, if it has one of the forms that embed one:
///
/// - IPv4-mapped `::ffff:0:0/96` and SIIT's IPv4-translated `::ffff:0:0:0/96`;
/// - IPv4-compatible `::/96` (deprecated), except `::` and `::1`, which are IPv6's own;
/// - NAT64 `64:ff9b::/96` (RFC 6052): the last 32 bits (the local-use `64:ff9b:1::/48` of
///   RFC 8215, whose layout each network chooses, is refused whole: see `v6_allowed`);
/// - 6to4 `2002::/16`: bits 16..48;
/// - Teredo `2001::/32`: the server (bits 32..64) and the client (the last 32 bits, inverted).
pub fn embedded_v4(ip: Ipv6Addr) -> [Option<Ipv4Addr>; 2] {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Some(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    let last = v4(s[6], s[7]);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] => [last, None],
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => [None, None],
        [0, 0, 0, 0, 0, 0, _, _] => [last, None],
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => [last, None],
        [0x2002, hi, lo, ..] => [v4(hi, lo), None],
        [0x2001, 0, server_hi, server_lo, ..] => [v4(server_hi, server_lo), v4(!s[6], !s[7])],
        _ => [None, None],
    }
}

/// IPv4 blocks callbacks may never reach: "this network" and the unspecified address,
/// link-local (169.254.0.0/16: cloud metadata lives here), multicast, broadcast, and Alibaba's
/// metadata address. (The URL pattern of the OpenAPI document is written from this list.)
pub const V4_ALWAYS_DENIED: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),
    (Ipv4Addr::new(169, 254, 0, 0), 16),
    (Ipv4Addr::new(224, 0, 0, 0), 4),
    (Ipv4Addr::new(255, 255, 255, 255), 32),
    (Ipv4Addr::new(100, 100, 100, 200), 32),
];

/// IPv4 blocks refused too with `callback_deny_private`: loopback, the private ranges and
/// carrier-grade NAT.
pub const V4_PRIVATE: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(127, 0, 0, 0), 8),
    (Ipv4Addr::new(10, 0, 0, 0), 8),
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    (Ipv4Addr::new(192, 168, 0, 0), 16),
    (Ipv4Addr::new(100, 64, 0, 0), 10),
];

/// The IPv4 blocks refused under a configuration.
pub fn v4_denied(deny_private: bool) -> impl Iterator<Item = (Ipv4Addr, u8)> {
    V4_ALWAYS_DENIED.iter().chain(if deny_private { V4_PRIVATE } else { &[] }).copied()
}

/// Whether `ip` lies in the block `net`/`len`.
pub fn within(ip: Ipv4Addr, (net, len): (Ipv4Addr, u8)) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn v4_allowed(ip: Ipv4Addr, deny_private: bool) -> bool {
    !v4_denied(deny_private).any(|block| within(ip, block))
}

fn v6_allowed(ip: Ipv6Addr, deny_private: bool) -> bool {
    let s = ip.segments();
    let always_denied = (s[0] & 0xffc0) == 0xfe80               // fe80::/10 link-local
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) // AWS metadata over IPv6
        // The local-use NAT64 prefix (RFC 8215): the IPv4 address may sit at any of RFC 6052's
        // layouts, so which one it stands for cannot be told; callbacks never need it.
        || (s[0], s[1], s[2]) == (0x64, 0xff9b, 1);
    let private = ip.is_loopback() || (s[0] & 0xfe00) == 0xfc00; // fc00::/7 unique local
    !(always_denied || (deny_private && private))
}

/// How names become addresses: the system's resolver, or a table in tests.
pub trait Lookup: fmt::Debug + Send + Sync + 'static {
    fn lookup(&self, host: String) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;
}

/// The system's resolver (tokio's `lookup_host`).
#[derive(Debug)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: String) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.map(|a| a.ip()).collect()) })
    }
}

/// A name that resolves only to addresses the guard refuses. The attempt log tells this
/// apart from a name that does not resolve by finding this error among the causes.
#[derive(Debug)]
pub struct RefusedByPolicy(pub String);

impl fmt::Display for RefusedByPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} resolves to no address callbacks may use", self.0)
    }
}

impl std::error::Error for RefusedByPolicy {}

/// A DNS resolver that drops every address the guard refuses; a name with none left fails
/// with [`RefusedByPolicy`].
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub deny_private: bool,
    pub lookup: Arc<dyn Lookup>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let deny_private = self.deny_private;
        let lookup = self.lookup.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found = lookup.lookup(host.clone()).await?;
            if found.is_empty() {
                return Err(io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address")).into());
            }
            let addrs: Vec<SocketAddr> = found
                .into_iter()
                .filter(|ip| address_allowed(*ip, deny_private))
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(RefusedByPolicy(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str, deny_private: bool) -> bool {
        address_allowed(s.parse().unwrap(), deny_private)
    }

    #[test]
    fn link_local_and_metadata_are_always_refused() {
        for ip in
            ["169.254.169.254", "169.254.0.1", "fe80::1", "::ffff:169.254.169.254", "fd00:ec2::254", "0.0.0.0", "::"]
        {
            assert!(!ok(ip, false), "{ip}");
        }
    }

    #[test]
    fn private_ranges_are_allowed_unless_denied() {
        for ip in ["127.0.0.1", "10.1.2.3", "192.168.1.1", "172.16.0.1", "::1", "fd12::1", "100.64.0.1"] {
            assert!(ok(ip, false), "{ip}");
            assert!(!ok(ip, true), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1", "100.63.255.255", "100.128.0.0", "172.32.0.1"] {
            assert!(ok(ip, true), "{ip}");
        }
    }

    /// Each IPv6 form that embeds an IPv4 address is judged by it: refused when the IPv4
    /// address is, always or with `deny_private`; allowed when it is allowed.
    #[test]
    fn ipv6_forms_embedding_ipv4_are_judged_by_the_ipv4_address() {
        // (form, embedding 169.254.169.254, embedding 10.0.0.1, embedding 93.184.216.34)
        for (form, metadata, private, public) in [
            ("IPv4-mapped", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "::ffff:93.184.216.34"),
            ("IPv4-compatible", "::a9fe:a9fe", "::10.0.0.1", "::5db8:d822"),
            ("SIIT", "::ffff:0:a9fe:a9fe", "::ffff:0:10.0.0.1", "::ffff:0:93.184.216.34"),
            ("NAT64", "64:ff9b::a9fe:a9fe", "64:ff9b::10.0.0.1", "64:ff9b::93.184.216.34"),
            ("6to4", "2002:a9fe:a9fe::1", "2002:a00:1::1", "2002:5db8:d822::1"),
            // The client address inverted in the last 32 bits; the server (bits 32..64) public.
            (
                "Teredo client",
                "2001:0:5db8:d822::5601:5601",
                "2001:0:5db8:d822::f5ff:fffe",
                "2001:0:5db8:d822::a247:27dd",
            ),
            // The server address private or link-local, the client public.
            ("Teredo server", "2001:0:a9fe:a9fe::a247:27dd", "2001:0:a00:1::a247:27dd", "2001:0:5db8:d822::a247:27dd"),
        ] {
            assert!(!ok(metadata, false), "{form}: {metadata}");
            assert!(ok(private, false), "{form}: {private}");
            assert!(!ok(private, true), "{form}: {private} with deny_private");
            assert!(ok(public, true), "{form}: {public}");
        }
    }

    /// The local-use NAT64 prefix is refused whatever it seems to embed, in every layout.
    #[test]
    fn the_local_use_nat64_prefix_is_refused_whole() {
        for ip in ["64:ff9b:1::5db8:d822", "64:ff9b:1:0:a9:fea9:fe00:0", "64:ff9b:1:a9fe:a9:fe00:5db8:d822"] {
            assert!(!ok(ip, false), "{ip}");
        }
        assert!(ok("64:ff9b:2::5db8:d822", true), "only the /48 is refused");
    }

    #[test]
    fn the_embedded_address_is_read_from_the_right_bits() {
        let v4 = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let of = |s: &str| embedded_v4(s.parse().unwrap());
        assert_eq!(of("::ffff:1.2.3.4"), [Some(v4("1.2.3.4")), None]);
        assert_eq!(of("::1.2.3.4"), [Some(v4("1.2.3.4")), None]);
        assert_eq!(of("::ffff:0:1.2.3.4"), [Some(v4("1.2.3.4")), None]);
        assert_eq!(of("64:ff9b::1.2.3.4"), [Some(v4("1.2.3.4")), None]);
        assert_eq!(of("64:ff9b:1:ab::1.2.3.4"), [None, None], "the local-use prefix is refused whole instead");
        assert_eq!(of("2002:0102:0304::"), [Some(v4("1.2.3.4")), None]);
        assert_eq!(of("2001:0:0506:0708::fefd:fcfb"), [Some(v4("5.6.7.8")), Some(v4("1.2.3.4"))]);
        // IPv6's own addresses, and addresses outside these prefixes, embed nothing.
        for ip in ["::", "::1", "2001:db8::1", "2606:2800:220:1::1", "fe80::1", "64:ff9b:2::1", "2001:1::1"] {
            assert_eq!(of(ip), [None, None], "{ip}");
        }
    }

    #[test]
    fn loopback_and_unspecified_stay_ipv6() {
        assert!(ok("::1", false), "::1 is loopback, allowed unless private targets are denied");
        assert!(!ok("::1", true));
        assert!(!ok("::", false), ":: is the unspecified address");
        // ::2 is IPv4-compatible 0.0.0.2, in 0.0.0.0/8.
        assert!(!ok("::2", false));
    }

    /// A table of names, so the resolver is tested without DNS.
    #[derive(Debug)]
    struct Table(Vec<(&'static str, Vec<IpAddr>)>);

    impl Lookup for Table {
        fn lookup(&self, host: String) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
            let found = self.0.iter().find(|(name, _)| *name == host).map(|(_, ips)| ips.clone());
            Box::pin(async move { found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such name")) })
        }
    }

    async fn resolve(names: &[(&'static str, &[&str])], host: &str, deny_private: bool) -> Result<Vec<IpAddr>, String> {
        let table =
            names.iter().map(|(name, ips)| (*name, ips.iter().map(|ip| ip.parse().unwrap()).collect())).collect();
        let resolver = GuardedResolver { deny_private, lookup: Arc::new(Table(table)) };
        match resolver.resolve(host.parse().unwrap()).await {
            Ok(addrs) => Ok(addrs.map(|a| a.ip()).collect()),
            Err(e) => Err(format!("{}{}", if e.is::<RefusedByPolicy>() { "policy: " } else { "" }, e)),
        }
    }

    #[tokio::test]
    async fn names_resolving_to_ipv6_forms_of_refused_ipv4_addresses_are_refused() {
        let names: &[(&str, &[&str])] = &[
            ("compatible.test", &["::169.254.169.254"]),
            ("mapped.test", &["::ffff:169.254.169.254"]),
            ("siit.test", &["::ffff:0:a9fe:a9fe"]),
            ("nat64.test", &["64:ff9b::a9fe:a9fe"]),
            ("nat64-local.test", &["64:ff9b:1::a9fe:a9fe"]),
            ("6to4.test", &["2002:a9fe:a9fe::1"]),
            ("teredo.test", &["2001:0:5db8:d822::5601:5601"]),
            ("private-nat64.test", &["64:ff9b::10.0.0.1"]),
        ];
        for (name, _) in &names[..7] {
            let refused = resolve(names, name, false).await.expect_err(name);
            assert!(refused.starts_with("policy: "), "{name}: {refused}");
        }
        assert!(resolve(names, "private-nat64.test", false).await.is_ok());
        assert!(resolve(names, "private-nat64.test", true).await.unwrap_err().starts_with("policy: "));
        // A name that does not resolve is not a policy refusal.
        assert!(!resolve(names, "missing.test", false).await.unwrap_err().starts_with("policy: "));
    }

    #[tokio::test]
    async fn a_name_resolving_to_a_mix_keeps_only_the_allowed_addresses() {
        let names: &[(&str, &[&str])] = &[(
            "mix.test",
            &[
                "::169.254.169.254",
                "64:ff9b::a9fe:a9fe",
                "2002:a9fe:a9fe::1",
                "169.254.169.254",
                "fe80::1",
                "10.0.0.1",
                "::ffff:10.0.0.2",
                "93.184.216.34",
                "2606:2800:220:1::1",
            ],
        )];
        let kept = resolve(names, "mix.test", false).await.unwrap();
        let expected: Vec<IpAddr> =
            ["10.0.0.1", "::ffff:10.0.0.2", "93.184.216.34", "2606:2800:220:1::1"].map(|ip| ip.parse().unwrap()).into();
        assert_eq!(kept, expected);
        let kept = resolve(names, "mix.test", true).await.unwrap();
        assert_eq!(kept, expected[2..]);
    }

    #[test]
    fn the_v4_blocks_say_what_the_standard_library_says() {
        for ip in (0..=u32::MAX).step_by(65_521).map(Ipv4Addr::from) {
            let o = ip.octets();
            let always = ip.is_link_local()
                || ip.is_unspecified()
                || o[0] == 0
                || ip.is_multicast()
                || ip.is_broadcast()
                || ip == Ipv4Addr::new(100, 100, 100, 200);
            let private = ip.is_loopback() || ip.is_private() || (o[0] == 100 && (64..128).contains(&o[1]));
            assert_eq!(v4_allowed(ip, false), !always, "{ip}");
            assert_eq!(v4_allowed(ip, true), !(always || private), "{ip}");
        }
    }
}
