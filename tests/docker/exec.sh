# tests/docker/exec.sh: container scenarios of docker/exec/Dockerfile (a Python app under `sqlite-vol exec`),
# sourced by scenarios.sh, whose helpers (run ids, labels, http, wait_ready, wait_exit, fail) they use. The
# image is built from the template exactly as shipped, once, by the first of these scenarios that runs.
# Environment: SQLITE_VOL_EXEC_IMAGE (default sqlite-vol-pyaccounts:test).

EXEC_IMAGE=${SQLITE_VOL_EXEC_IMAGE:-sqlite-vol-pyaccounts:test}
EXEC_BUILT=0
SCENARIOS+=(exec_python_app_keeps_accounts_across_restart_rm_and_stop exec_python_app_without_volume_is_not_started
    exec_python_app_on_a_new_volume_restores_from_s3)

exec_build() {
    [ "$EXEC_BUILT" = 1 ] && return 0
    log "docker build --network host -f docker/exec/Dockerfile -t $EXEC_IMAGE . (log: $LOG_DIR/build-exec.log)"
    docker build --network host --force-rm -f docker/exec/Dockerfile -t "$EXEC_IMAGE" . >"$LOG_DIR/build-exec.log" 2>&1 ||
        fail "docker/exec/Dockerfile did not build: $(tail -n 5 "$LOG_DIR/build-exec.log" | tr '\n' ' ')" || return 1
    EXEC_BUILT=1
}

# exec_run NAME PORT [docker run options...]: the template's ENTRYPOINT and CMD, on 127.0.0.1:PORT.
exec_run() {
    local name=$1 port=$2
    shift 2
    docker run -d --name "$name" --label "$LABEL" --network host -e HOST=127.0.0.1 -e "PORT=$port" "$@" "$EXEC_IMAGE" \
        >/dev/null 2>"$WORK/run.err" || fail "docker run $name failed: $(tail -n 3 "$WORK/run.err")"
}

exec_account() { printf '{"username":"%s","password":"%s"}' "$1" "$2"; }

exec_login() {
    http POST "$1" /login "$(exec_account "$2" "$3")"
    [ "$CODE" = 200 ] || fail "login $2: HTTP $CODE (want 200) $BODY"
}

exec_python_app_keeps_accounts_across_restart_rm_and_stop() {
    local c=$RUN_ID-py vol code logs
    exec_build || return 1
    vol=$(new_volume py-data) || fail "docker volume create failed" || return 1
    next_port
    exec_run "$c" "$PORT" -v "$vol:/data" || return 1
    wait_ready "$c" "$PORT" || return 1
    http POST "$PORT" /register "$(exec_account ada 'correct horse 1')"
    [ "$CODE" = 201 ] || fail "register: HTTP $CODE $BODY" || return 1
    exec_login "$PORT" ada 'correct horse 1' || return 1
    docker exec "$c" sqlite-vol status >/dev/null 2>&1 || fail "'sqlite-vol status' from docker exec failed" || return 1
    logs=$(docker logs "$c" 2>&1)
    grep -q 'switched the database to WAL' <<<"$logs" ||
        fail "no WAL switch in the log (is the fixed libsqlite3 in /usr/local/lib?): $(container_logs "$c" 5 | tr '\n' ' ')" || return 1
    docker restart -t 30 "$c" >/dev/null || fail "docker restart failed" || return 1
    wait_ready "$c" "$PORT" || return 1
    exec_login "$PORT" ada 'correct horse 1' || { REASON="after docker restart: $REASON"; return 1; }
    docker rm -f "$c" >/dev/null || fail "docker rm -f failed" || return 1
    exec_run "$c" "$PORT" -v "$vol:/data" || return 1
    wait_ready "$c" "$PORT" || return 1
    exec_login "$PORT" ada 'correct horse 1' || { REASON="after docker rm + run: $REASON"; return 1; }
    http POST "$PORT" /register "$(exec_account bob 'bob password 2')"
    [ "$CODE" = 201 ] || fail "register bob: HTTP $CODE $BODY" || return 1
    docker stop -t 30 "$c" >/dev/null || fail "docker stop failed" || return 1
    code=$(exit_code "$c")
    logs=$(docker logs "$c" 2>&1)
    [ "$code" = 0 ] || fail "docker stop: exit $code (want 0): $(printf '%s' "$logs" | tail -n 5 | tr '\n' ' ')" || return 1
    printf '%s' "$logs" | grep -q 'received SIGTERM' || fail "the app did not get SIGTERM: $(printf '%s' "$logs" | tail -n 5 | tr '\n' ' ')" || return 1
    docker rm -f "$c" >/dev/null
    exec_run "$c" "$PORT" -v "$vol:/data" || return 1
    wait_ready "$c" "$PORT" || return 1
    exec_login "$PORT" bob 'bob password 2' || { REASON="the write before docker stop: $REASON"; return 1; }
}

exec_python_app_without_volume_is_not_started() {
    local c=$RUN_ID-pynovol code logs
    exec_build || return 1
    next_port
    exec_run "$c" "$PORT" || return 1
    wait_exit "$c" "$PORT" || return 1
    code=$(exit_code "$c")
    logs=$(docker logs "$c" 2>&1)
    [ "$code" = 2 ] || fail "exit $code (want 2, refused before the start): $(printf '%s' "$logs" | tail -n 3 | tr '\n' ' ')" || return 1
    printf '%s' "$logs" | grep -qF ':/data' || fail "the log does not name the fix (-v ...:/data): $(printf '%s' "$logs" | tail -n 3 | tr '\n' ' ')" || return 1
    ! printf '%s' "$logs" | grep -q 'pyaccounts: listening' || fail "the app started despite the refusal"
}

# The machine is gone: a new container on a new, empty volume with SQLITE_VOL_RESTORE_FROM pointing at the
# bucket that holds the old one's backup (sent there by `sqlite-vol backup` from `docker exec`, to
# SQLITE_VOL_BACKUP_TO) comes up with it before the Python app starts, and the old account logs in.
exec_python_app_on_a_new_volume_restores_from_s3() {
    local c1=$RUN_ID-pys3 c2=$RUN_ID-pys3-new vol1 vol2 out to=s3://svt-exec/pyaccounts
    exec_build || return 1
    need_tools && start_moto && make_bucket svt-exec || return 1
    s3_env
    vol1=$(new_volume pys3-data) || fail "docker volume create failed" || return 1
    next_port
    exec_run "$c1" "$PORT" -v "$vol1:/data" "${S3_ENV[@]}" -e "SQLITE_VOL_BACKUP_TO=$to" || return 1
    wait_ready "$c1" "$PORT" || return 1
    http POST "$PORT" /register "$(exec_account grace 'grace password 3')"
    [ "$CODE" = 201 ] || fail "register: HTTP $CODE $BODY" || return 1
    out=$(docker exec "$c1" sqlite-vol backup 2>&1) ||
        fail "docker exec sqlite-vol backup (to $to) failed: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')" || return 1
    docker rm -f "$c1" >/dev/null || fail "docker rm -f failed" || return 1
    docker volume rm "$vol1" >/dev/null || fail "docker volume rm $vol1 failed" || return 1
    vol2=$(new_volume pys3-data2) || fail "docker volume create failed" || return 1
    next_port
    exec_run "$c2" "$PORT" -v "$vol2:/data" "${S3_ENV[@]}" -e "SQLITE_VOL_RESTORE_FROM=$to" \
        -e SQLITE_VOL_EXPECT_EXISTING=1 || return 1
    wait_ready "$c2" "$PORT" || return 1
    # The whole log first: `docker logs | grep -q` fails under pipefail when grep stops reading early.
    out=$(docker logs "$c2" 2>&1)
    grep -qF 'RESTORED the database from the newest backup' <<<"$out" ||
        fail "the new container's log does not say RESTORED: $(container_logs "$c2" 5 | tr '\n' ' ')" || return 1
    exec_login "$PORT" grace 'grace password 3' || { REASON="after restoring on a new volume: $REASON"; return 1; }
    stop_moto
}
