#!/usr/bin/env bash
# The project's test command (the README's second command): installs what the tests need on a fresh
# Debian machine, then runs every test: the workspace's cargo tests (library, CLI, service, and the
# process-level restart tests in tests/) and the container-level scenarios on a real Docker engine.
#
#   bash tests/run.sh                 everything
#   SQLITE_VOL_SKIP_DOCKER=1 bash tests/run.sh    cargo tests only (says so loudly; CI never sets it)
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=tests/packages.sh
source tests/packages.sh
pkg_need sqlite3 || exit 2
pkg_need python3 || exit 2
pkg_need setpriv util-linux || exit 2
pkg_need curl || exit 2
# Prometheus and promtool, for the metrics and alert-rule tests.
pkg_need promtool prometheus || exit 2

echo "== off-site test tools: moto (S3-compatible server) and Litestream, into target/tools"
bash tests/tools.sh

echo "== cargo tests (library, CLI, accounts service, process-level restart, off-site and Litestream tests)"
cargo build --workspace --locked --bins
cargo test --workspace --locked

echo "== fault campaign, bounded form (the full one: cargo run -p sqlite-vol-tests --bin campaign)"
cargo run -q --locked -p sqlite-vol-tests --bin campaign -- --quick

if [ "${SQLITE_VOL_SKIP_DOCKER:-0}" = 1 ]; then
  echo "== container-level scenarios SKIPPED because SQLITE_VOL_SKIP_DOCKER=1 (they did not run)"
  exit 0
fi
echo "== container-level scenarios on a real Docker engine"
bash tests/docker/scenarios.sh
