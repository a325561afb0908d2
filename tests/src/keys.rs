//! age X25519 keys for the encrypted off-site tests: a fresh identity file (mode 0600) and its recipient.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use age::secrecy::ExposeSecret;

/// An identity in a file of its own folder, and its public key.
pub struct Keys {
    /// The `age1…` recipient.
    pub recipient: String,
    /// The identity file (`AGE-SECRET-KEY-1…`).
    pub identity: PathBuf,
    _dir: tempfile::TempDir,
}

impl Keys {
    /// A new, random identity written as age-keygen writes one.
    pub fn new() -> Keys {
        let id = age::x25519::Identity::generate();
        let dir = tempfile::tempdir().expect("key folder");
        let identity = dir.path().join("backup.key");
        let recipient = id.to_public().to_string();
        let text = format!(
            "# public key: {recipient}\n{}\n",
            id.to_string().expose_secret()
        );
        std::fs::write(&identity, text).expect("write identity");
        std::fs::set_permissions(&identity, std::fs::Permissions::from_mode(0o600))
            .expect("chmod identity");
        Keys {
            recipient,
            identity,
            _dir: dir,
        }
    }
}

impl Default for Keys {
    fn default() -> Keys {
        Keys::new()
    }
}
