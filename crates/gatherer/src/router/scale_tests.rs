use super::*;
use kd_core::records::WirePos;
use kd_core::{Count, OrderbookDelta, OrderbookSnapshot, Price, Side, SnapshotSource};

fn lv(p: i64, s: i64) -> Level {
    Level {
        price: Price::new(p).unwrap_or(Price::ZERO),
        size: Count::new(s),
    }
}

fn t(us: i64) -> TimestampUs {
    TimestampUs::from_micros(us)
}

fn snap(sid: u64, ticker: &str, yes: &[(i64, i64)], no: &[(i64, i64)]) -> WsEvent {
    WsEvent::Snapshot {
        sid,
        seq: Some(1),
        id: None,
        snapshot: OrderbookSnapshot {
            ticker: ticker.into(),
            source: SnapshotSource::Ws,
            exchange_ts: t(1),
            yes: yes.iter().map(|&(p, s)| lv(p, s)).collect(),
            no: no.iter().map(|&(p, s)| lv(p, s)).collect(),
            received_at: t(1),
            pos: WirePos::default(),
        },
    }
}

fn delta(sid: u64, ticker: &str, side: Side, p: i64) -> WsEvent {
    WsEvent::Delta {
        sid,
        seq: Some(2),
        delta: OrderbookDelta {
            ticker: ticker.into(),
            exchange_ts: t(2),
            side,
            price: Price::new(p).unwrap_or(Price::ZERO),
            delta: Count::new(100),
            occurrence: 0,
            received_at: t(2),
            pos: WirePos::default(),
        },
    }
}

/// The NO prices (snapshot levels, or a NO delta's price) of released events.
fn no_prices(held: &[Held]) -> Vec<Vec<i64>> {
    held.iter()
        .map(|h| match &h.event {
            WsEvent::Snapshot { snapshot, .. } => {
                snapshot.no.iter().map(|l| l.price.units()).collect()
            }
            WsEvent::Delta { delta, .. } => vec![delta.price.units()],
            _ => Vec::new(),
        })
        .collect()
}

fn released(a: Admit) -> Vec<Held> {
    match a {
        Admit::Release(h) => h,
        other => panic!("expected a release, got {other:?}"),
    }
}

// A book with YES best 0.60 and NO bids 0.30 and 0.35: valid as NO bids (0.60 + 0.35 < 1),
// crossed read as YES-leg (1 − 0.30 = 0.70 as NO bid: 0.60 + 0.70 > 1).
const YES: &[(i64, i64)] = &[(55_000, 100), (60_000, 200)];
const NO_BID: &[(i64, i64)] = &[(30_000, 300), (35_000, 400)];

#[test]
fn evidence_decides_only_when_one_reading_crosses() {
    let l = |v: &[(i64, i64)]| v.iter().map(|&(p, s)| lv(p, s)).collect::<Vec<_>>();
    assert_eq!(evidence(&l(YES), &l(NO_BID)), Evidence::Confirms);
    // The same book read on the other scale (NO bids at 1 − p).
    let flipped = l(&[(65_000, 400), (70_000, 300)]);
    assert_eq!(evidence(&l(YES), &flipped), Evidence::Contradicts);
    // One-sided books prove nothing.
    assert_eq!(evidence(&[], &l(NO_BID)), Evidence::Undecided);
    assert_eq!(evidence(&l(YES), &[]), Evidence::Undecided);
    // Every NO bid above the best YES bid: valid both ways.
    let low_yes = l(&[(20_000, 1)]);
    assert_eq!(
        evidence(&low_yes, &l(&[(40_000, 1), (60_000, 1)])),
        Evidence::Undecided
    );
    // Best NO at exactly 0.50 with YES at 0.49: valid both ways, and the tie itself.
    assert_eq!(
        evidence(&l(&[(49_000, 1)]), &l(&[(50_000, 1)])),
        Evidence::Undecided
    );
    // Touching (sum exactly $1) would have traded: crossed.
    assert_eq!(
        evidence(&l(&[(30_000, 1)]), &l(&[(40_000, 1), (70_000, 1)])),
        Evidence::Contradicts
    );
    // Crossed both ways (a corrupt book): no verdict.
    assert_eq!(
        evidence(&l(&[(90_000, 1)]), &l(&[(50_000, 1)])),
        Evidence::Undecided
    );
}

#[test]
fn data_is_held_until_a_snapshot_proves_the_scale_asked_for() {
    let mut s = ScaleCheck::new(NoPriceScale::Checked, 0);
    assert_eq!(use_yes_price(NoPriceScale::Checked), Some(true));
    s.subscribed(5, "orderbook_delta");
    s.subscribed(6, "trade");
    assert_eq!(s.of(5), NoScale::YesLeg);
    assert!(matches!(
        s.admit(delta(5, "A", Side::No, 40_000), t(1), t(1)),
        Admit::Held
    ));
    // Trades and other sids are never held.
    assert!(matches!(
        s.admit(delta(9, "B", Side::No, 1_000), t(1), t(1)),
        Admit::Pass(_)
    ));
    // Ambiguous: still held.
    let amb = snap(5, "C", &[(20_000, 1)], &[(40_000, 1), (60_000, 1)]);
    assert!(matches!(s.admit(amb, t(2), t(2)), Admit::Held));
    let out = released(s.admit(snap(5, "D", YES, NO_BID), t(3), t(3)));
    // Released in order, unchanged (the parser's reading was right).
    assert_eq!(
        no_prices(&out),
        vec![vec![40_000], vec![40_000, 60_000], vec![30_000, 35_000]]
    );
    assert_eq!(s.of(5), NoScale::YesLeg);
    // Proven: later data passes at once.
    assert!(matches!(
        s.admit(delta(5, "A", Side::No, 1_000), t(4), t(4)),
        Admit::Pass(_)
    ));
    assert!(s.take_gaps().is_empty());
}

#[test]
fn an_answer_on_the_other_scale_is_reread_not_stored_as_read() {
    let mut s = ScaleCheck::new(NoPriceScale::Checked, 0);
    s.subscribed(5, "orderbook_delta");
    // A legacy exchange sends NO bids; the parser read them as YES-leg (stored 1 − wire).
    let read_as_yes_leg = |p: i64| 100_000 - p;
    s.admit(delta(5, "A", Side::No, read_as_yes_leg(35_000)), t(1), t(1));
    s.admit(delta(5, "A", Side::Yes, 55_000), t(1), t(1));
    let no_read: Vec<(i64, i64)> = NO_BID
        .iter()
        .map(|&(p, q)| (read_as_yes_leg(p), q))
        .collect();
    let mut parsed = snap(5, "A", YES, &no_read);
    if let WsEvent::Snapshot { snapshot, .. } = &mut parsed {
        snapshot.no.sort_by_key(|l| l.price);
    }
    let out = released(s.admit(parsed, t(2), t(2)));
    // The NO delta and the snapshot are back on the NO-bid scale; the YES delta is untouched.
    assert_eq!(
        no_prices(&out),
        vec![vec![35_000], vec![55_000], vec![30_000, 35_000]]
    );
    if let WsEvent::Snapshot { snapshot, .. } = &out[2].event {
        let sizes: Vec<i64> = snapshot.no.iter().map(|l| l.size.hundredths()).collect();
        assert_eq!(sizes, vec![300, 400]);
    }
    assert_eq!(s.of(5), NoScale::NoBid);
    // New subscriptions of the connection start on the scale seen, and are still checked.
    s.subscribed(7, "orderbook_delta");
    assert_eq!(s.of(7), NoScale::NoBid);
    let out = released(s.admit(snap(7, "B", YES, NO_BID), t(3), t(3)));
    assert_eq!(no_prices(&out), vec![vec![30_000, 35_000]]);
    assert!(s.take_gaps().is_empty());
}

#[test]
fn a_late_contradiction_flips_and_records_gaps() {
    let mut s = ScaleCheck::new(NoPriceScale::Checked, 3);
    s.subscribed(5, "orderbook_delta");
    released(s.admit(snap(5, "A", YES, NO_BID), t(1), t(10)));
    // The exchange changes behaviour under the live subscription.
    let wrong = snap(5, "B", YES, &[(65_000, 400), (70_000, 300)]);
    match s.admit(wrong, t(2), t(20)) {
        Admit::Pass(WsEvent::Snapshot { snapshot, .. }) => {
            let no: Vec<i64> = snapshot.no.iter().map(|l| l.price.units()).collect();
            assert_eq!(no, vec![30_000, 35_000]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.of(5), NoScale::NoBid);
    let gaps = s.take_gaps();
    let tickers: Vec<_> = gaps.iter().filter_map(|g| g.ticker.clone()).collect();
    assert_eq!(tickers, vec!["A".to_string(), "B".to_string()]);
    assert!(gaps.iter().all(|g| g.reason == GapReason::PriceScale
        && g.start == t(10)
        && g.end == t(20)
        && g.channel == "orderbook_delta"));
}

#[test]
fn unproven_data_is_released_after_the_bound_or_gapped_when_the_sub_ends() {
    let mut s = ScaleCheck::new(NoPriceScale::Checked, 0);
    s.subscribed(5, "orderbook_delta");
    s.subscribed(6, "orderbook_delta");
    s.admit(snap(5, "A", &[], NO_BID), t(1_000), t(1_000));
    s.admit(delta(6, "B", Side::No, 1_000), t(1_000), t(5_000));
    assert!(s.expired(t(1_000 + HOLD_US - 1)).is_empty());
    let out = s.expired(t(1_000 + HOLD_US));
    // Both held sids: on the scale asked for, unchanged.
    assert_eq!(out.len(), 2);
    s.subscribed(8, "orderbook_delta");
    s.admit(delta(8, "C", Side::No, 1_000), t(1), t(7));
    s.admit(delta(8, "C", Side::No, 2_000), t(2), t(8));
    s.ended(8, t(9));
    let gaps = s.take_gaps();
    assert_eq!(gaps.len(), 1);
    assert_eq!((gaps[0].start, gaps[0].end), (t(7), t(9)));
    s.subscribed(9, "orderbook_delta");
    s.admit(delta(9, "D", Side::No, 1_000), t(1), t(3));
    s.reset(t(4));
    assert_eq!(s.take_gaps().len(), 1);
    assert_eq!(s.of(9), NoScale::YesLeg);
}

#[test]
fn as_received_checks_nothing_and_reads_as_received() {
    let mut s = ScaleCheck::new(NoPriceScale::AsReceived, 0);
    assert_eq!(use_yes_price(NoPriceScale::AsReceived), None);
    s.subscribed(5, "orderbook_delta");
    assert_eq!(s.of(5), NoScale::NoBid);
    let wrong = snap(5, "B", YES, &[(65_000, 400), (70_000, 300)]);
    assert!(matches!(s.admit(wrong, t(1), t(1)), Admit::Pass(_)));
    assert!(s.take_gaps().is_empty());
}
