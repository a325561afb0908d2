//! Running a command as another user, since root ignores file modes: `setpriv` (util-linux).

use std::process::Command;

/// A `setpriv` command that runs what its arguments name as `uid`:`gid`, with exactly the supplementary
/// `groups` (none when empty). Add the program and its arguments with `.arg(…)`. Needs root.
pub fn as_user(uid: u32, gid: u32, groups: &[u32]) -> Command {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"));
    if groups.is_empty() {
        c.arg("--clear-groups");
    } else {
        let list: Vec<String> = groups.iter().map(u32::to_string).collect();
        c.arg(format!("--groups={}", list.join(",")));
    }
    c
}
