#!/usr/bin/env bash
# Walks the whole flow against a running `make run` with curl, printing each request and response:
# connect Google Drive (the emulator) through OAuth, list connections, browse, import, poll, download,
# export, poll.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

API="${FERRY_API:-http://127.0.0.1:8080/api/v2}"
KEY="${FERRY_API_KEY:-$(cat data/demo-api-key 2>/dev/null || true)}"
[ -n "$KEY" ] || { echo "demo: no API key; start the stack with 'make run' first (or set FERRY_API_KEY)" >&2; exit 1; }
command -v jq >/dev/null || { echo "demo: needs jq (apt-get install jq)" >&2; exit 1; }

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
call() { # method path [json]
    local method=$1 path=$2 body=${3:-}
    printf '%s %s\n' "$method" "$path" >&2
    if [ -n "$body" ]; then
        printf '%s\n' "$body" | jq -c . >&2
        curl -sS -X "$method" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d "$body" "$API$path"
    else
        curl -sS -X "$method" -H "Authorization: Bearer $KEY" "$API$path"
    fi
}
show() { jq . ; }

poll() { # job_id
    local job status
    for _ in $(seq 1 240); do
        job=$(call GET "/cloud-storage/jobs/$1" 2>/dev/null)
        status=$(jq -r .job.status <<<"$job")
        case $status in completed|partial|failed|cancelled) jq . <<<"$job"; return 0 ;; esac
        printf '  %s: %s/%s done\n' "$status" "$(jq .job.completed_files <<<"$job")" "$(jq .job.total_files <<<"$job")"
        sleep 0.5
    done
    echo "demo: job $1 did not finish in 2 minutes" >&2
    return 1
}

step "1. Start the OAuth flow"
started=$(call POST /cloud-storage/auth/google_drive '{"provider":"google_drive","login_hint":"demo@ferry.test"}')
show <<<"$started"
auth_url=$(jq -r .authorization_url <<<"$started")

step "2. The user approves (the emulator auto-approves) and is redirected back with a code"
redirect=$(curl -sS -o /dev/null -w '%{redirect_url}' "$auth_url")
echo "$redirect"
urldecode() { local v=${1//+/ }; printf '%b' "${v//%/\\x}"; }
code=$(urldecode "$(sed -E 's/.*[?&]code=([^&]*).*/\1/' <<<"$redirect")")
state=$(urldecode "$(sed -E 's/.*[?&]state=([^&]*).*/\1/' <<<"$redirect")")

step "3. Complete the flow with the code and state"
connected=$(call POST /cloud-storage/auth/google_drive/callback "$(jq -n --arg c "$code" --arg s "$state" '{code:$c,state:$s}')")
show <<<"$connected"
connection=$(jq -r .connection.id <<<"$connected")

step "4. List connections"
call GET /cloud-storage/connections | show

step "5. Browse the drive root, then the Photos folder"
root=$(call GET "/cloud-storage/connections/$connection/browse")
show <<<"$root"
photos=$(jq -r '.files[] | select(.name=="Photos") | .id' <<<"$root")
listing=$(call GET "/cloud-storage/connections/$connection/browse?folder_id=$photos")
show <<<"$listing"

step "6. Import every importable file in Photos"
files=$(jq '[.files[] | select(.is_importable) | {id, name, mime_type}]' <<<"$listing")
imported=$(call POST /cloud-storage/import "$(jq -n --arg c "$connection" --argjson f "$files" '{connection_id:$c, files:$f, tags:["demo"]}')")
show <<<"$imported"

step "7. Poll the import job"
poll "$(jq -r .job_id <<<"$imported")"

step "8. Download the first imported file"
first=$(jq -r '.image_ids[0]' <<<"$imported")
call GET "/files/$first" | show
mkdir -p data/demo
curl -sS -H "Authorization: Bearer $KEY" -o "data/demo/$first" "$API/files/$first/content"
echo "saved data/demo/$first ($(wc -c <"data/demo/$first") bytes, sha256 $(sha256sum "data/demo/$first" | cut -c1-16)...)"

step "9. Export the imported files to a new Drive folder"
exported=$(call POST /cloud-storage/export "$(jq -n --arg c "$connection" --argjson ids "$(jq .image_ids <<<"$imported")" '{connection_id:$c, image_ids:$ids, folder_name:"Ferry demo export"}')")
show <<<"$exported"

step "10. Poll the export job"
poll "$(jq -r .job_id <<<"$exported")"

step "11. The new folder in Drive"
root=$(call GET "/cloud-storage/connections/$connection/browse")
folder=$(jq -r '[.files[] | select(.name=="Ferry demo export")][0].id' <<<"$root")
call GET "/cloud-storage/connections/$connection/browse?folder_id=$folder" | show
