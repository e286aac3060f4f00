#!/usr/bin/env python3
"""Independent reader of an exported archive folder (pyarrow, and DuckDB SQL when present).

Usage: check_parquet.py ROOT   -> prints one JSON document on stdout:
  datasets: {"raw/deltas": {rows, min_ts, max_ts, size_sum, files, sorted, zstd, units,
             max_row_group_rows, distinct_rows}, ...}
  aggregates: {"hourly_ohlc": [[ticker, hour_us, open, high, low, close, volume, n, notional]], ...}
  sql: {"duckdb": bool, "hourly_ohlc_match": bool|null, "daily_volume_match": bool|null, diffs}
Timestamps are integers (microseconds since the epoch, UTC); nothing is converted to float.
"""
import glob
import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq

SIZE_COLUMN = {"trades": "count", "deltas": "delta", "tickers": "volume"}


def ints(column):
    return [v for v in column.cast(pa.int64()).to_pylist()]


def dataset_stats(files, table):
    stats = {"rows": 0, "min_ts": None, "max_ts": None, "size_sum": 0, "files": [],
             "sorted": True, "zstd": True, "units": [], "max_row_group_rows": 0, "distinct_rows": 0}
    seen = set()
    for path in sorted(files):
        pf = pq.ParquetFile(path)
        meta = pf.metadata
        kv = {k.decode(): v.decode() for k, v in (meta.metadata or {}).items()}
        stats["units"] = sorted(k for k in kv if k.startswith("unit."))
        for rg in range(meta.num_row_groups):
            stats["max_row_group_rows"] = max(stats["max_row_group_rows"], meta.row_group(rg).num_rows)
            for c in range(meta.num_columns):
                if meta.row_group(rg).column(c).compression != "ZSTD":
                    stats["zstd"] = False
        t = pf.read()
        stats["files"].append(path)
        stats["rows"] += t.num_rows
        if t.num_rows == 0:
            continue
        ts = ints(t.column("exchange_ts"))
        tickers = t.column("ticker").to_pylist()
        keys = [((k or ""), v) for k, v in zip(tickers, ts)]
        if any(keys[i] > keys[i + 1] for i in range(len(keys) - 1)):
            stats["sorted"] = False
        stats["min_ts"] = min(ts) if stats["min_ts"] is None else min(stats["min_ts"], min(ts))
        stats["max_ts"] = max(ts) if stats["max_ts"] is None else max(stats["max_ts"], max(ts))
        if table in SIZE_COLUMN:
            stats["size_sum"] += sum(v for v in ints(t.column(SIZE_COLUMN[table])) if v is not None)
        elif table == "snapshots":
            for side in ("yes", "no"):
                for levels in t.column(side).to_pylist():
                    stats["size_sum"] += sum(level["size"] for level in levels)
        if table == "trades":
            # Row-by-row comparison with production: every trade id the archive holds.
            stats.setdefault("trade_ids", []).extend(t.column("trade_id").to_pylist())
        raw_cols = [c for c in t.column_names]
        for row in zip(*[t.column(c).to_pylist() for c in raw_cols]):
            seen.add(repr(row))
    stats["distinct_rows"] = len(seen)
    return stats


def aggregate_rows(root, name):
    files = sorted(glob.glob(os.path.join(root, "aggregates", name, "**", "*.parquet"), recursive=True))
    rows = []
    for path in files:
        t = pq.read_table(path)
        cols = {c: t.column(c) for c in t.column_names}
        for c in list(cols):
            if pa.types.is_timestamp(cols[c].type):
                cols[c] = cols[c].cast(pa.int64())
        lists = {c: cols[c].to_pylist() for c in cols}
        for i in range(t.num_rows):
            rows.append({c: lists[c][i] for c in lists})
    return rows


def sql_checks(root, ohlc, daily):
    try:
        import duckdb
    except ImportError:
        return {"duckdb": False, "hourly_ohlc_match": None, "daily_volume_match": None}
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    trades = os.path.join(root, "raw", "trades", "**", "*.parquet")
    con.execute(f"CREATE VIEW t AS SELECT DISTINCT ticker, epoch_us(exchange_ts) AS ts, trade_id, yes_price, "
                f"\"count\" AS cnt FROM read_parquet('{trades}')")
    sql_ohlc = con.execute("""
        SELECT ticker, ts // 3600000000 * 3600000000 AS hour,
               arg_min(yes_price, (ts, trade_id)) AS open, max(yes_price) AS high,
               min(yes_price) AS low, arg_max(yes_price, (ts, trade_id)) AS close,
               sum(cnt)::BIGINT AS volume, count(*) AS n, sum(yes_price * cnt)::BIGINT AS notional
        FROM t GROUP BY ALL ORDER BY ticker, hour""").fetchall()
    ours_ohlc = sorted((r["ticker"], r["hour"], r["open"], r["high"], r["low"], r["close"], r["volume"],
                        r["trade_count"], r["notional"]) for r in ohlc)
    sql_ohlc = [tuple(r) for r in sql_ohlc]
    sql_daily = con.execute("""
        SELECT ticker, ts // 86400000000 * 86400000000 AS day, sum(cnt)::BIGINT, count(*),
               sum(yes_price * cnt)::BIGINT
        FROM t GROUP BY ALL ORDER BY ticker, day""").fetchall()
    ours_daily = sorted((r["key"], r["day"], r["volume"], r["trade_count"], r["notional"])
                        for r in daily if r["scope"] == "market")
    sql_daily = [tuple(r) for r in sql_daily]
    return {
        "duckdb": True,
        "hourly_ohlc_match": ours_ohlc == sql_ohlc,
        "daily_volume_match": ours_daily == sql_daily,
        "hourly_ohlc_rows": len(sql_ohlc),
        "diffs": [str(x) for x in (set(ours_ohlc) ^ set(sql_ohlc))][:5]
        + [str(x) for x in (set(ours_daily) ^ set(sql_daily))][:5],
    }


def main():
    root = sys.argv[1]
    out = {"datasets": {}, "aggregates": {}, "sql": {}}
    for tier in ("raw", "processed"):
        for table_dir in sorted(glob.glob(os.path.join(root, tier, "*"))):
            table = os.path.basename(table_dir)
            files = glob.glob(os.path.join(table_dir, "**", "*.parquet"), recursive=True)
            out["datasets"][f"{tier}/{table}"] = dataset_stats(files, table)
    for name in ("hourly_ohlc", "daily_volume", "market_stats"):
        out["aggregates"][name] = aggregate_rows(root, name)
    out["sql"] = sql_checks(root, out["aggregates"]["hourly_ohlc"], out["aggregates"]["daily_volume"])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
