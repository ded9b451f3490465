//! The key-encryption key: 32 random bytes in a file readable by the owner only.

use crate::CryptoError;
use ring::rand::SecureRandom;
use std::io::Write;
use std::path::Path;
use zeroize::Zeroizing;

/// An AES-256 key-encryption key loaded from its file.
pub struct Kek(pub(crate) Zeroizing<[u8; 32]>);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl Kek {
    /// A 32-byte secret derived from the KEK for `purpose` (HKDF-SHA256): the same on every
    /// replica that holds the KEK, unrelated to it and to other purposes' secrets (the ACME
    /// nonce key). The KEK itself never leaves this crate.
    pub fn derive(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        struct Len;
        impl ring::hkdf::KeyType for Len {
            fn len(&self) -> usize {
                32
            }
        }
        let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"trustbox derived secrets");
        let prk = salt.extract(self.0.as_ref());
        let info = [purpose.as_bytes()];
        let mut out = Zeroizing::new([0u8; 32]);
        // Expanding 32 bytes from SHA-256 cannot fail (the limit is 255 * 32).
        if let Ok(okm) = prk.expand(&info, Len) {
            let _ = okm.fill(out.as_mut());
        }
        out
    }

    /// Loads the KEK at `path`, creating it (mode 0600) if it does not exist.
    ///
    /// Creation is atomic: the key is written and synced to a temporary file beside `path`,
    /// then linked into place, so a crash never leaves a short KEK and two processes
    /// starting together agree on one key. Fails closed: a file that others can read, that
    /// another user owns, or of the wrong size, is an error.
    pub fn load_or_create(path: &Path) -> Result<Self, CryptoError> {
        let err = |reason: String| CryptoError::Kek {
            path: path.display().to_string(),
            reason,
        };
        if !path.exists() {
            let mut key = Zeroizing::new([0u8; 32]);
            ring::rand::SystemRandom::new()
                .fill(key.as_mut())
                .map_err(|_| err("no randomness available".into()))?;
            let dir = path.parent().unwrap_or_else(|| Path::new("."));
            let mut suffix = [0u8; 8];
            ring::rand::SystemRandom::new()
                .fill(&mut suffix)
                .map_err(|_| err("no randomness available".into()))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "kek".into());
            let temp = dir.join(format!(".{name}.{}.tmp", hex_of(&suffix)));
            let written = write_new_private(&temp, key.as_ref());
            let linked = written.and_then(|()| std::fs::hard_link(&temp, path));
            let _ = std::fs::remove_file(&temp);
            match linked {
                Ok(()) => {
                    if let Ok(d) = std::fs::File::open(dir) {
                        let _ = d.sync_all();
                    }
                    return Ok(Self(key));
                }
                // another process created it first: use theirs
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(err(e.to_string())),
            }
        }
        Self::load(path)
    }

    /// Loads an existing KEK file (`--kek-file`), refusing one that others can read or that
    /// another user owns.
    pub fn load(path: &Path) -> Result<Self, CryptoError> {
        let err = |reason: String| CryptoError::Kek {
            path: path.display().to_string(),
            reason,
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(err(format!(
                    "permissions are {:o}; it must be readable by its owner only (chmod 600)",
                    mode & 0o777
                )));
            }
            if let Some(me) = effective_uid() {
                if meta.uid() != me {
                    return Err(err(format!(
                        "owned by uid {}, not by this process's uid {me} (chown it)",
                        meta.uid()
                    )));
                }
            }
        }
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| err(e.to_string()))?);
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| err(format!("expected 32 bytes, found {}", bytes.len())))?;
        Ok(Self(Zeroizing::new(key)))
    }

    /// A KEK given as 64 hex digits (from an environment variable or a file descriptor, so
    /// backups of the data directory need not contain it). `source` names where it came
    /// from, for errors.
    pub fn from_hex(hex_digits: &str, source: &str) -> Result<Self, CryptoError> {
        let err = |reason: &str| CryptoError::Kek {
            path: source.to_owned(),
            reason: reason.to_owned(),
        };
        let text = hex_digits.trim();
        if text.len() != 64 {
            return Err(err("expected 64 hex digits (32 bytes)"));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        for (i, out) in key.iter_mut().enumerate() {
            *out = u8::from_str_radix(text.get(2 * i..2 * i + 2).unwrap_or("zz"), 16)
                .map_err(|_| err("expected 64 hex digits (32 bytes)"))?;
        }
        Ok(Self(key))
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `bytes` to a new file at `path`, mode 0600, synced.
fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The process's effective uid: the owner of `/proc/self` (Linux); `None` elsewhere.
#[cfg(unix)]
fn effective_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_secrets_are_stable_per_purpose_and_differ_between_purposes() {
        let a = Kek::from_hex(&"11".repeat(32), "test").expect("kek");
        let b = Kek::from_hex(&"11".repeat(32), "test").expect("same kek");
        let c = Kek::from_hex(&"22".repeat(32), "test").expect("other kek");
        assert_eq!(
            *a.derive("acme-nonce"),
            *b.derive("acme-nonce"),
            "every replica agrees"
        );
        assert_ne!(*a.derive("acme-nonce"), *a.derive("other"));
        assert_ne!(*a.derive("acme-nonce"), *c.derive("acme-nonce"));
        assert_ne!(*a.derive("acme-nonce"), [0u8; 32]);
        assert_ne!(
            a.derive("acme-nonce").as_slice(),
            a.0.as_slice(),
            "not the KEK itself"
        );
    }

    #[test]
    fn creates_with_owner_only_mode_and_reloads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kek");
        let a = Kek::load_or_create(&path).expect("create");
        let b = Kek::load_or_create(&path).expect("reload");
        assert_eq!(a.0.as_ref(), b.0.as_ref());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            let e = Kek::load_or_create(&path).expect_err("world-readable KEK must be refused");
            assert!(e.to_string().contains("chmod 600"), "{e}");
        }
    }

    #[test]
    fn creation_is_atomic_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kek.key");
        let a = Kek::load_or_create(&path).expect("create");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        assert_eq!(names, vec!["kek.key".to_owned()]);
        assert_eq!(std::fs::read(&path).expect("read").len(), 32);
        let b = Kek::load(&path).expect("load");
        assert_eq!(a.0.as_ref(), b.0.as_ref());
    }

    #[cfg(unix)]
    #[test]
    fn a_kek_owned_by_another_user_is_refused() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kek.key");
        Kek::load_or_create(&path).expect("create");
        let me = effective_uid().expect("uid");
        assert_eq!(std::fs::metadata(&path).expect("meta").uid(), me);
        if me == 0 {
            // root can give the file away: chown to nobody and expect a refusal
            let status = std::process::Command::new("chown")
                .arg("65534")
                .arg(&path)
                .status()
                .expect("chown");
            assert!(status.success());
            let e = Kek::load(&path).expect_err("another user's KEK");
            assert!(e.to_string().contains("owned by uid 65534"), "{e}");
        }
    }

    #[test]
    fn hex_keks_are_exact() {
        let k = Kek::from_hex(&"ab".repeat(32), "TRUSTBOX_KEK").expect("hex");
        assert_eq!(k.0.as_ref(), &[0xab; 32]);
        for bad in ["", "ab", &"zz".repeat(32), &"ab".repeat(33)] {
            let e = Kek::from_hex(bad, "TRUSTBOX_KEK").expect_err(bad);
            assert!(e.to_string().contains("TRUSTBOX_KEK"), "{e}");
            assert!(!e.to_string().contains("abab"), "no key material in errors");
        }
    }

    #[test]
    fn wrong_size_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kek");
        std::fs::write(&path, b"short").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        assert!(Kek::load_or_create(&path).is_err());
    }
}
