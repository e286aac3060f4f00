#!/usr/bin/env bash
# 5-minute scripted `up` with faults and gatherer-b killed -9 twice, then verify.
# usage: scripts/up-5min-kills.sh DATA_DIR [extra up args, e.g. --production postgres://…]
# Build first (cargo build); PRODUCTION=URL makes verify read that store instead of SQLite.
set -u
bin=${KALSHI_DATA_BIN:-$(dirname "$0")/../target/debug/kalshi-data}
dir=$1; shift
rm -rf "$dir"; mkdir -p "$dir"
$bin up --data-dir "$dir" --duration 300 --markets 100 --rate 800 --plain \
  --fault ws-drop:0.01 --fault http:503:/markets*:0.05 --fault ws-close:1006:45 "$@" > "$dir/up.log" 2>&1 &
up=$!
kill_b() {
  pid=$(python3 -c "import json,sys; s=json.load(open('$dir/up.json')); print([p for p in s['processes'] if p.get('name')=='gatherer-b' or p.get('id')=='gatherer-b'][0]['pid'])" 2>/dev/null)
  echo "$(date +%T) kill -9 gatherer-b pid=$pid"; [ -n "$pid" ] && kill -9 "$pid"
}
sleep 70; kill_b; sleep 90; kill_b
wait $up; echo "up exit $?"
tail -5 "$dir/up.log"
$bin verify --truth "$dir/truth.jsonl" --production "${PRODUCTION:-sqlite://$dir/production.db}" 2>&1 | tail -15
