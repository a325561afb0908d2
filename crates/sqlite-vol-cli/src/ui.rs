//! What the user sees: stdout lines and JSON, the error chain, the progress bar, sizes and ages in words.
//!
//! Everything written to stdout goes through [`line`] or [`json`], which return the write error instead of
//! panicking, so a closed pipe ends the program quietly ([`is_broken_pipe`]). Notes meant for a person go to
//! stderr through [`note`] and are silenced by `--quiet`.

use std::fmt::Display;
use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sqlite_vol::Progress;

/// Writes one line to stdout.
pub fn line(text: impl Display) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(())
}

/// Writes a value to stdout as pretty JSON.
pub fn json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// A note for a person, on stderr, unless `quiet`.
pub fn note(quiet: bool, text: impl Display) {
    if !quiet {
        eprintln!("{text}");
    }
}

/// True when the error is a write to a closed pipe.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || e.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                .is_some_and(|k| k == std::io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes on one line, `a: b: c`, skipping a cause whose text the line already holds
/// (several library errors print their source in their own message).
pub fn render(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = in_flags(cause).unwrap_or_else(|| cause.to_string());
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// A library error whose advice names the library's own option, worded with this command's flag instead.
fn in_flags(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    match cause.downcast_ref::<sqlite_vol::Error>()? {
        sqlite_vol::Error::WrongApplication {
            path,
            app,
            expected,
            found,
            hint,
        } if !hint.is_empty() => Some(
            sqlite_vol::Error::WrongApplication {
                path: path.clone(),
                app: app.clone(),
                expected: *expected,
                found: *found,
                hint: ", or pass --force to restore it anyway if it really is this app's data",
            }
            .to_string(),
        ),
        _ => None,
    }
}

/// A progress bar on stderr, drawn only when stderr is a terminal and not `--quiet`.
pub struct Bar(Option<ProgressBar>);

impl Bar {
    /// A bar labelled `what` (e.g. "backing up"), or a silent stand-in.
    pub fn new(quiet: bool, what: &'static str) -> Bar {
        if quiet || !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{msg:>12} [{bar:40}] {percent:>3}% {pos}/{len} pages, {elapsed}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(what);
        Bar(Some(bar))
    }

    /// Moves the bar to `p`.
    pub fn update(&self, p: Progress) {
        if let Some(bar) = self.0.as_ref().filter(|_| p.total > 0) {
            bar.set_length(p.total);
            bar.set_position(p.done);
        }
    }

    /// Whether a bar is drawn.
    pub fn active(&self) -> bool {
        self.0.is_some()
    }

    /// Removes the bar from the terminal.
    pub fn clear(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.clear();
    }
}

pub use sqlite_vol::human::{age, schema, size};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_skips_causes_already_in_the_message() {
        let io = std::io::Error::other("disk on fire");
        let err = anyhow::Error::new(io).context("writing x: disk on fire");
        assert_eq!(render(&err), "writing x: disk on fire");
        let err = anyhow::anyhow!("inner").context("outer");
        assert_eq!(render(&err), "outer: inner");
    }
}
