"""A Kalshi WebSocket client in Python (`websockets`) against `kalshi-data replay`.

Subscribes to every market's order book and trades, checks that `seq` is contiguous per
subscription, and prints the number of messages of each type as JSON (the Rust test compares
them with production). Exits non-zero on any protocol error.
"""
import asyncio
import json
import sys

import websockets


async def main(url):
    counts = {"ended": False}
    last_seq = {}
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"id": 1, "cmd": "subscribe",
                                  "params": {"channels": ["orderbook_delta", "trade"]}}))
        async for text in ws:
            frame = json.loads(text)
            kind = frame["type"]
            if kind == "error":
                raise SystemExit(f"error from replay: {frame}")
            sid, seq = frame.get("sid"), frame.get("seq")
            if sid is not None and seq is not None:
                if seq != last_seq.get(sid, 0) + 1:
                    raise SystemExit(f"seq gap on sid {sid}: {last_seq.get(sid)} then {seq}")
                last_seq[sid] = seq
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "replay_end":
                counts["ended"] = True
    print(json.dumps(counts))


asyncio.run(main(sys.argv[1]))
