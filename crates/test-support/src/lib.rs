//! What the workspace's test suites share, written once: a temp folder that is kept when a test fails
//! ([`TestDir`]), the stock `sqlite3` shell as a foreign client ([`sqlite3`]), mounts that undo themselves
//! ([`MountGuard`]), the workspace's built binaries ([`workspace_bin`]), and running a command as another
//! user ([`as_user`]). A dev-only crate: each suite's `support` module re-exports what it uses.
#![warn(missing_docs)]

mod bin;
mod dir;
mod mount;
pub mod sqlite3;
mod uid;

pub use bin::workspace_bin;
pub use dir::TestDir;
pub use mount::MountGuard;
pub use uid::as_user;
