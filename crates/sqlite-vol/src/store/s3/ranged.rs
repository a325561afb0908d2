//! An unencrypted backup downloaded in parallel ranged parts, in bounded memory.
//!
//! A few ranged GETs are in flight at once on the client's runtime; parts are taken in order as they
//! complete, each written at its offset (`write_all_at`) and hashed on a blocking thread while the next
//! ones arrive, so the sha256 is the file's in order and at most `PARALLEL_GETS` + 1 parts are ever held.
//! The first part's answer says how large the object is: one whose size is not the manifest's is refused
//! before anything else is read. The file is written back as it grows (`fsx::flushing_while`) and fsynced
//! at the end. (Encrypted backups stay one sequential stream: age's STREAM decrypts in order.)

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use object_store::path::Path as Key;
use object_store::{GetOptions, ObjectStore};
use sha2::Digest;

use super::error::remote_error;
use super::{Remote, GET_PART, PARALLEL_GETS};
use crate::{fsx, Error, Result};

/// Downloads the `size` bytes of object `key` (at `url`) into the new file `to`; returns the size and hex
/// sha256 of what was written. `fix` ends a refusal. The caller removes `to` on failure.
///
/// # Errors
/// [`Error::Remote`] when the store fails; [`Error::BadBackup`] when the object is not `size` bytes;
/// [`Error::Io`] / [`Error::NoSpace`] locally.
pub(super) fn fetch(
    remote: &Remote,
    key: &Key,
    url: &str,
    size: u64,
    to: &Path,
    fix: &str,
) -> Result<(u64, String)> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(|e| Error::io("writing download", to, e))?;
    let file = Arc::new(file);
    let sha256 = fsx::flushing_while(&file, || {
        remote.block(parts(remote, key, url, size, &file, to, fix))
    })?;
    file.sync_all()
        .map_err(|e| Error::io("writing download", to, e))?;
    Ok((size, sha256))
}

/// The ranged GETs, taken in order, written and hashed; returns the hex sha256.
async fn parts(
    remote: &Remote,
    key: &Key,
    url: &str,
    size: u64,
    file: &Arc<File>,
    to: &Path,
    fix: &str,
) -> Result<String> {
    let refused = |reason: String| Error::BadBackup {
        path: PathBuf::from(url),
        reason: format!("{reason}: it is truncated or was replaced; nothing was kept. {fix}"),
    };
    let store = &remote.store;
    let ranges = (0..size.div_ceil(GET_PART)).map(|i| i * GET_PART..((i + 1) * GET_PART).min(size));
    let mut arriving = futures_util::stream::iter(ranges)
        .map(|r| {
            let refused = &refused;
            async move { part(store, key, url, size, r, refused).await }
        })
        .buffered(PARALLEL_GETS);
    let joined = |j: std::result::Result<std::io::Result<sha2::Sha256>, tokio::task::JoinError>| {
        j.unwrap_or_else(|e| Err(std::io::Error::other(e)))
            .map_err(|e| Error::io("writing download", to, e))
    };
    // The hash travels with each part to the blocking thread that writes it and comes back with it; the
    // next part is awaited while the previous one is written, so the GETs keep flowing.
    let mut h = sha2::Sha256::new();
    let mut writing: Option<tokio::task::JoinHandle<std::io::Result<sha2::Sha256>>> = None;
    loop {
        let written = async {
            match writing.take() {
                Some(w) => joined(w.await).map(Some),
                None => Ok(None),
            }
        };
        let (next, written) = futures_util::future::join(arriving.next(), written).await;
        if let Some(back) = written? {
            h = back;
        }
        let Some(part) = next else {
            break;
        };
        let (offset, bytes) = part?;
        let mut hashing = std::mem::take(&mut h);
        let file = Arc::clone(file);
        writing = Some(tokio::task::spawn_blocking(move || {
            file.write_all_at(bytes.as_ref(), offset)?;
            hashing.update(bytes.as_ref());
            Ok(hashing)
        }));
    }
    Ok(hex::encode(h.finalize()))
}

/// One ranged GET, checked for its length; the first also for the object's size. Returns its offset and
/// bytes.
async fn part(
    store: &object_store::aws::AmazonS3,
    key: &Key,
    url: &str,
    size: u64,
    r: std::ops::Range<u64>,
    refused: &impl Fn(String) -> Error,
) -> Result<(u64, impl AsRef<[u8]> + Send + 'static)> {
    let got = if r.start == 0 {
        // The first answer carries the object's size: refuse another size before reading more.
        let opts = GetOptions {
            range: Some(r.clone().into()),
            ..GetOptions::default()
        };
        let answer = store
            .get_opts(key, opts)
            .await
            .map_err(|e| remote_error("downloading", url, &e))?;
        if answer.meta.size != size {
            return Err(refused(format!(
                "the stored object is {} bytes, its manifest says {size}",
                answer.meta.size
            )));
        }
        answer.bytes().await
    } else {
        store.get_range(key, r.clone()).await
    };
    let bytes = got.map_err(|e| remote_error("downloading", url, &e))?;
    if bytes.as_ref().len() as u64 != r.end - r.start {
        return Err(refused(format!(
            "the stored object ended before the {size} bytes its manifest says"
        )));
    }
    Ok((r.start, bytes))
}
