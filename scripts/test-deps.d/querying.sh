#!/usr/bin/env bash
# pandas and polars, for crates/kalshi-data/tests/it/querying.rs (runs every snippet of
# docs/querying.md on a real run's archive; pyarrow and DuckDB come from scripts/test-deps).
# Idempotent: does nothing when both import.
set -euo pipefail
if ! python3 -c 'import pandas, polars' >/dev/null 2>&1; then
  echo "test-deps: installing pandas and polars (pip install)"
  python3 -m pip install --quiet --root-user-action=ignore pandas polars
fi
