#!/usr/bin/env bash
# Kalshi's official Python SDK, for crates/sim/tests/sim/sdk.rs (the simulator's every REST
# response must parse in it). It declares Python >= 3.13 but runs on 3.11, hence
# --ignore-requires-python. Idempotent: does nothing when version 3.34.0 is already installed.
set -euo pipefail
want="3.34.0"
have="$(python3 -c 'import importlib.metadata as m; print(m.version("kalshi-python-sync"))' 2>/dev/null || true)"
if [ "$have" != "$want" ]; then
  echo "test-deps: installing kalshi-python-sync==$want (pip install --ignore-requires-python)"
  python3 -m pip install --quiet --root-user-action=ignore --ignore-requires-python "kalshi-python-sync==$want"
fi
