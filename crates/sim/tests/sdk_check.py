"""Calls every REST endpoint the simulator serves through Kalshi's official Python SDK
(`kalshi-python-sync` 3.34.0, unchanged) and parses every response with it.

Usage: python3 sdk_check.py REST_BASE COMBO_EVENT COMBO_MARKET
Prints one line per call; exits 1 (listing the failures) if any call or parse failed, 2 if the
SDK is not installed.

The SDK's methods return pydantic models: a response the SDK rejects (a missing required key, a
value outside an enum it validates, a wrong type) raises, which is what this script looks for.
"""

import sys
import traceback

try:
    import kalshi_python_sync as k
except ImportError:
    print("kalshi_python_sync is not installed", file=sys.stderr)
    sys.exit(2)


def main():
    base, combo_event, combo_market = sys.argv[1], sys.argv[2], sys.argv[3]
    client = k.ApiClient(k.Configuration(host=base))
    exchange = k.ExchangeApi(client)
    market = k.MarketApi(client)
    events = k.EventsApi(client)
    historical = k.HistoricalApi(client)

    failures = []
    results = {}

    def call(name, fn, check=None):
        try:
            value = fn()
            if check is not None:
                check(value)
            results[name] = value
            print(f"ok   {name}")
            return value
        except Exception:  # noqa: BLE001 - every failure is reported, none is fatal
            failures.append(name)
            print(f"FAIL {name}\n{traceback.format_exc()}")
            return None

    def nonempty(attr):
        def check(v):
            if not getattr(v, attr):
                raise AssertionError(f"empty {attr}")

        return check

    call("get_exchange_status", exchange.get_exchange_status)
    call("get_exchange_schedule", exchange.get_exchange_schedule)
    series = call("get_series_list", market.get_series_list, nonempty("series"))
    if series:
        for s in series.series:
            call(f"get_series({s.ticker})", lambda t=s.ticker: market.get_series(t))
    markets = call("get_markets", lambda: market.get_markets(limit=1000), nonempty("markets"))
    for status in ["unopened", "open", "paused", "closed", "settled"]:
        call(f"get_markets(status={status})", lambda st=status: market.get_markets(status=st, limit=1000))
    call("get_markets(mve_filter=only)", lambda: market.get_markets(mve_filter="only"), nonempty("markets"))
    call("get_markets(mve_filter=exclude)", lambda: market.get_markets(mve_filter="exclude"), nonempty("markets"))
    if markets:
        first = markets.markets[0]
        call("get_markets(event_ticker)", lambda: market.get_markets(event_ticker=first.event_ticker))
        call("get_markets(cursor)", lambda: market.get_markets(limit=5, cursor=markets.cursor or None))
        call("get_market", lambda: market.get_market(first.ticker))
        call("get_market_orderbook", lambda: market.get_market_orderbook(first.ticker))
        call("get_market_orderbook(depth)", lambda: market.get_market_orderbook(first.ticker, depth=3))
        tickers = [m.ticker for m in markets.markets[:100]]
        call("get_market_orderbooks", lambda: market.get_market_orderbooks(tickers), nonempty("orderbooks"))
    def has_legs(v):
        if not v.market.mve_selected_legs or not v.market.mve_collection_ticker:
            raise AssertionError("a combo market without its mve fields")

    call("get_market(combo)", lambda: market.get_market(combo_market), has_legs)
    call("get_market_orderbook(combo)", lambda: market.get_market_orderbook(combo_market))
    call("get_events", lambda: events.get_events(limit=200), nonempty("events"))
    call("get_events(nested)", lambda: events.get_events(limit=20, with_nested_markets=True, status="open"))
    evs = results.get("get_events")
    if evs:
        e = evs.events[0].event_ticker
        call("get_event", lambda: events.get_event(e))
        call("get_event(nested)", lambda: events.get_event(e, with_nested_markets=True))
    call("get_multivariate_events", lambda: events.get_multivariate_events(with_nested_markets=True), nonempty("events"))
    call("get_event(combo)", lambda: events.get_event(combo_event, with_nested_markets=True))
    call("get_trades", lambda: market.get_trades(limit=1000), nonempty("trades"))
    trades = results.get("get_trades")
    if trades:
        t = trades.trades[0].ticker
        call("get_trades(ticker)", lambda: market.get_trades(ticker=t))
    call("get_trades(combo)", lambda: market.get_trades(ticker=combo_market))
    call("get_historical_cutoff", historical.get_historical_cutoff)
    call("get_trades_historical", lambda: historical.get_trades_historical(limit=1000), nonempty("trades"))

    print(f"{len(results)} calls parsed, {len(failures)} failed")
    if failures:
        print("failed: " + ", ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
