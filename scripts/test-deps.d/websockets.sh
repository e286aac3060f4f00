#!/usr/bin/env bash
# Python `websockets`, for the Python client of crates/kalshi-data/tests/it/replay.rs (a Kalshi
# WebSocket client against `kalshi-data replay`). Idempotent: does nothing when it imports.
set -euo pipefail
if ! python3 -c 'import websockets' >/dev/null 2>&1; then
  echo "test-deps: installing websockets (pip install)"
  python3 -m pip install --quiet --root-user-action=ignore "websockets>=12"
fi
