#!/usr/bin/env bash
# Soak run (issue 9): `kalshi-data up` for MINUTES (default 30) under continuous failure, then
# `verify` against the simulator's ground truth. Prints an event log and one FIGURES line.
#
#   scripts/chaos.sh [DATA_DIR]             # default /tmp/kd-chaos (wiped first)
#
# What it does while the platform runs:
#   - every KILL_EVERY s (45): kill -9 the next gatherer in rotation a → b → c. Never all at
#     once: the next kill waits until the previous victim is back and storing data again.
#   - from the start: simulator faults ws-drop:0.002, ws-close:1006:120, ws-close:1000:150,
#     http:503:/markets*:0.02 (FAULTS overrides the list, space-separated)
#   - every CLOSE_ALL_EVERY s (420): every WebSocket connection closed at once (1011)
#   - every DEDUP_EVERY s (300): kill -9 of the deduplicator
#   - once, at half time, when PG=1 (default): the production PostgreSQL — a private server
#     this script starts (initdb in DATA_DIR/pg, never the shared one) — is stopped for
#     PG_DOWN s (15) and started again. PG=0: embedded SQLite production, no restart.
#   - the chaos stops CALM s (90) before the end so the `--duration` drain ends cleanly.
# Environment: MINUTES, MARKETS (200), RATE (1000), KILL_EVERY, DEDUP_EVERY, CLOSE_ALL_EVERY,
# PG, PG_DOWN, CALM, FAULTS, KALSHI_DATA_BIN (default target/release/kalshi-data, else debug),
# PG_BIN (default /usr/lib/postgresql/15/bin).
# Exit status: verify's (0 only for `verify: OK`).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${KALSHI_DATA_BIN:-$root/target/release/kalshi-data}
[ -x "$bin" ] || bin=$root/target/debug/kalshi-data
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
dir=${1:-/tmp/kd-chaos}
minutes=${MINUTES:-30}
markets=${MARKETS:-200}
rate=${RATE:-1000}
kill_every=${KILL_EVERY:-45}
dedup_every=${DEDUP_EVERY:-300}
close_all_every=${CLOSE_ALL_EVERY:-420}
pg=${PG:-1}
pg_down=${PG_DOWN:-15}
calm=${CALM:-90}
pg_bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
faults=${FAULTS:-ws-drop:0.002 ws-close:1006:120 ws-close:1000:150 http:503:/markets*:0.02}
duration=$((minutes * 60))

log() { echo "$(date -u +%T) $*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
field() { # field NAME KEY: a value of a process in up.json
  python3 - "$dir/up.json" "$1" "$2" <<'PY' 2>/dev/null
import json, sys
s = json.load(open(sys.argv[1]))
p = [p for p in s["processes"] if p["name"] == sys.argv[2]][0]
v = p.get(sys.argv[3]); print("" if v is None else v)
PY
}
deltas_head() { curl -s -m 2 "http://127.0.0.1:$(field "$1" port)/health" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["store"]["tables"]["deltas"]["head"])' 2>/dev/null; }
dedup_lag() { curl -s -m 2 "$(field dedup metrics_url)" |
  awk '/^dedup_sync_lag_seconds/ { if ($2 > m) m = $2 } END { print m + 0 }'; }

rm -rf "$dir"; mkdir -p "$dir"
production=""
pg_data="$dir/pg/data"
if [ "$pg" = 1 ]; then
  port=$(free_port)
  mkdir -p "$dir/pg"; [ "$(id -u)" = 0 ] && chown -R postgres: "$dir/pg"
  as_pg "$pg_bin/initdb" -D "$pg_data" -U postgres -A trust >"$dir/pg-init.log" 2>&1 || { cat "$dir/pg-init.log"; exit 2; }
  printf "port = %s\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n" "$port" "$dir/pg" >>"$pg_data/postgresql.conf"
  as_pg "$pg_bin/pg_ctl" -D "$pg_data" -l "$dir/pg/server.log" -w start >/dev/null || exit 2
  production="postgres://postgres@127.0.0.1:$port/postgres"
  trap 'as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w stop >/dev/null 2>&1' EXIT
else
  production="sqlite://$dir/production.db"
fi

fault_args=()
for f in $faults; do fault_args+=(--fault "$f"); done
log "soak: $minutes min, $markets markets, $rate msg/s, production $production, faults: $faults"
"$bin" up --plain --data-dir "$dir" --duration "$duration" --markets "$markets" --rate "$rate" \
  --production "$production" "${fault_args[@]}" >"$dir/up.log" 2>&1 &
up=$!

start=$(date +%s)
for _ in $(seq 1 120); do [ -n "$(deltas_head gatherer-c)" ] && break; sleep 1; done
victims=(gatherer-a gatherer-b gatherer-c)
i=0; kills=0; dedup_kills=0; close_alls=0; pg_restarts=0; max_lag=0; worst_back=0
next_kill=$((start + kill_every)); next_dedup=$((start + dedup_every))
next_close=$((start + close_all_every)); pg_at=$((start + duration / 2))
while kill -0 "$up" 2>/dev/null; do
  now=$(date +%s)
  [ $((now - start)) -ge $((duration - calm)) ] && break
  lag=$(dedup_lag); max_lag=$(python3 -c "print(max($max_lag, ${lag:-0}))")
  if [ "$now" -ge "$next_kill" ]; then
    v=${victims[$((i % 3))]}; i=$((i + 1))
    pid=$(field "$v" pid); head=$(deltas_head "$v")
    if [ -n "$pid" ] && [ -n "$head" ]; then
      kill -9 "$pid"; t0=$(date +%s.%N); kills=$((kills + 1))
      # never all at once: wait until this one stores again before the next kill
      for _ in $(seq 1 600); do
        h=$(deltas_head "$v"); [ -n "$h" ] && [ "$h" -gt "$head" ] && break; sleep 0.1
      done
      back=$(python3 -c "print(round($(date +%s.%N) - $t0, 1))")
      worst_back=$(python3 -c "print(max($worst_back, $back))")
      log "kill -9 $v (pid $pid): storing again after ${back}s"
    fi
    next_kill=$((now + kill_every))
  fi
  if [ "$now" -ge "$next_dedup" ]; then
    pid=$(field dedup pid); [ -n "$pid" ] && kill -9 "$pid" && dedup_kills=$((dedup_kills + 1)) && log "kill -9 dedup (pid $pid)"
    next_dedup=$((now + dedup_every))
  fi
  if [ "$now" -ge "$next_close" ]; then
    curl -s -m 5 -X POST "http://127.0.0.1:$(field sim port)/_sim/faults" -d 'ws-close:1011:all' >/dev/null &&
      close_alls=$((close_alls + 1)) && log "every WebSocket closed (1011)"
    next_close=$((now + close_all_every))
  fi
  if [ "$pg" = 1 ] && [ "$pg_restarts" = 0 ] && [ "$now" -ge "$pg_at" ]; then
    log "production PostgreSQL stopped for ${pg_down}s"
    as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w stop >/dev/null
    sleep "$pg_down"
    as_pg "$pg_bin/pg_ctl" -D "$pg_data" -l "$dir/pg/server.log" -w start >/dev/null
    pg_restarts=1; log "production PostgreSQL started again"
  fi
  sleep 1
done
log "chaos over; waiting for the drain"
wait "$up"; log "up exit $?"
tail -3 "$dir/up.log"
"$bin" verify --truth "$dir/truth.jsonl" --production "$production" >"$dir/verify.txt" 2>&1
rc=$?
tail -12 "$dir/verify.txt"
published=$(grep -c '"kind":"published"' "$dir/truth.jsonl")
captured=""
for g in a b c; do
  n=$(sqlite3 "$dir/gatherer-$g/store.sqlite" "SELECT (SELECT COUNT(*) FROM trades)+(SELECT COUNT(*) FROM deltas)+(SELECT COUNT(*) FROM snapshots)+(SELECT COUNT(*) FROM tickers)+(SELECT COUNT(*) FROM lifecycle)")
  captured="$captured $g=$n"
done
sum() { awk -v k="$1" '$1 == k":" { split($2, a, "/"); print a[1] }' "$dir/verify.txt"; }
missing=$(awk '/ missing [0-9]+,/ { for (i = 1; i <= NF; i++) if ($i == "missing") s += $(i+1) } END { print s + 0 }' "$dir/verify.txt")
dups=$(awk '/ duplicated [0-9]+,/ { for (i = 1; i <= NF; i++) if ($i == "duplicated") s += $(i+1) } END { print s + 0 }' "$dir/verify.txt")
echo "FIGURES soak-${minutes}min: published=$published captured[${captured# }] production_trades=$(sum trades) \
missing=$missing duplicated=$dups max_sync_lag=${max_lag}s gatherer_kills=$kills worst_back=${worst_back}s \
dedup_kills=$dedup_kills close_all=$close_alls pg_restarts=$pg_restarts | $(tail -1 "$dir/verify.txt")"
exit $rc
