#!/usr/bin/env bash
# tests/docker/scenarios.sh: restart-persistence tests of docker/Dockerfile and docker/compose.yaml on a real
# Docker engine. Builds the Dockerfile exactly as shipped, runs each scenario with its own containers and
# volumes, prints `PASS name` or `FAIL name: reason` per scenario, then `N passed, N failed`; exits non-zero
# if anything failed or the engine is missing. See tests/docker/README.md.
#
#   bash tests/docker/scenarios.sh            all scenarios
#   bash tests/docker/scenarios.sh stop_wal   only the scenarios whose names contain one of the arguments
#
# Environment (the scripts in tests/ name their own variables SQLITE_VOL_…):
# SQLITE_VOL_DOCKER_IMAGE (default sqlite-vol-accounts:test; the build stage is kept as <image>-build-cache),
# SQLITE_VOL_MOTO_SERVER / SQLITE_VOL_LITESTREAM (the off-site tools; default: where tests/tools.sh puts them,
# installed by it when missing),
# SQLITE_VOL_DOCKER_KEEP_ENGINE=1 (leave a dockerd this script started running), SQLITE_VOL_DOCKER_PRUNE=1|0 (remove untagged images after
# the build; default: only on an engine this script started), SQLITE_VOL_DOCKER_LOG_DIR (build log and container logs of
# failures; default /tmp/sqlite-vol-docker-tests).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 2
# shellcheck source=tests/docker/engine.sh
source "$ROOT/tests/docker/engine.sh"

IMAGE=${SQLITE_VOL_DOCKER_IMAGE:-sqlite-vol-accounts:test}
RUN_ID=svt$(date +%s)$$
LABEL="org.sqlite-vol.test-run=$RUN_ID"
LOG_DIR=${SQLITE_VOL_DOCKER_LOG_DIR:-/tmp/sqlite-vol-docker-tests}
WORK=$(mktemp -d /tmp/sqlite-vol-docker-run.XXXXXX)
COMPOSE_PROJECTS=()
# The merged compose file of each project (same order as COMPOSE_PROJECTS), for `down -v` at exit.
COMPOSE_FILES=()
MOTO_PIDS=()
MOTO=${SQLITE_VOL_MOTO_SERVER:-$ROOT/target/tools/moto/bin/moto_server}
LITESTREAM=${SQLITE_VOL_LITESTREAM:-$ROOT/target/tools/litestream/0.5.17/litestream}
PASSED=0
FAILED=0
REASON=
SCENARIOS=(
    restart_keeps_accounts_and_tokens
    rm_and_run_again_keeps_accounts
    compose_down_keeps_down_v_deletes
    no_volume_refuses_to_start
    root_owned_bind_mount_fails_with_chown_fix
    backup_then_restore_into_fresh_volume
    stop_exits_zero_and_checkpoints_wal
    offsite_backup_restores_on_a_new_volume
    litestream_compose_survives_losing_the_data_volume
)

log() { printf '[docker-tests %s] %s\n' "$(date +%T)" "$*" >&2; }
# shellcheck source=tests/docker/exec.sh
source "$ROOT/tests/docker/exec.sh"

cleanup() {
    local ids i pid
    trap - EXIT INT TERM
    if docker info >/dev/null 2>&1; then
        for i in "${!COMPOSE_PROJECTS[@]}"; do
            docker-compose -p "${COMPOSE_PROJECTS[$i]}" -f "${COMPOSE_FILES[$i]}" down -v --remove-orphans >/dev/null 2>&1
        done
        ids=$(docker ps -aq --filter "label=$LABEL")
        [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
        ids=$(docker volume ls -q --filter "label=$LABEL")
        [ -n "$ids" ] && docker volume rm -f $ids >/dev/null 2>&1
    fi
    for pid in "${MOTO_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    rm -rf "$WORK"
    [ "${SQLITE_VOL_DOCKER_KEEP_ENGINE:-0}" = 1 ] || engine_teardown
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------------------
# Helpers. A step that fails sets REASON and returns 1; the scenario returns at once.

fail() { REASON=$*; return 1; }

# Free loopback ports, distinct within this run.
NEXT_PORT=$((20000 + RANDOM % 20000))
next_port() {
    while :; do
        NEXT_PORT=$((NEXT_PORT + 1))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$NEXT_PORT") 2>/dev/null; then
            PORT=$NEXT_PORT
            return 0
        fi
    done
}

new_volume() { docker volume create --label "$LABEL" "$RUN_ID-$1" >/dev/null && echo "$RUN_ID-$1"; }

# run_service NAME PORT [docker run options...]: the image's default command, listening on 127.0.0.1:PORT.
run_service() {
    local name=$1 port=$2
    shift 2
    docker run -d --name "$name" --label "$LABEL" --network host -e "BIND_ADDR=127.0.0.1:$port" "$@" "$IMAGE" \
        >/dev/null 2>"$WORK/run.err" || fail "docker run $name failed: $(tail -n 3 "$WORK/run.err")"
}

container_logs() { docker logs "$1" 2>&1 | tail -n "${2:-20}"; }

# wait_ready CONTAINER PORT: poll /health until 200; fail at once if the container stops, or if its restart
# policy restarted it (compose services are `restart: unless-stopped`: a crash loop looks like "running").
wait_ready() {
    local c=$1 port=$2 i state
    for i in $(seq 1 300); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/health")" = 200 ]; then
            return 0
        fi
        state=$(docker container inspect -f '{{.State.Status}} {{.State.ExitCode}} restarts={{.RestartCount}}' "$c" 2>/dev/null)
        case "$state" in
            running*restarts=0|created*restarts=0|restarting*restarts=0) ;;
            *) fail "container $c is '$state' instead of serving; log: $(container_logs "$c" 5 | tr '\n' ' ')"; return 1 ;;
        esac
        sleep 0.2
    done
    fail "container $c did not answer /health on 127.0.0.1:$port within 60 s; log: $(container_logs "$c" 5 | tr '\n' ' ')"
}

# wait_exit CONTAINER: wait until it stopped by itself (60 s at most); fails if it answers /health meanwhile.
wait_exit() {
    local c=$1 port=$2 i
    for i in $(seq 1 300); do
        [ "$(docker container inspect -f '{{.State.Running}}' "$c" 2>/dev/null)" = false ] && return 0
        if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/health")" = 200 ]; then
            fail "container $c started serving instead of refusing to start"
            return 1
        fi
        sleep 0.2
    done
    fail "container $c neither served nor exited within 60 s"
}

exit_code() { docker container inspect -f '{{.State.ExitCode}}' "$1"; }

# http METHOD PORT PATH [JSON] [TOKEN]: sets CODE and BODY.
http() {
    local method=$1 port=$2 path=$3 json=${4:-} token=${5:-} args=()
    args=(-s -o "$WORK/body" -w '%{http_code}' --max-time 15 -X "$method")
    [ -n "$json" ] && args+=(-H 'Content-Type: application/json' --data "$json")
    [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
    CODE=$(curl "${args[@]}" "http://127.0.0.1:$port$path") || CODE=000
    BODY=$(cat "$WORK/body" 2>/dev/null)
}

credentials() { printf '{"email":"%s","password":"%s"}' "$1" "$2"; }

register() {
    http POST "$1" /api/v1/auth/register "$(credentials "$2" "$3")"
    [ "$CODE" = 201 ] || fail "register $2: HTTP $CODE (want 201) $BODY"
}

# login PORT EMAIL PASSWORD [WANT]: checks the status (default 200); on 200 sets TOKEN.
login() {
    local want=${4:-200}
    http POST "$1" /api/v1/auth/login "$(credentials "$2" "$3")"
    [ "$CODE" = "$want" ] || { fail "login $2: HTTP $CODE (want $want) $BODY"; return 1; }
    [ "$want" = 200 ] || return 0
    TOKEN=$(printf '%s' "$BODY" | sed -n 's/.*"token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
    [ -n "$TOKEN" ] || fail "login $2: no token in $BODY"
}

me() {
    http GET "$1" /api/v1/auth/me "" "$2"
    [ "$CODE" = "${3:-200}" ] || fail "GET /me: HTTP $CODE (want ${3:-200}) $BODY"
}

# ---------------------------------------------------------------------------------------------------------
# Scenarios. Each registers its own account first, so a lost write makes it fail.

restart_keeps_accounts_and_tokens() {
    local c=$RUN_ID-restart vol token
    vol=$(new_volume restart) || fail "docker volume create failed" || return 1
    next_port
    run_service "$c" "$PORT" -v "$vol:/data" || return 1
    wait_ready "$c" "$PORT" || return 1
    register "$PORT" alice@example.com 'correct horse 1' || return 1
    login "$PORT" alice@example.com 'correct horse 1' || return 1
    token=$TOKEN
    me "$PORT" "$token" || return 1
    login "$PORT" alice@example.com 'wrong password' 401 || return 1
    docker exec "$c" accounts healthcheck >/dev/null 2>&1 || fail "'accounts healthcheck' (the image's HEALTHCHECK) failed" || return 1
    docker restart -t 30 "$c" >/dev/null || fail "docker restart failed" || return 1
    wait_ready "$c" "$PORT" || return 1
    login "$PORT" alice@example.com 'correct horse 1' || return 1
    me "$PORT" "$token" || { REASON="token from before the restart: $REASON"; return 1; }
}

rm_and_run_again_keeps_accounts() {
    local c=$RUN_ID-rm vol
    vol=$(new_volume rm) || fail "docker volume create failed" || return 1
    next_port
    run_service "$c" "$PORT" -v "$vol:/data" || return 1
    wait_ready "$c" "$PORT" || return 1
    register "$PORT" bob@example.com 'bob password 2' || return 1
    login "$PORT" bob@example.com 'bob password 2' || return 1
    docker rm -f "$c" >/dev/null || fail "docker rm -f failed" || return 1
    docker container inspect "$c" >/dev/null 2>&1 && { fail "container still exists after docker rm -f"; return 1; }
    run_service "$c" "$PORT" -v "$vol:/data" || return 1
    wait_ready "$c" "$PORT" || return 1
    login "$PORT" bob@example.com 'bob password 2' || return 1
}

# compose_project NAME FILE OVERRIDE PORT: a new Compose project, PROJECT=<run id>NAME, whose file MERGED is
# FILE + OVERRIDE merged by docker-compose itself (with the environment of the caller). Compose v1 cannot
# reset a list in an override, and the engine rejects published ports with host networking, so the one
# edit made here is to drop the `ports:` block from the merged file.
compose_project() {
    PROJECT=$RUN_ID$1
    MERGED=$WORK/compose.$1.yaml
    COMPOSE_PROJECTS+=("$PROJECT")
    COMPOSE_FILES+=("$MERGED")
    SQLITE_VOL_DOCKER_IMAGE=$IMAGE SQLITE_VOL_DOCKER_PORT=$4 docker-compose -f "$2" -f "$3" config \
        >"$WORK/compose.config.yaml" 2>"$WORK/compose.err" ||
        { fail "docker-compose config: $(tail -n 3 "$WORK/compose.err")"; return 1; }
    awk '
        /^ +ports:/ { match($0, /^ */); indent = RLENGTH; skip = 1; next }
        skip { match($0, /^ */); if (RLENGTH > indent || (RLENGTH == indent && $0 ~ /^ *- /)) next; skip = 0 }
        { print }' "$WORK/compose.config.yaml" >"$MERGED"
}

compose() { docker-compose -p "$PROJECT" -f "$MERGED" "$@" >>"$WORK/compose.log" 2>&1; }

# compose_container [SERVICE]: the container of SERVICE (default accounts) in PROJECT, if any.
compose_container() { docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=${1:-accounts}" | head -n 1; }

compose_volume() { docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | grep '_data$'; }

compose_down_keeps_down_v_deletes() {
    local c
    next_port
    compose_project compose docker/compose.yaml tests/docker/compose.test.yaml "$PORT" || return 1
    compose up -d --no-build || fail "compose up failed: $(tail -n 3 "$WORK/compose.log")" || return 1
    c=$(compose_container)
    wait_ready "$c" "$PORT" || return 1
    register "$PORT" carol@example.com 'carol password 3' || return 1
    login "$PORT" carol@example.com 'carol password 3' || return 1
    compose down || fail "compose down failed: $(tail -n 3 "$WORK/compose.log")" || return 1
    [ -z "$(compose_container)" ] || fail "a container is left after compose down" || return 1
    [ -n "$(compose_volume)" ] || fail "compose down (without -v) removed the data volume" || return 1
    compose up -d --no-build || fail "compose up (second) failed: $(tail -n 3 "$WORK/compose.log")" || return 1
    c=$(compose_container)
    wait_ready "$c" "$PORT" || return 1
    login "$PORT" carol@example.com 'carol password 3' || { REASON="after down + up: $REASON"; return 1; }
    compose down -v || fail "compose down -v failed: $(tail -n 3 "$WORK/compose.log")" || return 1
    [ -z "$(compose_volume)" ] || fail "compose down -v left the data volume" || return 1
    compose up -d --no-build || fail "compose up (third) failed: $(tail -n 3 "$WORK/compose.log")" || return 1
    c=$(compose_container)
    wait_ready "$c" "$PORT" || return 1
    login "$PORT" carol@example.com 'carol password 3' 401 || { REASON="after down -v + up, the account should be gone: $REASON"; return 1; }
    register "$PORT" carol@example.com 'carol password 3' || return 1
    compose down -v
}

no_volume_refuses_to_start() {
    local c=$RUN_ID-novol code logs
    next_port
    run_service "$c" "$PORT" || return 1
    wait_exit "$c" "$PORT" || return 1
    code=$(exit_code "$c")
    [ "$code" != 0 ] || fail "exited with code 0; strict mode must fail" || return 1
    logs=$(docker logs "$c" 2>&1)
    printf '%s' "$logs" | grep -qF -- '-v' && printf '%s' "$logs" | grep -qF ':/data' ||
        fail "exit $code, but the log does not name the fix (-v ...:/data): $(printf '%s' "$logs" | tail -n 3 | tr '\n' ' ')"
}

root_owned_bind_mount_fails_with_chown_fix() {
    local c=$RUN_ID-bind dir code logs
    dir=$(mktemp -d "$WORK/root-owned.XXXXXX")
    chown 0:0 "$dir" && chmod 0755 "$dir"
    next_port
    run_service "$c" "$PORT" -v "$dir:/data" || return 1
    wait_exit "$c" "$PORT" || return 1
    code=$(exit_code "$c")
    [ "$code" != 0 ] || fail "exited with code 0 on a folder it cannot write" || return 1
    logs=$(docker logs "$c" 2>&1)
    printf '%s' "$logs" | grep -qF chown ||
        fail "exit $code, but the log does not name the chown fix: $(printf '%s' "$logs" | tail -n 3 | tr '\n' ' ')" || return 1
    [ -z "$(ls -A "$dir")" ] || fail "the folder is not empty afterwards: $(ls -A "$dir" | tr '\n' ' ')"
}

backup_then_restore_into_fresh_volume() {
    local c1=$RUN_ID-backup c2=$RUN_ID-restored data1 data2 backups out file
    data1=$(new_volume backup-data) && backups=$(new_volume backups) && data2=$(new_volume restored-data) ||
        fail "docker volume create failed" || return 1
    next_port
    run_service "$c1" "$PORT" -v "$data1:/data" -v "$backups:/backups" || return 1
    wait_ready "$c1" "$PORT" || return 1
    register "$PORT" dave@example.com 'dave password 4' || return 1
    login "$PORT" dave@example.com 'dave password 4' || return 1
    out=$(docker exec "$c1" sqlite-vol backup 2>"$WORK/backup.err") ||
        fail "sqlite-vol backup failed: $(tail -n 3 "$WORK/backup.err" | tr '\n' ' ')" || return 1
    file=$(printf '%s\n' "$out" | grep -o '/backups/[^[:space:]"]*' | tail -n 1)
    [ -n "$file" ] || fail "sqlite-vol backup did not print a path under /backups: $out" || return 1
    docker run --rm --network none -v "$backups:/backups" "$IMAGE" test -s "$file" ||
        fail "$file is not in the backups volume (or is empty)" || return 1
    docker rm -f "$c1" >/dev/null
    docker run --rm --network none --label "$LABEL" -v "$data2:/data" -v "$backups:/backups" "$IMAGE" \
        sqlite-vol restore "$file" --yes >"$WORK/restore.out" 2>&1 ||
        fail "sqlite-vol restore $file --yes failed: $(tail -n 3 "$WORK/restore.out" | tr '\n' ' ')" || return 1
    next_port
    run_service "$c2" "$PORT" -v "$data2:/data" -v "$backups:/backups" || return 1
    wait_ready "$c2" "$PORT" || return 1
    login "$PORT" dave@example.com 'dave password 4' || { REASON="after restore into a fresh volume: $REASON"; return 1; }
    me "$PORT" "$TOKEN" || return 1
}

stop_exits_zero_and_checkpoints_wal() {
    local c=$RUN_ID-stop vol i start elapsed state listing wal db
    vol=$(new_volume stop) || fail "docker volume create failed" || return 1
    next_port
    run_service "$c" "$PORT" -v "$vol:/data" || return 1
    wait_ready "$c" "$PORT" || return 1
    for i in 1 2 3; do register "$PORT" "erin$i@example.com" "erin password $i" || return 1; done
    login "$PORT" erin1@example.com 'erin password 1' || return 1
    start=$(date +%s)
    docker stop -t 30 "$c" >/dev/null || fail "docker stop failed" || return 1
    elapsed=$(($(date +%s) - start))
    state=$(docker container inspect -f 'exit={{.State.ExitCode}} oom={{.State.OOMKilled}} error={{.State.Error}}' "$c")
    [ "$state" = "exit=0 oom=false error=" ] ||
        fail "after docker stop: $state (took ${elapsed}s); log: $(container_logs "$c" 3 | tr '\n' ' ')" || return 1
    [ "$elapsed" -lt 30 ] || fail "docker stop took ${elapsed}s: the grace period ran out" || return 1
    listing=$(docker run --rm --network none -v "$vol:/data" "$IMAGE" ls -ln /data) ||
        fail "could not list the volume" || return 1
    db=$(printf '%s\n' "$listing" | awk '$NF == "accounts.db" { print $5 }')
    wal=$(printf '%s\n' "$listing" | awk '$NF == "accounts.db-wal" { print $5 }')
    [ -n "$db" ] && [ "$db" -gt 0 ] || fail "no accounts.db on the volume: $(printf '%s' "$listing" | tr '\n' ' ')" || return 1
    [ -z "$wal" ] || [ "$wal" = 0 ] || fail "accounts.db-wal is $wal bytes after a clean stop (not checkpointed)" || return 1
    docker start "$c" >/dev/null || fail "docker start after stop failed" || return 1
    wait_ready "$c" "$PORT" || return 1
    login "$PORT" erin3@example.com 'erin password 3' || { REASON="after stop + start: $REASON"; return 1; }
}

# ---------------------------------------------------------------------------------------------------------
# Off-site scenarios: an S3-compatible server (moto) on the host's loopback, which containers on the host
# network reach at 127.0.0.1. Machine loss is simulated by removing every container and volume; the bucket
# (the off-site copy) is all that is left.

# The off-site tools (moto, Litestream): where tests/tools.sh puts them, installed by it when missing.
need_tools() {
    [ -x "$MOTO" ] && [ -x "$LITESTREAM" ] && return 0
    log "installing the off-site test tools (bash tests/tools.sh)"
    bash "$ROOT/tests/tools.sh" >"$WORK/tools.log" 2>&1 ||
        { fail "tests/tools.sh failed: $(tail -n 3 "$WORK/tools.log" | tr '\n' ' ')"; return 1; }
    [ -x "$MOTO" ] && [ -x "$LITESTREAM" ] ||
        fail "no moto_server at $MOTO or no litestream at $LITESTREAM after tests/tools.sh"
}

# start_moto: an S3 server on a free loopback port; sets S3_PORT and S3_URL. Stopped at exit.
start_moto() {
    local i
    next_port
    S3_PORT=$PORT
    S3_URL=http://127.0.0.1:$S3_PORT
    "$MOTO" -H 127.0.0.1 -p "$S3_PORT" >"$WORK/moto-$S3_PORT.log" 2>&1 &
    MOTO_PIDS+=($!)
    for i in $(seq 1 100); do
        curl -s -o /dev/null --max-time 1 "$S3_URL/" && return 0
        kill -0 "${MOTO_PIDS[-1]}" 2>/dev/null || break
        sleep 0.2
    done
    fail "moto_server did not answer on $S3_URL: $(tail -n 3 "$WORK/moto-$S3_PORT.log" | tr '\n' ' ')"
}

stop_moto() { kill "${MOTO_PIDS[-1]}" 2>/dev/null; }

make_bucket() {
    local code
    code=$(curl -s -o "$WORK/body" -w '%{http_code}' --max-time 10 -X PUT "$S3_URL/$1")
    [ "$code" = 200 ] || fail "creating bucket $1 on moto: HTTP $code $(cat "$WORK/body" 2>/dev/null)"
}

# s3_keys BUCKET PREFIX: the keys under PREFIX, one a line (moto answers up to 1000, plenty here).
s3_keys() {
    curl -s --max-time 10 "$S3_URL/$1?list-type=2&prefix=$2" | grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g'
}

# The AWS settings for a container on the host network, pointing at moto.
s3_env() {
    S3_ENV=(-e AWS_ACCESS_KEY_ID=test -e AWS_SECRET_ACCESS_KEY=test -e AWS_REGION=us-east-1
            -e "AWS_ENDPOINT_URL=$S3_URL")
}

offsite_backup_restores_on_a_new_volume() {
    local c1=$RUN_ID-offsite c2=$RUN_ID-offsite-new data1 backups1 data2 backups2 i after newest stamp deadline out
    local to=s3://svt-offsite/accounts
    need_tools && start_moto && make_bucket svt-offsite || return 1
    s3_env
    data1=$(new_volume offsite-data) && backups1=$(new_volume offsite-backups) || fail "docker volume create failed" || return 1
    next_port
    run_service "$c1" "$PORT" -v "$data1:/data" -v "$backups1:/backups" "${S3_ENV[@]}" \
        -e "SQLITE_VOL_BACKUP_TO=$to" -e SQLITE_VOL_BACKUP_INTERVAL=2s || return 1
    wait_ready "$c1" "$PORT" || return 1
    for i in 1 2 3; do register "$PORT" "frank$i@example.com" "frank password $i" || return 1; done
    # A backup whose name (its start time, to the second) is later than the last registration's answer.
    after=$(date -u +%Y%m%dT%H%M%SZ)
    deadline=$((SECONDS + 30))
    while :; do
        newest=$(s3_keys svt-offsite accounts/ | sed -n 's#^accounts/accounts-\([0-9]\{8\}T[0-9]\{6\}Z\)\(-[0-9]*\)\{0,1\}\.db\.json$#\1#p' | sort | tail -n 1)
        [ -n "$newest" ] && [[ $newest > $after ]] && break
        [ $SECONDS -lt $deadline ] ||
            { fail "no backup manifest newer than $after in the bucket after 30 s (newest: ${newest:-none}); log: $(container_logs "$c1" 5 | tr '\n' ' ')"; return 1; }
        sleep 0.5
    done
    out=$(docker exec "$c1" sqlite-vol list "$to" 2>"$WORK/list.err") ||
        fail "docker exec sqlite-vol list $to failed: $(tail -n 3 "$WORK/list.err" | tr '\n' ' ')" || return 1
    grep -qF "accounts-$newest" <<<"$out" ||
        fail "sqlite-vol list $to does not show accounts-$newest: $(printf '%s' "$out" | tail -n 5 | tr '\n' ' ')" || return 1
    # The machine is gone: its container and both volumes.
    docker rm -f "$c1" >/dev/null || fail "docker rm -f failed" || return 1
    docker volume rm "$data1" "$backups1" >/dev/null || fail "docker volume rm $data1 $backups1 failed" || return 1
    data2=$(new_volume offsite-data2) && backups2=$(new_volume offsite-backups2) || fail "docker volume create failed" || return 1
    next_port
    run_service "$c2" "$PORT" -v "$data2:/data" -v "$backups2:/backups" "${S3_ENV[@]}" \
        -e "SQLITE_VOL_RESTORE_FROM=$to" -e SQLITE_VOL_EXPECT_EXISTING=1 || return 1
    wait_ready "$c2" "$PORT" || return 1
    out=$(docker logs "$c2" 2>&1)
    grep -qF 'RESTORED the database from the newest backup' <<<"$out" ||
        fail "the new container's log does not say RESTORED: $(container_logs "$c2" 5 | tr '\n' ' ')" || return 1
    for i in 1 2 3; do
        login "$PORT" "frank$i@example.com" "frank password $i" || { REASON="after restoring on a new volume: $REASON"; return 1; }
    done
    stop_moto
}

# The compose stand-in image for Litestream, under the tag docker/compose.litestream.yaml names.
litestream_image() {
    LITESTREAM_IMAGE=$(sed -n 's/^ *image: *\(litestream\/litestream:[^[:space:]]*\).*/\1/p' docker/compose.litestream.yaml | head -n 1)
    [ -n "$LITESTREAM_IMAGE" ] || fail "docker/compose.litestream.yaml names no litestream/litestream image" || return 1
    engine_build_litestream "$LITESTREAM_IMAGE" "$LITESTREAM" "debian:$(engine_dockerfile_arg DEBIAN_IMAGE)" 2>"$WORK/litestream-image.err" ||
        fail "no $LITESTREAM_IMAGE stand-in: $(tail -n 3 "$WORK/litestream-image.err" | tr '\n' ' ')"
}

# compose_exited SERVICE: "exit=N" of the project's SERVICE container once it stopped (10 s at most).
compose_exited() {
    local c i
    c=$(compose_container "$1")
    [ -n "$c" ] || { echo "no $1 container"; return 0; }
    for i in $(seq 1 50); do
        if [ "$(docker container inspect -f '{{.State.Running}}' "$c")" = false ]; then
            docker container inspect -f 'exit={{.State.ExitCode}}' "$c"
            return 0
        fi
        sleep 0.2
    done
    echo "still running after 10 s"
}

# register_until_down PORT PREFIX FILE: registers PREFIX1@example.com, PREFIX2@… one after another until the
# service has stopped answering (5 misses in a row), and appends the number of each acknowledged one (201) to
# FILE: the writes that must survive.
register_until_down() {
    local port=$1 prefix=$2 file=$3 n=0 misses=0 code
    while [ "$misses" -lt 5 ]; do
        n=$((n + 1))
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST -H 'Content-Type: application/json' \
            --data "$(credentials "$prefix$n@example.com" "$prefix password $n")" \
            "http://127.0.0.1:$port/api/v1/auth/register") || code=000
        if [ "$code" = 201 ]; then
            echo "$n" >>"$file"
            misses=0
        else
            misses=$((misses + 1))
            sleep 0.1
        fi
    done
}

litestream_compose_survives_losing_the_data_volume() {
    local c i state vol listing out finished_accounts finished_litestream writer acked lost
    need_tools && litestream_image && start_moto && make_bucket svt-litestream || return 1
    next_port
    LITESTREAM_BUCKET=svt-litestream LITESTREAM_PATH=accounts AWS_ENDPOINT_URL=$S3_URL AWS_REGION= \
        AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test LITESTREAM_LOG_LEVEL=info \
        compose_project litestream docker/compose.litestream.yaml tests/docker/compose.litestream.test.yaml "$PORT" || return 1
    compose up -d --no-build || fail "compose up failed: $(tail -n 3 "$WORK/compose.log")" || return 1
    state=$(compose_exited restore)
    out=$(docker logs "$(compose_container restore)" 2>&1)
    [ "$state" = exit=0 ] && grep -qF 'no matching backups found' <<<"$out" ||
        fail "the restore step on an empty bucket: $state; log: $(tail -n 3 <<<"$out" | tr '\n' ' ')" || return 1
    c=$(compose_container)
    wait_ready "$c" "$PORT" || return 1
    for i in 1 2 3; do register "$PORT" "grace$i@example.com" "grace password $i" || return 1; done
    # Litestream is replicating: its first sync leaves LTX files in the bucket (the registrations above may
    # already be in them: 0.5 syncs once a second), and a registration after that adds another.
    ltx_count() { s3_keys svt-litestream accounts/ | grep -c '\.ltx$'; }
    for i in $(seq 1 100); do
        out=$(ltx_count)
        [ "$out" -ge 1 ] && break
        sleep 0.2
    done
    [ "$out" -ge 1 ] ||
        fail "no LTX file in the bucket after 20 s; sidecar log: $(container_logs "$(compose_container litestream)" 5 | tr '\n' ' ')" || return 1
    listing=$out
    register "$PORT" "ivy@example.com" "ivy password 1" || return 1
    for i in $(seq 1 100); do
        out=$(ltx_count)
        [ "$out" -gt "$listing" ] && break
        sleep 0.2
    done
    [ "$out" -gt "$listing" ] ||
        fail "no new LTX file in the bucket 20 s after a registration; sidecar log: $(container_logs "$(compose_container litestream)" 5 | tr '\n' ' ')" || return 1
    # A graceful stop while a client keeps registering: Litestream syncs one last time on SIGTERM and must
    # exit 0, as must the service, and every registration the service acknowledged must be in the replica.
    : >"$WORK/acked"
    register_until_down "$PORT" hank "$WORK/acked" &
    writer=$!
    for i in $(seq 1 100); do [ "$(wc -l <"$WORK/acked")" -ge 3 ] && break; sleep 0.1; done
    compose stop || fail "compose stop failed: $(tail -n 3 "$WORK/compose.log")" || return 1
    wait "$writer"
    acked=$(wc -l <"$WORK/acked")
    [ "$acked" -ge 3 ] || fail "only $acked registrations acknowledged before the stop" || return 1
    for i in accounts litestream; do
        state=$(compose_exited "$i")
        [ "$state" = exit=0 ] ||
            fail "after compose stop, $i: $state; log: $(container_logs "$(compose_container "$i")" 5 | tr '\n' ' ')" || return 1
    done
    # The service must stop first: what it acknowledges until then is uploaded by the sidecar's last sync.
    finished_accounts=$(docker container inspect -f '{{.State.FinishedAt}}' "$(compose_container accounts)")
    finished_litestream=$(docker container inspect -f '{{.State.FinishedAt}}' "$(compose_container litestream)")
    [ "$(date -d "$finished_accounts" +%s%N)" -le "$(date -d "$finished_litestream" +%s%N)" ] ||
        fail "compose stop stopped the Litestream sidecar ($finished_litestream) before the service ($finished_accounts)" || return 1
    log "$acked registrations acknowledged during the stop; the service stopped $(( ($(date -d "$finished_litestream" +%s%N) - $(date -d "$finished_accounts" +%s%N)) / 1000000 )) ms before the sidecar"
    # The machine is gone: containers and volumes; only the bucket is left.
    compose down -v || fail "compose down -v failed: $(tail -n 3 "$WORK/compose.log")" || return 1
    [ -z "$(compose_volume)" ] || fail "compose down -v left the data volume" || return 1
    compose up -d --no-build || fail "compose up (on an empty volume) failed: $(tail -n 3 "$WORK/compose.log")" || return 1
    c=$(compose_container restore)
    state=$(compose_exited restore)
    [ "$state" = exit=0 ] || fail "the restore step: $state; log: $(container_logs "$c" 5 | tr '\n' ' ')" || return 1
    # Litestream 0.5.17 restores without a word at level info, and exits 0 after saying "no matching backups
    # found" (an empty bucket) or "database already exists, skipping": neither may appear here.
    out=$(docker logs "$c" 2>&1)
    ! grep -qE 'no matching backups found|database already exists' <<<"$out" ||
        fail "the restore step did not restore a database; log: $(container_logs "$c" 5 | tr '\n' ' ')" || return 1
    c=$(compose_container)
    wait_ready "$c" "$PORT" || return 1
    for i in 1 2 3; do
        login "$PORT" "grace$i@example.com" "grace password $i" || { REASON="after restoring from Litestream: $REASON"; return 1; }
    done
    lost=()
    for i in $(cat "$WORK/acked"); do
        login "$PORT" "hank$i@example.com" "hank password $i" >/dev/null || lost+=("hank$i")
    done
    [ ${#lost[@]} = 0 ] ||
        fail "${#lost[@]} of $acked registrations acknowledged while the stack was stopping are not in the restored database: ${lost[*]}" || return 1
    register "$PORT" grace4@example.com 'grace password 4' || { REASON="writing after the restore: $REASON"; return 1; }
    vol=$(compose_volume)
    listing=$(docker run --rm --network none -v "$vol:/data" "$IMAGE" ls -lna /data) || fail "could not list the data volume" || return 1
    [ -n "$(printf '%s\n' "$listing" | awk '$NF == "accounts.db"')" ] ||
        fail "no accounts.db on the restored volume: $(printf '%s' "$listing" | tr '\n' ' ')" || return 1
    [ -z "$(printf '%s\n' "$listing" | awk 'NR > 1 && $NF != ".." && ($3 != 10001 || $4 != 10001)')" ] ||
        fail "files on the restored volume not owned by 10001:10001: $(printf '%s' "$listing" | tr '\n' ' ')" || return 1
    [ "$(docker container inspect -f '{{.State.Running}}' "$(compose_container litestream)")" = true ] ||
        fail "the Litestream sidecar is not running after the restore; log: $(container_logs "$(compose_container litestream)" 5 | tr '\n' ' ')" || return 1
    compose down -v
    stop_moto
}

# ---------------------------------------------------------------------------------------------------------

# The build stage's image is untagged, so pruning would drop the cached dependency layer with it: tag it
# (its id is the last " ---> ID" before the runtime stage's FROM in the build log; building it again with
# --target would race with anyone editing the sources meanwhile), then drop the untagged images earlier runs
# left (each source change leaves a build-stage image of ~1.8 GB). Pruning only on an engine this script
# started (a dedicated test engine), or with SQLITE_VOL_DOCKER_PRUNE=1.
keep_build_cache() {
    local id
    id=$(awk '/Step [0-9]+\/[0-9]+ : FROM / { if (++n == 2) { print last; exit } }
              /---> [0-9a-f]+$/ { last = $NF }' "$LOG_DIR/build.log")
    if [ -z "$id" ] || ! docker tag "$id" "$IMAGE-build-cache" >/dev/null 2>&1; then
        log "could not tag the build stage; not pruning (the next build may be slower)"
        return 0
    fi
    if [ "${SQLITE_VOL_DOCKER_PRUNE:-$ENGINE_STARTED_DOCKERD}" = 1 ]; then
        docker image prune -f >/dev/null 2>&1
    fi
}

summary() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" = 0 ]
}

selected() {
    local s
    [ $# -le 1 ] && return 0
    for s in "${@:2}"; do [[ $1 == *"$s"* ]] && return 0; done
    return 1
}

main() {
    local name t0 started
    mkdir -p "$LOG_DIR"
    if ! engine_setup; then
        echo "FAIL docker engine: no working Docker engine or base images (see the messages above)"
        FAILED=$((FAILED + 1))
        summary
        exit 2
    fi

    t0=$(date +%s)
    log "docker build --network host -f docker/Dockerfile -t $IMAGE . (log: $LOG_DIR/build.log)"
    if ! docker build --network host --force-rm -f docker/Dockerfile -t "$IMAGE" . >"$LOG_DIR/build.log" 2>&1; then
        tail -n 30 "$LOG_DIR/build.log" >&2
        echo "FAIL docker build: docker/Dockerfile did not build (log: $LOG_DIR/build.log)"
        FAILED=$((FAILED + 1))
        summary
        exit 1
    fi
    log "image built in $(($(date +%s) - t0)) s"
    keep_build_cache

    for name in "${SCENARIOS[@]}"; do
        selected "$name" "$@" || continue
        REASON=
        started=$(date +%s)
        log "scenario $name"
        if "$name"; then
            echo "PASS $name"
            PASSED=$((PASSED + 1))
        else
            echo "FAIL $name: ${REASON:-failed without a reason}"
            FAILED=$((FAILED + 1))
            # Keep the logs of this scenario's containers for inspection.
            local c
            for c in $(docker ps -aq --filter "label=$LABEL") $(docker ps -a --format '{{.ID}} {{.Label "com.docker.compose.project"}}' |
                    awk -v run="$RUN_ID" 'index($2, run) == 1 { print $1 }'); do
                docker logs "$c" >"$LOG_DIR/$name-$c.log" 2>&1
            done
            [ -s "$WORK/compose.log" ] && cp "$WORK/compose.log" "$LOG_DIR/$name-compose.log"
            for c in "$WORK"/moto-*.log; do [ -s "$c" ] && cp "$c" "$LOG_DIR/$name-$(basename "$c")"; done
        fi
        log "scenario $name took $(($(date +%s) - started)) s"
        local ids
        ids=$(docker ps -aq --filter "label=$LABEL")
        [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
    done
    summary
}

source "$ROOT/tests/docker/outside.sh"
main "$@"
