#!/usr/bin/env bash
# promtool and the Prometheus server, for crates/kalshi-data/tests/it/deploy_prometheus.rs
# (`promtool check rules` and `promtool test rules` on deploy/prometheus/) and for rules checked
# against a real server. Debian's `prometheus` package ships both (/usr/bin/prometheus,
# /usr/bin/promtool). Idempotent: does nothing when both are already on PATH.
set -euo pipefail
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  echo "test-deps: installing prometheus and promtool (apt-get install prometheus)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
fi
# The package's own service is not wanted on a test machine (tests start their own servers).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO systemctl stop prometheus || true
fi
command -v prometheus >/dev/null && command -v promtool >/dev/null
