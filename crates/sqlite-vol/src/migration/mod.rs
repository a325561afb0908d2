//! Migrations against the live database with its backups: rehearsing the pending ones on a consistent copy
//! (`plan`, timed, the live file only read) and going back to the safety backup taken before the newest one
//! (`back`, through the verified restore). Above [`crate::migrate`] (the migrations themselves, their
//! status, baseline and repair), since both need the backup and restore paths.

mod back;
mod plan;

pub use back::{back, back_plan, BackPlan, TableRows};
pub use plan::{plan, Planned};
