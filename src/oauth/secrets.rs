//! The secrets this server hands out — client ids, authorization codes, access and refresh
//! tokens — are 256 random bits each, and only their SHA-256 digest is stored: a copy of the
//! database lets nobody act as anyone. A prefix names each kind, for people reading a config
//! and for secret scanners. Also the PKCE S256 check (RFC 7636), the one place a code meets its
//! verifier.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use ring::digest::{digest, SHA256};
use subtle::ConstantTimeEq;

/// Prefixes of what this server hands out.
pub(crate) const CLIENT_PREFIX: &str = "rcm_client_";
pub(crate) const CODE_PREFIX: &str = "rcm_code_";
pub(crate) const ACCESS_PREFIX: &str = "rcm_at_";
pub(crate) const REFRESH_PREFIX: &str = "rcm_rt_";

/// A new secret: `prefix` and 32 random bytes, base64url.
pub(crate) fn new_secret(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// What is stored of a secret: its SHA-256, in hex. The secrets are random, so no salt is needed
/// (nothing to guess from a dictionary).
pub(crate) fn stored(secret: &str) -> String {
    digest(&SHA256, secret.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `verifier` is a valid PKCE code verifier (43 to 128 unreserved characters) whose
/// S256 challenge is `challenge`. Compared in constant time.
pub(crate) fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

/// Whether `challenge` can be an S256 challenge: 43 base64url characters (a SHA-256).
pub(crate) fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_stored_as_their_digest() {
        let a = new_secret(ACCESS_PREFIX);
        assert!(a.starts_with(ACCESS_PREFIX));
        assert_eq!(a.len(), ACCESS_PREFIX.len() + 43);
        assert_ne!(a, new_secret(ACCESS_PREFIX));
        assert_eq!(stored(&a).len(), 64);
        assert!(!stored(&a).contains(&a[ACCESS_PREFIX.len()..]));
        // SHA-256 of "abc" (FIPS 180-2): the digest is the standard one.
        assert_eq!(
            stored("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn pkce_s256_follows_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(is_s256_challenge(challenge));
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj", challenge));
        assert!(!pkce_matches("short", challenge), "too short to be a verifier");
        assert!(!is_s256_challenge("plain-verifier-sent-as-challenge"));
    }
}
