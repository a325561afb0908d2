//! An S3-compatible bucket used as a backup folder, through the `object_store` crate.
//!
//! `s3://bucket/prefix` names the folder; the client is configured from the usual `AWS_*` variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, …) plus
//! `AWS_ENDPOINT_URL` for any other S3-compatible store (MinIO, R2, Garage, moto). A backup travels as two
//! objects with the local names: the database file, uploaded in 8 MiB multipart parts while its sha256 is
//! recomputed, then its manifest, uploaded last and only when the uploaded size and hash match the
//! manifest (with `recipients`, the object is the backup's age ciphertext, encrypted as it is read; see
//! `crypt`). A backup is only ever listed when its manifest is there, so an interrupted upload (whose
//! multipart parts S3 never shows as an object, or a data object without its manifest) is never taken for a
//! backup. Downloads are streamed to a hidden file (or straight into a restore's staged file), hashed on the
//! way and compared with the manifest before they get their name (decrypted on the way when the manifest
//! says the object is encrypted); an object whose size is not the manifest's is refused at the first answer. The calls are blocking: each runs on a small runtime of its own, on a scoped thread,
//! so they work the same from plain threads and from inside an async service.

use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::WriteMultipart;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, PutPayload, RetryConfig};

mod error;
mod head;
mod marker;

use error::remote_error;

use super::{crypt, stage, Fetched, Policy};
use crate::manifest::Manifest;
use crate::{Error, Result};

/// Size of one multipart part (S3 wants at least 5 MiB for every part but the last).
const PART: usize = 8 << 20;
/// Parts in flight at once.
const PARTS_IN_FLIGHT: usize = 4;
/// How much of the backup is read (and encrypted) at a time; the parts are cut from these pieces. A piece
/// lives until every part cut from it is sent, so the peak memory of an upload is the parts in flight plus
/// the pieces that straddle them. Pieces of a part's size (8 MiB) made that peak 70-80 MiB at 64 MiB and
/// 78-88 MiB at 1 GiB (how many pieces happened to be alive at once, more likely the longer it runs);
/// 1 MiB pieces, 49-51 MiB at both.
const PIECE: usize = 1 << 20;

/// A bucket and prefix holding backups.
pub struct Remote {
    url: String,
    prefix: String,
    store: AmazonS3,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("url", &self.url).finish()
    }
}

/// One object in the folder.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    pub name: String,
    pub bytes: u64,
}

impl Remote {
    /// Parses `s3://bucket[/prefix]` and builds a client from the environment. Nothing is sent yet.
    ///
    /// # Errors
    /// [`Error::Config`] for a malformed URL, plain HTTP to a non-loopback endpoint without
    /// `AWS_ALLOW_HTTP=true`, or a custom endpoint with no credentials.
    pub fn parse(url: &str) -> Result<Remote> {
        let bad = |reason: &str| Error::Config {
            variable: "backup location".into(),
            value: url.into(),
            reason: reason.into(),
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("an object-store location starts with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !bucket_ok {
            return Err(bad(
                "the bucket name must be 3 to 63 lowercase letters, digits, dots or hyphens: \
                 s3://bucket/prefix",
            ));
        }
        let prefix = prefix.trim_matches('/').to_string();
        if !prefix.is_empty() && Key::parse(&prefix).is_err() {
            return Err(bad(
                "the prefix has an empty or '.'/'..' segment; use s3://bucket/some/prefix",
            ));
        }
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let endpoint = env("AWS_ENDPOINT_URL").or_else(|| env("AWS_ENDPOINT"));
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        let mut allow_http = false;
        if let Some(ep) = &endpoint {
            if let Some(host) = ep.strip_prefix("http://") {
                let loopback = ["127.", "localhost", "[::1]"]
                    .iter()
                    .any(|l| host.starts_with(l));
                let allowed = env("AWS_ALLOW_HTTP").is_some_and(|v| v.eq_ignore_ascii_case("true"));
                if !loopback && !allowed {
                    return Err(Error::Config {
                        variable: "AWS_ENDPOINT_URL".into(),
                        value: ep.clone(),
                        reason: "plain HTTP would send the database and the credentials unencrypted; use an \
                                 https:// endpoint, or set AWS_ALLOW_HTTP=true if the network is private"
                            .into(),
                    });
                }
                allow_http = true;
            }
            let has_credentials = [
                "AWS_ACCESS_KEY_ID",
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            ]
            .iter()
            .any(|k| env(k).is_some());
            if !has_credentials {
                return Err(Error::Config {
                    variable: "AWS_ACCESS_KEY_ID".into(),
                    value: String::new(),
                    reason: format!(
                        "no credentials for the endpoint {ep}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                    ),
                });
            }
        }
        if env("AWS_REGION").is_none() && env("AWS_DEFAULT_REGION").is_none() {
            builder = builder.with_region("us-east-1");
        }
        let store = builder
            .with_client_options(
                // Replaces the options from_env read, so HTTP is allowed here or not at all.
                ClientOptions::new()
                    .with_allow_http(allow_http)
                    .with_connect_timeout(Duration::from_secs(10))
                    .with_timeout(Duration::from_secs(300)),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 4,
                retry_timeout: Duration::from_secs(60),
            })
            .build()
            .map_err(|e| remote_error("configuring", url, &e))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the S3 client for", url, e))?;
        Ok(Remote {
            url: url.trim_end_matches('/').to_string(),
            prefix,
            store,
            rt,
        })
    }

    /// The location as given (without a trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `s3://bucket/prefix/name`.
    pub fn url_of(&self, name: &str) -> String {
        format!("{}/{name}", self.url)
    }

    fn key(&self, name: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(name)
        } else {
            Key::from(format!("{}/{name}", self.prefix))
        }
    }

    /// Runs `f` to completion on this client's runtime, on a scoped thread (so that a caller already inside
    /// an async runtime does not block it or trip over nesting).
    fn block<T: Send>(&self, f: impl Future<Output = Result<T>> + Send) -> Result<T> {
        std::thread::scope(|s| s.spawn(|| self.rt.block_on(f)).join()).unwrap_or_else(|_| {
            Err(Error::Remote {
                action: "talking to",
                url: self.url.clone(),
                detail: "the S3 client thread panicked".into(),
                fix: "this is a bug in sqlite-vol; please report it".into(),
            })
        })
    }

    /// The objects directly in the folder (not in sub-folders).
    pub(crate) fn objects(&self) -> Result<Vec<Object>> {
        self.block(async {
            let prefix = (!self.prefix.is_empty()).then(|| Key::from(self.prefix.as_str()));
            let listed = self
                .store
                .list_with_delimiter(prefix.as_ref())
                .await
                .map_err(|e| remote_error("listing", &self.url, &e))?;
            Ok(listed
                .objects
                .into_iter()
                .filter_map(|o| {
                    Some(Object {
                        name: o.location.filename()?.to_string(),
                        bytes: o.size,
                    })
                })
                .collect())
        })
    }

    /// Reads and parses the manifest of backup `name`.
    pub(crate) fn manifest(&self, name: &str) -> Result<Manifest> {
        let url = self.url_of(&format!("{name}.json"));
        self.block(async {
            let bytes = self
                .store
                .get(&self.key(&format!("{name}.json")))
                .await
                .map_err(|e| remote_error("reading manifest", &url, &e))?
                .bytes()
                .await
                .map_err(|e| remote_error("reading manifest", &url, &e))?;
            serde_json::from_slice(&bytes).map_err(|e| Error::BadBackup {
                path: PathBuf::from(&url),
                reason: format!(
                    "its manifest is not valid JSON ({e}); delete it and upload the backup again"
                ),
            })
        })
    }

    /// Uploads the backup described by `m` (its file at `m.path`) as `name`, encrypted to `recipients` when
    /// there are any, then its manifest. Returns the data URL and the manifest as uploaded.
    ///
    /// # Errors
    /// [`Error::Remote`] when the store refuses or cannot be reached (a started multipart upload is aborted);
    /// [`Error::BadBackup`] when the file no longer matches its manifest (the uploaded object is deleted).
    pub(crate) fn upload(
        &self,
        m: &Manifest,
        name: &str,
        recipients: &[age::x25519::Recipient],
    ) -> Result<(String, Manifest)> {
        let url = self.url_of(name);
        let key = self.key(name);
        let file = m.path.as_path();
        self.block(async {
            // Read (and encrypt) as it goes: one object when it fits one part, else a multipart upload.
            let mut src = crypt::Outgoing::open(file, recipients, PIECE)?;
            let mut read = Vec::new();
            let mut size = 0;
            while size <= PART {
                let piece = src.next()?;
                if piece.is_empty() {
                    break;
                }
                size += piece.len();
                read.push(Bytes::from(piece));
            }
            if size <= PART {
                self.store
                    .put(&key, read.into_iter().collect::<PutPayload>())
                    .await
                    .map_err(|e| remote_error("uploading backup to", &url, &e))?;
            } else {
                self.put_parts(&mut src, read, &key, &url).await?;
            }
            let encrypted = src.encrypted();
            let (bytes, sha256, stored) = src.totals();
            if bytes != m.bytes || sha256 != m.sha256 {
                let _ = self.store.delete(&key).await;
                return Err(Error::BadBackup {
                    path: file.to_path_buf(),
                    reason: format!(
                        "it changed since it was taken ({bytes} bytes, sha256 {sha256}; its manifest says {} \
                         bytes, {}); nothing was left in the bucket. Take a new backup",
                        m.bytes, m.sha256
                    ),
                });
            }
            let head = self
                .store
                .head(&key)
                .await
                .map_err(|e| remote_error("checking the upload of", &url, &e))?;
            if head.size != stored {
                let _ = self.store.delete(&key).await;
                return Err(Error::Remote {
                    action: "uploading backup to",
                    url: url.clone(),
                    detail: format!("the store holds {} bytes, {stored} were sent", head.size),
                    fix: "retry; if it repeats, the store or a proxy in between truncates uploads".into(),
                });
            }
            let m = Manifest {
                encrypted,
                stored_bytes: encrypted.then_some(stored),
                ..m.clone()
            };
            let json = serde_json::to_vec_pretty(&m).unwrap_or_default();
            let manifest_url = self.url_of(&format!("{name}.json"));
            self.store
                .put(&self.key(&format!("{name}.json")), PutPayload::from(json))
                .await
                .map_err(|e| remote_error("uploading manifest to", &manifest_url, &e))?;
            Ok((url.clone(), m))
        })
    }

    /// Streams the rest of `src` up in parts after the pieces already read; aborts the upload on any
    /// failure.
    async fn put_parts(
        &self,
        src: &mut crypt::Outgoing,
        read: Vec<Bytes>,
        key: &Key,
        url: &str,
    ) -> Result<()> {
        let upload = self
            .store
            .put_multipart(key)
            .await
            .map_err(|e| remote_error("starting upload to", url, &e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        // Handed over, not copied: the writer cuts parts out of the pieces it is given.
        for piece in read {
            writer.put(piece);
        }
        loop {
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                let _ = writer.abort().await;
                return Err(remote_error("uploading backup to", url, &e));
            }
            let piece = match src.next() {
                Ok(p) => p,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e);
                }
            };
            if piece.is_empty() {
                break;
            }
            writer.put(Bytes::from(piece));
        }
        writer
            .finish()
            .await
            .map_err(|e| remote_error("finishing upload to", url, &e))?;
        Ok(())
    }

    /// Downloads backup `name` and its manifest into `dir` (a hidden name first, decrypted on the way when
    /// it is encrypted, checked against the manifest, then renamed). A file of that name already in `dir`
    /// with the same checksum is reused.
    ///
    /// # Errors
    /// [`Error::Remote`] when the store fails, [`Error::Encryption`] when it is encrypted and `policy` has no
    /// identity that opens it or its ciphertext is damaged, [`Error::BadBackup`] when the download does not
    /// match its manifest (nothing is left behind in either case), [`Error::Io`]/[`Error::NoSpace`] locally.
    pub(crate) fn download(&self, name: &str, dir: &Path, policy: &Policy) -> Result<PathBuf> {
        let m = self.manifest(name)?;
        let target = dir.join(name);
        if crate::manifest::read_manifest(&target).is_some_and(|l| l.sha256 == m.sha256)
            && crate::fsx::hash_file(&target).is_ok_and(|(n, h)| n == m.bytes && h == m.sha256)
        {
            tracing::info!(backup = %target.display(), "a local copy of the off-site backup is already here; using it");
            return Ok(target);
        }
        fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))?;
        let partial = stage::partial(dir, name);
        self.fetch_to(name, &m, &partial, policy)?;
        stage::name_plain(&partial, &target, m)?;
        Ok(target)
    }

    /// Downloads backup `name` straight into the new file `to` (decrypted on the way when it is encrypted),
    /// hashed as it arrives and compared with its manifest (returned with the size and hash). Nothing else is written: no
    /// local copy, no manifest beside `to`.
    ///
    /// # Errors
    /// As [`Remote::download`]; on any failure `to` is removed.
    pub(crate) fn download_into(&self, name: &str, to: &Path, policy: &Policy) -> Result<Fetched> {
        let m = self.manifest(name)?;
        let (bytes, sha256) = self.fetch_to(name, &m, to, policy)?;
        Ok(Fetched {
            bytes,
            sha256,
            manifest: Some(m),
        })
    }

    /// Writes the plaintext of backup `name` (manifest `m`) into the new file `partial` and compares it with
    /// `m` (see [`stage::stage`]), as one sequential stream (decrypted on the way when it is encrypted).
    ///
    /// One stream, not parallel ranged parts: measured against moto on loopback (256 MiB, first start),
    /// one stream fetched in 0.68 s, 4 ranged GETs of 8 MiB in flight in 5.9 s and of 4 MiB in 12.4 s, 8 of
    /// 4 MiB in 13.7 s (moto reads the whole object for every range).
    fn fetch_to(
        &self,
        name: &str,
        m: &Manifest,
        partial: &Path,
        policy: &Policy,
    ) -> Result<(u64, String)> {
        let url = self.url_of(name);
        let identities = match m.encrypted {
            true => Some(policy.identities(&url)?),
            false => None,
        };
        let expected = stage::Expected {
            manifest: Some(m),
            source: &url,
            what: "the downloaded bytes",
            fix: format!("Try an older backup (`sqlite-vol list {}`)", self.url),
        };
        let key = self.key(name);
        stage::stage(partial, &expected, || {
            let (bytes, sha256) =
                self.block(self.stream(&key, &url, partial, identities, &expected))?;
            Ok((bytes, sha256, ()))
        })
        .map(|(bytes, sha256, ())| (bytes, sha256))
    }

    /// One GET streamed into `partial` through [`crypt::Incoming`] (decrypted when `identities` are given);
    /// returns the plaintext's size and sha256.
    async fn stream(
        &self,
        key: &Key,
        url: &str,
        partial: &Path,
        identities: Option<Vec<age::x25519::Identity>>,
        expected: &stage::Expected<'_>,
    ) -> Result<(u64, String)> {
        let got = self
            .store
            .get(key)
            .await
            .map_err(|e| remote_error("downloading", url, &e))?;
        // The answer says how large the object is: another size than the manifest's is refused at once.
        expected.stored(got.meta.size)?;
        let mut stream = got.into_stream();
        let mut sink = crypt::Incoming::create(partial, url, identities)?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| remote_error("downloading", url, &e))?;
            sink.push(&chunk)?;
        }
        expected.stored(sink.received())?;
        sink.finish()
    }

    /// Deletes backup `name`: the manifest first, so that it stops being a backup before its data goes.
    pub(crate) fn delete(&self, name: &str, with_manifest: bool) -> Result<()> {
        self.block(async {
            if with_manifest {
                let url = self.url_of(&format!("{name}.json"));
                self.store
                    .delete(&self.key(&format!("{name}.json")))
                    .await
                    .map_err(|e| remote_error("deleting", &url, &e))?;
            }
            self.store
                .delete(&self.key(name))
                .await
                .map_err(|e| remote_error("deleting", &self.url_of(name), &e))
        })
    }
}
