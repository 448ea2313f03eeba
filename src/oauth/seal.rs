//! RunComfy keys at rest: each is sealed with ChaCha20-Poly1305 (ring's AEAD) under a key derived
//! from the owner secret ([`crate::jobs::Owners::derived_key`]), with a fresh random nonce, and
//! the row it belongs to as associated data, so that a sealed key copied into another person's
//! row does not open. The consent form's pending request travels sealed the same way (its own
//! purpose as associated data), so that it needs no table and any replica can take the answer.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};

/// What the owner secret's derived key is for (changing it makes every sealed key unreadable).
pub(crate) const PURPOSE: &str = "runcomfy-mcp oauth seal v1";

pub(crate) struct Seal {
    key: LessSafeKey,
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seal(<key>)")
    }
}

impl Seal {
    pub(crate) fn new(key: [u8; 32]) -> Self {
        let key = UnboundKey::new(&CHACHA20_POLY1305, &key).expect("a 32-byte key is a ChaCha20-Poly1305 key");
        Self {
            key: LessSafeKey::new(key),
        }
    }

    /// `plaintext` sealed for `context`: base64url of the nonce, the ciphertext and the tag.
    pub(crate) fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut sealed = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .expect("sealing a short value cannot fail");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// What [`Seal::seal`] sealed for `context`; `None` when it was changed, sealed for another
    /// context or under another key.
    pub(crate) fn open(&self, sealed: &str, context: &str) -> Option<Vec<u8>> {
        let raw = URL_SAFE_NO_PAD.decode(sealed.trim()).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut rest = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut rest)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_context() {
        let seal = Seal::new([7; 32]);
        let sealed = seal.seal(b"rc-secret-key", "grant-1");
        assert!(!sealed.contains("rc-secret-key"));
        assert_ne!(
            sealed,
            seal.seal(b"rc-secret-key", "grant-1"),
            "a fresh nonce each time"
        );
        assert_eq!(seal.open(&sealed, "grant-1").as_deref(), Some(&b"rc-secret-key"[..]));
        assert_eq!(seal.open(&sealed, "grant-2"), None, "another row's context");
        assert_eq!(Seal::new([8; 32]).open(&sealed, "grant-1"), None, "another key");
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(seal.open(&String::from_utf8(tampered).unwrap(), "grant-1"), None);
        assert_eq!(seal.open("!!", "grant-1"), None);
    }
}
