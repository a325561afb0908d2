//! The fault and bad-input campaign: `cargo run -p sqlite-vol-tests --bin campaign -- [--quick] [--seed N]`.
//! Prints a table of figures and exits 1 if any figure shows a loss, 2 if the campaign itself failed.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(sqlite_vol_tests::campaign::groupcommit::CHILD_ARG)
    {
        // The writer child of the group-commit area, killed by the campaign.
        return match sqlite_vol_tests::campaign::groupcommit::child(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        };
    }
    match sqlite_vol_tests::campaign::Config::from_args(&args) {
        Ok(cfg) => sqlite_vol_tests::campaign::run(&cfg),
        Err(usage) => {
            eprintln!("{usage}");
            ExitCode::from(2)
        }
    }
}
