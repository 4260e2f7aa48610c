#!/usr/bin/env bash
# Fails when a crate other than the owner depends directly on diesel, lapin or actix-web: each of those belongs
# to exactly one layer (see ARCHITECTURE.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

check() { # dependency allowed-packages...
    local dep=$1; shift
    local users
    users=$(cargo tree --workspace --edges normal --invert "$dep" --depth 1 --prefix none 2>/dev/null \
        | awk 'NR>1 {print $1}' | sort -u)
    local bad=()
    for user in $users; do
        local ok=0
        for allowed in "$@"; do [ "$user" = "$allowed" ] && ok=1; done
        [ $ok = 1 ] || bad+=("$user")
    done
    if [ ${#bad[@]} -gt 0 ]; then
        echo "check-boundaries: $dep is used directly by ${bad[*]} (allowed: $*)" >&2
        return 1
    fi
    echo "check-boundaries: $dep only in: $(echo $users)"
}

status=0
check diesel ferry-db diesel-async diesel_migrations diesel_derives || status=1
check diesel-async ferry-db || status=1
check lapin ferry-queue || status=1
check actix-web ferry-gateway drive-emulator ferry-ops-http actix-multipart utoipa-swagger-ui || status=1
exit $status
