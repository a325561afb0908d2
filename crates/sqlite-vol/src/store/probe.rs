//! Whether the identity given opens an encrypted backup, found from its age header alone, before a restore
//! takes over the place it is in.
//!
//! A restore from a place takes the next writer generation there ([`super::lineage::take_over`]), which
//! fences out the instance that wrote before. An identity that is not one of an encrypted backup's
//! recipients would otherwise be found only while the download is decrypted, after the takeover: the real
//! instance would be fenced out for a restore that cannot finish. So [`check_identity`] reads only the
//! header of the stored object (a ranged GET of its first KiB from a bucket, the first bytes of the file in
//! a folder) and checks that one of the identities unwraps its file key (`age::Decryptor::new` reads the
//! header and nonce, `decrypt` unwraps the file key and checks the header's MAC, no payload is read).

use std::io::Read;

use age::x25519::Identity;

use super::{Place, Policy};
use crate::{settings, Error, Result};

/// Bytes read first: an age header to a handful of X25519 recipients is well under this.
const FIRST: u64 = 8 << 10;
/// The most read for a header (hundreds of recipients).
const MOST: u64 = 1 << 20;

/// Checks, before a restore of `app` from `place` takes over, that the policy's identity opens backup
/// `name` (with `None`, the newest listed) when it is encrypted. Reads its manifest and the first bytes of
/// the stored object, nothing else; a plaintext backup, or no backup at all, passes.
///
/// # Errors
/// [`Error::Encryption`] when the backup is encrypted and no identity was given, none of the identities is
/// among its recipients, or its header is damaged; [`Error::Remote`] / [`Error::Io`] when the place cannot
/// be read. Nothing is downloaded or taken over.
pub fn check_identity(place: &Place, app: &str, name: Option<&str>, policy: &Policy) -> Result<()> {
    let name = match name {
        Some(n) => n.to_string(),
        None => match super::list(place, app)?.backups.into_iter().next() {
            Some(b) => b.name,
            None => return Ok(()),
        },
    };
    let Some(m) = super::manifest(place, &name)?.filter(|m| m.encrypted) else {
        return Ok(());
    };
    let location = place.location_of(&name);
    let identities = policy.identities(&location)?;
    let stored = m.stored_bytes.unwrap_or(MOST);
    let mut want = FIRST.min(stored);
    loop {
        let head = read_head(place, &name, want)?;
        let got = head.len() as u64;
        match opens(&head, &identities) {
            // The header goes on past what was read: read more.
            Err(age::DecryptError::Io(e))
                if e.kind() == std::io::ErrorKind::UnexpectedEof
                    && got == want
                    && want < MOST.min(stored) =>
            {
                want = MOST.min(stored);
            }
            Ok(()) => return Ok(()),
            Err(age::DecryptError::NoMatchingKeys) => {
                return Err(not_a_recipient(place, &location, policy, &identities))
            }
            Err(e) => return Err(damaged_header(place, &location, &e)),
        }
    }
}

/// Whether one of `identities` unwraps the file key of the age file that starts with `head`.
fn opens(head: &[u8], identities: &[Identity]) -> std::result::Result<(), age::DecryptError> {
    age::Decryptor::new(head)?
        .decrypt(identities.iter().map(|i| i as &dyn age::Identity))
        .map(drop)
}

/// The first `n` bytes (fewer when it is shorter) of the stored object `name`.
fn read_head(place: &Place, name: &str, n: u64) -> Result<Vec<u8>> {
    match place {
        Place::Dir(dir) => {
            let file = dir.join(name);
            let mut head = Vec::new();
            std::fs::File::open(&file)
                .and_then(|f| f.take(n).read_to_end(&mut head))
                .map_err(|e| Error::io("reading the header of backup", &file, e))?;
            Ok(head)
        }
        #[cfg(feature = "s3")]
        Place::S3(r) => r.get_head(name, n),
    }
}

fn not_a_recipient(place: &Place, location: &str, policy: &Policy, ids: &[Identity]) -> Error {
    let file = policy
        .identity
        .as_ref()
        .map_or_else(|| "the identity file".into(), |p| p.display().to_string());
    let keys: Vec<String> = ids.iter().map(|i| i.to_public().to_string()).collect();
    Error::Encryption {
        path: location.into(),
        reason: format!(
            "none of the identities given opens it: {file} holds {}, which is not among the recipients \
             this backup in {place} was encrypted to; nothing was taken over or downloaded. Set {} (or \
             --identity) to the identity file that matches {} of the instance that made it",
            keys.join(", "),
            settings::BACKUP_IDENTITY,
            settings::BACKUP_RECIPIENTS,
        ),
    }
}

fn damaged_header(place: &Place, location: &str, e: &age::DecryptError) -> Error {
    Error::Encryption {
        path: location.into(),
        reason: format!(
            "its age header is damaged, truncated or was tampered with ({e}); nothing was taken over or \
             downloaded. Try an older backup (`sqlite-vol list {place}`)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encrypted(to: &[&Identity], data: &[u8]) -> Vec<u8> {
        let keys: Vec<_> = to.iter().map(|i| i.to_public()).collect();
        let enc = age::Encryptor::with_recipients(keys.iter().map(|r| r as _)).expect("recipients");
        let mut out = Vec::new();
        let mut w = enc.wrap_output(&mut out).expect("wrap");
        std::io::Write::write_all(&mut w, data).expect("write");
        w.finish().expect("finish");
        out
    }

    #[test]
    fn the_header_alone_tells_a_recipient_from_a_stranger() {
        let (a, b) = (Identity::generate(), Identity::generate());
        let file = encrypted(&[&a], &vec![7u8; 300_000]);
        let head = &file[..FIRST as usize];
        assert!(opens(head, std::slice::from_ref(&a)).is_ok());
        assert!(opens(head, &[b.clone(), a]).is_ok());
        assert!(matches!(
            opens(head, &[b]),
            Err(age::DecryptError::NoMatchingKeys)
        ));
    }

    #[test]
    fn a_header_cut_short_asks_for_more() {
        let a = Identity::generate();
        let file = encrypted(&[&a], b"rows");
        assert!(matches!(
            opens(&file[..40], &[a]),
            Err(age::DecryptError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof
        ));
    }

    #[test]
    fn a_folder_backup_with_a_wrong_identity_is_refused_naming_the_fix() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", "/tmp", e))?;
        let (a, b) = (Identity::generate(), Identity::generate());
        let name = "app-20240101T000000Z.db";
        std::fs::write(dir.path().join(name), encrypted(&[&a], b"rows"))
            .map_err(|e| Error::io("w", dir.path(), e))?;
        let head = read_head(&Place::Dir(dir.path().into()), name, FIRST)?;
        assert!(opens(&head, &[a]).is_ok());
        let policy = Policy::default().decrypt_with("/keys/other.key");
        let err = not_a_recipient(
            &Place::Dir(dir.path().into()),
            "x",
            &policy,
            std::slice::from_ref(&b),
        );
        let text = err.to_string();
        for what in [
            "/keys/other.key",
            &b.to_public().to_string(),
            settings::BACKUP_RECIPIENTS,
        ] {
            assert!(text.contains(what), "{what}: {text}");
        }
        Ok(())
    }
}
