# tests/packages.sh: how the scripts in tests/ install what they need on a fresh Debian machine. Sourced by
# run.sh, tools.sh, lint.sh, bench.sh and docker/engine.sh; defines functions only.
#
#   pkg_need COMMAND [PACKAGE]   apt-get install PACKAGE (default: COMMAND) unless COMMAND is on the PATH
#   pkg_apt PACKAGE...           apt-get install; `apt-get update` only when the install needs it, once
#   pkg_venv DIR SPEC...         a Python virtualenv at DIR holding exactly these pip pins (kept while the
#                                pins are unchanged; python3-venv comes from apt when missing)
#   pkg_npm DIR SPEC             `npm install SPEC` under DIR (npm comes from apt when missing)
#
# Each returns non-zero after saying on stderr what failed and what to install by hand, so that the caller
# decides whether that ends the run. apt-get needs root; its output goes to $PKG_LOG.

PKG_LOG=${TMPDIR:-/tmp}/sqlite-vol-packages.log
PKG_APT_UPDATED=0

pkg_say() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }

pkg_apt() {
    if [ "$(id -u)" != 0 ]; then
        pkg_say "missing $*; install it (apt-get install $*) or run as root"
        return 2
    fi
    command -v apt-get >/dev/null 2>&1 || { pkg_say "missing $*, and there is no apt-get to install it"; return 2; }
    pkg_say "installing $* (apt-get; log: $PKG_LOG)"
    # Package lists are often fresh enough; a fresh machine (no lists yet) fails at once and updates.
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >>"$PKG_LOG" 2>&1; then
        return 0
    fi
    if [ "$PKG_APT_UPDATED" = 0 ]; then
        apt-get update -qq >>"$PKG_LOG" 2>&1 && PKG_APT_UPDATED=1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >>"$PKG_LOG" 2>&1 && return 0
    fi
    tail -n 20 "$PKG_LOG" >&2
    pkg_say "apt-get install $* failed (log: $PKG_LOG)"
    return 2
}

pkg_need() {
    command -v "$1" >/dev/null 2>&1 || pkg_apt "${2:-$1}"
}

pkg_venv() {
    local dir=$1 stamp=$1/.pins
    shift
    if [ -x "$dir/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$*" ]; then
        return 0
    fi
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        pkg_apt python3 python3-venv || return
    fi
    pkg_say "installing $* into $dir"
    rm -rf "$dir"
    python3 -m venv "$dir" &&
        "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" >&2 &&
        printf '%s' "$*" >"$stamp" ||
        { pkg_say "pip install $* into $dir failed"; return 2; }
}

pkg_npm() {
    local dir=$1 spec=$2
    pkg_need npm || return
    mkdir -p "$dir"
    npm install -s --no-audit --no-fund --prefix "$dir" "$spec" >>"$PKG_LOG" 2>&1 ||
        { tail -n 20 "$PKG_LOG" >&2; pkg_say "npm install $spec failed (log: $PKG_LOG)"; return 2; }
}
