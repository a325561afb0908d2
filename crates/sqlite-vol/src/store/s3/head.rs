//! The first bytes of an object, by a ranged GET: enough to read a backup's age header without
//! downloading the backup.

use object_store::ObjectStore;

use super::error::remote_error;
use super::Remote;
use crate::Result;

impl Remote {
    /// The first `n` bytes of object `name` (all of it when it is shorter).
    pub(crate) fn get_head(&self, name: &str, n: u64) -> Result<Vec<u8>> {
        let url = self.url_of(name);
        self.block(async {
            self.store
                .get_range(&self.key(name), 0..n)
                .await
                .map(|b| b.to_vec())
                .map_err(|e| remote_error("reading the header of", &url, &e))
        })
    }
}
