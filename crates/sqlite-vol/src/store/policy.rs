//! How backups are sent off-site, from the settings: whether a place of another lineage may be adopted,
//! and the age keys that encrypt and decrypt them (see [`super::crypt`]).

use std::path::PathBuf;

use super::crypt;
use crate::{Result, Settings};

/// How backups are sent to (and brought back from) a place.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct Policy {
    /// Adopt a place whose lineage marker names another database (logged) instead of refusing it.
    pub adopt: bool,
    /// Encrypt what is sent to these recipients; none: send it as it is.
    pub(crate) recipients: Vec<age::x25519::Recipient>,
    /// The age identity file that decrypts encrypted backups.
    pub identity: Option<PathBuf>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("adopt", &self.adopt)
            .field("recipients", &self.recipients.len())
            .field("identity", &self.identity)
            .finish()
    }
}

impl Policy {
    /// The policy the settings ask for.
    ///
    /// # Errors
    /// [`crate::Error::Config`] for a recipient that is not an age X25519 public key.
    pub fn from_settings(s: &Settings) -> Result<Policy> {
        let mut p = Policy {
            adopt: s.backup_adopt.unwrap_or(false),
            identity: s.backup_identity.clone(),
            ..Policy::default()
        };
        if let Some(r) = &s.backup_recipients {
            p = p.encrypt_to(r)?;
        }
        Ok(p)
    }

    /// Encrypts what is sent to these age X25519 recipients (`age1…`, comma-separated).
    ///
    /// # Errors
    /// [`crate::Error::Config`] for a recipient that is not one.
    pub fn encrypt_to(mut self, recipients: &str) -> Result<Policy> {
        self.recipients = crypt::parse_recipients(recipients)?;
        Ok(self)
    }

    /// Decrypts encrypted backups with the identities of this age identity file.
    pub fn decrypt_with(mut self, identity: impl Into<PathBuf>) -> Policy {
        self.identity = Some(identity.into());
        self
    }

    /// Whether backups sent with this policy are encrypted.
    pub fn encrypts(&self) -> bool {
        !self.recipients.is_empty()
    }

    /// The identities that decrypt the encrypted backup `backup` (named in errors).
    pub(crate) fn identities(&self, backup: &str) -> Result<Vec<age::x25519::Identity>> {
        match &self.identity {
            Some(path) => crypt::read_identities(path),
            None => Err(crypt::no_identity(backup)),
        }
    }
}
