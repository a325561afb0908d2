#!/usr/bin/env bash
# tests/docker/scenarios.sh: restart-persistence tests of docker/Dockerfile and docker/compose.yaml on a real
# Docker engine. Builds the Dockerfile exactly as shipped, runs each scenario with its own containers and
# volumes, prints `PASS name` or `FAIL name: reason` per scenario, then `N passed, N failed`; exits non-zero
# if anything failed or the engine is missing. See tests/docker/README.md.
#
#   bash tests/docker/scenarios.sh            all scenarios
#   bash tests/docker/scenarios.sh stop_wal   only the scenarios whose names contain one of the arguments
#
# Environment: SVT_IMAGE (default sqlite-vol-accounts:test; the build stage is kept as SVT_IMAGE-build-cache),
# SVT_KEEP_ENGINE=1 (leave a dockerd this script started running), SVT_PRUNE=1|0 (remove untagged images after
# the build; default: only on an engine this script started), SVT_LOG_DIR (build log and container logs of
# failures; default /tmp/sqlite-vol-docker-tests).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 2
# shellcheck source=tests/docker/engine.sh
source "$ROOT/tests/docker/engine.sh"

IMAGE=${SVT_IMAGE:-sqlite-vol-accounts:test}
RUN_ID=svt$(date +%s)$$
LABEL="org.sqlite-vol.test-run=$RUN_ID"
LOG_DIR=${SVT_LOG_DIR:-/tmp/sqlite-vol-docker-tests}
WORK=$(mktemp -d /tmp/sqlite-vol-docker-run.XXXXXX)
COMPOSE_PROJECTS=()
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
)

log() { printf '[docker-tests %s] %s\n' "$(date +%T)" "$*" >&2; }

cleanup() {
    local ids p
    trap - EXIT INT TERM
    if docker info >/dev/null 2>&1; then
        for p in "${COMPOSE_PROJECTS[@]}"; do
            docker-compose -p "$p" -f "$WORK/compose.merged.yaml" down -v --remove-orphans >/dev/null 2>&1
        done
        ids=$(docker ps -aq --filter "label=$LABEL")
        [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
        ids=$(docker volume ls -q --filter "label=$LABEL")
        [ -n "$ids" ] && docker volume rm -f $ids >/dev/null 2>&1
    fi
    rm -rf "$WORK"
    [ "${SVT_KEEP_ENGINE:-0}" = 1 ] || engine_teardown
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

# wait_ready CONTAINER PORT: poll /health until 200; fail at once if the container stops.
wait_ready() {
    local c=$1 port=$2 i state
    for i in $(seq 1 300); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/health")" = 200 ]; then
            return 0
        fi
        state=$(docker container inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$c" 2>/dev/null)
        case "$state" in
            running*|created*|restarting*) ;;
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

# docker/compose.yaml + tests/docker/compose.test.yaml, merged by docker-compose itself. Compose v1 cannot
# reset a list in an override, and the engine rejects published ports with host networking, so the one
# edit made here is to drop the `ports:` block from the merged file.
compose_file() {
    local merged=$WORK/compose.merged.yaml
    [ -s "$merged" ] && return 0
    SVT_IMAGE=$IMAGE SVT_PORT=$1 docker-compose -f docker/compose.yaml -f tests/docker/compose.test.yaml config \
        >"$WORK/compose.config.yaml" 2>"$WORK/compose.err" ||
        { fail "docker-compose config: $(tail -n 3 "$WORK/compose.err")"; return 1; }
    awk '
        /^ +ports:/ { match($0, /^ */); indent = RLENGTH; skip = 1; next }
        skip { match($0, /^ */); if (RLENGTH > indent || (RLENGTH == indent && $0 ~ /^ *- /)) next; skip = 0 }
        { print }' "$WORK/compose.config.yaml" >"$merged"
}

compose() { docker-compose -p "$PROJECT" -f "$WORK/compose.merged.yaml" "$@" >>"$WORK/compose.log" 2>&1; }

compose_container() { docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=accounts" | head -n 1; }

compose_volume() { docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | grep '_data$'; }

compose_down_keeps_down_v_deletes() {
    local c
    PROJECT=${RUN_ID}compose
    COMPOSE_PROJECTS+=("$PROJECT")
    next_port
    compose_file "$PORT" || return 1
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

# The build stage's image is untagged, so pruning would drop the cached dependency layer with it: tag it
# (its id is the last " ---> ID" before the runtime stage's FROM in the build log; building it again with
# --target would race with anyone editing the sources meanwhile), then drop the untagged images earlier runs
# left (each source change leaves a build-stage image of ~1.8 GB). Pruning only on an engine this script
# started (a dedicated test engine), or with SVT_PRUNE=1.
keep_build_cache() {
    local id
    id=$(awk '/Step [0-9]+\/[0-9]+ : FROM / { if (++n == 2) { print last; exit } }
              /---> [0-9a-f]+$/ { last = $NF }' "$LOG_DIR/build.log")
    if [ -z "$id" ] || ! docker tag "$id" "$IMAGE-build-cache" >/dev/null 2>&1; then
        log "could not tag the build stage; not pruning (the next build may be slower)"
        return 0
    fi
    if [ "${SVT_PRUNE:-$ENGINE_STARTED_DOCKERD}" = 1 ]; then
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
            for c in $(docker ps -aq --filter "label=$LABEL") $(docker ps -aq --filter "label=com.docker.compose.project=${RUN_ID}compose"); do
                docker logs "$c" >"$LOG_DIR/$name-$c.log" 2>&1
            done
        fi
        log "scenario $name took $(($(date +%s) - started)) s"
        local ids
        ids=$(docker ps -aq --filter "label=$LABEL")
        [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
    done
    summary
}

main "$@"
