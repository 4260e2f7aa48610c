#!/usr/bin/env bash
# `make bench`: makes sure curl, wrk and pgbench are installed (distribution packages, as scripts/bootstrap.sh
# installs things: as root, or with FERRY_ALLOW_INSTALL=1 through sudo), builds the release binaries, then runs
# ferry-bench with the arguments given (all figures by default; `make bench ARGS="B1 B3"` runs some).
# ferry-bench uses the machine's Postgres and RabbitMQ (FERRY_BENCH_DATABASE_URL, FERRY_BENCH_AMQP_URL), a fresh
# database and queue prefix for each group of figures, and removes them when the group ends or fails. Ctrl-C (or
# SIGTERM to this script) is passed on to it, and it stops its processes and removes what it made.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
CARGO="${CARGO:-cargo}"

say() { printf 'bench: %s\n' "$*"; }

# shellcheck source=scripts/lib/packages.sh
source scripts/lib/packages.sh

ensure_tool() { # command package
    command -v "$1" >/dev/null 2>&1 && return 0
    if can_install; then
        apt_install "$2"
    else
        say "$1 is missing: install it (apt-get install $2), or rerun with FERRY_ALLOW_INSTALL=1"
        exit 1
    fi
}

ensure_tool curl curl
ensure_tool wrk wrk
# pgbench comes with the PostgreSQL server packages, outside PATH on Debian.
if ! ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1 && ! command -v pgbench >/dev/null 2>&1; then
    ensure_tool pgbench postgresql
fi

# Only what the bench runs, in release mode.
$CARGO build --release -p ferry-gateway -p ferry-importer -p ferry-exporter -p drive-emulator -p ferry-bench
target_dir="${CARGO_TARGET_DIR:-target}"

"$target_dir/release/ferry-bench" "$@" &
driver=$!
trap 'kill -TERM "$driver" 2>/dev/null || true' INT TERM
# `wait` returns early when a trapped signal arrives; wait again for the driver's own cleanup.
status=0
wait "$driver" || status=$?
if kill -0 "$driver" 2>/dev/null; then
    wait "$driver" || status=$?
fi
exit "$status"
