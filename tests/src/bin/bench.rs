//! Benchmarks against the tools users would otherwise pick:
//! `cargo build --release --workspace && cargo run --release -p sqlite-vol-tests --bin bench -- [--size 1G]`
//! (or `bash tests/bench.sh`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
