//! Callback targets: the `callback_url` check never panics; what it stores is an http(s) URL
//! without credentials whose host is a name or an IPv4 address callbacks may reach, which the
//! check accepts again unchanged; denying private targets only ever refuses more. The SSRF
//! guard's judgement of an address (the input's first 16 bytes as IPv6, first 4 as IPv4): an
//! IPv6 address embedding a refused IPv4 address is refused, and each embedding form of an IPv4
//! address is judged exactly as that address.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use waotp_server::callbacks::{address_allowed, embedded_v4, target};

fn check_url(raw: &str) {
    let mut accepted = [false; 2];
    for deny_private in [false, true] {
        let Ok(stored) = target::check(raw, deny_private) else { continue };
        accepted[usize::from(deny_private)] = true;
        assert_eq!(target::check(&stored, deny_private).as_ref(), Ok(&stored), "{raw:?} stored as {stored:?}");
        let url = url::Url::parse(&stored).expect("a stored URL parses");
        assert!(matches!(url.scheme(), "http" | "https"), "{stored:?}");
        assert!(url.username().is_empty() && url.password().is_none(), "{stored:?}");
        match url.host() {
            Some(url::Host::Domain(_)) => {}
            Some(url::Host::Ipv4(ip)) => assert!(address_allowed(ip.into(), deny_private), "{stored:?}"),
            other => panic!("{stored:?} has host {other:?}"),
        }
    }
    assert!(!accepted[1] || accepted[0], "{raw:?} is refused only without callback_deny_private");
}

fn check_addresses(data: &[u8]) {
    if let Ok(bytes) = <[u8; 16]>::try_from(data.get(..16).unwrap_or_default()) {
        let v6 = Ipv6Addr::from(bytes);
        let strict = address_allowed(v6.into(), true);
        assert!(!strict || address_allowed(v6.into(), false), "{v6}");
        for deny_private in [false, true] {
            let refused_inside =
                embedded_v4(v6).into_iter().flatten().any(|v4| !address_allowed(v4.into(), deny_private));
            assert!(
                !(refused_inside && address_allowed(v6.into(), deny_private)),
                "{v6} (deny_private {deny_private})"
            );
        }
    }
    if let Ok(bytes) = <[u8; 4]>::try_from(data.get(..4).unwrap_or_default()) {
        let v4 = Ipv4Addr::from(bytes);
        let [hi, lo] = [u16::from_be_bytes([bytes[0], bytes[1]]), u16::from_be_bytes([bytes[2], bytes[3]])];
        for deny_private in [false, true] {
            let expected = address_allowed(IpAddr::V4(v4), deny_private);
            let mut forms = vec![
                v4.to_ipv6_mapped(),
                Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, hi, lo),    // SIIT
                Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo), // NAT64
                Ipv6Addr::new(0x2002, hi, lo, 0, 0, 0, 0, 1),    // 6to4
                Ipv6Addr::new(0x2001, 0, 0x5db8, 0xd822, 0, 0, !hi, !lo), // Teredo client (public server)
                Ipv6Addr::new(0x2001, 0, hi, lo, 0, 0, 0xa247, 0x27dd), // Teredo server (public client)
            ];
            // The local-use NAT64 prefix is refused whole, whatever it embeds.
            assert!(!address_allowed(Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, hi, lo).into(), deny_private));
            if u32::from(v4) > 1 {
                forms.push(Ipv6Addr::new(0, 0, 0, 0, 0, 0, hi, lo)); // IPv4-compatible
            }
            for v6 in forms {
                assert_eq!(
                    address_allowed(v6.into(), deny_private),
                    expected,
                    "{v6} for {v4} (deny_private {deny_private})"
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check_url(&String::from_utf8_lossy(data));
    check_addresses(data);
});
