#!/bin/bash
# swift-s3.sh - a throw-away, single-node OpenStack Swift (Debian 12: 2.30) with
# the s3api middleware, used as the real S3 endpoint of pgvault's tests.
#
# usage: swift-s3.sh setup|start|stop|status
#   env SW    state directory (default /tmp/swift-s3); everything lives below it:
#             $SW/etc (configs, rings), $SW/srv/d1 (data), $SW/run (pids, logs)
#   env PORT  S3 endpoint port (default 4580); the account, container and
#             object servers use PORT+1, PORT+2, PORT+3, memcached PORT+4.
#   env SWIFT_START_TIMEOUT  seconds to wait for /healthcheck (default 30)
#
# Everything binds to 127.0.0.1 only.  S3 credentials: access key
# "test:tester", secret "pv-swift-test-secret-5b1e93c07a", region us-east-1, path-style requests on
# http://127.0.0.1:PORT (virtual-host style on BUCKET.s3.localhost:PORT).
#
# setup  wipes and recreates $SW (rings, configs, data dir)
# start  starts memcached and the 4 servers (each forks one worker), records
#        their pids in $SW/run/NAME.pid and waits until /healthcheck answers
# stop   SIGTERM to each recorded pid, waits for the process group to go,
#        SIGKILL to the group after a timeout; removes the pid files
#
# Each server is started with setsid so that its pid is also its process
# group id: the worker processes it forks are in that group, and a stuck
# server can be killed together with its workers by that one id.
# memcached (as in any real Swift deployment) caches account and container
# info for the proxy: without it every S3 request also costs a HEAD on the
# account and container servers (measured: 100 small PUTs took 9.8 s without,
# 5.0 s with it).
set -eu

SW=${SW:-/tmp/swift-s3}
PORT=${PORT:-4580}
SERVERS=(memcached account container object proxy)

die() { echo "swift-s3.sh: $*" >&2; exit 1; }

# [DEFAULT] section shared by all four server configs: $1 port, $2 log name
conf_default() {
	cat <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $1
workers = 1
devices = $SW/srv
mount_check = false
swift_dir = $SW/etc
# servers started as root drop privileges to this user; without it they
# would switch to "swift" and fail with EACCES on the data dir
user = $(id -un)
log_name = $2
# there is no syslog here: send log records to a UDP port nobody reads
# (the -v flag also copies them to the console, i.e. to $SW/run/NAME.log)
log_udp_host = 127.0.0.1
log_udp_port = 9
EOF
}

do_setup() {
	command -v swift-ring-builder >/dev/null ||
		die "swift-ring-builder not found: install swift (scripts/install-deps)"
	case $SW in /|"") die "refusing SW='$SW'" ;; esac
	rm -rf "$SW"
	mkdir -p "$SW/etc" "$SW/srv/d1" "$SW/run"

	cat >"$SW/etc/swift.conf" <<'EOF'
[swift-hash]
swift_hash_path_suffix = pgvault-test
swift_hash_path_prefix = pgvault-test

[storage-policy:0]
name = Policy-0
default = yes
EOF

	local name port off=1
	for name in account container object; do
		port=$((PORT + off))
		off=$((off + 1))
		# part power 8, 1 replica, min_part_hours 1; one device
		swift-ring-builder "$SW/etc/$name.builder" create 8 1 1 >/dev/null
		swift-ring-builder "$SW/etc/$name.builder" add "r1z1-127.0.0.1:$port/d1" 1 >/dev/null
		# rebalance exits 1 on warnings (single device); the ring is still written
		swift-ring-builder "$SW/etc/$name.builder" rebalance >/dev/null || true
		[ -f "$SW/etc/$name.ring.gz" ] || die "ring $name was not written"
		{
			conf_default "$port" "$name"
			cat <<EOF

[pipeline:main]
pipeline = $name-server

[app:$name-server]
use = egg:swift#$name
EOF
		} >"$SW/etc/$name-server.conf"
	done
	printf '\n[object-replicator]\n\n[object-updater]\n\n[object-auditor]\n' \
		>>"$SW/etc/object-server.conf"

	{
		conf_default "$PORT" proxy
		cat <<'EOF'

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
# virtual-host style: BUCKET.s3.localhost:PORT (curl/libcurl resolve
# *.localhost to loopback themselves; glibc does not)
storage_domain = s3.localhost

[filter:tempauth]
use = egg:swift#tempauth
# S3 access key "test:tester" (account:user), secret "pv-swift-test-secret-5b1e93c07a"
user_test_tester = pv-swift-test-secret-5b1e93c07a .admin

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:@MEMCACHED_PORT@

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
EOF
	} >"$SW/etc/proxy-server.conf"
	sed -i "s/@MEMCACHED_PORT@/$((PORT + 4))/" "$SW/etc/proxy-server.conf"
}

alive() { kill -0 "$1" 2>/dev/null; }
# true while any process of process group $1 exists
group_alive() { pgrep -g "$1" >/dev/null 2>&1 || alive "$1"; }

healthy() { curl -sf -m 2 "http://127.0.0.1:$PORT/healthcheck" >/dev/null 2>&1; }

do_start() {
	[ -f "$SW/etc/proxy-server.conf" ] || die "$SW is not set up (run: swift-s3.sh setup)"
	command -v curl >/dev/null || die "curl not found: install curl (scripts/install-deps)"
	local name pid
	for name in "${SERVERS[@]}"; do
		if [ -f "$SW/run/$name.pid" ] && alive "$(cat "$SW/run/$name.pid")"; then
			die "$name server already running (pid $(cat "$SW/run/$name.pid"))"
		fi
	done
	command -v memcached >/dev/null || die "memcached not found: install memcached (scripts/install-deps)"
	for name in "${SERVERS[@]}"; do
		if [ "$name" = memcached ]; then
			# -U 0: no UDP; -u: memcached refuses to run as root without it
			setsid memcached -l 127.0.0.1 -p $((PORT + 4)) -U 0 -m 64 -u "$(id -un)" \
				</dev/null >"$SW/run/$name.log" 2>&1 &
		else
			command -v "swift-$name-server" >/dev/null ||
				die "swift-$name-server not found: install swift-$name (scripts/install-deps)"
			setsid "swift-$name-server" "$SW/etc/$name-server.conf" -v \
				</dev/null >"$SW/run/$name.log" 2>&1 &
		fi
		pid=$!
		echo "$pid" >"$SW/run/$name.pid"
	done

	local timeout=${SWIFT_START_TIMEOUT:-30} t0=$SECONDS
	while ! healthy; do
		for name in "${SERVERS[@]}"; do
			if ! alive "$(cat "$SW/run/$name.pid")"; then
				echo "swift-s3.sh: $name server exited during start; log:" >&2
				tail -n 20 "$SW/run/$name.log" >&2
				do_stop
				exit 1
			fi
		done
		if ((SECONDS - t0 >= timeout)); then
			echo "swift-s3.sh: no /healthcheck on 127.0.0.1:$PORT after ${timeout}s" >&2
			tail -n 20 "$SW/run/proxy.log" >&2
			do_stop
			exit 1
		fi
		sleep 0.2
	done
	echo "swift up on http://127.0.0.1:$PORT ($((SECONDS - t0))s)"
}

do_stop() {
	local name pid pids=() t
	for name in proxy object container account memcached; do
		[ -f "$SW/run/$name.pid" ] || continue
		pid=$(cat "$SW/run/$name.pid")
		# SIGTERM to the server's parent: it signals its own process group,
		# so its worker goes too
		kill -TERM "$pid" 2>/dev/null || true
		pids+=("$pid")
	done
	for pid in "${pids[@]}"; do
		for ((t = 0; t < 100; t++)); do # 10 s
			group_alive "$pid" || break
			sleep 0.1
		done
		if group_alive "$pid"; then
			echo "swift-s3.sh: pid $pid did not stop, sending SIGKILL to its group" >&2
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
			for ((t = 0; t < 50; t++)); do
				group_alive "$pid" || break
				sleep 0.1
			done
		fi
	done
	rm -f "$SW"/run/*.pid
	local left=0
	for pid in "${pids[@]}"; do
		if group_alive "$pid"; then
			echo "swift-s3.sh: process group $pid still alive" >&2
			left=1
		fi
	done
	return "$left"
}

do_status() {
	local name pid rc=0
	for name in "${SERVERS[@]}"; do
		if [ -f "$SW/run/$name.pid" ] && alive "$(cat "$SW/run/$name.pid")"; then
			pid=$(cat "$SW/run/$name.pid")
			echo "$name: running (pid $pid)"
		else
			echo "$name: stopped"
			rc=1
		fi
	done
	if healthy; then echo "healthcheck: ok"; else echo "healthcheck: failed"; rc=1; fi
	return "$rc"
}

case ${1:-} in
setup) do_setup ;;
start) do_start ;;
stop) do_stop ;;
status) do_status ;;
*)
	echo "usage: SW=DIR PORT=N $0 setup|start|stop|status" >&2
	exit 2
	;;
esac
