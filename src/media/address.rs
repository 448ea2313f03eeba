//! Where result files may be downloaded from: only over `https`, and only from public addresses.
//!
//! A result URL comes from the upstream's answer. Fetched blindly, a URL naming a loopback,
//! private, link-local (`169.254.169.254`, the cloud metadata service) or unique-local address
//! turns the server into a proxy into its own network. So every URL is checked before the
//! request, every redirect before it is followed, and every host name after it is resolved —
//! against the addresses that will actually be dialled, so a name that resolves to `10.0.0.1` is
//! refused as surely as the literal, and DNS cannot answer one thing to the check and another to
//! the connection.
//!
//! A name is refused when **any** of its addresses is not public, not merely stripped of them:
//! a result host has no reason to publish a private address, and one that does is misconfigured
//! or hostile; dialling "the public ones" would leave which one is used to the connector.
//!
//! The one exception is the upstream itself when it runs on this machine (`--simulate`, or a
//! loopback `--base-url`): its own scheme, host and port are allowed, since that is where its
//! result files live. Nothing else on loopback is.
//!
//! [`Resolver`] is the seam for tests: it maps names to chosen addresses and says where a
//! connection would really go, so tests of this policy never dial anything but loopback even if
//! the policy were broken.

use std::{
    future::Future,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    pin::Pin,
    sync::Arc,
};

use reqwest::Url;

/// Why a URL is not fetched. Shown to the user next to the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not an http(s) URL")]
    BadUrl,
    #[error("only https URLs are fetched")]
    NotHttps,
    #[error("{ip} is {kind}; result files are fetched only from public addresses")]
    Address { ip: IpAddr, kind: &'static str },
    #[error("{host} resolves to {ip}, {kind}; result files are fetched only from public addresses")]
    Resolved {
        host: String,
        ip: IpAddr,
        kind: &'static str,
    },
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
}

/// Redirects followed for one download.
pub const MAX_REDIRECTS: usize = 5;

/// The policy for one process: public `https` only, plus the upstream's own origin when that is
/// on this machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    local_upstream: Option<Origin>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    fn of(url: &Url) -> Option<Self> {
        Some(Self {
            scheme: url.scheme().to_owned(),
            host: host_of(url)?,
            port: url.port_or_known_default()?,
        })
    }
}

impl AddressPolicy {
    /// Public `https` addresses only: what a server talking to the real RunComfy uses.
    pub fn public_only() -> Self {
        Self::default()
    }

    /// For an upstream at `base_url`: its own origin is allowed too when it is on loopback (the
    /// simulator, a local stand-in); any other upstream gets [`AddressPolicy::public_only`].
    pub fn for_upstream(base_url: &str) -> Self {
        let local = Url::parse(base_url).ok().and_then(|url| {
            let origin = Origin::of(&url)?;
            let loopback = origin.host == "localhost" || origin.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            loopback.then_some(origin)
        });
        Self { local_upstream: local }
    }

    /// Whether the upstream's own (loopback) origin is allowed.
    pub fn allows_local_upstream(&self) -> bool {
        self.local_upstream.is_some()
    }

    /// The check before a request and before each redirect: the scheme, and the address when
    /// the host is one (names are checked once resolved, by [`AddressPolicy::check_resolved`]).
    pub fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal::BadUrl);
        }
        if self.local_upstream.is_some() && Origin::of(url) == self.local_upstream {
            return Ok(());
        }
        if url.scheme() != "https" {
            return Err(Refusal::NotHttps);
        }
        // The URL parser has already turned every spelling of an address (`0xa9.0xfe.0xa9.0xfe`,
        // `2852039166`, `127.1`) into its plain form.
        let host = host_of(url).ok_or(Refusal::BadUrl)?;
        let Ok(ip) = host.parse::<IpAddr>() else {
            return Ok(());
        };
        match non_public(ip) {
            Some(kind) => Err(Refusal::Address { ip, kind }),
            None => Ok(()),
        }
    }

    /// Whether `url` may be handed on as a link (a `resource_link`, an "Open full size" button):
    /// only an `https:` URL with a host, or one at the upstream's own loopback origin (the
    /// simulator). A `javascript:`, `data:` or `vbscript:` URL can run script wherever a host
    /// opens it, and a plain `http:` one is readable and changeable on the way. `Err` says why
    /// not, for the text the URL is still listed in.
    pub fn check_link(&self, url: &str) -> Result<(), String> {
        let scheme = url
            .split_once(':')
            .map(|(s, _)| s.trim().to_ascii_lowercase())
            .filter(|s| {
                !s.is_empty() && s.len() <= 16 && s.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
            });
        let parsed = Url::parse(url.trim());
        match (scheme.as_deref(), &parsed) {
            (Some("https"), Ok(parsed)) if host_of(parsed).is_some_and(|h| !h.is_empty()) => Ok(()),
            (Some("http"), Ok(parsed))
                if self.local_upstream.is_some() && Origin::of(parsed) == self.local_upstream =>
            {
                Ok(())
            }
            (Some("http"), _) => Err("a plain http: URL (only https: ones are linked)".to_owned()),
            (Some("javascript" | "vbscript" | "data"), _) => Err(format!(
                "a {}: URL can run script where it is opened",
                scheme.unwrap_or_default()
            )),
            (Some(other), _) => Err(format!("only https: URLs are linked, not {other}:")),
            (None, _) => Err("not a URL".to_owned()),
        }
    }

    /// The check of what a host name resolved to, before anything is dialled.
    pub fn check_resolved(&self, host: &str, addresses: &[IpAddr]) -> Result<(), Refusal> {
        let host = normalise(host);
        if self.local_upstream.as_ref().is_some_and(|o| o.host == host) {
            return Ok(());
        }
        for &ip in addresses {
            if let Some(kind) = non_public(ip) {
                return Err(Refusal::Resolved { host, ip, kind });
            }
        }
        Ok(())
    }
}

fn host_of(url: &Url) -> Option<String> {
    url.host_str().map(normalise)
}

/// Lower case, no IPv6 brackets, no trailing dot: the spellings of one host compare equal.
fn normalise(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// What kind of address `ip` is when it is not a public one; `None` when it is public.
///
/// The standard library's `is_global` is not stable; this follows the IANA special-purpose
/// registries. Addresses that embed an IPv4 one (IPv4-mapped, NAT64, 6to4) are judged by it.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => non_public_v4(ip),
        IpAddr::V6(ip) => non_public_v6(ip),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "an unspecified address",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "a private address",
        (100, 64..=127, _) => "a shared (carrier-grade NAT) address",
        (127, _, _) => "a loopback address",
        (169, 254, _) => "a link-local address",
        (192, 0, 0) | (192, 88, 99) => "a reserved address",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (198, 18..=19, _) => "a benchmarking address",
        (224..=239, _, _) => "a multicast address",
        (240..=255, _, _) => "a reserved address",
        _ => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    match s {
        // IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d): the IPv4 address decides.
        [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => {
            return non_public_v4(embedded(hi, lo));
        }
        // 6to4 (2002:a.b.c.d::/48) reaches the IPv4 address it embeds.
        [0x2002, hi, lo, ..] => return non_public_v4(embedded(hi, lo)),
        _ => {}
    }
    Some(match s[0] {
        0xfc00..=0xfdff => "a unique-local address",
        0xfe80..=0xfebf => "a link-local address",
        0xfec0..=0xfeff => "a site-local address",
        0xff00..=0xffff => "a multicast address",
        // Teredo, benchmarking, ORCHID and the other IETF protocol assignments (2001::/23).
        0x2001 if s[1] < 0x0200 => "a reserved address",
        0x2001 if s[1] == 0x0db8 => "a documentation address",
        0x3fff if s[1] < 0x1000 => "a documentation address",
        // Only 2000::/3 is global unicast; the rest (IPv4-compatible, discard, NAT64 local
        // use, unassigned) is not somewhere a result lives.
        0x2000..=0x3fff => return None,
        _ => "a reserved address",
    })
}

/// A future of a name's addresses.
pub type Lookup = Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;

/// How host names become addresses, and where a connection to one of them goes. The system
/// resolver in the server; tests give their own, mapping test names to chosen addresses and
/// every dial to a recorder on loopback.
pub trait Resolver: Send + Sync + 'static {
    fn lookup(&self, host: &str) -> Lookup;

    /// The address dialled for `address` once the policy has allowed it: itself, except in
    /// tests that must never leave loopback.
    fn dial(&self, address: SocketAddr) -> SocketAddr {
        address
    }
}

/// The operating system's resolver (`getaddrinfo`, on tokio's blocking pool).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn lookup(&self, host: &str) -> Lookup {
        let host = host.to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(found.map(|a| a.ip()).collect())
        })
    }
}

/// reqwest's resolver hook: resolve, judge every address, and hand over only what passed.
pub(super) struct Guarded {
    pub(super) policy: Arc<AddressPolicy>,
    pub(super) resolver: Arc<dyn Resolver>,
}

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (policy, resolver) = (self.policy.clone(), self.resolver.clone());
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = resolver.lookup(&host).await?;
            policy.check_resolved(&host, &addresses)?;
            // Port 0: the connector puts the URL's port in.
            let dial: Vec<SocketAddr> = addresses
                .into_iter()
                .map(|ip| resolver.dial(SocketAddr::new(ip, 0)))
                .collect();
            Ok(Box::new(dial.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The refusal somewhere in an error's causes (reqwest wraps what the resolver or the redirect
/// policy returned).
pub(super) fn refusal_in(error: &(dyn std::error::Error + 'static)) -> Option<Refusal> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(refusal) = e.downcast_ref::<Refusal>() {
            return Some(refusal.clone());
        }
        cause = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 34 finding 5: only https (and the loopback upstream's own origin) is a link.
    #[test]
    fn only_https_and_the_local_upstreams_origin_are_links() {
        let policy = AddressPolicy::for_upstream("http://127.0.0.1:8080");
        for url in [
            "https://cdn.runcomfy.net/a.png",
            "HTTPS://cdn.runcomfy.net/a.png?sig=1",
            "http://127.0.0.1:8080/files/a.png",
        ] {
            assert_eq!(policy.check_link(url), Ok(()), "{url}");
        }
        for (url, says) in [
            ("javascript:alert(1)", "javascript:"),
            ("JavaScript:alert(document.domain)//.png", "javascript:"),
            ("data:text/html,<script>alert(1)</script>", "data:"),
            ("vbscript:msgbox(1)", "vbscript:"),
            ("http://127.0.0.1:9999/files/a.png", "http:"),
            ("http://cdn.runcomfy.net/a.png", "http:"),
            ("file:///etc/passwd", "file:"),
            ("no scheme at all", "not a URL"),
        ] {
            let refused = policy.check_link(url).unwrap_err();
            assert!(refused.contains(says), "{url}: {refused}");
        }
        assert!(AddressPolicy::public_only()
            .check_link("http://127.0.0.1:8080/files/a.png")
            .is_err());
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_public_addresses_are_public() {
        for (address, kind) in [
            ("127.0.0.1", "a loopback address"),
            ("127.255.0.9", "a loopback address"),
            ("::1", "a loopback address"),
            ("10.0.0.1", "a private address"),
            ("172.16.0.1", "a private address"),
            ("172.31.255.255", "a private address"),
            ("192.168.1.1", "a private address"),
            ("169.254.169.254", "a link-local address"),
            ("fe80::1", "a link-local address"),
            ("fd00:ec2::254", "a unique-local address"),
            ("fc00::1", "a unique-local address"),
            ("0.0.0.0", "an unspecified address"),
            ("::", "an unspecified address"),
            ("100.64.0.1", "a shared (carrier-grade NAT) address"),
            ("192.0.2.1", "a documentation address"),
            ("2001:db8::1", "a documentation address"),
            ("198.18.0.1", "a benchmarking address"),
            ("224.0.0.1", "a multicast address"),
            ("ff02::1", "a multicast address"),
            ("255.255.255.255", "a reserved address"),
            ("2001::1", "a reserved address"),
            ("::1.2.3.4", "a reserved address"),
            ("fec0::1", "a site-local address"),
            // IPv4 inside IPv6 is judged by the IPv4 address.
            ("::ffff:169.254.169.254", "a link-local address"),
            ("::ffff:10.0.0.1", "a private address"),
            ("64:ff9b::7f00:1", "a loopback address"),
            ("2002:c0a8:0101::1", "a private address"),
        ] {
            assert_eq!(non_public(ip(address)), Some(kind), "{address}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
            "2002:0808:0808::1",
        ] {
            assert_eq!(non_public(ip(public)), None, "{public}");
        }
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn urls_need_https_and_a_public_literal() {
        let policy = AddressPolicy::public_only();
        assert_eq!(policy.check_url(&url("https://cdn.example/a.png")), Ok(()));
        assert_eq!(policy.check_url(&url("https://1.1.1.1/a.png")), Ok(()));
        assert_eq!(
            policy.check_url(&url("http://cdn.example/a.png")),
            Err(Refusal::NotHttps)
        );
        assert_eq!(policy.check_url(&url("file:///etc/passwd")), Err(Refusal::BadUrl));
        assert_eq!(policy.check_url(&url("ftp://cdn.example/a")), Err(Refusal::BadUrl));
        for (literal, kind) in [
            ("https://169.254.169.254/latest/meta-data/", "a link-local address"),
            // The URL parser reads the odd spellings of an IPv4 address as the address.
            ("https://0xa9.0xfe.0xa9.0xfe/", "a link-local address"),
            ("https://2852039166/", "a link-local address"),
            ("https://127.1/", "a loopback address"),
            ("https://[::ffff:a9fe:a9fe]/", "a link-local address"),
            ("https://[fd00::1]:8443/", "a unique-local address"),
        ] {
            assert!(
                matches!(policy.check_url(&url(literal)), Err(Refusal::Address { kind: k, .. }) if k == kind),
                "{literal}: {:?}",
                policy.check_url(&url(literal))
            );
        }
    }

    #[test]
    fn a_loopback_upstream_allows_its_own_origin_and_nothing_else_local() {
        let policy = AddressPolicy::for_upstream("http://127.0.0.1:8787");
        assert!(policy.allows_local_upstream());
        assert_eq!(policy.check_url(&url("http://127.0.0.1:8787/files/x/0.png")), Ok(()));
        assert_eq!(policy.check_url(&url("http://127.0.0.1:8788/")), Err(Refusal::NotHttps));
        assert!(
            policy.check_url(&url("https://127.0.0.1:8787/")).is_err(),
            "another scheme"
        );
        assert!(policy.check_url(&url("https://127.0.0.1:9/")).is_err());
        assert_eq!(policy.check_resolved("127.0.0.1", &[ip("127.0.0.1")]), Ok(()));

        let named = AddressPolicy::for_upstream("http://LOCALHOST:8787/");
        assert_eq!(named.check_url(&url("http://localhost:8787/f.png")), Ok(()));
        assert_eq!(named.check_resolved("localhost", &[ip("127.0.0.1"), ip("::1")]), Ok(()));
        assert!(named.check_resolved("other.test", &[ip("127.0.0.1")]).is_err());

        for remote in ["https://model-api.runcomfy.net", "http://10.0.0.5:8787", "not a url"] {
            assert_eq!(
                AddressPolicy::for_upstream(remote),
                AddressPolicy::public_only(),
                "{remote}"
            );
        }
    }

    #[test]
    fn a_name_is_refused_when_any_address_is_not_public() {
        let policy = AddressPolicy::public_only();
        assert_eq!(
            policy.check_resolved("cdn.example", &[ip("1.1.1.1"), ip("2606:4700::1111")]),
            Ok(())
        );
        assert_eq!(
            policy.check_resolved("Rebind.Example.", &[ip("1.1.1.1"), ip("10.0.0.1")]),
            Err(Refusal::Resolved {
                host: "rebind.example".into(),
                ip: ip("10.0.0.1"),
                kind: "a private address"
            })
        );
        assert!(policy.check_resolved("localhost", &[ip("127.0.0.1")]).is_err());
    }
}
