#!/usr/bin/env bash
# `make chaos`: builds the service binaries and the chaos driver, then runs every scenario (or those named as
# arguments) one after another. The driver starts a private Postgres cluster and a private RabbitMQ node in
# temporary directories and stops them when it ends, so the machine's own servers are never restarted. If the
# driver itself is killed, the trap below stops what it left behind.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
CARGO="${CARGO:-cargo}"
$CARGO build --bins -p ferry-gateway -p ferry-importer -p ferry-exporter -p ferry-chaos
target_dir="${CARGO_TARGET_DIR:-target}"

"$target_dir/debug/ferry-chaos" "$@" &
driver=$!
cleanup() {
    rabbitmqctl -n "ferrychaos${driver}@localhost" shutdown >/dev/null 2>&1 || true
    for dir in "${TMPDIR:-/tmp}"/ferry-chaos-pg-"${driver}"-*; do
        [ -f "$dir/data/postmaster.pid" ] || continue
        for pg_ctl in /usr/lib/postgresql/*/bin/pg_ctl; do
            if [ "$(id -u)" = 0 ]; then
                runuser -u postgres -- "$pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
            else
                "$pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
            fi
        done
    done
}
trap 'kill "$driver" 2>/dev/null || true; cleanup' INT TERM
trap cleanup EXIT
wait "$driver"
