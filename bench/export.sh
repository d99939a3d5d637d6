#!/usr/bin/env bash
# Export API throughput and memory against OHTK's PostgreSQL schema.
#
# Builds ohtkhub and the OHTK fixture (scripts/ohtk-fixture: PostgreSQL 15 + PostGIS, tenant
# "bon" with SMALL and tenant "bunny" with LARGE incident reports), starts `ohtkhub api` on it
# as the read-only role, then exports every incident report of each tenant as a superuser in
# each format (test and deleted reports included) and prints rows/s and the peak RSS of an
# api process started for that export alone (VmHWM). json is paged through with keyset
# cursors at limit=10000.
#
#   bench/export.sh                     # 100k and 1M rows
#   SMALL=10000 LARGE=50000 bench/export.sh
#   FORMATS="csv ndjson" bench/export.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SMALL=${SMALL:-100000}
LARGE=${LARGE:-1000000}
FORMATS=${FORMATS:-csv json ndjson xlsx parquet}
PSQL=${PSQL:-/usr/lib/postgresql/15/bin/psql}

work=$(mktemp -d /tmp/ohtkhub-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/ohtkhub" ./cmd/ohtkhub
go build -o "$work/ohtk-fixture" ./scripts/ohtk-fixture

echo "building the fixture: bon $SMALL, bunny $LARGE incident reports" >&2
start=$(date +%s)
"$work/ohtk-fixture" -reports "$LARGE" -bon-reports "$SMALL" -env "$work/env" >"$work/fixture.log" 2>&1 &
pids+=($!)
until grep -q '^OHTK_READY=1' "$work/env" 2>/dev/null; do
  if ! kill -0 "${pids[0]}" 2>/dev/null; then cat "$work/fixture.log" >&2; exit 1; fi
  sleep 1
done
echo "fixture built in $(( $(date +%s) - start )) s" >&2
# shellcheck disable=SC1091
source "$work/env"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/api"
cat >"$work/api.yaml" <<YAML
listen: 127.0.0.1:$port
data_dir: $work/api
database: $OHTK_READER_URL
provider:
  enabled: false
YAML
base=http://127.0.0.1:$port
api=
# start_api starts a fresh api, so that its peak RSS (VmHWM) is that of one export.
start_api() {
  if [ -n "$api" ]; then kill "$api"; wait "$api" 2>/dev/null || true; fi
  "$work/ohtkhub" api --config "$work/api.yaml" >>"$work/api.log" 2>&1 &
  api=$!
  pids+=($api)
  for _ in $(seq 100); do curl -fs "$base/health" >/dev/null && return; sleep 0.1; done
  cat "$work/api.log" >&2
  exit 1
}

auth="$OHTK_SUPERUSER:$OHTK_PASSWORD"

# audited_rows prints the rows of the tenant's last export, from the api's audit table.
audited_rows() {
  "$PSQL" -qAt "$OHTK_ADMIN_URL" -c "SELECT sum(rows) FROM \"ohtkhub_$1\".ohtkhub_export_audit WHERE id > $2"
}
last_audit() {
  "$PSQL" -qAt "$OHTK_ADMIN_URL" -c "SELECT coalesce(max(id), 0) FROM \"ohtkhub_$1\".ohtkhub_export_audit"
}

printf '%-7s %9s %-8s %10s %9s %10s %12s\n' tenant rows format MB seconds rows/s peak-RSS-MB
for tenant in bon bunny; do
  for format in $FORMATS; do
    before=$(last_audit "$tenant")
    start_api
    t0=$(date +%s.%N)
    if [ "$format" = json ]; then
      bytes=$(python3 - "$base/t/$tenant/api/export/v1/incident-reports" "$auth" <<'PY'
import base64, json, sys, urllib.parse, urllib.request
url, auth = sys.argv[1], sys.argv[2]
hdr = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
q, total = {"limit": "10000", "includeTest": "true", "includeDeleted": "true"}, 0
while True:
    body = urllib.request.urlopen(urllib.request.Request(url + "?" + urllib.parse.urlencode(q), headers=hdr)).read()
    total += len(body)
    page = json.loads(body)
    if not page.get("next_cursor"):
        break
    q["cursor"] = page["next_cursor"]
print(total)
PY
)
    else
      bytes=$(curl -fsS -u "$auth" -o /dev/null -w '%{size_download}' "$base/t/$tenant/api/export/v1/incident-reports?format=$format&includeTest=true&includeDeleted=true")
    fi
    t1=$(date +%s.%N)
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$api/status")
    rows=$(audited_rows "$tenant" "$before")
    awk -v t="$tenant" -v r="$rows" -v f="$format" -v b="$bytes" -v s="$(echo "$t1 - $t0" | bc)" -v h="$hwm" \
      'BEGIN { printf "%-7s %9d %-8s %10.1f %9.2f %10.0f %12.1f\n", t, r, f, b/1048576, s, r/s, h/1024 }'
  done
done
