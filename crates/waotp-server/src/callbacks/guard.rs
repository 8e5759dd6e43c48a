//! The SSRF guard: callbacks never reach link-local or cloud-metadata addresses, checked on
//! the address actually connected to (names are resolved here, and every answer filtered).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether a callback may connect to `ip`.
pub fn address_allowed(ip: IpAddr, deny_private: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_allowed(v4, deny_private),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4_allowed(v4, deny_private),
            None => v6_allowed(v6, deny_private),
        },
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
        || ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254); // AWS metadata over IPv6
    let private = ip.is_loopback() || (s[0] & 0xfe00) == 0xfc00; // fc00::/7 unique local
    !(always_denied || (deny_private && private))
}

/// A DNS resolver that drops every address the guard refuses; a name with none left fails.
pub struct GuardedResolver {
    pub deny_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let deny_private = self.deny_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| address_allowed(a.ip(), deny_private))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no address callbacks may use").into());
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
