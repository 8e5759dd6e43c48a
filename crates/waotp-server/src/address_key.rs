//! One client address as waotp counts it: an IPv4 address, or an IPv6 /64 (one host is usually
//! given a whole /64, so counting single IPv6 addresses would count nothing). An IPv4-mapped
//! IPv6 address (`::ffff:192.0.2.1`) is its IPv4 address.

use std::net::IpAddr;

/// The key an address is counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AddressKey {
    V4(u32),
    /// The first 64 bits of an IPv6 address.
    V6Net(u64),
}

impl AddressKey {
    pub(crate) fn of(ip: IpAddr) -> AddressKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => AddressKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => AddressKey::V6Net((u128::from(v6) >> 64) as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip: &str) -> AddressKey {
        AddressKey::of(ip.parse().unwrap())
    }

    #[test]
    fn an_ipv6_address_counts_by_its_64() {
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_eq!(key("2001:db8:1:2::1"), AddressKey::V6Net(0x2001_0db8_0001_0002));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    }

    #[test]
    fn an_ipv4_mapped_address_is_its_ipv4_address() {
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        assert_eq!(key("192.0.2.1"), AddressKey::V4(0xc000_0201));
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
    }
}
