#!/usr/bin/env bash
# promtool, for crates/kalshi-data/tests/it/deploy_prometheus.rs (`promtool check rules` and
# `promtool test rules` on deploy/prometheus/). Debian's `prometheus` package ships it.
# Idempotent: does nothing when promtool is already on PATH.
set -euo pipefail
if ! command -v promtool >/dev/null 2>&1; then
  echo "test-deps: installing promtool (apt-get install prometheus)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
fi
