//! The checks every HTTP request passes before it reaches an MCP endpoint: the `Host` and `Origin`
//! allowlists (the defence against DNS rebinding, where a web page makes a browser talk to a server
//! on the user's machine) and, when a token is configured, bearer authentication.
//!
//! They live in one axum middleware in front of the whole router, rather than in rmcp's
//! Streamable HTTP service, so that `/mcp`, the legacy `/sse` + `/message` pair and `/healthz`
//! share one policy. The body size limit is tower-http's layer, added next to this one.

use std::{fmt, net::IpAddr, str::FromStr, sync::Arc};

use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode, Uri},
    middleware::Next,
    response::{IntoResponse, Response},
};
use subtle::ConstantTimeEq;

/// An allowed `Host`: a name or IP, with or without a port, or `*` for any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRule {
    Any,
    Host { host: String, port: Option<u16> },
}

/// An allowed `Origin`: `scheme://host` (the scheme's default port), `scheme://host:port`,
/// `scheme://host:*` (any port), or `*` for any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginRule {
    Any,
    Origin {
        scheme: String,
        host: String,
        port: Option<u16>,
    },
}

/// The HTTP bearer token clients must present. Never printed.
#[derive(Clone)]
pub struct BearerToken(Arc<str>);

impl BearerToken {
    pub fn new(raw: &str) -> Self {
        Self(raw.into())
    }

    /// Constant-time, so the comparison does not tell an attacker how much of a guess was right.
    fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// The policy the middleware applies. Loopback hosts and origins are always allowed: a browser
/// only sends them for pages that are themselves on this machine.
#[derive(Debug, Clone, Default)]
pub struct Guards {
    pub hosts: Vec<HostRule>,
    pub origins: Vec<OriginRule>,
    pub token: Option<BearerToken>,
}

/// Why a request was turned away; each maps to a status and a message saying what to change.
#[derive(Debug, PartialEq, Eq)]
pub enum Rejection {
    BadHost,
    HostNotAllowed(String),
    OriginNotAllowed(String),
    MissingToken,
    WrongToken,
}

impl Guards {
    pub fn check(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), Rejection> {
        self.check_host(uri, headers)?;
        self.check_origin(headers)?;
        self.check_token(headers)
    }

    fn check_host(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), Rejection> {
        // HTTP/2 carries the host in the URI's authority instead of a Host header.
        let raw = match headers.get(header::HOST) {
            Some(value) => value.to_str().map_err(|_| Rejection::BadHost)?.to_owned(),
            None => uri.authority().ok_or(Rejection::BadHost)?.to_string(),
        };
        let authority = raw
            .parse::<axum::http::uri::Authority>()
            .map_err(|_| Rejection::BadHost)?;
        let host = normalize_host(authority.host());
        let port = authority.port_u16();
        let allowed = is_loopback(&host)
            || self.hosts.iter().any(|rule| match rule {
                HostRule::Any => true,
                HostRule::Host { host: h, port: p } => *h == host && (p.is_none() || *p == port),
            });
        allowed.then_some(()).ok_or(Rejection::HostNotAllowed(raw))
    }

    fn check_origin(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        // Non-browser clients send no Origin; only browsers can be steered by a hostile page.
        let Some(value) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        self.origin_allowed(value)
            .then_some(())
            .ok_or_else(|| Rejection::OriginNotAllowed(value.to_str().unwrap_or("<not text>").to_owned()))
    }

    /// Whether a browser page from `value` may talk to this server (and so gets CORS headers).
    pub fn origin_allowed(&self, value: &HeaderValue) -> bool {
        let Some(origin) = value.to_str().ok().and_then(parse_origin) else {
            return false;
        };
        is_loopback(&origin.host)
            || self.origins.iter().any(|rule| match rule {
                OriginRule::Any => true,
                OriginRule::Origin { scheme, host, port } => {
                    *scheme == origin.scheme && *host == origin.host && port.is_none_or(|p| p == origin.port)
                }
            })
    }

    fn check_token(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, credentials)| credentials.trim())
            .ok_or(Rejection::MissingToken)?;
        token.matches(presented).then_some(()).ok_or(Rejection::WrongToken)
    }
}

/// The axum middleware: runs [`Guards::check`] and answers the rejection itself.
pub async fn guard(State(guards): State<Arc<Guards>>, request: Request, next: Next) -> Response {
    match guards.check(request.uri(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(rejection) => {
            tracing::warn!(path = request.uri().path(), ?rejection, "request refused");
            rejection.into_response()
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            Rejection::BadHost => (StatusCode::BAD_REQUEST, "Bad Request: missing or malformed Host header".to_owned()),
            Rejection::HostNotAllowed(host) => (
                StatusCode::FORBIDDEN,
                format!("Forbidden: Host {host:?} is not allowed; the server's operator can allow it with --allowed-host"),
            ),
            Rejection::OriginNotAllowed(origin) => (
                StatusCode::FORBIDDEN,
                format!("Forbidden: Origin {origin:?} is not allowed; the server's operator can allow it with --allowed-origin"),
            ),
            Rejection::MissingToken => (
                StatusCode::UNAUTHORIZED,
                "Unauthorized: send the server's token as `Authorization: Bearer <token>`".to_owned(),
            ),
            Rejection::WrongToken => (StatusCode::UNAUTHORIZED, "Unauthorized: the bearer token is not valid".to_owned()),
        };
        let mut response = (status, message).into_response();
        let challenge = match self {
            Rejection::MissingToken => Some(r#"Bearer realm="runcomfy-mcp""#),
            Rejection::WrongToken => Some(r#"Bearer realm="runcomfy-mcp", error="invalid_token""#),
            _ => None,
        };
        if let Some(challenge) = challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}

struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

fn parse_origin(raw: &str) -> Option<Origin> {
    let url = reqwest::Url::parse(raw).ok()?;
    Some(Origin {
        scheme: url.scheme().to_owned(),
        host: normalize_host(url.host_str()?),
        port: url.port_or_known_default()?,
    })
}

/// Lower case, no IPv6 brackets, no trailing dot: the spellings of one host compare equal.
fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl FromStr for HostRule {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        if raw == "*" {
            return Ok(HostRule::Any);
        }
        // A bare IPv6 address is not a valid authority (its colons read as a port).
        if let Ok(ip) = raw.parse::<IpAddr>() {
            return Ok(HostRule::Host {
                host: ip.to_string(),
                port: None,
            });
        }
        let authority = raw
            .parse::<axum::http::uri::Authority>()
            .ok()
            .filter(|a| !a.host().is_empty() && !a.as_str().contains('@'))
            .ok_or_else(|| format!("{raw:?} is not a host such as mcp.example.com or mcp.example.com:8080"))?;
        Ok(HostRule::Host {
            host: normalize_host(authority.host()),
            port: authority.port_u16(),
        })
    }
}

impl FromStr for OriginRule {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim().trim_end_matches('/');
        if raw == "*" {
            return Ok(OriginRule::Any);
        }
        let bad = || format!("{raw:?} is not an origin such as https://app.example.com or http://localhost:*");
        let (base, any_port) = match raw.strip_suffix(":*") {
            Some(base) => (base, true),
            None => (raw, false),
        };
        let url = reqwest::Url::parse(base).map_err(|_| bad())?;
        let plain = url.path() == "/" && url.query().is_none() && url.fragment().is_none() && url.username().is_empty();
        if !plain || !matches!(url.scheme(), "http" | "https") {
            return Err(bad());
        }
        Ok(OriginRule::Origin {
            scheme: url.scheme().to_owned(),
            host: normalize_host(url.host_str().ok_or_else(bad)?),
            port: if any_port { None } else { url.port_or_known_default() },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn check(guards: &Guards, pairs: &[(&'static str, &str)]) -> Result<(), Rejection> {
        guards.check(&Uri::from_static("/mcp"), &headers(pairs))
    }

    #[test]
    fn loopback_hosts_pass_and_foreign_ones_do_not() {
        let guards = Guards::default();
        for host in ["localhost", "localhost:8080", "127.0.0.1:9", "[::1]:8080", "LOCALHOST"] {
            assert_eq!(check(&guards, &[("host", host)]), Ok(()), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "10.0.0.1",
        ] {
            assert!(
                matches!(check(&guards, &[("host", host)]), Err(Rejection::HostNotAllowed(_))),
                "{host}"
            );
        }
        assert_eq!(check(&guards, &[]), Err(Rejection::BadHost));
    }

    #[test]
    fn configured_hosts_match_by_name_and_optional_port() {
        let guards = Guards {
            hosts: vec!["mcp.example.com".parse().unwrap(), "10.0.0.5:8080".parse().unwrap()],
            ..Guards::default()
        };
        assert_eq!(check(&guards, &[("host", "MCP.example.com:443")]), Ok(()));
        assert_eq!(check(&guards, &[("host", "10.0.0.5:8080")]), Ok(()));
        assert!(check(&guards, &[("host", "10.0.0.5:9090")]).is_err());
        let any = Guards {
            hosts: vec![HostRule::Any],
            ..Guards::default()
        };
        assert_eq!(check(&any, &[("host", "whatever.example")]), Ok(()));
    }

    #[test]
    fn origins_are_checked_only_when_sent() {
        let guards = Guards {
            origins: vec![
                "https://app.example.com".parse().unwrap(),
                "http://tools.example:*".parse().unwrap(),
            ],
            ..Guards::default()
        };
        let ok = |origin: &str| check(&guards, &[("host", "localhost"), ("origin", origin)]);
        assert_eq!(check(&guards, &[("host", "localhost")]), Ok(()));
        for origin in [
            "http://localhost:6274",
            "http://127.0.0.1",
            "https://app.example.com",
            "http://tools.example:1",
        ] {
            assert_eq!(ok(origin), Ok(()), "{origin}");
        }
        for origin in [
            "http://evil.example",
            "https://app.example.com:8443",
            "http://app.example.com",
            "null",
        ] {
            assert!(matches!(ok(origin), Err(Rejection::OriginNotAllowed(_))), "{origin}");
        }
    }

    #[test]
    fn bearer_token_is_required_when_configured() {
        let guards = Guards {
            token: Some(BearerToken::new("s3cret-s3cret-s3cret")),
            ..Guards::default()
        };
        let with = |auth: &str| check(&guards, &[("host", "localhost"), ("authorization", auth)]);
        assert_eq!(check(&guards, &[("host", "localhost")]), Err(Rejection::MissingToken));
        assert_eq!(with("Bearer s3cret-s3cret-s3cret"), Ok(()));
        assert_eq!(with("bearer s3cret-s3cret-s3cret"), Ok(()));
        assert_eq!(with("Bearer s3cret"), Err(Rejection::WrongToken));
        assert_eq!(with("Basic s3cret-s3cret-s3cret"), Err(Rejection::MissingToken));
        assert_eq!(format!("{:?}", guards.token.unwrap()), "BearerToken(<redacted>)");
    }

    #[test]
    fn rules_parse_or_say_what_is_expected() {
        assert_eq!("*".parse::<HostRule>(), Ok(HostRule::Any));
        assert_eq!(
            "::1".parse::<HostRule>(),
            Ok(HostRule::Host {
                host: "::1".into(),
                port: None
            })
        );
        assert!("user@host".parse::<HostRule>().is_err());
        assert!("".parse::<HostRule>().is_err());
        assert_eq!(
            "https://App.example.com/".parse::<OriginRule>(),
            Ok(OriginRule::Origin {
                scheme: "https".into(),
                host: "app.example.com".into(),
                port: Some(443)
            })
        );
        for bad in ["app.example.com", "ftp://x", "https://x/path", "https://x?q"] {
            assert!(bad.parse::<OriginRule>().is_err(), "{bad}");
        }
    }
}
