//! Small objects written conditionally, for the lineage marker: create only if absent
//! (`If-None-Match: *`), replace only if unchanged (`If-Match` on the e-tag), and a HEAD for the e-tag.

use object_store::{
    Error as StoreError, ObjectStore, PutMode, PutOptions, PutPayload, UpdateVersion,
};

use super::error::remote_error;
use super::Remote;
use crate::Result;

impl Remote {
    /// The object's bytes and version, or `None` when it does not exist.
    pub(crate) fn get_small(&self, name: &str) -> Result<Option<(Vec<u8>, UpdateVersion)>> {
        let url = self.url_of(name);
        self.block(async {
            let got = match self.store.get(&self.key(name)).await {
                Ok(g) => g,
                Err(StoreError::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(remote_error("reading", &url, &e)),
            };
            let version = UpdateVersion {
                e_tag: got.meta.e_tag.clone(),
                version: got.meta.version.clone(),
            };
            let bytes = got
                .bytes()
                .await
                .map_err(|e| remote_error("reading", &url, &e))?;
            Ok(Some((bytes.to_vec(), version)))
        })
    }

    /// Creates the object if it does not exist; `false` when it does.
    pub(crate) fn put_create(&self, name: &str, bytes: Vec<u8>) -> Result<bool> {
        self.put_mode(name, bytes, PutMode::Create)
    }

    /// Replaces the object if it is still at `v`; `false` when it changed (or vanished).
    pub(crate) fn put_update(&self, name: &str, bytes: Vec<u8>, v: &UpdateVersion) -> Result<bool> {
        self.put_mode(name, bytes, PutMode::Update(v.clone()))
    }

    fn put_mode(&self, name: &str, bytes: Vec<u8>, mode: PutMode) -> Result<bool> {
        let url = self.url_of(name);
        self.block(async {
            let opts = PutOptions {
                mode,
                ..PutOptions::default()
            };
            match self
                .store
                .put_opts(&self.key(name), PutPayload::from(bytes), opts)
                .await
            {
                Ok(_) => Ok(true),
                Err(
                    StoreError::AlreadyExists { .. }
                    | StoreError::Precondition { .. }
                    | StoreError::NotFound { .. },
                ) => Ok(false),
                Err(e) => Err(remote_error("writing", &url, &e)),
            }
        })
    }

    /// The object's e-tag (`None` when it does not exist or has none).
    pub(crate) fn head_etag(&self, name: &str) -> Result<Option<String>> {
        let url = self.url_of(name);
        self.block(async {
            match self.store.head(&self.key(name)).await {
                Ok(meta) => Ok(meta.e_tag),
                Err(StoreError::NotFound { .. }) => Ok(None),
                Err(e) => Err(remote_error("checking", &url, &e)),
            }
        })
    }
}
