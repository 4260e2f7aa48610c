#!/usr/bin/env bash
# Makes sure what Ferry needs locally is running: PostgreSQL on 127.0.0.1:5432 (user postgres, trust
# auth) and RabbitMQ on 127.0.0.1:5672 (guest/guest). Idempotent: already-running services are left
# alone. Used by `make run` and `make test`. For the tests it also installs the emulator fidelity test's Python
# client (a venv under the target directory) and Chromium + chromedriver for the console's browser tests.
#
# Order for each service: reachable -> fine; installed -> start it; apt-get available and root (or
# FERRY_ALLOW_INSTALL=1) -> install from the distribution's packages and start; else explain and fail.
#
# Environment:
#   FERRY_ALLOW_INSTALL=1      allow installing packages when not root (uses sudo)
#   FERRY_INSTALL_NEXTEST=1    `cargo install cargo-nextest` if it is missing (otherwise `cargo test` is used)
#   FERRY_BOOTSTRAP_TIMEOUT=60 seconds to wait for each service to answer
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
AMQP_HOST=127.0.0.1
AMQP_PORT=5672
TIMEOUT="${FERRY_BOOTSTRAP_TIMEOUT:-60}"

say() { printf 'bootstrap: %s\n' "$*"; }
warn() { printf 'bootstrap: %s\n' "$*" >&2; }

tcp_open() { # host port
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

pg_ready() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT" >/dev/null 2>&1
    else
        tcp_open "$PG_HOST" "$PG_PORT"
    fi
}

amqp_ready() {
    tcp_open "$AMQP_HOST" "$AMQP_PORT" || return 1
    # The port opens a little before the broker accepts logins; ping when we can.
    if command -v rabbitmq-diagnostics >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        timeout 15 rabbitmq-diagnostics -q ping >/dev/null 2>&1 || return 1
    fi
    return 0
}

wait_for() { # name check-function
    local name=$1 check=$2 waited=0
    while ! "$check"; do
        if [ "$waited" -ge "$TIMEOUT" ]; then
            warn "$name did not answer within ${TIMEOUT}s"
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    say "$name is up"
}

# shellcheck source=scripts/lib/packages.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/packages.sh"

explain_and_fail() { # what
    cat >&2 <<EOF
bootstrap: $1 is not running and cannot be installed automatically here.
Do one of:
  * install and start it yourself:
      sudo apt-get install postgresql rabbitmq-server
      (Postgres must accept user "postgres" without a password on 127.0.0.1:5432: add
       "host all postgres 127.0.0.1/32 trust" to pg_hba.conf and reload)
  * let this script install it:  FERRY_ALLOW_INSTALL=1 make test   (uses sudo + apt-get)
  * or run both in containers:   docker compose up -d postgres rabbitmq
Then run the command again.
EOF
    exit 1
}

pg_cluster_version() {
    find /etc/postgresql -mindepth 1 -maxdepth 1 -printf "%f\n" 2>/dev/null | sort -V | tail -1
}

pg_start() {
    local version
    version=$(pg_cluster_version)
    if [ -z "$version" ]; then
        return 1
    fi
    say "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null ||
        as_root pg_ctlcluster "$version" main start
}

# Trust auth for the postgres user over TCP on loopback, as the tests and defaults expect.
pg_ensure_trust() {
    if psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -w -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" != 0 ] && [ "${FERRY_ALLOW_INSTALL:-0}" != 1 ]; then
        warn "cannot log in as postgres on $PG_HOST:$PG_PORT without a password"
        return 1
    fi
    local version hba
    version=$(pg_cluster_version)
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    if [ -z "$version" ] || ! as_root test -f "$hba"; then
        warn "cannot log in as postgres on $PG_HOST:$PG_PORT and no pg_hba.conf to fix"
        return 1
    fi
    say "allowing passwordless (trust) login for postgres on loopback in $hba"
    as_root sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload 2>/dev/null ||
        as_root pg_ctlcluster "$version" main reload
    sleep 1
    psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -w -d postgres -Atqc 'select 1' >/dev/null 2>&1
}

ensure_postgres() {
    if pg_ready; then
        say "PostgreSQL answers on $PG_HOST:$PG_PORT"
    elif [ -n "$(pg_cluster_version)" ] && command -v pg_ctlcluster >/dev/null 2>&1; then
        pg_start || warn "pg_ctlcluster failed"
        wait_for PostgreSQL pg_ready || explain_and_fail PostgreSQL
    elif can_install; then
        apt_install postgresql postgresql-client
        pg_start || warn "pg_ctlcluster failed"
        wait_for PostgreSQL pg_ready || explain_and_fail PostgreSQL
    else
        explain_and_fail PostgreSQL
    fi
    if command -v psql >/dev/null 2>&1; then
        pg_ensure_trust || explain_and_fail "PostgreSQL (passwordless login for user postgres)"
    fi
    # The ferryctl tests read a pg_dump of their database (no plaintext secrets in it).
    if ! command -v pg_dump >/dev/null 2>&1; then
        if can_install; then
            apt_install postgresql-client
        else
            warn "pg_dump is missing: the database-dump test will fail (apt-get install postgresql-client)"
        fi
    fi
}

amqp_start() {
    say "starting RabbitMQ"
    as_root rabbitmq-server -detached >/dev/null 2>&1 || true
}

ensure_rabbitmq() {
    if tcp_open "$AMQP_HOST" "$AMQP_PORT"; then
        say "RabbitMQ answers on $AMQP_HOST:$AMQP_PORT"
        return 0
    fi
    if command -v rabbitmq-server >/dev/null 2>&1; then
        amqp_start
    elif can_install; then
        apt_install rabbitmq-server
        # The package may have started it already.
        tcp_open "$AMQP_HOST" "$AMQP_PORT" || amqp_start
    else
        explain_and_fail RabbitMQ
    fi
    wait_for RabbitMQ amqp_ready || explain_and_fail RabbitMQ
}

# A node whose quorum-queue machinery broke (queues listed as `down`, declares answered INTERNAL_ERROR) pings fine
# but cannot serve a single test: restart it when this script may manage it (root, local rabbitmqctl).
rabbitmq_repair_quorum() {
    command -v rabbitmqctl >/dev/null 2>&1 && [ "$(id -u)" = 0 ] || return 0
    local down
    down=$(timeout 60 rabbitmqctl -q list_queues name type state 2>/dev/null | awk '$2 == "quorum" && $3 != "running"' | wc -l)
    [ "${down:-0}" -gt 0 ] || return 0
    warn "RabbitMQ lists $down quorum queue(s) that are not running; restarting the local node"
    timeout 120 rabbitmqctl stop >/dev/null 2>&1 || true
    amqp_start
    wait_for RabbitMQ amqp_ready || explain_and_fail RabbitMQ
}

check_nextest() {
    if cargo nextest --version >/dev/null 2>&1; then
        say "cargo-nextest available"
    elif [ "${FERRY_INSTALL_NEXTEST:-0}" = 1 ]; then
        say "installing cargo-nextest (cargo install --locked)"
        cargo install --locked cargo-nextest
    else
        say "cargo-nextest not found: tests will run with cargo test (FERRY_INSTALL_NEXTEST=1 installs it)"
    fi
}

# --- Python tools for tests, in one venv under the cargo target dir, where the tests look first ---
# google-api-python-client + google-auth: the Drive emulator's fidelity test (services/drive-emulator/tests/python_client.rs).
# moto[server]: the S3-compatible server the storage and end-to-end tests start (crates/storage/src/testing.rs).
# kubernetes-validate + jsonschema: offline schema checks of deploy/k8s (scripts/validate-k8s.py).
# schemathesis: fuzzes the gateway against its own OpenAPI document (crates/testkit/tests/api_fuzz.rs).
TEST_PY_PACKAGES=(
    "google-api-python-client>=2.100,<3" "google-auth>=2.20,<3"
    "moto[server]==5.2.5"
    "kubernetes-validate==1.37.0" "jsonschema==4.26.0"
    "schemathesis==4.32.5"
)
ensure_test_python() {
    local root venv probe
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    venv="${CARGO_TARGET_DIR:-$root/target}/emulator-python"
    probe='import googleapiclient.discovery, googleapiclient.http, google.oauth2.credentials, moto.server, kubernetes_validate, jsonschema, schemathesis'
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$probe" >/dev/null 2>&1; then
        say "python test tools ready ($venv)"
        return 0
    fi
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        if can_install; then
            apt_install python3 python3-venv
        else
            warn "python3 with venv is missing: the emulator fidelity, S3 and manifest tests will fail (apt-get install python3 python3-venv)"
            return 0
        fi
    fi
    say "installing the python test tools (${TEST_PY_PACKAGES[*]}) into $venv"
    if python3 -m venv "$venv" &&
        "$venv/bin/python" -m pip install -q --disable-pip-version-check "${TEST_PY_PACKAGES[@]}"; then
        say "python test tools ready ($venv)"
    else
        warn "could not install the python test tools into $venv: the emulator fidelity, S3 and manifest tests will fail"
    fi
}

# --- Chromium + chromedriver for the console's browser tests (crates/testkit/tests/console_browser.rs) ---
ensure_chromium() {
    if command -v chromedriver >/dev/null 2>&1 &&
        { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }; then
        say "console browser tests: chromium and chromedriver ready"
        return 0
    fi
    if can_install; then
        apt_install chromium chromium-driver
        say "console browser tests: chromium and chromedriver installed"
    else
        warn "chromium/chromedriver missing: the console's browser tests will fail (apt-get install chromium chromium-driver)"
    fi
}

ensure_postgres
ensure_rabbitmq
rabbitmq_repair_quorum
if command -v cargo >/dev/null 2>&1; then
    check_nextest
fi
ensure_test_python
ensure_chromium
say "ready"
