#!/usr/bin/env bash
# Headless Chromium, for crates/kalshi-data/tests/it/audit.rs (loads `audit --html`'s page,
# checks it renders without console errors and keeps a screenshot). Debian's `chromium`.
# Idempotent: does nothing when chromium is already on PATH.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  echo "test-deps: installing chromium (apt-get install chromium)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
fi
