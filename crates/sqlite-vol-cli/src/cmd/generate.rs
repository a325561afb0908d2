//! `sqlite-vol completions SHELL` and `sqlite-vol man`: shell completions and man pages generated from the
//! same clap definitions the command parses with ([`crate::cli::Cli`]), so they cannot drift from it.
//!
//! Both render into memory first and then write through [`std::io::Write`], so a closed pipe
//! (`sqlite-vol man | head`) is an ordinary write error that exits quietly rather than a panic inside the
//! generator.

use std::io::Write;

use anyhow::Context;
use clap::CommandFactory;

use super::Exit;
use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::ui;

/// The name the completions and pages are written for.
const BIN: &str = "sqlite-vol";

/// Prints the completion script for `a.shell`.
pub fn completions(a: &CompletionsArgs) -> anyhow::Result<Exit> {
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut Cli::command(), BIN, &mut script);
    write_stdout(&script)?;
    Ok(Exit::Ok)
}

/// Prints the top-level man page, or writes every page into `a.dir`.
pub fn man(a: &ManArgs) -> anyhow::Result<Exit> {
    let cmd = Cli::command();
    match &a.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
            ui::line(dir.join(format!("{BIN}.1")).display())?;
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            write_stdout(&page)?;
        }
    }
    Ok(Exit::Ok)
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}
