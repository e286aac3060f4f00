//! `verify` and `book` logic on a constructed exchange history: a small deterministic market
//! engine produces the truth (published records + check-point books) and a production copy,
//! which the tests then damage in known ways.

use kd_core::records::{Level, WirePos};
use kd_core::{
    Count, Gap, OrderbookDelta, OrderbookSnapshot, Price, Record, Side, SnapshotSource, Ticker,
    TimestampUs, Trade,
};
use kd_ops::book::{Book, MarketHistory, histories};
use kd_ops::production::ProductionData;
use kd_ops::verify::check::{Expect, compare, compare_trades_from, compare_with, describe};
use kd_ops::verify::report::{render, verdict};
use kd_ops::verify::truth::{Fate, Published, Truth, TruthBook};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::collections::BTreeMap;

const T0: i64 = 1_782_316_195_000_000;

fn price(units: i64) -> Price {
    Price::new(units).unwrap_or(Price::ZERO)
}

fn levels(side: &BTreeMap<Price, Count>) -> Vec<Level> {
    side.iter()
        .map(|(p, s)| Level {
            price: *p,
            size: *s,
        })
        .collect()
}

/// A constructed history: the truth and a perfect production copy.
struct World {
    truth: Truth,
    production: ProductionData,
    /// (ticker, ts) of every check point, for random book queries.
    points: Vec<(String, TimestampUs)>,
}

fn world(seed: u64, markets: usize, steps: usize) -> World {
    let mut rng = StdRng::seed_from_u64(seed);
    let tickers: Vec<String> = (0..markets).map(|i| format!("KX-M{i:03}")).collect();
    let mut books: Vec<Book> = vec![Book::default(); markets];
    let mut truth = Truth::default();
    let mut production = ProductionData {
        gatherers: vec!["gatherer-a".into(), "gatherer-b".into()],
        ..ProductionData::default()
    };
    let mut points = Vec::new();
    // Initial snapshot of every market (what a subscription's first message carries).
    for (m, ticker) in tickers.iter().enumerate() {
        for k in 0..3 {
            let p = price(40_000 + 1_000 * k);
            books[m].apply(Side::Yes, p, Count::new(1_000));
            books[m].apply(Side::No, price(50_000 + 1_000 * k), Count::new(500));
        }
        production.snapshots.push(snapshot(ticker, T0, &books[m]));
    }
    let mut occurrences: BTreeMap<(String, i64, Side, i64, i64), u32> = BTreeMap::new();
    for step in 0..steps {
        let ts = T0 + 1_000 * (step as i64 + 1);
        let m = rng.random_range(0..markets);
        let ticker = &tickers[m];
        let side = if rng.random_bool(0.5) {
            Side::Yes
        } else {
            Side::No
        };
        let p = price(30_000 + 1_000 * rng.random_range(0..20_i64));
        let current = match side {
            Side::Yes => books[m].yes.get(&p).copied(),
            Side::No => books[m].no.get(&p).copied(),
        }
        .unwrap_or(Count::ZERO);
        // Remove at most what rests; add otherwise.
        let delta = if !current.is_zero() && rng.random_bool(0.4) {
            Count::new(-rng.random_range(1..=current.hundredths()))
        } else {
            Count::new(rng.random_range(1..5_000))
        };
        books[m].apply(side, p, delta);
        let key = (ticker.clone(), ts, side, p.units(), delta.hundredths());
        let occurrence = *occurrences.entry(key).and_modify(|n| *n += 1).or_insert(0);
        let d = OrderbookDelta {
            ticker: ticker.clone(),
            exchange_ts: TimestampUs::from_micros(ts),
            side,
            price: p,
            delta,
            occurrence,
            received_at: TimestampUs::from_micros(ts + 300),
            pos: WirePos::default(),
        };
        truth
            .published
            .push(Published::new(Record::Delta(d.clone()), true));
        production.deltas.push(d);
        if step % 7 == 0 {
            let t = trade(&format!("trade-{step:05}"), ticker, ts, &mut rng);
            truth
                .published
                .push(Published::new(Record::Trade(t.clone()), step % 21 != 0));
            production.trades.push(t);
            let tk = ticker_record(ticker, ts, step as i64);
            truth
                .published
                .push(Published::new(Record::Ticker(tk.clone()), true));
            production.tickers.push(tk);
        }
        if step % 50 == 49 {
            // A REST snapshot now and then (three gatherers' polls).
            production.snapshots.push(snapshot(ticker, ts, &books[m]));
        }
        if step % 5 == 0 {
            let cm = rng.random_range(0..markets);
            truth.books.push(TruthBook {
                ticker: tickers[cm].clone(),
                ts: TimestampUs::from_micros(ts),
                book: books[cm].clone(),
            });
            points.push((tickers[cm].clone(), TimestampUs::from_micros(ts)));
        }
    }
    World {
        truth,
        production,
        points,
    }
}

fn snapshot(ticker: &str, ts: i64, book: &Book) -> OrderbookSnapshot {
    OrderbookSnapshot {
        ticker: ticker.into(),
        source: SnapshotSource::Rest,
        exchange_ts: TimestampUs::from_micros(ts),
        yes: levels(&book.yes),
        no: levels(&book.no),
        received_at: TimestampUs::from_micros(ts),
        pos: WirePos::default(),
    }
}

fn trade(id: &str, ticker: &str, ts: i64, rng: &mut StdRng) -> Trade {
    let yes = rng.random_range(1..100_i64) * 1_000;
    Trade {
        trade_id: id.into(),
        ticker: ticker.into(),
        exchange_ts: TimestampUs::from_micros(ts),
        yes_price: price(yes),
        no_price: price(100_000 - yes),
        count: Count::new(rng.random_range(1..10_000)),
        taker_side: Some(Side::Yes),
        is_block_trade: false,
        source: kd_core::records::TradeSource::Ws,
        received_at: TimestampUs::from_micros(ts + 500),
        pos: WirePos::default(),
    }
}

fn ticker_record(ticker: &str, ts: i64, v: i64) -> Ticker {
    Ticker {
        ticker: ticker.into(),
        exchange_ts: TimestampUs::from_micros(ts),
        price: Some(price(50_000)),
        yes_bid: None,
        yes_ask: None,
        volume: Some(Count::new(v)),
        open_interest: None,
        dollar_volume: None,
        dollar_open_interest: None,
        yes_bid_size: None,
        yes_ask_size: None,
        last_trade_size: None,
        received_at: TimestampUs::from_micros(ts + 1),
        pos: WirePos::default(),
    }
}

fn window(w: &World) -> (TimestampUs, TimestampUs) {
    (
        TimestampUs::from_micros(T0),
        w.truth.last().unwrap_or_default(),
    )
}

#[test]
fn a_perfect_copy_verifies_ok() {
    let w = world(1, 20, 3_000);
    let (from, to) = window(&w);
    let report = compare(&w.truth, &w.production, from, to);
    let text = render(&report);
    assert!(report.passed(), "{text}");
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("verify: OK trades=429/429 deltas=3000/3000 tickers=429/429 books="),
        "{last}"
    );
    assert_eq!(last, verdict(&report));
}

#[test]
fn a_deleted_trade_fails_and_is_named() {
    let mut w = world(2, 20, 3_000);
    let removed = w.production.trades.remove(10);
    let (from, to) = window(&w);
    let report = compare(&w.truth, &w.production, from, to);
    let text = render(&report);
    assert!(!report.passed());
    assert!(
        text.contains(&format!("trades missing: trade {}", removed.trade_id)),
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .unwrap_or_default()
            .starts_with("verify: FAIL trades=428/429 "),
        "{text}"
    );
}

/// A world whose production lacks one trade that reached no subscriber, and that trade.
fn world_without_an_undelivered_trade() -> (World, Trade) {
    let mut w = world(3, 5, 500);
    let idx = w
        .truth
        .published
        .iter()
        .position(|p| matches!(&p.record, Record::Trade(_)) && !p.delivered());
    let Some(Record::Trade(t)) = idx.map(|i| w.truth.published[i].record.clone()) else {
        panic!("the constructed world has an undelivered trade");
    };
    w.production.trades.retain(|x| x.trade_id != t.trade_id);
    (w, t)
}

#[test]
fn an_undelivered_trade_is_still_expected() {
    // Trades dropped for every subscriber must come back over REST: still counted.
    let (w, _) = world_without_an_undelivered_trade();
    let (from, to) = window(&w);
    let report = compare(&w.truth, &w.production, from, to);
    assert_eq!(report.trades.missing.count, 1);
}

#[test]
fn an_undelivered_trade_before_any_trade_subscription_is_not_expected() {
    // A trade made before the platform's first trade subscription reached nobody and lies in
    // no gap: not expected. The same trade after it is (REST backfill must bring it).
    let (w, t) = world_without_an_undelivered_trade();
    let (from, to) = window(&w);
    let after = TimestampUs::from_micros(t.exchange_ts.micros() + 1);
    let report = compare_trades_from(&w.truth, &w.production, from, to, after);
    assert_eq!(report.trades.missing.count, 0);
    let report = compare_trades_from(&w.truth, &w.production, from, to, t.exchange_ts);
    assert_eq!(report.trades.missing.count, 1);
}

#[test]
fn a_duplicated_delta_fails_and_is_named() {
    let mut w = world(4, 20, 3_000);
    let dup = w.production.deltas[100].clone();
    w.production.deltas.push(dup.clone());
    let (from, to) = window(&w);
    let report = compare(&w.truth, &w.production, from, to);
    let text = render(&report);
    assert!(!report.passed());
    assert_eq!(report.deltas.duplicated.count, 1);
    assert!(
        text.contains(&format!(
            "deltas duplicated: delta {} {}",
            dup.ticker, dup.exchange_ts
        )),
        "{text}"
    );
    assert!(text.contains(" ×2"), "{text}");
}

#[test]
fn an_altered_trade_and_an_extra_trade_fail() {
    let mut w = world(5, 10, 1_000);
    w.production.trades[3].count = Count::new(1);
    let mut extra = w.production.trades[4].clone();
    extra.trade_id = "not-published".into();
    w.production.trades.push(extra);
    let (from, to) = window(&w);
    let report = compare(&w.truth, &w.production, from, to);
    assert_eq!(report.trades.altered.count, 1);
    assert_eq!(report.trades.extra.count, 1);
    assert!(render(&report).contains("trades extra: trade not-published"));
}

fn gap(gatherer: &str, ticker: &str, start: i64, end: i64) -> Gap {
    Gap {
        gatherer: gatherer.into(),
        gap_id: format!("{gatherer}-{start}"),
        ticker: Some(ticker.into()),
        tickers: Vec::new(),
        channel: "orderbook_delta".into(),
        start: TimestampUs::from_micros(start),
        end: TimestampUs::from_micros(end),
        reason: "seq_gap".into(),
        repair: "snapshot".into(),
    }
}

#[test]
fn a_delta_missing_inside_every_gatherers_gap_is_excused_not_hidden() {
    let mut w = world(6, 10, 1_000);
    let missing = w.production.deltas.remove(500);
    let ts = missing.exchange_ts.micros();
    // One gatherer's gap is not enough: another gatherer could have had it.
    w.production
        .gaps
        .push(gap("gatherer-a", &missing.ticker, ts - 10, ts + 10));
    let (from, to) = window(&w);
    let report = compare(&w.truth, &w.production, from, to);
    assert_eq!(report.deltas.missing.count, 1);
    assert!(!report.passed());
    // Every gatherer recorded it: excused, counted and shown.
    w.production
        .gaps
        .push(gap("gatherer-b", &missing.ticker, ts - 20, ts + 5));
    let report = compare(&w.truth, &w.production, from, to);
    assert_eq!(report.deltas.missing.count, 0);
    assert_eq!(report.deltas.excused.count, 1);
    assert!(render(&report).contains("deltas excused: delta"));
}

/// A production delta followed by a check point of its market before any newer snapshot.
fn delta_before_a_check_point(w: &World) -> Option<usize> {
    w.production
        .deltas
        .iter()
        .position(|d| followed_by_a_check_point(w, d))
}

fn last_delta_before_a_check_point(w: &World) -> Option<usize> {
    w.production
        .deltas
        .iter()
        .rposition(|d| followed_by_a_check_point(w, d))
}

fn followed_by_a_check_point(w: &World, d: &OrderbookDelta) -> bool {
    let next_snap = w
        .production
        .snapshots
        .iter()
        .filter(|s| s.ticker == d.ticker && s.exchange_ts >= d.exchange_ts)
        .map(|s| s.exchange_ts)
        .min();
    w.truth
        .books
        .iter()
        .any(|b| b.ticker == d.ticker && b.ts > d.exchange_ts && next_snap.is_none_or(|s| b.ts < s))
}

#[test]
fn a_book_after_a_lost_delta_mismatches() {
    let mut w = world(7, 3, 600);
    // Remove a delta followed by a check point of its market before any newer snapshot.
    let idx = delta_before_a_check_point(&w);
    let Some(idx) = idx else {
        panic!("no delta followed by a check point")
    };
    w.production.deltas.remove(idx);
    let (from, to) = window(&w);
    let report = compare(&w.truth, &w.production, from, to);
    assert!(report.books.mismatched.count > 0, "{}", render(&report));
    assert!(render(&report).contains("books mismatched: "));
}

/// A world whose production lacks one delta followed by a check point of its market, the
/// truth saying the exchange sent that delta to no subscriber; and the delta's send time.
fn world_with_a_delta_sent_to_nobody() -> (World, Record) {
    let mut w = world(7, 3, 600);
    // The last one: far from the first delivery, so a run's warm-up of a few ms never reaches it.
    let idx = last_delta_before_a_check_point(&w);
    let Some(idx) = idx else {
        panic!("no delta followed by a check point")
    };
    let lost = Record::Delta(w.production.deltas.remove(idx));
    let lost_id = lost.identity();
    for p in &mut w.truth.published {
        if p.record.identity() == lost_id {
            p.fate = Fate::Unsubscribed;
        }
    }
    (w, lost)
}

#[test]
fn a_delta_sent_to_nobody_is_missing_and_its_book_set_apart_not_mismatched() {
    // Nobody was subscribed to the market when the delta was sent, long after the platform
    // could have been: a loss (issue 16), named; the book after it cannot match and says why.
    let (w, lost) = world_with_a_delta_sent_to_nobody();
    let (from, to) = window(&w);
    let report = compare(&w.truth, &w.production, from, to);
    let text = render(&report);
    assert_eq!(report.books.mismatched.count, 0, "{text}");
    assert!(report.books.in_gap.count > 0, "{text}");
    assert_eq!(report.deltas.missing.count, 1, "{text}");
    assert!(
        text.contains(&format!("deltas missing: {}", describe(&lost))),
        "{text}"
    );
    assert!(!report.passed(), "{text}");
}

fn expect(w: &World, allowance_us: i64) -> Expect {
    let (from, to) = window(w);
    Expect {
        from,
        to,
        trades_from: from,
        allowance_us,
    }
}

#[test]
fn a_delta_sent_to_nobody_within_the_allowance_of_its_listing_is_not_expected() {
    let (mut w, lost) = world_with_a_delta_sent_to_nobody();
    let Record::Delta(d) = &lost else { panic!() };
    let at = d.exchange_ts.micros();
    // Listed 1.5 ms before the delta: within a 2 ms allowance, not within 1 ms (the world
    // lasts 0.6 s, the first delivery is at its start).
    w.truth
        .markets
        .insert(d.ticker.clone(), TimestampUs::from_micros(at - 1_500));
    let report = compare_with(&w.truth, &w.production, &expect(&w, 2_000));
    assert!(report.passed(), "{}", render(&report));
    assert_eq!(report.deltas.unreachable, 1);
    assert!(render(&report).contains("deltas not expected (sent while nobody was subscribed"));
    let report = compare_with(&w.truth, &w.production, &expect(&w, 1_000));
    assert_eq!(report.deltas.missing.count, 1, "{}", render(&report));
}

#[test]
fn nothing_sent_to_nobody_is_excused_after_the_runs_first_subscription_plus_allowance() {
    let (mut w, lost) = world_with_a_delta_sent_to_nobody();
    let at = match &lost {
        Record::Delta(d) => d.exchange_ts.micros(),
        _ => panic!(),
    };
    // The simulator (re)started just before the delta; the first delivery after that start
    // is the next message: the delta lies in that run's warm-up.
    w.truth.starts = vec![
        TimestampUs::from_micros(T0 - 1),
        TimestampUs::from_micros(at - 1),
    ];
    let report = compare_with(&w.truth, &w.production, &expect(&w, 5_000));
    assert!(report.passed(), "{}", render(&report));
    assert_eq!(report.deltas.unreachable, 1);
    // Dropped on the wire instead (a subscription existed): expected whatever the warm-up.
    for p in &mut w.truth.published {
        if p.record.identity() == lost.identity() {
            p.fate = Fate::Dropped;
        }
    }
    let report = compare_with(&w.truth, &w.production, &expect(&w, 5_000));
    assert_eq!(report.deltas.missing.count, 1, "{}", render(&report));
}

#[test]
fn a_market_nobody_subscribed_to_is_named_with_its_counts() {
    let mut w = world(10, 4, 800);
    let gone = "KX-M002";
    w.production.deltas.retain(|d| d.ticker != gone);
    for p in &mut w.truth.published {
        if matches!(&p.record, Record::Delta(d) if d.ticker == gone) {
            p.fate = Fate::Unsubscribed;
        }
    }
    let n = w
        .truth
        .published
        .iter()
        .filter(|p| matches!(&p.record, Record::Delta(d) if d.ticker == gone))
        .count();
    for t in ["KX-M000", "KX-M001", gone, "KX-M003"] {
        w.truth
            .markets
            .insert(t.into(), TimestampUs::from_micros(T0));
    }
    let report = compare_with(&w.truth, &w.production, &expect(&w, 0));
    let text = render(&report);
    assert!(!report.passed());
    assert_eq!(report.markets.not_captured.count, 1, "{text}");
    assert!(
        text.contains(&format!(
            "markets not captured: {gone} (stored/expected: deltas 0/{n}, trades "
        )),
        "{text}"
    );
    assert!(
        text.contains("markets: 4 known, 4 with expected records, 3 captured, not captured 1"),
        "{text}"
    );
    assert_eq!(report.deltas.missing.count, n);
}

#[test]
fn book_equals_truth_for_100_random_market_time_pairs() {
    let w = world(8, 30, 5_000);
    let hist = histories(w.production.snapshots.clone(), w.production.deltas.clone());
    let mut rng = StdRng::seed_from_u64(99);
    let by_point: BTreeMap<(String, TimestampUs), Book> = w
        .truth
        .books
        .iter()
        .map(|b| ((b.ticker.clone(), b.ts), b.book.clone()))
        .collect();
    for _ in 0..100 {
        let (ticker, ts) = &w.points[rng.random_range(0..w.points.len())];
        let rebuilt = hist
            .get(ticker)
            .and_then(|h: &MarketHistory| h.at(*ts))
            .map(|r| r.book);
        assert_eq!(
            rebuilt.as_ref(),
            by_point.get(&(ticker.clone(), *ts)),
            "{ticker} at {ts}"
        );
    }
}

#[test]
fn truth_file_lines_are_read() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("truth.jsonl");
    let w = world(9, 2, 20);
    let mut text = String::from("{\"kind\":\"start\",\"ts\":1,\"seed\":1}\n");
    for p in &w.truth.published {
        text.push_str(
            &serde_json::json!({"kind": "published", "record": p.record, "delivered": p.delivered()})
                .to_string(),
        );
        text.push('\n');
    }
    for b in &w.truth.books {
        text.push_str(&serde_json::json!({"kind": "book", "ticker": b.ticker, "ts": b.ts, "yes": levels(&b.book.yes), "no": levels(&b.book.no)}).to_string());
        text.push('\n');
    }
    // What the simulator writes since issue 16: each message's fate and send time, the
    // markets it listed (a restart lists them again: the first listing counts).
    let first = &w.truth.published[0];
    text.push_str(
        &serde_json::json!({"kind": "published", "record": first.record, "delivered": false,
            "fate": "dropped", "sent_at": 42})
        .to_string(),
    );
    text.push('\n');
    for at in [7, 5, 9] {
        text.push_str(&format!(
            "{{\"kind\":\"market\",\"ticker\":\"KX-M000\",\"event_ticker\":\"KX\",\"listed_at\":{at}}}\n"
        ));
    }
    std::fs::write(&path, text)?;
    let read = kd_ops::verify::truth::load(&path)?;
    let (last, published) = read.published.split_last().ok_or("empty truth")?;
    assert_eq!(published, w.truth.published.as_slice());
    assert_eq!(read.books, w.truth.books);
    assert_eq!(last.fate, Fate::Dropped);
    assert_eq!(last.sent_at, TimestampUs::from_micros(42));
    assert_eq!(
        read.markets.get("KX-M000"),
        Some(&TimestampUs::from_micros(5))
    );
    assert_eq!(read.starts, vec![TimestampUs::from_micros(1)]);
    Ok(())
}
