//! Turning a caller's RunComfy key into the owner of their jobs: HMAC-SHA256 of the key under a
//! per-server secret, in hex. The journal keeps only this hash, never the key; without the
//! secret the hash cannot be tested against guessed keys, and with it the same key is the same
//! owner after a restart and on every replica that shares the secret (replicas on one database
//! must share it, or each sees only the jobs submitted through itself).
//!
//! The secret comes from `RUNCOMFY_MCP_OWNER_SECRET`, or a file named by `--owner-secret-file`,
//! or else is made once (32 random bytes) and kept in the state directory, readable by its owner
//! only.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use ring::hmac;

use super::Caller;
use crate::{journal::Owner, runcomfy::ApiToken};

/// The file the secret is kept in, inside the state directory, when none is configured.
pub const SECRET_FILE_NAME: &str = "owner-secret";
/// The environment variable that can carry the secret itself (never a flag: `ps` shows flags).
pub const SECRET_VAR: &str = "RUNCOMFY_MCP_OWNER_SECRET";
/// A shorter secret could be guessed.
const MIN_SECRET_LEN: usize = 16;

/// The keyed hash that names owners. Cheap to clone.
#[derive(Clone)]
pub struct Owners {
    key: hmac::Key,
}

impl std::fmt::Debug for Owners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Owners(<secret>)")
    }
}

impl Owners {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// The owner of `key`'s jobs.
    pub fn owner_of(&self, key: &ApiToken) -> Owner {
        let tag = hmac::sign(&self.key, key.expose().as_bytes());
        Owner::from_stored(hex(tag.as_ref()))
    }

    /// A key of its own for `purpose`, derived from the secret (HMAC-SHA256 of the purpose), so
    /// that one secret the replicas already share also seals what they keep for each person
    /// (OAuth grants' RunComfy keys) without the two uses ever meeting.
    pub(crate) fn derived_key(&self, purpose: &str) -> [u8; 32] {
        let mut key = [0u8; 32];
        key.copy_from_slice(hmac::sign(&self.key, purpose.as_bytes()).as_ref());
        key
    }

    /// The owner of the jobs of the person `subject` at the identity provider `issuer` (company
    /// mode): the same keyed hash, over both, separated so that no two pairs run together.
    pub(crate) fn owner_of_person(&self, issuer: &str, subject: &str) -> Owner {
        let named = format!("person\0{issuer}\0{subject}");
        Owner::from_stored(hex(hmac::sign(&self.key, named.as_bytes()).as_ref()))
    }

    /// The caller a request carrying `key` is.
    pub fn caller(&self, key: ApiToken) -> Caller {
        Caller::with_key(self.owner_of(&key), key)
    }

    /// The secret from `from_env` (the value of [`SECRET_VAR`]), else the file `file`, else the
    /// one kept in `state_dir` (made there the first time). `Err` says what to fix.
    pub fn load(from_env: Option<String>, file: Option<&Path>, state_dir: Option<&Path>) -> Result<Self, String> {
        if let Some(secret) = from_env.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) {
            return checked(secret.as_bytes(), SECRET_VAR).map(Self::new);
        }
        if let Some(file) = file {
            let secret = fs::read(file).map_err(|e| format!("cannot read the owner secret {}: {e}", file.display()))?;
            return checked(secret.trim_ascii(), &file.display().to_string()).map(Self::new);
        }
        let dir = state_dir.ok_or_else(|| {
            format!("no state directory to keep the owner secret in: set --state-dir (RUNCOMFY_STATE_DIR), --owner-secret-file or {SECRET_VAR}")
        })?;
        kept_in(dir).map(|secret| Self::new(&secret))
    }
}

fn checked<'a>(secret: &'a [u8], source: &str) -> Result<&'a [u8], String> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(format!(
            "the owner secret in {source} is shorter than {MIN_SECRET_LEN} bytes (try `openssl rand -hex 32`)"
        ));
    }
    Ok(secret)
}

/// The secret kept in `dir`, made (and written with mode 0600, exclusively, so that two servers
/// starting at once agree on one) if there is none yet.
fn kept_in(dir: &Path) -> Result<Vec<u8>, String> {
    let path: PathBuf = dir.join(SECRET_FILE_NAME);
    let read = |path: &Path| {
        fs::read(path)
            .map(|s| s.trim_ascii().to_vec())
            .map_err(|e| format!("cannot read the owner secret {}: {e}", path.display()))
    };
    if path.exists() {
        return read(&path);
    }
    fs::create_dir_all(dir).map_err(|e| format!("cannot create the state directory {}: {e}", dir.display()))?;
    let secret = hex(&rand::random::<[u8; 32]>());
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(secret.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| format!("cannot write the owner secret {}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), "made a new owner secret (replicas that share a journal must share it)");
            Ok(secret.into_bytes())
        }
        // Another server made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(&path),
        Err(e) => Err(format!("cannot create the owner secret {}: {e}", path.display())),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> ApiToken {
        ApiToken::new(raw).unwrap()
    }

    #[test]
    fn an_owner_is_the_keyed_hash_of_the_key_and_never_the_key() {
        let owners = Owners::new(b"0123456789abcdef0123456789abcdef");
        let alice = owners.owner_of(&key("rc-alice-key"));
        assert_eq!(alice, owners.owner_of(&key("rc-alice-key")), "stable");
        assert_ne!(alice, owners.owner_of(&key("rc-bob-key")));
        assert_eq!(alice.as_str().len(), 64);
        assert!(!alice.as_str().contains("alice"));
        // Another secret, other owners: a hash cannot be tested against guessed keys without it.
        assert_ne!(
            alice,
            Owners::new(b"another secret, 32 bytes long!!!").owner_of(&key("rc-alice-key"))
        );
        // The RFC 4231 test case 2 vector: the hash is HMAC-SHA256 and nothing home-made.
        let jefe = Owners::new(b"Jefe").owner_of(&key("what do ya want for nothing?"));
        assert_eq!(
            jefe.as_str(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let caller = owners.caller(key("rc-alice-key"));
        assert_eq!(caller.owner(), &alice);
        assert!(!format!("{caller:?}").contains("alice"));
    }

    #[test]
    fn the_secret_is_made_once_kept_private_and_found_again() {
        let dir = tempfile::tempdir().unwrap();
        let first = Owners::load(None, None, Some(dir.path())).unwrap();
        let again = Owners::load(None, None, Some(dir.path())).unwrap();
        let k = key("rc-some-key");
        assert_eq!(
            first.owner_of(&k),
            again.owner_of(&k),
            "the same owners after a restart"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(SECRET_FILE_NAME))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A configured secret wins, and is the same wherever it is configured.
        let shared = "a secret all the replicas share";
        let from_env = Owners::load(Some(shared.into()), None, Some(dir.path())).unwrap();
        let file = dir.path().join("shared");
        fs::write(&file, format!("{shared}\n")).unwrap();
        let from_file = Owners::load(None, Some(&file), None).unwrap();
        assert_eq!(from_env.owner_of(&k), from_file.owner_of(&k));
        assert_ne!(from_env.owner_of(&k), first.owner_of(&k));
        assert!(Owners::load(Some("short".into()), None, None)
            .unwrap_err()
            .contains("shorter"));
    }
}
