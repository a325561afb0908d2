//! Several destinations: every backup goes to each place in `SQLITE_VOL_BACKUP_TO` (comma-separated), each
//! with its own lineage, fencing and retention, and one failing stops none of the others.
//!
//! [`Destinations::send`] tries every place in order, then records one outcome beside the local backup (what
//! `status`, `doctor` and the metrics read): ok when every place got it, else the places that failed and
//! why. Its error, when some failed, is [`Error::SomeDestinationsFailed`] naming them (with one place, that
//! place's own error), returned only after the others were sent.

use std::path::Path;

use super::{attempt, pruned_after, Place, Policy, Sent};
use crate::manifest::Manifest;
use crate::{fsx, Error, Result, Settings};

/// The places every backup is sent to, and how.
#[derive(Debug, Default)]
pub struct Destinations {
    /// The places, in the order given.
    pub places: Vec<Place>,
    /// Adoption and encryption, the same for each.
    pub policy: Policy,
}

impl Destinations {
    /// Parses comma-separated places (folders or `s3://bucket/prefix`; see [`Place::parse`]).
    ///
    /// # Errors
    /// [`Error::Config`] for a place that cannot be parsed, or the same place given twice.
    pub fn parse(list: &str, policy: Policy) -> Result<Destinations> {
        let mut places: Vec<Place> = Vec::new();
        for one in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let place = Place::parse(one)?;
            if places.iter().any(|p| p.describe() == place.describe()) {
                return Err(Error::Config {
                    variable: crate::settings::BACKUP_TO.into(),
                    value: list.into(),
                    reason: format!("{one} is given twice; give each place once"),
                });
            }
            places.push(place);
        }
        Ok(Destinations { places, policy })
    }

    /// The destinations the settings ask for (`backup_to`, with the [`Policy`] of the settings); none when
    /// `backup_to` is unset.
    ///
    /// # Errors
    /// As [`Destinations::parse`] and [`Policy::from_settings`].
    pub fn from_settings(s: &Settings) -> Result<Destinations> {
        let policy = Policy::from_settings(s)?;
        match &s.backup_to {
            Some(to) => Destinations::parse(to, policy),
            None => Ok(Destinations {
                places: Vec::new(),
                policy,
            }),
        }
    }

    /// True when there is no place.
    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    /// The places, comma-separated, for messages.
    pub fn describe(&self) -> String {
        self.places
            .iter()
            .map(Place::describe)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Sends the backup `m` to every place (each checked for lineage and fencing, then pruned to `keep`
    /// backups of `app`), whatever happens to the others. Returns what each place got.
    ///
    /// # Errors
    /// With one place, its own error (as [`super::send_with`]); with several, after every place was tried,
    /// [`Error::SomeDestinationsFailed`] naming each place that failed and why.
    pub fn send(&self, m: Manifest, app: &str, keep: Option<usize>) -> Result<Vec<Sent>> {
        let started = std::time::Instant::now();
        let name = fsx::file_name(&m.path);
        let mut sent = Vec::new();
        let mut failed: Vec<(String, Error)> = Vec::new();
        for place in &self.places {
            let one = attempt(place, &m, app, &self.policy)
                .and_then(|(to, manifest)| pruned_after(place, app, keep, to, manifest));
            match one {
                Ok(s) => sent.push(s),
                Err(e) => {
                    tracing::error!(error = %e, to = %place, backup = %m.path.display(),
                        "sending the backup to this destination failed; the others still get it");
                    failed.push((place.describe(), e));
                }
            }
        }
        let took = started.elapsed().as_millis() as u64;
        let at = self
            .places
            .iter()
            .map(|p| p.location_of(&name))
            .collect::<Vec<_>>()
            .join(", ");
        let detail = if failed.is_empty() {
            "ok".to_string()
        } else {
            summary(&failed, sent.len(), self.places.len())
        };
        let outcome = crate::record::Outcome::now(at, failed.is_empty(), took, detail);
        let dir = m.path.parent().unwrap_or(Path::new("."));
        if let Err(e) = crate::record::note(dir, app, crate::record::Kind::Offsite, outcome) {
            tracing::warn!(error = %e, "could not record the off-site send's outcome");
        }
        if failed.is_empty() {
            return Ok(sent);
        }
        if self.places.len() == 1 {
            return Err(failed.remove(0).1);
        }
        Err(Error::SomeDestinationsFailed {
            sent: sent.len(),
            total: self.places.len(),
            failed: failed
                .iter()
                .map(|(p, e)| format!("{p} ({e})"))
                .collect::<Vec<_>>()
                .join("; "),
        })
    }
}

/// What a partly failed send says in the record.
fn summary(failed: &[(String, Error)], sent: usize, total: usize) -> String {
    let each = failed
        .iter()
        .map(|(p, e)| format!("FAILED {p}: {e}"))
        .collect::<Vec<_>>()
        .join("; ");
    format!("reached {sent} of {total} destinations; {each}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_comma_separated_and_given_once() -> Result<()> {
        let d = Destinations::parse("/a, /b ,", Policy::default())?;
        assert_eq!(d.describe(), "/a, /b");
        assert!(Destinations::parse("/a,/a", Policy::default()).is_err());
        assert!(Destinations::parse("ftp://x", Policy::default()).is_err());
        Ok(())
    }
}
