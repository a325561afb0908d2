#!/usr/bin/env bash
# Benchmarks side by side: installs what the contenders need (as tests/run.sh does), builds the release
# binaries, then runs every contender in one run. Results: target/bench/results.json, results.md, chart.svg
# (written after every section, so a late failure loses nothing).
#   bash tests/bench.sh                                   the 1 GiB data set, 3 runs each
#   bash tests/bench.sh --sizes 64M,1G,4G --runs 1        every size-dependent section at three sizes
#   bash tests/bench.sh --sizes 64M --runs 1 --only idle  a quick look
# A contender whose tool could not be installed is skipped with one line saying so.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/packages.sh
source tests/packages.sh
pkg_need sqlite3 || echo "bench.sh: no sqlite3: its contenders will be skipped" >&2
pkg_need python3 || echo "bench.sh: no python3: the online section will be skipped" >&2
pkg_need curl || echo "bench.sh: no curl: the off-site section will be skipped" >&2
echo "== off-site contenders: moto (S3-compatible server, with boto3) and Litestream, into target/tools" >&2
bash tests/tools.sh >&2 || echo "bench.sh: tests/tools.sh failed: the off-site section (or Litestream) will be skipped" >&2
echo "== release build" >&2
cargo build --release --locked -p accounts -p sqlite-vol-cli -p sqlite-vol-tests
exec target/release/bench "$@"
