# tests/docker/outside.sh: the scenario of a project that is not this workspace. Sourced by scenarios.sh
# (it uses that file's helpers and adds its scenario to SCENARIOS).
#
# tests/docker/outside/ is a small service, `notes`, with its own Cargo.toml and workspace, that depends on
# the sqlite-vol library by path, as a project with this repository checked out in vendor/sqlite-vol (a git
# submodule) does. The scenario builds a Docker context the way that project looks (its files, a copy of
# this repository's working tree in vendor/sqlite-vol, a Cargo.lock derived from this repository's so the
# offline build stage has every crate), turns docker/Dockerfile into that project's Dockerfile exactly as
# the template's comments say (outside_dockerfile), builds it on the real engine and runs it: the service
# records one row per start on its named volume, `sqlite-vol backup` and `verify` work inside the image,
# and the rows survive `docker restart` and a new container on the same volume.
#
# Environment: SQLITE_VOL_DOCKER_OUTSIDE_IMAGE (default sqlite-vol-outside:test; its build stage is kept as
# <image>-build-cache so that later runs reuse it).

OUTSIDE_IMAGE=${SQLITE_VOL_DOCKER_OUTSIDE_IMAGE:-sqlite-vol-outside:test}
SCENARIOS+=(outside_project_builds_from_the_template_and_keeps_its_data)

# docker/Dockerfile adapted as its comments say for a project of one crate named notes, with sqlite-vol as
# a path dependency: delete ">>> this workspace" … "<<< this workspace"; remove the "# " at the start of
# each line between ">>> your own project" and "<<< your own project"; keep one "cargo install" line (the
# --path one); "myservice" becomes notes; in the runtime stage, "accounts" becomes notes.
outside_dockerfile() {
    awk '
        /^# >>> this workspace/ { drop = 1 }
        drop { if (/^# <<< this workspace/) drop = 0; next }
        /^# >>> your own project$/ { own = 1; next }
        /^# <<< your own project$/ { own = 0; next }
        own {
            sub(/^# /, "")
            if (/^RUN cargo install / && !/ --path /) next
            gsub(/myservice/, "notes")
        }
        /^FROM debian:/ { runtime = 1 }
        runtime { gsub(/accounts/, "notes") }
        { print }
    ' "$ROOT/docker/Dockerfile"
}

# outside_context DIR: the outside project as its own repository would hold it, ready to build.
outside_context() {
    local dir=$1
    mkdir -p "$dir/vendor/sqlite-vol" || return 1
    cp -a "$ROOT/tests/docker/outside/." "$dir/" || return 1
    # The submodule: this repository's working tree, without build output or version control.
    tar -C "$ROOT" --exclude=./target --exclude='*/target' --exclude=./.git -c . | tar -C "$dir/vendor/sqlite-vol" -x ||
        return 1
    # Its lock file: the workspace's, reduced by cargo to what notes uses (so every crate it names is in the
    # stand-in build image, which holds the crates of this repository's Cargo.lock).
    cp "$ROOT/Cargo.lock" "$dir/Cargo.lock" &&
        cargo metadata --offline --format-version 1 --manifest-path "$dir/Cargo.toml" >/dev/null 2>"$WORK/outside-lock.err" ||
        { echo "cargo could not derive the outside project's Cargo.lock: $(tail -n 3 "$WORK/outside-lock.err" | tr '\n' ' ')"; return 1; }
    outside_dockerfile >"$dir/Dockerfile"
}

# The build stage's image is untagged and would be pruned with its layers: tag it, as keep_build_cache does.
outside_keep_build_cache() {
    local id
    id=$(awk '/Step [0-9]+\/[0-9]+ : FROM / { if (++n == 2) { print last; exit } }
              /---> [0-9a-f]+$/ { last = $NF }' "$1")
    [ -n "$id" ] && docker tag "$id" "$OUTSIDE_IMAGE-build-cache" >/dev/null 2>&1 ||
        log "could not tag the outside project's build stage (the next build may be slower)"
}

# outside_wait_log CONTAINER TEXT: until the container's log holds TEXT (60 s); fails if it stops first.
outside_wait_log() {
    local c=$1 text=$2 i
    for i in $(seq 1 300); do
        docker logs "$c" 2>&1 | grep -qF "$text" && return 0
        if [ "$(docker container inspect -f '{{.State.Running}}' "$c" 2>/dev/null)" != true ]; then
            sleep 0.5
            docker logs "$c" 2>&1 | grep -qF "$text" && return 0
            fail "container $c stopped (exit $(exit_code "$c")) before logging '$text'; log: $(container_logs "$c" 5 | tr '\n' ' ')"
            return 1
        fi
        sleep 0.2
    done
    fail "container $c did not log '$text' within 60 s; log: $(container_logs "$c" 5 | tr '\n' ' ')"
}

outside_project_builds_from_the_template_and_keeps_its_data() {
    local ctx=$WORK/outside c=$RUN_ID-outside c2=$RUN_ID-outside-new data backups t0 out file
    t0=$(date +%s)
    out=$(outside_context "$ctx") || fail "preparing the outside project: $out" || return 1
    # The adaptation must have found the template's markers: a path install of the CLI, the service named
    # notes, nothing of this workspace's own build left.
    grep -q '^COPY vendor vendor$' "$ctx/Dockerfile" && grep -q '^RUN cargo install .*--path vendor/sqlite-vol/crates/sqlite-vol-cli' "$ctx/Dockerfile" &&
        grep -q '^CMD \["notes"\]' "$ctx/Dockerfile" && ! grep -qE '^# (COPY|RUN) ' "$ctx/Dockerfile" &&
        ! grep -v '^#' "$ctx/Dockerfile" | grep -qE -- '-p accounts|myservice|accounts' ||
        fail "docker/Dockerfile no longer adapts as its comments say (markers or lines changed); result: $ctx/Dockerfile" || return 1
    cp "$ctx/Dockerfile" "$LOG_DIR/outside.Dockerfile"
    log "docker build of the outside project (log: $LOG_DIR/outside-build.log, Dockerfile: $LOG_DIR/outside.Dockerfile)"
    docker build --network host --force-rm -t "$OUTSIDE_IMAGE" "$ctx" >"$LOG_DIR/outside-build.log" 2>&1 ||
        fail "the adapted template did not build: $(grep -E 'error|Error' "$LOG_DIR/outside-build.log" | tail -n 3 | tr '\n' ' ') (log: $LOG_DIR/outside-build.log)" ||
        return 1
    outside_keep_build_cache "$LOG_DIR/outside-build.log"
    log "outside project image built in $(($(date +%s) - t0)) s"

    data=$(new_volume outside-data) && backups=$(new_volume outside-backups) || fail "docker volume create failed" || return 1
    docker run -d --name "$c" --label "$LABEL" --network none -v "$data:/data" -v "$backups:/backups" "$OUTSIDE_IMAGE" \
        >/dev/null 2>"$WORK/run.err" || fail "docker run $c failed: $(tail -n 3 "$WORK/run.err")" || return 1
    outside_wait_log "$c" "notes: start 1 recorded in /data/notes.db" || return 1
    docker exec "$c" notes healthcheck >/dev/null 2>&1 || fail "'notes healthcheck' (the image's HEALTHCHECK) failed" || return 1

    # The sqlite-vol command that cargo install put in the image finds the service's database unaided.
    out=$(docker exec "$c" sqlite-vol backup 2>"$WORK/backup.err") ||
        fail "docker exec sqlite-vol backup failed: $(printf '%s\n' "$out" | tail -n 3 | tr '\n' ' ') $(tail -n 3 "$WORK/backup.err" | tr '\n' ' ')" || return 1
    file=$(printf '%s\n' "$out" | grep -o '/backups/notes-[0-9TZ-]*\.db' | head -n 1)
    [ -n "$file" ] || fail "sqlite-vol backup printed no /backups/notes-*.db path: $out" || return 1
    docker exec "$c" sqlite-vol verify "$file" >"$WORK/verify.out" 2>&1 ||
        fail "sqlite-vol verify $file failed: $(tail -n 3 "$WORK/verify.out" | tr '\n' ' ')" || return 1

    docker restart -t 30 "$c" >/dev/null || fail "docker restart failed" || return 1
    outside_wait_log "$c" "notes: start 2 recorded" || { REASON="after docker restart: $REASON"; return 1; }
    docker logs "$c" 2>&1 | grep -qF "notes: stopped cleanly" ||
        fail "no 'stopped cleanly' in the log: SIGTERM did not reach the service" || return 1

    docker stop -t 30 "$c" >/dev/null || fail "docker stop failed" || return 1
    [ "$(exit_code "$c")" = 0 ] || fail "the service exited $(exit_code "$c") on docker stop (want 0)" || return 1
    docker rm "$c" >/dev/null || fail "docker rm failed" || return 1
    docker run -d --name "$c2" --label "$LABEL" --network none -v "$data:/data" -v "$backups:/backups" "$OUTSIDE_IMAGE" \
        >/dev/null 2>"$WORK/run.err" || fail "docker run $c2 failed: $(tail -n 3 "$WORK/run.err")" || return 1
    outside_wait_log "$c2" "notes: start 3 recorded" || { REASON="a new container on the same volume: $REASON"; return 1; }
    out=$(docker exec "$c2" sqlite-vol list 2>&1) || fail "sqlite-vol list failed: $out" || return 1
    grep -qF "$(basename "$file")" <<<"$out" || fail "sqlite-vol list does not show $(basename "$file"): $out" || return 1
}
