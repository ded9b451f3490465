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
    /// Loads the KEK at `path`, creating it (mode 0600) if it does not exist.
    ///
    /// Fails closed: a file that others can read, or of the wrong size, is an error.
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
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(path).map_err(|e| err(e.to_string()))?;
            f.write_all(key.as_ref()).map_err(|e| err(e.to_string()))?;
            f.sync_all().map_err(|e| err(e.to_string()))?;
            return Ok(Self(key));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|e| err(e.to_string()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(err(format!(
                    "permissions are {:o}; it must be readable by its owner only (chmod 600)",
                    mode & 0o777
                )));
            }
        }
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| err(e.to_string()))?);
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| err(format!("expected 32 bytes, found {}", bytes.len())))?;
        Ok(Self(Zeroizing::new(key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
