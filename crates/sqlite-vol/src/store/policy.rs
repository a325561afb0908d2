//! How backups are sent off-site, from the settings: whether a place of another lineage may be adopted.

use crate::{Result, Settings};

/// How backups are sent to (and brought back from) a place.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Policy {
    /// Adopt a place whose lineage marker names another database (logged) instead of refusing it.
    pub adopt: bool,
}

impl Policy {
    /// The policy the settings ask for.
    ///
    /// # Errors
    /// None yet; settings that cannot be used will be refused here.
    pub fn from_settings(s: &Settings) -> Result<Policy> {
        Ok(Policy {
            adopt: s.backup_adopt.unwrap_or(false),
        })
    }
}
