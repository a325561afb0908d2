//! Client-side encryption of backups sent to a place, in the age format, streaming both ways.
//!
//! A backup is encrypted to one or more X25519 recipients (`age1…`, `SQLITE_VOL_BACKUP_RECIPIENTS`) as it is
//! read for upload or copy ([`Outgoing`]: the plaintext is hashed on the way, so the manifest's `bytes` and
//! `sha256` stay the plaintext's and `stored_bytes` is the ciphertext's), and decrypted with the identities
//! of an age identity file (`SQLITE_VOL_BACKUP_IDENTITY`) into the staged file as it arrives ([`Incoming`]:
//! the ciphertext is fed to a decrypting thread through a bounded channel, so neither side ever holds the
//! whole file). age authenticates every 64 KiB chunk and the end of the stream, so a flipped byte or a
//! truncated object fails before anything is named; the plaintext hash is then compared with the manifest as
//! for any backup. The manifest itself is not encrypted: it holds sizes, hashes, ids and times, no data.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use age::x25519::{Identity, Recipient};
use sha2::Digest;

use crate::{fsx, settings, Error, Result};

/// Chunks of ciphertext waiting for the decrypting thread.
const IN_FLIGHT: usize = 4;

/// Plaintext buffers going round between the decrypting thread and the one that hashes and writes.
const PLAIN_BUFFERS: usize = 4;

/// The size of each of them.
const PLAIN_BUFFER: usize = 1 << 20;

/// Parses comma-separated age X25519 recipients (`age1…`).
///
/// # Errors
/// [`Error::Config`] naming the recipient that is not one.
pub(crate) fn parse_recipients(list: &str) -> Result<Vec<Recipient>> {
    let mut out = Vec::new();
    for r in list.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        out.push(r.parse::<Recipient>().map_err(|e| Error::Config {
            variable: settings::BACKUP_RECIPIENTS.into(),
            value: r.into(),
            reason: format!(
                "not an age X25519 recipient ({e}): give public keys `age1…` as printed by `age-keygen -y \
                 IDENTITY_FILE`, separated by commas"
            ),
        })?);
    }
    if out.is_empty() {
        return Err(Error::Config {
            variable: settings::BACKUP_RECIPIENTS.into(),
            value: list.into(),
            reason:
                "no recipient given: give public keys `age1…`, separated by commas, or unset it"
                    .into(),
        });
    }
    Ok(out)
}

/// Reads the X25519 identities (`AGE-SECRET-KEY-1…` lines; `#` comments) of an age identity file.
///
/// # Errors
/// [`Error::Io`] when it cannot be read, [`Error::Config`] when a line is not an identity (the line itself
/// is never printed: it may be a secret) or there is none.
pub(crate) fn read_identities(path: &Path) -> Result<Vec<Identity>> {
    let f = File::open(path).map_err(|e| Error::io("reading the age identity file", path, e))?;
    let bad = |reason: String| Error::Config {
        variable: settings::BACKUP_IDENTITY.into(),
        value: path.display().to_string(),
        reason,
    };
    let mut out = Vec::new();
    for (i, line) in io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| Error::io("reading the age identity file", path, e))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(line.parse::<Identity>().map_err(|_| {
            bad(format!(
                "line {} is not an age X25519 identity (AGE-SECRET-KEY-1…); give a file made by age-keygen",
                i + 1
            ))
        })?);
    }
    if out.is_empty() {
        return Err(bad(
            "it holds no identity (AGE-SECRET-KEY-1…); give a file made by age-keygen".into(),
        ));
    }
    Ok(out)
}

/// The error for a backup that is encrypted when no identity was given.
pub(crate) fn no_identity(backup: &str) -> Error {
    Error::Encryption {
        path: backup.into(),
        reason: format!(
            "it is encrypted, and no identity was given to decrypt it: set {} (or --identity) to the age \
             identity file whose public key it was encrypted to; nothing was fetched",
            settings::BACKUP_IDENTITY
        ),
    }
}

/// What the store's writer appends to; drained by [`Outgoing::next`].
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Sink {
    /// The bytes written so far, leaving room for `next` more: a piece grown by doubling from empty ends with
    /// twice its size reserved, and is copied on the way there.
    fn take(&self, next: usize) -> Vec<u8> {
        self.0
            .lock()
            .map(|mut v| std::mem::replace(&mut *v, Vec::with_capacity(next)))
            .unwrap_or_default()
    }
}

/// Room for the ciphertext of `chunk` bytes of plaintext: age adds 16 bytes to every 64 KiB, and a header
/// of a few hundred bytes to the first piece.
fn ciphertext_room(chunk: usize) -> usize {
    chunk + chunk / 4096 + 4096
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A backup file read as the bytes to store, in pieces: its plaintext, or its age ciphertext; the
/// plaintext is hashed on the way.
pub(crate) struct Outgoing {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
    hash: sha2::Sha256,
    plain: u64,
    stored: u64,
    sink: Sink,
    age: Option<age::stream::StreamWriter<Sink>>,
    encrypted: bool,
    done: bool,
}

impl Outgoing {
    /// Opens `path` to be read in pieces of about `chunk` bytes, encrypted to `recipients` (none: as it is).
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be opened.
    pub(crate) fn open(path: &Path, recipients: &[Recipient], chunk: usize) -> Result<Outgoing> {
        let file = File::open(path).map_err(|e| Error::io("reading backup", path, e))?;
        let sink = Sink(Arc::new(Mutex::new(Vec::with_capacity(ciphertext_room(
            chunk,
        )))));
        let age = if recipients.is_empty() {
            None
        } else {
            let enc = age::Encryptor::with_recipients(recipients.iter().map(|r| r as _)).map_err(
                |e| Error::Encryption {
                    path: path.into(),
                    reason: format!("cannot encrypt to the recipients given ({e})"),
                },
            )?;
            Some(
                enc.wrap_output(sink.clone())
                    .map_err(|e| Error::io("encrypting backup", path, e))?,
            )
        };
        Ok(Outgoing {
            file,
            path: path.into(),
            buf: vec![0u8; chunk],
            hash: sha2::Sha256::new(),
            plain: 0,
            stored: 0,
            sink,
            encrypted: age.is_some(),
            age,
            done: false,
        })
    }

    /// The next bytes to store; empty once everything was given.
    ///
    /// # Errors
    /// [`Error::Io`] when reading or encrypting fails.
    pub(crate) fn next(&mut self) -> Result<Vec<u8>> {
        let io = |e| Error::io("reading backup", &self.path, e);
        while !self.done {
            let chunk = self.buf.len();
            let out = match &mut self.age {
                None => {
                    // As it is: read straight into the piece.
                    let mut out = vec![0u8; chunk];
                    let n = read_full(&mut self.file, &mut out).map_err(io)?;
                    out.truncate(n);
                    self.done = n < chunk;
                    self.hash.update(&out);
                    self.plain += n as u64;
                    out
                }
                Some(w) => {
                    let n = read_full(&mut self.file, &mut self.buf).map_err(io)?;
                    self.done = n < chunk;
                    self.hash.update(&self.buf[..n]);
                    self.plain += n as u64;
                    w.write_all(&self.buf[..n]).map_err(io)?;
                    if self.done {
                        if let Some(w) = self.age.take() {
                            w.finish().map_err(io)?;
                        }
                    }
                    self.sink.take(ciphertext_room(chunk))
                }
            };
            if !out.is_empty() {
                self.stored += out.len() as u64;
                return Ok(out);
            }
        }
        Ok(Vec::new())
    }

    /// Whether what is stored is ciphertext.
    pub(crate) fn encrypted(&self) -> bool {
        self.encrypted
    }

    /// The plaintext's size and hex sha256, and the size of what was stored.
    pub(crate) fn totals(self) -> (u64, String, u64) {
        (self.plain, hex::encode(self.hash.finalize()), self.stored)
    }
}

/// Reads until `buf` is full or the file ends.
pub(crate) fn read_full(f: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// What the staged plaintext came to: its size and hex sha256.
pub(crate) type Staged = (u64, String);

/// A staged file written from the stored bytes as they arrive: as they are, or decrypted.
pub(crate) struct Incoming {
    partial: PathBuf,
    received: u64,
    way: Way,
}

enum Way {
    Plain {
        out: File,
        hash: sha2::Sha256,
    },
    Age {
        tx: Option<SyncSender<Vec<u8>>>,
        thread: Option<JoinHandle<Result<Staged>>>,
        /// Bytes gathered until a batch of [`BATCH`] is handed over: the network's chunks are a few KiB.
        batch: Vec<u8>,
    },
}

/// How much ciphertext goes to the decrypting thread at a time.
const BATCH: usize = 1 << 20;

impl Incoming {
    /// Creates `partial` (mode 0600) for the backup known as `source`; with `identities`, the bytes pushed
    /// are age ciphertext and are decrypted into it.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be created.
    pub(crate) fn create(
        partial: &Path,
        source: &str,
        identities: Option<Vec<Identity>>,
    ) -> Result<Incoming> {
        let out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(partial)
            .map_err(|e| Error::io("writing download", partial, e))?;
        let way = match identities {
            None => Way::Plain {
                out,
                hash: sha2::Sha256::new(),
            },
            Some(ids) => {
                let (tx, rx) = sync_channel(IN_FLIGHT);
                let (p, s) = (partial.to_path_buf(), source.to_string());
                let thread = std::thread::Builder::new()
                    .name("sqlite-vol-decrypt".into())
                    .spawn(move || decrypt(rx, &ids, out, &p, &s))
                    .map_err(|e| Error::io("starting to decrypt into", partial, e))?;
                Way::Age {
                    tx: Some(tx),
                    thread: Some(thread),
                    batch: Vec::with_capacity(BATCH),
                }
            }
        };
        Ok(Incoming {
            partial: partial.to_path_buf(),
            received: 0,
            way,
        })
    }

    /// Takes the next stored bytes.
    ///
    /// # Errors
    /// [`Error::Io`] when writing fails; [`Error::Encryption`] when decryption failed (the rest is refused).
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<()> {
        self.received += chunk.len() as u64;
        match &mut self.way {
            Way::Plain { out, hash } => {
                hash.update(chunk);
                out.write_all(chunk)
                    .map_err(|e| Error::io("writing download", &self.partial, e))
            }
            Way::Age { tx, batch, .. } => {
                batch.extend_from_slice(chunk);
                if batch.len() < BATCH {
                    return Ok(());
                }
                let full = std::mem::replace(batch, Vec::with_capacity(BATCH));
                let sent = tx.as_ref().is_some_and(|tx| tx.send(full).is_ok());
                if sent {
                    return Ok(());
                }
                // The decrypting thread stopped early: its error says why.
                match self.end() {
                    Err(e) => Err(e),
                    Ok(_) => Err(Error::Encryption {
                        path: self.partial.clone(),
                        reason: "the encrypted stream ended before its data did".into(),
                    }),
                }
            }
        }
    }

    /// How many stored bytes were pushed.
    pub(crate) fn received(&self) -> u64 {
        self.received
    }

    /// Ends the stream: the file is complete (not yet fsynced: whoever names it or places it does that, see
    /// [`super::stage::name`]). Returns the plaintext's size and hash.
    ///
    /// # Errors
    /// [`Error::Io`] when writing fails; [`Error::Encryption`] when the ciphertext is damaged or truncated,
    /// or none of the identities opens it.
    pub(crate) fn finish(mut self) -> Result<Staged> {
        self.end()
    }

    fn end(&mut self) -> Result<Staged> {
        match &mut self.way {
            Way::Plain { hash, .. } => Ok((self.received, hex::encode(hash.clone().finalize()))),
            Way::Age { tx, thread, batch } => {
                if let Some(tx) = tx.take() {
                    if !batch.is_empty() {
                        // A refusal here means the thread already stopped: its result says why.
                        let _ = tx.send(std::mem::take(batch));
                    }
                }
                match thread.take().map(JoinHandle::join) {
                    Some(Ok(r)) => r,
                    _ => Err(Error::Encryption {
                        path: self.partial.clone(),
                        reason: "the decrypting thread failed; this is a bug in sqlite-vol".into(),
                    }),
                }
            }
        }
    }
}

impl Drop for Incoming {
    /// A stream dropped half-way stops the decrypting thread (it sees a truncated stream) and waits for it.
    fn drop(&mut self) {
        if let Way::Age { tx, thread, .. } = &mut self.way {
            tx.take();
            if let Some(t) = thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// The chunks from the channel as one buffered stream, read in place; ends when the sender is dropped.
struct Chunks {
    rx: Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl BufRead for Chunks {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.cur = c;
                    self.pos = 0;
                }
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.cur[self.pos..])
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.cur.len());
    }
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let have = self.fill_buf()?;
        let n = buf.len().min(have.len());
        buf[..n].copy_from_slice(&have[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// The decrypting thread: ciphertext from `rx`, plaintext into `out`, hashed.
fn decrypt(
    rx: Receiver<Vec<u8>>,
    ids: &[Identity],
    mut out: File,
    partial: &Path,
    source: &str,
) -> Result<Staged> {
    let damaged = |detail: String| {
        Error::Encryption {
        path: source.into(),
        reason: format!(
            "its ciphertext is damaged, truncated or was tampered with ({detail}); nothing was kept. Try an \
             older backup (`sqlite-vol list`)"
        ),
    }
    };
    let input = Chunks {
        rx,
        cur: Vec::new(),
        pos: 0,
    };
    let decryptor = age::Decryptor::new_buffered(input).map_err(|e| damaged(e.to_string()))?;
    let mut plain = decryptor
        .decrypt(ids.iter().map(|i| i as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => Error::Encryption {
                path: source.into(),
                reason: format!(
                    "none of the identities given opens it (it was encrypted to other keys): set {} (or \
                     --identity) to the age identity file whose public key is one of the recipients it was \
                     sent to; nothing was kept",
                    settings::BACKUP_IDENTITY
                ),
            },
            other => damaged(other.to_string()),
        })?;
    // This thread decrypts; another hashes and writes what it decrypted, so the two overlap. The plaintext
    // buffers go round between them, never more than `PLAIN_BUFFERS`.
    let (full_tx, full_rx) = sync_channel::<(Vec<u8>, usize)>(PLAIN_BUFFERS);
    let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(PLAIN_BUFFERS);
    for _ in 0..PLAIN_BUFFERS {
        // The receiver is still here and the channel has room for every buffer: this cannot be refused.
        let _ = empty_tx.send(vec![0u8; PLAIN_BUFFER]);
    }
    std::thread::scope(|s| {
        let writer = s.spawn(move || -> Result<Staged> {
            let mut hash = sha2::Sha256::new();
            let mut total = 0u64;
            for (buf, n) in full_rx {
                hash.update(&buf[..n]);
                total += n as u64;
                out.write_all(&buf[..n])
                    .map_err(|e| Error::io("writing download", partial, e))?;
                // Refused only once decrypting has stopped, when the buffer is not needed.
                let _ = empty_tx.send(buf);
            }
            Ok((total, hex::encode(hash.finalize())))
        });
        let decrypted = (|| -> Result<()> {
            // The empty buffers stop coming only when the writer stopped: its error says why.
            for mut buf in &empty_rx {
                let n = read_full(&mut plain, &mut buf).map_err(|e| damaged(e.to_string()))?;
                if n == 0 || full_tx.send((buf, n)).is_err() {
                    break;
                }
            }
            Ok(())
        })();
        drop(full_tx);
        let written = fsx::joined(writer, "writing the decrypted bytes into", partial);
        decrypted?;
        written
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(data: &[u8], ids: Option<Vec<Identity>>, rcpt: &[Recipient]) -> Result<Staged> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", "/tmp", e))?;
        let src = dir.path().join("src");
        std::fs::write(&src, data).map_err(|e| Error::io("w", &src, e))?;
        let mut out = Outgoing::open(&src, rcpt, 100_000)?;
        let mut stored = Vec::new();
        loop {
            let c = out.next()?;
            if c.is_empty() {
                break;
            }
            stored.extend_from_slice(&c);
        }
        assert_eq!(out.encrypted(), !rcpt.is_empty());
        let (n, sha, s) = out.totals();
        assert_eq!((n, s), (data.len() as u64, stored.len() as u64));
        assert_eq!(sha, hex::encode(sha2::Sha256::digest(data)));
        let mut inc = Incoming::create(&dir.path().join("dst"), "test", ids)?;
        for c in stored.chunks(7777) {
            inc.push(c)?;
        }
        inc.finish()
    }

    #[test]
    fn encrypted_pieces_decrypt_to_the_same_bytes_and_hash() -> Result<()> {
        let id = Identity::generate();
        let data: Vec<u8> = (0..350_000u32).map(|i| (i % 251) as u8).collect();
        let (n, sha) = roundtrip(&data, Some(vec![id.clone()]), &[id.to_public()])?;
        assert_eq!(n, data.len() as u64);
        assert_eq!(sha, hex::encode(sha2::Sha256::digest(&data)));
        let plain = roundtrip(&data, None, &[])?;
        assert_eq!(plain, (n, sha));
        Ok(())
    }

    #[test]
    fn the_wrong_identity_is_refused_by_name() {
        let (a, b) = (Identity::generate(), Identity::generate());
        let err = roundtrip(b"secret rows", Some(vec![b]), &[a.to_public()]).unwrap_err();
        assert!(err.to_string().contains("none of the identities"), "{err}");
    }

    #[test]
    fn recipients_must_be_age_keys() {
        assert!(parse_recipients("age1nope").is_err());
        assert!(parse_recipients(" , ").is_err());
        let two = format!(
            "{}, {}",
            Identity::generate().to_public(),
            Identity::generate().to_public()
        );
        assert_eq!(parse_recipients(&two).map(|r| r.len()).ok(), Some(2));
    }
}
