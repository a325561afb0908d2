//! Drives the real `sqlite-vol` binary on temporary directories, the way an operator does inside a
//! container: `DB_PATH` and `SQLITE_VOL_APP` set, no flags.

mod bad_input;
mod commands;
mod concurrency;
mod exec;
mod lifecycle;
mod migrations;
mod observe;
mod support;
