//! Benchmarks against the tools users would otherwise pick: `bash tests/bench.sh [--sizes 64M,1G,4G]`
//! (installs the contenders' tools, builds the release binaries, runs this).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--measure") {
        return sqlite_vol_tests::bench::measurer_main(&args[1..]);
    }
    let cfg = match sqlite_vol_tests::bench::Config::from_args(&args) {
        Ok(c) => c,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    match sqlite_vol_tests::bench::run(&cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::from(2)
        }
    }
}
