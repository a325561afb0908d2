#!/usr/bin/env bash
# tests/docker/engine.sh: make a real Docker engine, and the base images docker/Dockerfile names, available
# on a fresh Debian bookworm machine (as root), with no image registry reachable.
#
#   source tests/docker/engine.sh; engine_setup; ...; engine_teardown   (what scenarios.sh does)
#   bash tests/docker/engine.sh up|images|down|setup                   (by hand)
#
# What it does, each step skipped when already done:
#   1. apt-get install docker.io docker-compose debootstrap, when a command is missing;
#   2. starts `dockerd --bridge=none --iptables=false` when `docker info` fails, and remembers it did, so that
#      engine_teardown stops only a daemon this script started (containers then run with --network host);
#   3. builds stand-ins for the images the Dockerfile pulls, under the very tags it names:
#        debian:<DEBIAN_IMAGE>          debootstrap --variant=minbase bookworm + docker import
#        sqlite-vol-standin/rust-toolchain:<RUST_VERSION>
#                                       FROM that, gcc + libc6-dev (apt) + this machine's Rust toolchain
#        rust:<RUST_VERSION>-bookworm   FROM the toolchain image, + the crates Cargo.lock names (fetched on the
#                                       host with `cargo fetch --locked`), CARGO_NET_OFFLINE=true
#      Each carries a label with the hash of its inputs; a tag whose label matches is reused as is. Only the
#      small registry layer is rebuilt when Cargo.lock changes. An image under one of these tags that has no
#      such label (a real, pulled image) is left alone and used.
# If Docker cannot run here, it says so and fails: it never lets a test pass without an engine.
#
# Environment: SQLITE_VOL_ENGINE_STATE_DIR (dockerd's log and pid file, build logs; default
# /tmp/sqlite-vol-engine), SQLITE_VOL_DEBIAN_MIRROR (for debootstrap; default http://deb.debian.org/debian).

ENGINE_LABEL=org.sqlite-vol.standin-inputs
# Bump when a recipe below changes, so that cached stand-ins are rebuilt.
ENGINE_RECIPE=3
ENGINE_STATE_DIR=${SQLITE_VOL_ENGINE_STATE_DIR:-/tmp/sqlite-vol-engine}
ENGINE_DOCKERD_LOG=$ENGINE_STATE_DIR/dockerd.log
ENGINE_DOCKERD_PID=$ENGINE_STATE_DIR/dockerd.pid
ENGINE_DEBIAN_MIRROR=${SQLITE_VOL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ENGINE_STARTED_DOCKERD=0
ENGINE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/packages.sh
source "$ENGINE_ROOT/tests/packages.sh"

engine_log() { printf '[engine %s] %s\n' "$(date +%T)" "$*" >&2; }

# Fail loudly: the container tests did not run, so they must not count as passed.
engine_fail() {
    printf 'DOCKER UNAVAILABLE: %s\n' "$*" >&2
    printf 'The container tests did not run; treat this as a failure, not a pass.\n' >&2
    return 2
}

# 1. Packages -------------------------------------------------------------------------------------------
engine_install() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v docker >/dev/null 2>&1 || missing+=(docker.io)
    command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    [ ${#missing[@]} -eq 0 ] && return 0
    pkg_apt $(printf '%s\n' "${missing[@]}" | sort -u) || engine_fail "could not install ${missing[*]} (see above)"
}

# 2. Daemon ---------------------------------------------------------------------------------------------
engine_up() {
    engine_install || return
    if docker info >/dev/null 2>&1; then
        # A dockerd an earlier, interrupted run started is still ours to stop.
        if [ -f "$ENGINE_DOCKERD_PID" ] && [ "$(ps -o comm= -p "$(cat "$ENGINE_DOCKERD_PID")" 2>/dev/null)" = dockerd ]; then
            ENGINE_STARTED_DOCKERD=1
            engine_log "using the dockerd an earlier run started (pid $(cat "$ENGINE_DOCKERD_PID")); stopping it at the end"
        else
            engine_log "using the Docker engine that is already running"
        fi
        return 0
    fi
    [ "$(id -u)" = 0 ] || { engine_fail "no Docker engine answers and only root can start dockerd"; return; }
    mkdir -p "$ENGINE_STATE_DIR"
    engine_log "starting dockerd (log: $ENGINE_DOCKERD_LOG)"
    # No default bridge and no iptables: containers use --network host (traffic stays on loopback).
    setsid dockerd --bridge=none --iptables=false >"$ENGINE_DOCKERD_LOG" 2>&1 </dev/null &
    echo $! >"$ENGINE_DOCKERD_PID"
    ENGINE_STARTED_DOCKERD=1
    local i
    for i in $(seq 1 60); do
        docker info >/dev/null 2>&1 && { engine_log "dockerd answers (pid $(cat "$ENGINE_DOCKERD_PID"))"; return 0; }
        kill -0 "$(cat "$ENGINE_DOCKERD_PID")" 2>/dev/null || break
        sleep 1
    done
    tail -n 20 "$ENGINE_DOCKERD_LOG" >&2
    engine_down
    engine_fail "dockerd did not come up (log: $ENGINE_DOCKERD_LOG)"
}

# Stop dockerd only if this script started it (ENGINE_STARTED_DOCKERD=1 or our pid file, by hand).
engine_down() {
    [ "$ENGINE_STARTED_DOCKERD" = 1 ] || [ "${1:-}" = --pidfile ] || return 0
    [ -f "$ENGINE_DOCKERD_PID" ] || return 0
    local pid i
    pid=$(cat "$ENGINE_DOCKERD_PID")
    if kill -0 "$pid" 2>/dev/null; then
        engine_log "stopping the dockerd this script started (pid $pid)"
        kill -TERM "$pid" 2>/dev/null
        for i in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$ENGINE_DOCKERD_PID"
    ENGINE_STARTED_DOCKERD=0
}

# 3. Base images ----------------------------------------------------------------------------------------
# Value of `ARG NAME=value` in the Dockerfile, so the stand-ins are tagged exactly as it names them.
engine_dockerfile_arg() {
    sed -n "s/^ARG $1=\\([^[:space:]]*\\).*/\\1/p" "$ENGINE_ROOT/docker/Dockerfile" | head -n 1
}

engine_sha() { sha256sum | cut -c1-16; }

# Prints the stand-in label of an image, "<foreign>" for an image without one, nothing if the tag is absent.
engine_image_inputs() {
    local v
    v=$(docker image inspect -f "{{index .Config.Labels \"$ENGINE_LABEL\"}}" "$1" 2>/dev/null) || return 0
    [ -n "$v" ] && [ "$v" != "<no value>" ] && echo "$v" || echo "<foreign>"
}

# engine_need TAG HASH: 0 if TAG must be (re)built; 1 if it is current or foreign (then leave it alone).
engine_need() {
    local have
    have=$(engine_image_inputs "$1")
    case "$have" in
        "") return 0 ;;
        "<foreign>") engine_log "$1 exists and is not a stand-in: using it as is"; return 1 ;;
        "$2") engine_log "$1 is cached (inputs $2)"; return 1 ;;
        *) engine_log "$1 is stale (inputs $have, now $2): rebuilding"; return 0 ;;
    esac
}

engine_image_id() { docker image inspect -f '{{.Id}}' "$1"; }

# rustc of the Dockerfile's RUST_VERSION: the rustup toolchain of that name if there is one, else the default
# rustc if its version matches.
engine_rustc() {
    local want=$1
    if command -v rustup >/dev/null 2>&1 && rustup run "$want" rustc -V >/dev/null 2>&1; then
        echo "rustup run $want rustc"
        return 0
    fi
    if command -v rustc >/dev/null 2>&1 && rustc -V | grep -Eq "^rustc ${want//./\\.}([. ]|$)"; then
        echo rustc
        return 0
    fi
    engine_fail "docker/Dockerfile pins RUST_VERSION=$want, but this machine has no Rust toolchain of that version" \
        "(rustc -V: $(rustc -V 2>/dev/null || echo none)); install it or change the ARG"
}

engine_build_debian() {
    local tag=$1 hash rootfs
    hash=$(printf 'recipe=%s mirror=%s suite=bookworm variant=minbase\n' "$ENGINE_RECIPE" "$ENGINE_DEBIAN_MIRROR" | engine_sha)
    engine_need "$tag" "$hash" || return 0
    [ "$(id -u)" = 0 ] || { engine_fail "debootstrap needs root"; return; }
    rootfs=$(mktemp -d /tmp/sqlite-vol-rootfs.XXXXXX)
    engine_log "debootstrap --variant=minbase bookworm (about 40 s)"
    if ! debootstrap --variant=minbase bookworm "$rootfs" "$ENGINE_DEBIAN_MIRROR" >"$ENGINE_STATE_DIR/debootstrap.log" 2>&1; then
        tail -n 20 "$ENGINE_STATE_DIR/debootstrap.log" >&2
        rm -rf "$rootfs"
        engine_fail "debootstrap failed (log: $ENGINE_STATE_DIR/debootstrap.log)"
        return
    fi
    # Like the real slim image: no package caches or lists.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
    tar -C "$rootfs" --numeric-owner -c . | docker import \
        -c "LABEL $ENGINE_LABEL=$hash" \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["bash"]' - "$tag" >/dev/null
    local rc=$?
    rm -rf "$rootfs"
    [ $rc = 0 ] || { engine_fail "docker import of the bookworm rootfs failed"; return; }
    engine_log "built $tag"
}

engine_build_toolchain() {
    local tag=$1 base=$2 rustc_cmd=$3 sysroot hash ctx
    sysroot=$($rustc_cmd --print sysroot) || { engine_fail "cannot find the Rust sysroot"; return; }
    hash=$({ echo "recipe=$ENGINE_RECIPE"; engine_image_id "$base"; $rustc_cmd -vV; "$sysroot/bin/cargo" -V; } | engine_sha)
    engine_need "$tag" "$hash" || return 0
    ctx=$(mktemp -d /tmp/sqlite-vol-toolchain.XXXXXX)
    mkdir -p "$ctx/toolchain"
    local d
    for d in bin lib libexec etc; do
        [ -e "$sysroot/$d" ] || continue
        # Hard links when possible (same file system): no 600 MB copy.
        cp -al "$sysroot/$d" "$ctx/toolchain/" 2>/dev/null || cp -a "$sysroot/$d" "$ctx/toolchain/"
    done
    cat >"$ctx/Dockerfile" <<EOF
FROM $base
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev \\
 && rm -rf /var/lib/apt/lists/*
COPY toolchain/ /usr/local/rust/
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN rustc -V && cargo -V && cc --version | head -n 1
LABEL $ENGINE_LABEL=$hash
EOF
    engine_log "building $tag from this machine's toolchain ($($rustc_cmd -V))"
    if ! docker build --network host -q -t "$tag" "$ctx" >"$ENGINE_STATE_DIR/toolchain-build.log" 2>&1; then
        tail -n 20 "$ENGINE_STATE_DIR/toolchain-build.log" >&2
        rm -rf "$ctx"
        engine_fail "building $tag failed (log: $ENGINE_STATE_DIR/toolchain-build.log)"
        return
    fi
    rm -rf "$ctx"
    engine_log "built $tag"
}

# The .crate file names of the registry packages in a Cargo.lock, sorted.
engine_lock_crates() {
    awk '
        /^\[\[package\]\]/ { name = ""; version = "" }
        /^name = /    { gsub(/"/, "", $3); name = $3 }
        /^version = / { gsub(/"/, "", $3); version = $3 }
        /^source = "registry\+/ { print name "-" version ".crate" }' "$1" | sort
}

engine_build_rust() {
    local tag=$1 toolchain=$2 rustc_cmd=$3 sysroot hash ctx cargo_home lock=$ENGINE_ROOT/Cargo.lock
    sysroot=$($rustc_cmd --print sysroot)
    cargo_home=${CARGO_HOME:-$HOME/.cargo}
    [ -f "$lock" ] || { engine_fail "no Cargo.lock at $lock"; return; }
    # Keyed on the registry crates Cargo.lock names (not the whole file): a lock change that only touches the
    # workspace's own packages keeps this image, and with it Docker's cache of the Dockerfile's first steps.
    hash=$({ echo "recipe=$ENGINE_RECIPE"; engine_image_id "$toolchain"; engine_lock_crates "$lock"; } | engine_sha)
    engine_need "$tag" "$hash" || return 0
    engine_log "cargo fetch --locked on the host (containers cannot download crates here)"
    if ! "$sysroot/bin/cargo" fetch --locked --manifest-path "$ENGINE_ROOT/Cargo.toml" >"$ENGINE_STATE_DIR/fetch.log" 2>&1; then
        tail -n 20 "$ENGINE_STATE_DIR/fetch.log" >&2
        engine_fail "cargo fetch --locked failed (log: $ENGINE_STATE_DIR/fetch.log)"
        return
    fi
    ctx=$(mktemp -d /tmp/sqlite-vol-registry.XXXXXX)
    mkdir -p "$ctx/registry/index" "$ctx/registry/cache"
    cp -a "$cargo_home"/registry/index/. "$ctx/registry/index/"
    # Only the .crate files Cargo.lock names, so the layer does not grow with everything this machine fetched.
    local reg crate n=0
    for reg in "$cargo_home"/registry/cache/*/; do
        reg=$(basename "$reg")
        mkdir -p "$ctx/registry/cache/$reg"
        while read -r crate; do
            if [ -f "$cargo_home/registry/cache/$reg/$crate" ]; then
                cp "$cargo_home/registry/cache/$reg/$crate" "$ctx/registry/cache/$reg/"
                n=$((n + 1))
            fi
        done < <(engine_lock_crates "$lock")
    done
    cat >"$ctx/Dockerfile" <<EOF
FROM $toolchain
COPY registry/ /usr/local/cargo/registry/
ENV CARGO_NET_OFFLINE=true
LABEL $ENGINE_LABEL=$hash
EOF
    engine_log "building $tag ($n crates from Cargo.lock, offline)"
    if ! docker build -q -t "$tag" "$ctx" >"$ENGINE_STATE_DIR/rust-build.log" 2>&1; then
        tail -n 20 "$ENGINE_STATE_DIR/rust-build.log" >&2
        rm -rf "$ctx"
        engine_fail "building $tag failed (log: $ENGINE_STATE_DIR/rust-build.log)"
        return
    fi
    rm -rf "$ctx"
    engine_log "built $tag"
}

# Stand-in for the official Litestream image under the tag a compose file names (e.g.
# litestream/litestream:0.5.17), from the static binary tests/tools.sh installs: tests/docker/litestream.Dockerfile,
# FROM the bookworm base above. Like the official image: the binary at /usr/local/bin/litestream as
# ENTRYPOINT, runs as root, has /bin/sh and chown. Refuses a binary whose `version` is not the tag's
# (0.3 printed v0.3.13, 0.5 prints 0.5.17).
engine_build_litestream() {
    local tag=$1 binary=$2 base=$3 want have hash ctx
    want=${tag##*:}
    [ -x "$binary" ] || { engine_fail "no Litestream binary at $binary (bash tests/tools.sh installs it)"; return; }
    have=$("$binary" version 2>/dev/null)
    [ "${have#v}" = "$want" ] || { engine_fail "$tag wanted, but $binary is version '${have:-?}'"; return; }
    hash=$({ echo "recipe=$ENGINE_RECIPE"; engine_image_id "$base"; sha256sum <"$binary";
             cat "$ENGINE_ROOT/tests/docker/litestream.Dockerfile"; } | engine_sha)
    engine_need "$tag" "$hash" || return 0
    ctx=$(mktemp -d /tmp/sqlite-vol-litestream.XXXXXX)
    cp "$binary" "$ctx/litestream"
    cp "$ENGINE_ROOT/tests/docker/litestream.Dockerfile" "$ctx/Dockerfile"
    engine_log "building $tag from $binary ($have)"
    if ! docker build -q --build-arg "BASE=$base" --label "$ENGINE_LABEL=$hash" -t "$tag" "$ctx" \
            >"$ENGINE_STATE_DIR/litestream-build.log" 2>&1; then
        tail -n 20 "$ENGINE_STATE_DIR/litestream-build.log" >&2
        rm -rf "$ctx"
        engine_fail "building $tag failed (log: $ENGINE_STATE_DIR/litestream-build.log)"
        return
    fi
    rm -rf "$ctx"
    engine_log "built $tag"
}

engine_images() {
    mkdir -p "$ENGINE_STATE_DIR"
    local rust_version debian_image rustc_cmd
    rust_version=$(engine_dockerfile_arg RUST_VERSION)
    debian_image=$(engine_dockerfile_arg DEBIAN_IMAGE)
    [ -n "$rust_version" ] && [ -n "$debian_image" ] ||
        { engine_fail "docker/Dockerfile has no 'ARG RUST_VERSION=' or 'ARG DEBIAN_IMAGE=' default"; return; }
    case "$debian_image" in
        bookworm*) ;;
        *) engine_fail "the stand-in base is bookworm; docker/Dockerfile asks for debian:$debian_image"; return ;;
    esac
    rustc_cmd=$(engine_rustc "$rust_version") || return
    engine_build_debian "debian:$debian_image" || return
    engine_build_toolchain "sqlite-vol-standin/rust-toolchain:$rust_version" "debian:$debian_image" "$rustc_cmd" || return
    engine_build_rust "rust:$rust_version-bookworm" "sqlite-vol-standin/rust-toolchain:$rust_version" "$rustc_cmd" || return
}

engine_setup() { engine_up && engine_images; }
engine_teardown() { engine_down; }

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -uo pipefail
    case "${1:-setup}" in
        up) engine_up ;;
        images) engine_up && engine_images ;;
        setup) engine_setup ;;
        down) engine_down --pidfile ;;
        *) echo "usage: $0 [setup|up|images|down]" >&2; exit 2 ;;
    esac
fi
