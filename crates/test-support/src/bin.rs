//! The workspace's own binaries, found beside the running test or campaign binary.

use std::path::PathBuf;

/// A workspace binary beside the running one (`target/debug/<name>` from `target/debug/deps/it-…` or from
/// `target/debug/campaign`). `cargo build --workspace` builds them; tests/run.sh does it first.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not built beside {}: run `cargo build --workspace` first",
                exe.display()
            )
        })
}
