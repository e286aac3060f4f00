#!/usr/bin/env python3
"""Independent reader of an archive folder's raw tier, row by row (pyarrow only).

Usage: archive_rows.py ROOT -> one JSON document on stdout:
  {"trades": [[ticker, exchange_ts_us, id], ...], "deltas": [...], ...}
sorted, one entry per stored row (duplicates kept). `id` is the trade id (trades), the gap id
(gaps), else "". Timestamps are integer microseconds; nothing is converted to float.
"""
import glob
import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq

ID_COLUMN = {"trades": "trade_id", "gaps": "gap_id"}


def main(root):
    out = {}
    for table_dir in sorted(glob.glob(os.path.join(root, "raw", "*"))):
        table = os.path.basename(table_dir)
        rows = []
        files = glob.glob(os.path.join(table_dir, "**", "*.parquet"), recursive=True)
        for path in sorted(files):
            t = pq.read_table(path)
            if t.num_rows == 0:
                continue
            tickers = t.column("ticker").to_pylist()
            ts = t.column("exchange_ts").cast(pa.int64()).to_pylist()
            col = ID_COLUMN.get(table)
            ids = t.column(col).to_pylist() if col else [""] * t.num_rows
            rows.extend([k or "", v, i or ""] for k, v, i in zip(tickers, ts, ids))
        rows.sort()
        out[table] = rows
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
