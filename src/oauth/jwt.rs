//! Checking a company identity provider's access tokens (JWT, RFC 7519 and 9068): signed with one
//! of the provider's published keys (JWKS, RFC 7517), by an algorithm on the allow-list — RS256,
//! ES256 or EdDSA, never `none` and never a shared-secret HS* (a public key used as an HMAC
//! secret would let anyone sign) — issued by the configured issuer, for the configured audience,
//! and current (`exp`, `nbf`). Verified with ring, already in the tree for TLS and the owners'
//! hashes, rather than a JWT crate: three algorithms are a few lines each.
//!
//! The key set is fetched under the download policy (https and public addresses only, bounded
//! in size and time), cached, and fetched again when a token names a key it has not seen (the
//! provider rotated its keys) — at most once a minute, so unknown `kid`s cannot make us hammer it.

use std::time::{Duration, Instant};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;

use crate::media::{
    download::{download_json, Limits},
    Downloader,
};

/// A key set is a few kilobytes; this bounds what we read.
const JWKS_MAX_BYTES: u64 = 256 * 1024;
const JWKS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a fetched key set is used before it is fetched again.
const JWKS_TTL: Duration = Duration::from_secs(3600);
/// The least time between two fetches caused by an unknown `kid`.
const REFETCH_GAP: Duration = Duration::from_secs(60);
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY: i64 = 60;

/// Who signed a token in and what it was checked against.
pub(crate) struct Verifier {
    pub issuer: String,
    pub audience: String,
    /// Set by `--oauth-jwks-url`; else found in the issuer's metadata ([`Verifier::jwks_url`]).
    jwks_url: Option<String>,
    downloader: Downloader,
    keys: tokio::sync::Mutex<KeyCache>,
}

#[derive(Default)]
struct KeyCache {
    keys: Vec<Jwk>,
    fetched: Option<Instant>,
}

#[derive(Debug, Clone, Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// A signed-in person: the token's issuer and subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Person {
    pub issuer: String,
    pub subject: String,
}

impl Verifier {
    pub(crate) fn new(
        issuer: String,
        audience: String,
        jwks_url: Option<String>,
        test_origin: Option<&str>,
    ) -> Result<Self, String> {
        let policy = match test_origin {
            Some(origin) => crate::media::AddressPolicy::for_upstream(origin),
            None => crate::media::AddressPolicy::public_only(),
        };
        Ok(Self {
            issuer,
            audience,
            jwks_url,
            downloader: Downloader::new(policy)?,
            keys: tokio::sync::Mutex::new(KeyCache::default()),
        })
    }

    /// The person `token` signs in, or why it does not (said to the client as the 401's
    /// `error_description`, so never the token itself).
    pub(crate) async fn verify(&self, token: &str, now: i64) -> Result<Person, String> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a signed JWT".into());
        };
        let header: Header = decode_json(header).ok_or("the token's header cannot be read")?;
        if !matches!(header.alg.as_str(), "RS256" | "ES256" | "EdDSA") {
            return Err(format!(
                "the token's algorithm {:?} is not accepted (RS256, ES256, EdDSA)",
                header.alg
            ));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| "the token's signature cannot be read")?;
        let key = self.key(&header).await?;
        let signed = &token[..header_and_payload_len(token)];
        if !key_verifies(&key, &header.alg, signed.as_bytes(), &signature) {
            return Err("the token's signature is not valid".into());
        }
        let claims: Value = decode_json(payload).ok_or("the token's claims cannot be read")?;
        if claims["iss"].as_str() != Some(self.issuer.as_str()) {
            return Err("the token is from another issuer".into());
        }
        let audience_matches = match &claims["aud"] {
            Value::String(aud) => aud == &self.audience,
            Value::Array(auds) => auds.iter().any(|a| a.as_str() == Some(self.audience.as_str())),
            _ => false,
        };
        if !audience_matches {
            return Err("the token is for another audience".into());
        }
        let exp = claims["exp"].as_i64().ok_or("the token has no expiry")?;
        if now > exp + LEEWAY {
            return Err("the token has expired".into());
        }
        if claims["nbf"].as_i64().is_some_and(|nbf| now + LEEWAY < nbf) {
            return Err("the token is not valid yet".into());
        }
        let subject = claims["sub"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or("the token names no subject")?;
        Ok(Person {
            issuer: self.issuer.clone(),
            subject: subject.to_owned(),
        })
    }

    /// The key `header` names: from the cache, or from the key set fetched again when it is
    /// stale or does not hold it.
    async fn key(&self, header: &Header) -> Result<Jwk, String> {
        let mut cache = self.keys.lock().await;
        let fresh = cache.fetched.is_some_and(|at| at.elapsed() < JWKS_TTL);
        if fresh {
            if let Some(key) = pick(&cache.keys, header) {
                return Ok(key);
            }
        }
        let may_fetch = !fresh || cache.fetched.is_none_or(|at| at.elapsed() >= REFETCH_GAP);
        if may_fetch {
            match self.fetch().await {
                Ok(keys) => {
                    cache.keys = keys;
                    cache.fetched = Some(Instant::now());
                }
                Err(e) => {
                    tracing::warn!(issuer = %self.issuer, error = %e, "the identity provider's keys could not be fetched");
                    // A stale set still serves the keys it holds.
                }
            }
        }
        pick(&cache.keys, header)
            .ok_or_else(|| "the token is signed with a key the identity provider does not publish".into())
    }

    async fn fetch(&self) -> Result<Vec<Jwk>, String> {
        let url = self.jwks_url().await;
        let body = self.download(&url).await?;
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<Value>,
        }
        let set: Set = serde_json::from_slice(&body).map_err(|e| format!("not a JWK set ({e})"))?;
        // Keys of kinds we do not use are skipped, not fatal.
        Ok(set
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value(k).ok())
            .collect())
    }
}

impl Verifier {
    async fn download(&self, url: &str) -> Result<Vec<u8>, String> {
        let limits = Limits {
            max_bytes: JWKS_MAX_BYTES,
            timeout: JWKS_TIMEOUT,
        };
        download_json(&self.downloader, url, limits)
            .await
            .map_err(|e| format!("{url}: {e}"))
    }

    /// The key set's URL: configured, else the `jwks_uri` of the issuer's metadata (OpenID
    /// Connect discovery, then RFC 8414 — for the same issuer only), else the common
    /// `{issuer}/.well-known/jwks.json`.
    async fn jwks_url(&self) -> String {
        if let Some(url) = &self.jwks_url {
            return url.clone();
        }
        let base = self.issuer.trim_end_matches('/');
        for document in ["openid-configuration", "oauth-authorization-server"] {
            let Ok(body) = self.download(&format!("{base}/.well-known/{document}")).await else {
                continue;
            };
            let Ok(metadata) = serde_json::from_slice::<Value>(&body) else {
                continue;
            };
            if metadata["issuer"].as_str() == Some(self.issuer.as_str()) {
                if let Some(url) = metadata["jwks_uri"].as_str() {
                    return url.to_owned();
                }
            }
        }
        format!("{base}/.well-known/jwks.json")
    }
}

/// The key for `header`: by `kid` when it names one, else the only key usable for its algorithm.
fn pick(keys: &[Jwk], header: &Header) -> Option<Jwk> {
    let usable = |k: &&Jwk| {
        k.use_.as_deref().is_none_or(|u| u == "sig")
            && k.alg.as_deref().is_none_or(|a| a == header.alg)
            && kind_fits(k, &header.alg)
    };
    let mut candidates = keys.iter().filter(usable);
    match &header.kid {
        Some(kid) => candidates.find(|k| k.kid.as_deref() == Some(kid)).cloned(),
        None => {
            let first = candidates.next()?;
            candidates.next().is_none().then(|| first.clone())
        }
    }
}

fn kind_fits(key: &Jwk, alg: &str) -> bool {
    match alg {
        "RS256" => key.kty == "RSA",
        "ES256" => key.kty == "EC" && key.crv.as_deref() == Some("P-256"),
        "EdDSA" => key.kty == "OKP" && key.crv.as_deref() == Some("Ed25519"),
        _ => false,
    }
}

fn key_verifies(key: &Jwk, alg: &str, message: &[u8], sig: &[u8]) -> bool {
    let b64 = |v: &Option<String>| v.as_deref().and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
    match alg {
        "RS256" => {
            let (Some(n), Some(e)) = (b64(&key.n), b64(&key.e)) else {
                return false;
            };
            RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok()
        }
        "ES256" => {
            let (Some(x), Some(y)) = (b64(&key.x), b64(&key.y)) else {
                return false;
            };
            let point = [&[0x04][..], &x, &y].concat();
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(message, sig)
                .is_ok()
        }
        "EdDSA" => {
            let Some(x) = b64(&key.x) else {
                return false;
            };
            UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(message, sig)
                .is_ok()
        }
        _ => false,
    }
}

/// The length of `header.payload`, the part the signature covers.
fn header_and_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(0)
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ed(kid: &str) -> Jwk {
        serde_json::from_value(serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "kid": kid, "x": "AA" })).unwrap()
    }

    fn header(alg: &str, kid: Option<&str>) -> Header {
        Header {
            alg: alg.to_owned(),
            kid: kid.map(str::to_owned),
        }
    }

    #[test]
    fn a_key_is_picked_by_kid_and_kind_and_never_guessed_among_several() {
        let keys = [ed("a"), ed("b")];
        assert_eq!(
            pick(&keys, &header("EdDSA", Some("b"))).unwrap().kid.as_deref(),
            Some("b")
        );
        assert!(pick(&keys, &header("EdDSA", Some("c"))).is_none(), "an unknown kid");
        assert!(
            pick(&keys, &header("ES256", Some("a"))).is_none(),
            "an Ed25519 key for ES256"
        );
        assert!(pick(&keys, &header("EdDSA", None)).is_none(), "no kid, two candidates");
        assert!(
            pick(&keys[..1], &header("EdDSA", None)).is_some(),
            "no kid, one candidate"
        );
    }
}
