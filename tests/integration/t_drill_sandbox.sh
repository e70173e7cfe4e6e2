#!/bin/bash
# t_drill_sandbox.sh - with the bwrap runtime the scratch server cannot reach
# the network: a probe that connects to a loopback port outside the sandbox
# fails inside it, while the same probe succeeds with the local runtime (so
# the test can fail). Likewise the source cluster's Unix socket is out of
# its sight. And [drill] runtime = bwrap without a usable bwrap is an error.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/restore_lib.sh"
. "$(dirname "$0")/drill_lib.sh"

need_cmd "$PGVAULT" "pgvault (build it first: scripts/test)"
need_cmd jq jq
need_cmd bwrap bubblewrap
need_cmd python3 python3
dl_setup

# a listener outside the sandbox that records every connection it accepts
port=$(free_port) || fail_now "no free port"
python3 - "$port" "$RL_DIR/accepted" </dev/null >/dev/null 2>&1 <<'EOF' &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
while True:
    c, a = s.accept()
    with open(sys.argv[2], "a") as f:
        f.write("%s:%d\n" % a)
    c.close()
EOF
track_pid $! listener
wait_port "$port" 10 || fail_now "the listener did not start"
# wait_port's own connection is recorded too: wait for that line before
# emptying the file (under load it came after, and counted as the probe's)
for ((i = 0; i < 100; i++)); do
	[ -s "$RL_DIR/accepted" ] && break
	sleep 0.1
done
[ -s "$RL_DIR/accepted" ] || fail_now "the listener did not record wait_port's connection"
: >"$RL_DIR/accepted"

# probes run as the superuser of the scratch server: COPY ... TO PROGRAM runs a shell there
net_probe="COPY (SELECT 1) TO PROGRAM 'bash -c \"exec 3<>/dev/tcp/127.0.0.1/$port\"'; SELECT true"
sock_probe="COPY (SELECT 1) TO PROGRAM 'test -S $PGHOST/.s.PGSQL.$PGPORT'; SELECT true"
env_probe="COPY (SELECT 1) TO PROGRAM 'env | grep -q ^PGVAULT && exit 1 || exit 0'; SELECT true"

# ---- bwrap: no network, no sight of the source's socket
PGVAULT_DRILL_RUNTIME=bwrap PGVAULT_DRILL_CHECK_SQL="$net_probe" dl_drill --json
is "$DL_RC" 4 "bwrap: the loopback probe fails the drill (exit 4)"
is "$(jq -r .runtime.name "$DL_OUT")" bwrap "bwrap: the report says bwrap"
is "$(jq -r '.checks[] | select(.name == "check_sql[1]") | .status' "$DL_OUT")" failed "bwrap: the probe failed"
like "$(jq -r '.checks[] | select(.name == "check_sql[1]") | .detail' "$DL_OUT")" 'program .* failed' \
	"bwrap: the connection attempt failed inside the sandbox"
is "$(wc -l <"$RL_DIR/accepted")" 0 "bwrap: the listener saw no connection"
is "$(jq -r '.checks[] | select(.name == "recovery") | .status' "$DL_OUT")" passed "bwrap: recovery itself passed"

PGVAULT_DRILL_RUNTIME=bwrap PGVAULT_DRILL_CHECK_SQL="$sock_probe" dl_drill --json
is "$DL_RC" 4 "bwrap: the source cluster's socket is not visible in the sandbox"

# ---- local: the same probes succeed (the test above can fail)
PGVAULT_DRILL_RUNTIME=local PGVAULT_DRILL_CHECK_SQL="$net_probe" dl_drill --json
is "$DL_RC" 0 "local: the same loopback probe succeeds"
is "$(jq -r .runtime.name "$DL_OUT")" local "local: the report says local"
is "$(jq -r .runtime.network "$DL_OUT")" host "local: the report says host network"
is "$(wc -l <"$RL_DIR/accepted")" 1 "local: the listener saw the connection"
PGVAULT_DRILL_RUNTIME=local PGVAULT_DRILL_CHECK_SQL="$sock_probe" dl_drill --json
is "$DL_RC" 0 "local: the source cluster's socket is visible without the sandbox"

# ---- the server's environment carries no pgvault settings or secrets (both runtimes)
for rt in bwrap local; do
	PGVAULT_REPO_COMPRESSION_LEVEL=3 PGVAULT_DRILL_RUNTIME=$rt PGVAULT_DRILL_CHECK_SQL="$env_probe" dl_drill --json
	is "$DL_RC" 0 "$rt: no PGVAULT_* variable reaches the scratch server"
done

# ---- runtime = bwrap when bwrap cannot run: an error, nothing left
mkdir -p "$RL_DIR/nobwrap"
printf '#!/bin/sh\necho "bwrap: no permissions to create new namespace" >&2\nexit 1\n' >"$RL_DIR/nobwrap/bwrap"
chmod 755 "$RL_DIR/nobwrap/bwrap"
PATH="$RL_DIR/nobwrap:$PATH" PGVAULT_DRILL_RUNTIME=bwrap dl_drill --json
is "$DL_RC" 3 "runtime = bwrap without a working bwrap: exit 3"
like "$(cat "$DL_ERR")" 'runtime = bwrap, but the sandbox cannot be used: bwrap: no permissions' "the reason is quoted"
is "$(cat "$DL_OUT")" "" "nothing on stdout"
PATH="$RL_DIR/nobwrap:$PATH" dl_drill --json
is "$DL_RC" 0 "runtime = auto without a working bwrap: falls back to local"
is "$(jq -r .runtime.name "$DL_OUT")" local "auto: the report says local"
like "$(jq -r .runtime.note "$DL_OUT")" 'no permissions' "auto: the report says why"
like "$(cat "$DL_ERR")" 'warning: drill: no sandbox' "auto: a warning on stderr"
dl_wait_clean 5
ok $? "nothing left behind"

done_testing
