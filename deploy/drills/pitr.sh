#!/usr/bin/env bash
# Production backup and restore drill: the commands of docs/runbook.md "Production failure"
# run against a throwaway PostgreSQL cluster on this machine.
#
#   1. a primary with WAL archiving (archive_mode=on, archive_command=cp into a folder),
#   2. a base backup with pg_basebackup (tar, gzip, WAL streamed),
#   3. a logical snapshot with pg_dump -Fc (the seed's "manual snapshot before migrations"),
#   4. more writes after the backups, then an accident (DROP TABLE) and the primary lost,
#   5. point-in-time recovery: base backup + archived WAL up to the instant before the accident,
#   6. pg_restore of the logical snapshot into a fresh database.
# Checks the row counts at each step and prints the recovery time. Exit status 0 = the drill
# passed. Run by crates/kalshi-data/tests/it/deploy_runbook.rs; by hand:
#   deploy/drills/pitr.sh            (PG_BIN=/usr/lib/postgresql/15/bin to choose a version)
# As root the cluster runs as the `postgres` user (PostgreSQL refuses to run as root).
set -euo pipefail

PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
  echo "pitr drill: SKIPPED — PostgreSQL server binaries (initdb) not found; set PG_BIN" >&2
  exit 77
fi

WORK="$(mktemp -d /tmp/kd-pitr.XXXXXX)"
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$WORK"; fi
chmod 700 "$WORK"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
# The restored cluster gets its own port so no socket or lock file of the lost primary can
# get in its way.
PORT2="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
PSQL=(as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" -U postgres -tA)
PSQL2=(as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT2" -U postgres -tA)

cleanup() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    for log in "$WORK"/*.log; do
      [ -f "$log" ] && { echo "--- $log" >&2; tail -n 30 "$log" >&2; }
    done
  fi
  for d in primary restored; do
    if [ -f "$WORK/$d/postmaster.pid" ]; then
      as_pg "$PG_BIN/pg_ctl" -D "$WORK/$d" -m immediate stop >/dev/null 2>&1 || true
    fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { echo "pitr drill: $*"; }

step "initdb a primary with WAL archiving on port $PORT"
as_pg mkdir -p "$WORK/wal-archive" "$WORK/base"
as_pg "$PG_BIN/initdb" -D "$WORK/primary" -U postgres --auth=trust -E UTF8 >/dev/null
as_pg tee -a "$WORK/primary/postgresql.conf" >/dev/null <<CONF
listen_addresses = ''
port = $PORT
unix_socket_directories = '$WORK'
wal_level = replica
archive_mode = on
archive_command = 'test ! -f $WORK/wal-archive/%f && cp %p $WORK/wal-archive/%f.part && mv $WORK/wal-archive/%f.part $WORK/wal-archive/%f'
max_wal_senders = 4
CONF
as_pg "$PG_BIN/pg_ctl" -D "$WORK/primary" -l "$WORK/primary.log" -w start >/dev/null

"${PSQL[@]}" -c "CREATE DATABASE kalshi"
"${PSQL[@]}" -d kalshi -c "CREATE TABLE trades (trade_id text PRIMARY KEY, count_centi bigint NOT NULL);
  INSERT INTO trades SELECT 'before-backup-' || g, g FROM generate_series(1, 1000) g;"

step "pg_basebackup (tar, gzip, WAL streamed) and pg_dump -Fc"
as_pg "$PG_BIN/pg_basebackup" -h "$WORK" -p "$PORT" -U postgres -D "$WORK/base" -Ft -z -X stream -c fast
as_pg "$PG_BIN/pg_dump" -h "$WORK" -p "$PORT" -U postgres -Fc -f "$WORK/kalshi.dump" kalshi

step "writes after the backup, then an accident"
"${PSQL[@]}" -d kalshi -c "INSERT INTO trades SELECT 'after-backup-' || g, g FROM generate_series(1, 500) g;"
TARGET="$("${PSQL[@]}" -d kalshi -c "SELECT clock_timestamp()")"
"${PSQL[@]}" -d kalshi -c "DROP TABLE trades"
# Close the current WAL segment so the archiver ships the accident's segment too, and wait.
# The archive command copies to `.part` and renames: a segment visible under its final name is
# complete (a plain `cp` can be cut mid-file by a crash, and recovery then refuses the file).
SEGMENT="$("${PSQL[@]}" -c "SELECT pg_walfile_name(pg_switch_wal())")"
for _ in $(seq 1 300); do
  [ -f "$WORK/wal-archive/$SEGMENT" ] && break
  sleep 0.1
done
[ -f "$WORK/wal-archive/$SEGMENT" ] || { echo "pitr drill: FAILED — WAL $SEGMENT never archived" >&2; exit 1; }

step "primary lost (immediate stop); restore base backup + WAL to $TARGET"
as_pg "$PG_BIN/pg_ctl" -D "$WORK/primary" -m immediate stop >/dev/null
START=$(date +%s.%N)
as_pg mkdir -m 700 "$WORK/restored"
as_pg tar -xzf "$WORK/base/base.tar.gz" -C "$WORK/restored"
as_pg tar -xzf "$WORK/base/pg_wal.tar.gz" -C "$WORK/restored/pg_wal"
as_pg tee -a "$WORK/restored/postgresql.conf" >/dev/null <<CONF
port = $PORT2
restore_command = 'cp $WORK/wal-archive/%f %p'
recovery_target_time = '$TARGET'
recovery_target_action = 'promote'
archive_mode = off
CONF
as_pg touch "$WORK/restored/recovery.signal"
as_pg "$PG_BIN/pg_ctl" -D "$WORK/restored" -l "$WORK/restored.log" -w start >/dev/null
for _ in $(seq 1 600); do
  [ "$("${PSQL2[@]}" -c "SELECT pg_is_in_recovery()")" = "f" ] && break
  sleep 0.1
done
ROWS="$("${PSQL2[@]}" -d kalshi -c "SELECT count(*) FROM trades")"
END=$(date +%s.%N)
if [ "$ROWS" != "1500" ]; then
  echo "pitr drill: FAILED — restored $ROWS trades, expected 1500" >&2
  cat "$WORK/restored.log" >&2
  exit 1
fi
step "point-in-time recovery restored all 1500 trades in $(python3 -c "print(f'{$END-$START:.1f}')") s"

step "pg_restore the logical snapshot into a new database"
"${PSQL2[@]}" -c "CREATE DATABASE kalshi_snapshot"
as_pg "$PG_BIN/pg_restore" -h "$WORK" -p "$PORT2" -U postgres -d kalshi_snapshot "$WORK/kalshi.dump"
SNAP="$("${PSQL2[@]}" -d kalshi_snapshot -c "SELECT count(*) FROM trades")"
if [ "$SNAP" != "1000" ]; then
  echo "pitr drill: FAILED — snapshot restored $SNAP trades, expected 1000" >&2
  exit 1
fi
step "logical snapshot restored 1000 trades"
echo "pitr drill: PASSED"
