//! Open connections counted by client address, so one client cannot take the whole
//! `max_connections` cap. The address is the TCP peer's (IPv6 by its /64): the connection is
//! counted before a byte of it is read, so no header can name another client.
//!
//! The table holds only addresses with a connection open: an address leaves it when its last
//! connection closes, so it never outgrows the open connections themselves.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::address_key::AddressKey;

/// Open connections by address, each at most `limit` (0: not counted).
pub(super) struct PerAddress {
    limit: usize,
    open: Mutex<HashMap<AddressKey, usize>>,
}

/// One open connection of an address; closing it (dropping this) frees its place.
pub(super) struct AddressSlot(Option<(Arc<PerAddress>, AddressKey)>);

impl PerAddress {
    pub(super) fn new(limit: usize) -> Arc<PerAddress> {
        Arc::new(PerAddress { limit, open: Mutex::default() })
    }

    /// A place for one more connection from `ip`; `None` when the address holds its limit.
    pub(super) fn open(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        if self.limit == 0 {
            return Some(AddressSlot(None));
        }
        let key = AddressKey::of(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(AddressSlot(Some((self.clone(), key))))
    }

    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.open.lock().unwrap().len()
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let Some((table, key)) = self.0.take() else { return };
        let mut open = table.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_holds_its_limit_and_no_more_while_others_are_let_in() {
        let table = PerAddress::new(2);
        let first = table.open(ip("192.0.2.1")).unwrap();
        let _second = table.open(ip("192.0.2.1")).unwrap();
        assert!(table.open(ip("192.0.2.1")).is_none());
        // The same host as an IPv4-mapped IPv6 address is the same client.
        assert!(table.open(ip("::ffff:192.0.2.1")).is_none());
        let _other = table.open(ip("192.0.2.2")).unwrap();
        drop(first);
        assert!(table.open(ip("192.0.2.1")).is_some());
    }

    #[test]
    fn an_ipv6_64_is_one_client() {
        let table = PerAddress::new(1);
        let _held = table.open(ip("2001:db8:1:2::1")).unwrap();
        assert!(table.open(ip("2001:db8:1:2:abcd::99")).is_none());
        assert!(table.open(ip("2001:db8:1:3::1")).is_some());
    }

    #[test]
    fn an_address_leaves_the_table_with_its_last_connection() {
        let table = PerAddress::new(3);
        let slots: Vec<_> = (0..1000u32).map(|n| table.open(IpAddr::V4(n.into())).unwrap()).collect();
        assert_eq!(table.addresses(), 1000);
        drop(slots);
        assert_eq!(table.addresses(), 0);
    }

    #[test]
    fn zero_counts_nothing() {
        let table = PerAddress::new(0);
        let _slots: Vec<_> = (0..10).map(|_| table.open(ip("192.0.2.1")).unwrap()).collect();
        assert_eq!(table.addresses(), 0);
    }
}
