#!/usr/bin/env bash
# Installs kalshi-data on a host: binary, systemd units, the dedicated user, example
# configuration and the runbook. Idempotent: re-running upgrades the binary and units and never
# overwrites configuration or secrets. docs/runbook.md "Layout on a host".
#
#   sudo deploy/install.sh --binary target/release/kalshi-data
#   deploy/install.sh --root /tmp/stage --binary …     # a staging tree (tests, images)
#
# Then: systemctl daemon-reload; systemctl enable --now kalshi-data-gatherer@a (etc.).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT=""
BINARY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
    --binary) BINARY="${2:?--binary needs a path}"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$BINARY" ]; then
  for candidate in "$HERE/../target/release/kalshi-data" "$(command -v kalshi-data || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then BINARY="$candidate"; break; fi
  done
fi
[ -n "$BINARY" ] && [ -x "$BINARY" ] || { echo "install.sh: no kalshi-data binary (use --binary)" >&2; exit 2; }

say() { echo "install.sh: $*"; }

# Binary; the previous one is kept for a quick rollback (docs/runbook.md#all-gatherers-down).
install -d "$ROOT/usr/local/bin"
if [ -f "$ROOT/usr/local/bin/kalshi-data" ] && ! cmp -s "$BINARY" "$ROOT/usr/local/bin/kalshi-data"; then
  cp -p "$ROOT/usr/local/bin/kalshi-data" "$ROOT/usr/local/bin/kalshi-data.previous"
  say "previous binary kept as /usr/local/bin/kalshi-data.previous"
fi
install -m 0755 "$BINARY" "$ROOT/usr/local/bin/kalshi-data.new"
mv -f "$ROOT/usr/local/bin/kalshi-data.new" "$ROOT/usr/local/bin/kalshi-data"

# Units, and the restart-backoff drop-in where systemd understands it (>= 254).
install -d "$ROOT/etc/systemd/system"
for unit in kalshi-data-gatherer@.service kalshi-data-dedup.service kalshi-data-export.service kalshi-data-sim.service; do
  install -m 0644 "$HERE/systemd/$unit" "$ROOT/etc/systemd/system/$unit"
done
SYSTEMD_VERSION="$(systemctl --version 2>/dev/null | awk 'NR==1 {print $2}')"
if [ -n "$SYSTEMD_VERSION" ] && [ "$SYSTEMD_VERSION" -ge 254 ] 2>/dev/null; then
  for unit in kalshi-data-gatherer@.service kalshi-data-dedup.service kalshi-data-export.service; do
    install -d "$ROOT/etc/systemd/system/$unit.d"
    install -m 0644 "$HERE/systemd/restart-backoff.conf" "$ROOT/etc/systemd/system/$unit.d/restart-backoff.conf"
  done
  say "restart backoff drop-ins installed (systemd $SYSTEMD_VERSION)"
else
  say "systemd ${SYSTEMD_VERSION:-absent} < 254: fixed RestartSec, no backoff drop-in"
fi

# The dedicated user.
install -d "$ROOT/usr/lib/sysusers.d"
install -m 0644 "$HERE/systemd/kalshi-data.sysusers.conf" "$ROOT/usr/lib/sysusers.d/kalshi-data.conf"
if command -v systemd-sysusers >/dev/null 2>&1; then
  if [ -n "$ROOT" ]; then
    systemd-sysusers --root="$ROOT" "$ROOT/usr/lib/sysusers.d/kalshi-data.conf"
  else
    systemd-sysusers /usr/lib/sysusers.d/kalshi-data.conf
  fi
fi

# Configuration: examples only where nothing exists yet; secrets files root-only.
install -d -m 0755 "$ROOT/etc/kalshi-data"
copy_once() { # src dst mode
  if [ -e "$2" ]; then say "kept existing ${2#"$ROOT"}"; else install -m "$3" "$1" "$2"; say "wrote ${2#"$ROOT"}"; fi
}
copy_once "$HERE/config/gatherer.toml" "$ROOT/etc/kalshi-data/gatherer-a.toml.example" 0644
copy_once "$HERE/config/export.toml" "$ROOT/etc/kalshi-data/export.toml.example" 0644
copy_once "$HERE/config/status.toml" "$ROOT/etc/kalshi-data/status.toml.example" 0644
[ -f "$HERE/config/dedup.toml" ] && copy_once "$HERE/config/dedup.toml" "$ROOT/etc/kalshi-data/dedup.toml.example" 0644
for env in "$HERE"/config/*.env.example; do
  copy_once "$env" "$ROOT/etc/kalshi-data/$(basename "$env")" 0600
done

# Operator documentation (the units' Documentation= link).
install -d "$ROOT/usr/share/doc/kalshi-data"
for doc in runbook.md metrics.md; do
  [ -f "$HERE/../docs/$doc" ] && install -m 0644 "$HERE/../docs/$doc" "$ROOT/usr/share/doc/kalshi-data/$doc"
done
say "done — next: systemctl daemon-reload, then enable the units for this host's role"
