//! Which `callback_url` a send accepts: an absolute `http://` or `https://` URL whose host is a
//! name (its last label starting with a letter) or a dotted IPv4 address that callbacks may
//! reach, with an optional port, path, query and fragment, and no credentials, spaces or control
//! characters. One regular expression says it: the check uses it and the OpenAPI document serves
//! it. An accepted URL is then normalised by the WHATWG parser (`url`) for storage.
//!
//! IPv6 literals are not accepted: the address ranges callbacks may not reach cannot be told
//! from every way of writing an IPv6 address by a pattern. A name that resolves to IPv6 works.

use std::net::Ipv4Addr;
use std::sync::LazyLock;

use regex::Regex;

use super::guard::{address_allowed, v4_denied};
use crate::pattern::{decimal_range, group};

/// Characters a URL may carry after its host: not controls, not spaces.
const TEXT: &str = r"\x00-\x20\x7f-\x9f";

/// The accepted URLs, as an anchored regular expression.
pub fn pattern(deny_private: bool) -> &'static str {
    static PATTERNS: LazyLock<[String; 2]> = LazyLock::new(|| [build(false), build(true)]);
    &PATTERNS[usize::from(deny_private)]
}

fn build(deny_private: bool) -> String {
    let name = "(?:[A-Za-z0-9_-]+\\.)*[A-Za-z][A-Za-z0-9_-]*";
    let ipv4 = ipv4(&v4_denied(deny_private).map(|(net, len)| (u32::from(net), len)).collect::<Vec<_>>(), 0)
        .expect("some addresses are allowed");
    format!(
        "^[Hh][Tt][Tt][Pp][Ss]?://(?:{name}|{ipv4})(?::0*(?:{port}))?(?:/[^?#{TEXT}]*)?(?:\\?[^#{TEXT}]*)?(?:#[^{TEXT}]*)?$",
        port = decimal_range(0, 65_535),
    )
}

/// The dotted IPv4 addresses from octet `k` on, outside `blocks` (those that contain the
/// octets before `k`); `None` if there are none.
fn ipv4(blocks: &[(u32, u8)], k: usize) -> Option<String> {
    if blocks.iter().any(|(_, len)| usize::from(*len) <= 8 * k) {
        return None;
    }
    if k == 4 {
        return Some(String::new());
    }
    // Each block fixes this octet to an interval.
    let span = |(net, len): (u32, u8)| {
        let octet = (net >> (24 - 8 * k)) & 0xff;
        let bits = (usize::from(len) - 8 * k).min(8);
        let low = octet & (0xff << (8 - bits)) & 0xff;
        (low, low | (0xff >> bits))
    };
    let mut cuts = vec![0, 256];
    for block in blocks {
        let (low, high) = span(*block);
        cuts.extend([low, high + 1]);
    }
    cuts.sort_unstable();
    cuts.dedup();
    // Octet intervals with the same continuation share one alternative.
    let mut alternatives: Vec<(String, Vec<(u32, u32)>)> = Vec::new();
    for w in cuts.windows(2) {
        let (low, high) = (w[0], w[1] - 1);
        let inside: Vec<(u32, u8)> = blocks
            .iter()
            .copied()
            .filter(|b| {
                let (l, h) = span(*b);
                l <= low && high <= h
            })
            .collect();
        let Some(rest) = ipv4(&inside, k + 1) else { continue };
        match alternatives.iter_mut().find(|(r, _)| *r == rest) {
            Some((_, ranges)) => match ranges.last_mut() {
                Some(last) if last.1 + 1 == low => last.1 = high,
                _ => ranges.push((low, high)),
            },
            None => alternatives.push((rest, vec![(low, high)])),
        }
    }
    let written: Vec<String> = alternatives
        .into_iter()
        .map(|(rest, ranges)| {
            let octet: Vec<String> = ranges.iter().map(|(l, h)| decimal_range(u64::from(*l), u64::from(*h))).collect();
            let octet = group(&octet.join("|"));
            if k < 3 {
                format!("{octet}\\.{}", group(&rest))
            } else {
                octet
            }
        })
        .collect();
    (!written.is_empty()).then(|| written.join("|"))
}

fn regex(deny_private: bool) -> &'static Regex {
    static REGEXES: LazyLock<[Regex; 2]> =
        LazyLock::new(|| [false, true].map(|deny| Regex::new(pattern(deny)).expect("callback URL pattern")));
    &REGEXES[usize::from(deny_private)]
}

/// The URL to store, or why it is refused.
pub fn check(raw: &str, deny_private: bool) -> Result<String, String> {
    if !regex(deny_private).is_match(raw) {
        return Err(explain(raw, deny_private));
    }
    url::Url::parse(raw)
        .map(|url| url.to_string())
        .map_err(|_| "the host is not a valid name (an xn-- label must be valid IDNA)".to_owned())
}

/// Why the pattern refused a URL, as precisely as can be said.
fn explain(raw: &str, deny_private: bool) -> String {
    let Ok(url) = url::Url::parse(raw) else {
        return "must be an absolute http:// or https:// URL".into();
    };
    let literal = match url.host() {
        _ if !matches!(url.scheme(), "http" | "https") => return "must use http or https".into(),
        None => return "must name a host".into(),
        _ if !url.username().is_empty() || url.password().is_some() => return "must not carry credentials".into(),
        Some(url::Host::Ipv6(_)) => return "IPv6 address literals are not allowed; use a host name".into(),
        Some(url::Host::Ipv4(ip)) => Some(ip),
        Some(url::Host::Domain(_)) => None,
    };
    if literal.is_some_and(|ip: Ipv4Addr| !address_allowed(ip.into(), deny_private)) {
        return "this address is not allowed for callbacks".into();
    }
    "must be http(s)://HOST[:PORT][/PATH][?QUERY][#FRAGMENT], HOST a name whose last label starts with a letter \
     or a dotted IPv4 address, without spaces or control characters"
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_and_reachable_ipv4_addresses() {
        for url in [
            "http://127.0.0.1:8080/cb",
            "https://app.example/hooks/otp?tenant=acme&x=1",
            "HTTPS://App.Example:443",
            "http://localhost:9/cb#frag",
            "http://a-.b_c.example/ä/%zz?q=ü",
            "http://93.184.216.34/",
            "http://100.100.100.201/",
            "http://255.255.255.254/",
            "http://1.example/",
            "http://xn--bcher-kva.example/",
        ] {
            let stored = check(url, false).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(stored.starts_with("http"), "{stored}");
        }
        assert!(check("http://127.0.0.1/cb", true).is_err());
        assert!(check("http://app.example/cb", true).is_ok());
    }

    #[test]
    fn refuses_what_callbacks_may_not_reach_or_cannot_name() {
        for (url, why) in [
            ("http://169.254.169.254/latest/meta-data", "not allowed"),
            ("http://0.0.0.0/cb", "not allowed"),
            ("http://100.100.100.200/", "not allowed"),
            ("http://224.0.0.1/", "not allowed"),
            ("http://255.255.255.255/", "not allowed"),
            ("http://[fe80::1]/cb", "not allowed"),
            ("http://[2606:2800:220:1::1]/cb", "IPv6"),
            ("ftp://app.example/", "http or https"),
            ("http://user:pw@app.example/", "credentials"),
            ("app.example/cb", "absolute"),
            ("http://app.example/a b", "spaces"),
            ("http://1.2.3/", "last label"),
            ("http://010.1.1.1/", "last label"),
            ("http://app.example:65536/", "absolute"),
            ("http://app.example./", "last label"),
        ] {
            let error = check(url, false).expect_err(url);
            assert!(error.contains(why), "{url}: {error}");
        }
    }

    /// Every address the pattern lets through is one the guard allows, and the other way round,
    /// on a sample of the whole IPv4 space and on every block's edges.
    #[test]
    fn the_pattern_and_the_guard_agree_on_ipv4_addresses() {
        for deny_private in [false, true] {
            let mut samples: Vec<Ipv4Addr> = (0..=u32::MAX).step_by(7_919).map(Ipv4Addr::from).collect();
            for (net, len) in super::super::guard::V4_ALWAYS_DENIED.iter().chain(super::super::guard::V4_PRIVATE) {
                let first = u32::from(*net);
                let last = first | u32::MAX.checked_shr(u32::from(*len)).unwrap_or(0);
                for edge in [first.wrapping_sub(1), first, last, last.wrapping_add(1)] {
                    samples.push(Ipv4Addr::from(edge));
                }
            }
            for ip in samples {
                let url = format!("http://{ip}/cb");
                assert_eq!(check(&url, deny_private).is_ok(), address_allowed(ip.into(), deny_private), "{url}");
            }
        }
    }
}
