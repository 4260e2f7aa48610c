#!/usr/bin/env bash
# Runs the whole Ferry stack locally: migrates the database, creates a demo API key, starts the
# drive emulator, gateway, importer and exporter in the background (logs in ./data/logs), waits
# until each is ready, prints how to use it, and stops everything on Ctrl-C.
#
# Blobs go to ./data/blobs, or with FERRY__STORAGE__BACKEND=s3 and no FERRY__STORAGE__S3__ENDPOINT to a
# local S3-compatible server (moto, from the venv bootstrap.sh prepares) on 127.0.0.1:9000, bucket
# "ferry-dev"; its objects live in its memory and go when the stack stops.
#
# Expects `scripts/bootstrap.sh` to have run and the binaries to be built (`make run` does both).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN_DIR="$TARGET_DIR/${FERRY_PROFILE:-debug}"
LOG_DIR="data/logs"
READY_TIMEOUT="${FERRY_READY_TIMEOUT:-60}"
TENANT="${FERRY_DEMO_TENANT:-demo}"

# Human-readable logs unless the caller chose otherwise.
export FERRY__TELEMETRY__LOG_FORMAT="${FERRY__TELEMETRY__LOG_FORMAT:-pretty}"

say() { printf 'run-stack: %s\n' "$*"; }
die() { printf 'run-stack: %s\n' "$*" >&2; exit 1; }

# First existing binary among the candidates (package name first).
find_bin() {
    local candidate
    for candidate in "$@"; do
        if [ -x "$BIN_DIR/$candidate" ]; then
            printf '%s\n' "$BIN_DIR/$candidate"
            return 0
        fi
    done
    die "binary not found (tried: $*) in $BIN_DIR; run: cargo build --workspace --bins"
}

FERRYCTL=$(find_bin ferryctl)
EMULATOR=$(find_bin drive-emulator)
GATEWAY=$(find_bin ferry-gateway gateway)
IMPORTER=$(find_bin ferry-importer importer)
EXPORTER=$(find_bin ferry-exporter exporter)

http_ok() { # url
    curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null
}

port_busy() { # port
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

for port in 8088 8080 9100 9101 9102; do
    if port_busy "$port"; then
        die "port $port is already in use (another Ferry still running?). Stop it first: ss -ltnp 'sport = :$port'"
    fi
done

mkdir -p "$LOG_DIR" data/blobs

# Settings for the local S3 server are exported before anything loads settings; it starts further down.
START_DEV_S3=0
STORAGE_NOTE="./data/blobs"
if [ "${FERRY__STORAGE__BACKEND:-local}" = s3 ] && [ -z "${FERRY__STORAGE__S3__ENDPOINT:-}" ]; then
    START_DEV_S3=1
    S3_PORT="${FERRY_DEV_S3_PORT:-9000}"
    S3_PYTHON="$TARGET_DIR/emulator-python/bin/python"
    [ -x "$S3_PYTHON" ] || die "no $S3_PYTHON: run scripts/bootstrap.sh (it installs moto[server] there)"
    if port_busy "$S3_PORT"; then
        die "port $S3_PORT is already in use; pick another with FERRY_DEV_S3_PORT"
    fi
    export FERRY__STORAGE__S3__ENDPOINT="http://127.0.0.1:$S3_PORT"
    export FERRY__STORAGE__S3__BUCKET="${FERRY__STORAGE__S3__BUCKET:-ferry-dev}"
    export FERRY__STORAGE__S3__ALLOW_HTTP=true
    # moto accepts any credentials; these only make requests signed like real ones.
    export FERRY__STORAGE__S3__ACCESS_KEY_ID="${FERRY__STORAGE__S3__ACCESS_KEY_ID:-ferry-dev}"
    export FERRY__STORAGE__S3__SECRET_ACCESS_KEY="${FERRY__STORAGE__S3__SECRET_ACCESS_KEY:-ferry-dev-secret}"
    STORAGE_NOTE="s3 bucket $FERRY__STORAGE__S3__BUCKET at $FERRY__STORAGE__S3__ENDPOINT (in memory, gone on stop)"
elif [ "${FERRY__STORAGE__BACKEND:-local}" = s3 ]; then
    STORAGE_NOTE="s3 bucket ${FERRY__STORAGE__S3__BUCKET:-?} at $FERRY__STORAGE__S3__ENDPOINT"
fi

say "migrating the database (creating it if missing)"
"$FERRYCTL" migrate

say "creating an API key for tenant \"$TENANT\""
key_output=$("$FERRYCTL" api-key create --tenant "$TENANT")
API_KEY=$(grep -oE 'fry_[A-Za-z0-9_-]{20,}' <<<"$key_output" | head -1 || true)
if [ -z "$API_KEY" ]; then
    printf '%s\n' "$key_output"
    die "could not find the new API key in the output of 'ferryctl api-key create'"
fi

# make demo reads the key from here (data/ is never committed).
umask 077
printf '%s\n' "$API_KEY" > data/demo-api-key
umask 022

PIDS=()
NAMES=()

any_alive() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null && return 0
    done
    return 1
}

stop_all() {
    trap - INT TERM EXIT
    if [ "${#PIDS[@]}" -gt 0 ]; then
        say "stopping ${NAMES[*]}"
        kill -TERM "${PIDS[@]}" 2>/dev/null || true
        # Give them up to 10 s to finish in-flight work, then force.
        local waited=0
        while [ "$waited" -lt 10 ] && any_alive; do
            sleep 1
            waited=$((waited + 1))
        done
        kill -KILL "${PIDS[@]}" 2>/dev/null || true
        wait 2>/dev/null || true
    fi
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

start() { # name binary [args...]
    local name=$1
    shift
    "$@" >>"$LOG_DIR/$name.log" 2>&1 &
    PIDS+=("$!")
    NAMES+=("$name")
    say "started $name (pid $!, log $LOG_DIR/$name.log)"
}

wait_ready() { # name url
    local name=$1 url=$2 waited=0
    until http_ok "$url"; do
        local i
        for i in "${!NAMES[@]}"; do
            if [ "${NAMES[$i]}" = "$name" ] && ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
                tail -n 20 "$LOG_DIR/$name.log" >&2 || true
                die "$name exited during start-up (log: $LOG_DIR/$name.log)"
            fi
        done
        if [ "$waited" -ge "$READY_TIMEOUT" ]; then
            tail -n 20 "$LOG_DIR/$name.log" >&2 || true
            die "$name not ready after ${READY_TIMEOUT}s ($url; log: $LOG_DIR/$name.log)"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    say "$name ready"
}

if [ "$START_DEV_S3" = 1 ]; then
    start s3 "$S3_PYTHON" -m moto.server -H 127.0.0.1 -p "$S3_PORT"
    waited=0
    until curl -fsS -o /dev/null --max-time 2 -X PUT "$FERRY__STORAGE__S3__ENDPOINT/$FERRY__STORAGE__S3__BUCKET" 2>/dev/null; do
        [ "$waited" -ge "$READY_TIMEOUT" ] && die "the S3 server did not answer within ${READY_TIMEOUT}s (log: $LOG_DIR/s3.log)"
        sleep 1
        waited=$((waited + 1))
    done
    say "s3 ready (bucket $FERRY__STORAGE__S3__BUCKET)"
fi

start drive-emulator "$EMULATOR" --seed demo
wait_ready drive-emulator http://127.0.0.1:8088/.well-known/openid-configuration
start gateway "$GATEWAY"
start importer "$IMPORTER"
start exporter "$EXPORTER"
wait_ready gateway http://127.0.0.1:9100/readyz
wait_ready importer http://127.0.0.1:9101/readyz
wait_ready exporter http://127.0.0.1:9102/readyz

cat <<EOF

Ferry is running.
  Console      http://127.0.0.1:8080/console   (sign in with the API key below)
  API          http://127.0.0.1:8080/api/v2   (interactive docs: http://127.0.0.1:8080/docs)
  Drive emu    http://127.0.0.1:8088        (stands in for Google OAuth + Drive; demo@ferry.test has sample files)
  Ops          gateway http://127.0.0.1:9100/metrics, importer http://127.0.0.1:9101/metrics, exporter http://127.0.0.1:9102/metrics
  Blobs        $STORAGE_NOTE
  Logs         $LOG_DIR/{drive-emulator,gateway,importer,exporter}.log
  API key      $API_KEY   (tenant "$TENANT"; shown once, stored hashed)

Try:
  curl -s -H "Authorization: Bearer $API_KEY" http://127.0.0.1:8080/api/v2/cloud-storage/connections
  make demo     # in another terminal: connect, browse, import, download, export, step by step

Press Ctrl-C to stop everything.
EOF

# Stay up until Ctrl-C, or until one service dies (then stop the others).
while true; do
    for i in "${!PIDS[@]}"; do
        if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
            printf 'run-stack: %s exited unexpectedly; last log lines:\n' "${NAMES[$i]}" >&2
            tail -n 20 "$LOG_DIR/${NAMES[$i]}.log" >&2 || true
            exit 1
        fi
    done
    sleep 2
done
