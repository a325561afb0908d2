#!/usr/bin/env bash
# Benchmarks side by side: release build, then every contender in one run.
#   bash tests/bench.sh                  the 1 GiB data set, 3 runs each (about 10 minutes)
#   bash tests/bench.sh --size 64M --runs 1    a quick look
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/packages.sh
source tests/packages.sh
pkg_need sqlite3 || exit 2
cargo build --release --locked -p accounts -p sqlite-vol-cli -p sqlite-vol-tests
exec target/release/bench "$@"
