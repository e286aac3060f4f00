//! Unit tests without sockets, and a property test against a model of the exchange.

use super::*;
use kd_kalshi::parse::WsEvent;
use kd_kalshi::ws::CommandBody;
use proptest::prelude::*;
use std::sync::Arc;

fn t(name: &str) -> Ticker {
    Arc::from(name)
}

fn add(s: &mut Subscriptions, names: &[&str]) {
    s.add(names.iter().map(|n| (t(n), None)).collect());
}

fn subscribed(id: u64, sid: u64) -> WsEvent {
    WsEvent::Subscribed {
        id: Some(id),
        channel: "orderbook_delta".into(),
        sid,
    }
}

fn ok(id: u64) -> WsEvent {
    WsEvent::Ok {
        id: Some(id),
        sid: None,
        seq: None,
        market_tickers: Vec::new(),
    }
}

fn error(id: Option<u64>, sid: Option<u64>, code: u32, named: &[&str]) -> WsEvent {
    WsEvent::Error {
        id,
        sid,
        seq: None,
        code,
        msg: String::new(),
        market_tickers: named.iter().map(|s| s.to_string()).collect(),
    }
}

fn markets_of(c: &Command) -> Vec<String> {
    match &c.body {
        CommandBody::Subscribe(p) => p.market_tickers.clone(),
        CommandBody::UpdateSubscription(p) => p.market_tickers.clone(),
        _ => Vec::new(),
    }
}

#[test]
fn batches_markets_into_subscriptions_of_the_limit() {
    let now = Instant::now();
    let mut s = Subscriptions::new(vec![Channel::Trade], 2);
    add(&mut s, &["A", "B", "C"]);
    assert!(s.poll(now).is_empty(), "nothing is sent while offline");
    s.connected();
    let cmds = s.poll(now);
    // The global channel, then new subscriptions of at most 2 markets.
    assert_eq!(cmds.len(), 3, "{cmds:?}");
    assert_eq!(cmds[0].name(), "subscribe");
    assert_eq!(markets_of(&cmds[1]), vec!["A", "B"]);
    assert_eq!(markets_of(&cmds[2]), vec!["C"]);
    s.on_reply(subscribed(cmds[1].id, 7), now);
    assert_eq!(s.subscribed_count(), 2);
    // A new market waits while a subscription is being created (its room is used first).
    add(&mut s, &["D"]);
    assert!(s.poll(now).is_empty());
    s.on_reply(subscribed(cmds[2].id, 8), now);
    let more = s.poll(now);
    assert_eq!(more.len(), 1);
    assert_eq!(markets_of(&more[0]), vec!["D"]);
    match &more[0].body {
        CommandBody::UpdateSubscription(p) => assert_eq!(p.sids, [8]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn grows_a_subscription_with_add_markets() {
    let now = Instant::now();
    let mut s = Subscriptions::new(vec![], 10);
    add(&mut s, &["A"]);
    s.connected();
    let c = s.poll(now);
    s.on_reply(subscribed(c[0].id, 3), now);
    add(&mut s, &["B", "C"]);
    let c = s.poll(now);
    assert_eq!(c.len(), 1);
    match &c[0].body {
        CommandBody::UpdateSubscription(p) => {
            assert_eq!(p.action, UpdateAction::AddMarkets);
            assert_eq!(p.sids, [3]);
        }
        other => panic!("{other:?}"),
    }
    s.on_reply(ok(c[0].id), now);
    assert_eq!(s.subscribed_count(), 3);
    assert!(s.is_settled());
}

#[test]
fn a_transient_error_keeps_the_markets_and_backs_off() {
    for code in [1, 18, 27, 999] {
        let now = Instant::now();
        let mut s = Subscriptions::new(vec![], 10);
        add(&mut s, &["A", "B"]);
        s.connected();
        let c = s.poll(now);
        // The exchange names the markets of the refused command (error 27 does).
        s.on_reply(error(Some(c[0].id), None, code, &["A", "B"]), now);
        assert_eq!(s.wanted().len(), 2, "code {code}: no market lost");
        assert!(s.poll(now).is_empty(), "code {code}: not retried at once");
        let later = now + RETRY_POLICY.max * 2;
        let c = s.poll(later);
        assert_eq!(markets_of(&c[0]), vec!["A", "B"], "code {code}");
        assert!(matches!(
            s.take_effects().as_slice(),
            [Effect::RetryLater { .. }]
        ));
    }
}

#[test]
fn error_11_takes_out_only_the_named_markets_and_retries_them_while_wanted() {
    let now = Instant::now();
    let mut s = Subscriptions::new(vec![], 10);
    add(&mut s, &["A", "GONE"]);
    s.connected();
    let c = s.poll(now);
    s.on_reply(error(Some(c[0].id), None, 11, &["GONE"]), now);
    assert!(s.wanted().contains("GONE"), "still listed: still wanted");
    assert_eq!(s.not_found(), BTreeSet::from([t("GONE")]));
    assert!(matches!(
        s.take_effects().as_slice(),
        [Effect::NotFound { markets, .. }] if markets == &["GONE"]
    ));
    // Only GONE was refused: the exchange takes A with the same command.
    assert!(
        s.poll(now).is_empty(),
        "11 naming markets is no reason to wait or resend"
    );
    s.on_reply(subscribed(c[0].id, 1), now);
    assert_eq!(s.live(), BTreeMap::from([(1, BTreeSet::from([t("A")]))]));
    assert!(s.is_settled(), "a market backing off is owed nothing yet");
    assert!(s.poll(now + Duration::from_millis(500)).is_empty());
    // After the backoff (1 s + jitter) it is asked for again, on the live subscription.
    let c = s.poll(now + NOT_FOUND_POLICY.base * 2);
    assert_eq!(markets_of(&c[0]), vec!["GONE"]);
    // Refused again: the next wait is longer.
    s.on_reply(
        error(Some(c[0].id), None, 11, &["GONE"]),
        now + NOT_FOUND_POLICY.base * 2,
    );
    assert!(s.poll(now + NOT_FOUND_POLICY.base * 3).is_empty());
    let c = s.poll(now + NOT_FOUND_POLICY.base * 5);
    assert_eq!(markets_of(&c[0]), vec!["GONE"]);
    s.on_reply(ok(c[0].id), now + NOT_FOUND_POLICY.base * 5);
    assert_eq!(s.subscribed_count(), 2, "found at last");
    assert!(s.not_found().is_empty());
}

#[test]
fn a_not_found_market_the_registry_removes_is_never_asked_for_again() {
    let now = Instant::now();
    let mut s = Subscriptions::new(vec![], 10);
    add(&mut s, &["GONE"]);
    s.connected();
    let c = s.poll(now);
    s.on_reply(error(Some(c[0].id), None, 11, &["GONE"]), now);
    s.remove(vec![t("GONE")]);
    assert!(s.wanted().is_empty() && s.not_found().is_empty());
    assert!(s.poll(now + NOT_FOUND_POLICY.max * 2).is_empty());
}

#[test]
fn a_not_found_market_waits_out_its_backoff_on_a_new_socket_too() {
    let now = Instant::now();
    let mut s = Subscriptions::new(vec![], 10);
    add(&mut s, &["A", "GONE"]);
    s.connected();
    let c = s.poll(now);
    s.on_reply(error(Some(c[0].id), None, 11, &["GONE"]), now);
    s.disconnected();
    s.connected();
    let c = s.poll(now);
    assert_eq!(markets_of(&c[0]), vec!["A"]);
    s.on_reply(subscribed(c[0].id, 1), now);
    let c = s.poll(now + NOT_FOUND_POLICY.base * 2);
    assert_eq!(markets_of(&c[0]), vec!["GONE"]);
}

/// The simulator (like Kalshi) subscribes the markets it accepts and names the refused ones in
/// an `error` with the same id, after the `subscribed`/`ok`: before issue 16 that error was
/// ignored and the refused markets were believed subscribed for good.
#[test]
fn markets_refused_after_the_success_are_retried() {
    for code in [1, 18, 27] {
        let now = Instant::now();
        let mut s = Subscriptions::new(vec![], 2);
        add(&mut s, &["A", "B", "C"]);
        s.connected();
        let first = s.poll(now);
        assert_eq!(markets_of(&first[0]), vec!["A", "B"]);
        assert_eq!(markets_of(&first[1]), vec!["C"]);
        s.on_reply(subscribed(first[0].id, 1), now);
        s.on_reply(error(Some(first[0].id), None, code, &["B"]), now);
        assert_eq!(s.subscribed_count(), 1, "code {code}: B is not in sid 1");
        assert!(s.poll(now).is_empty(), "code {code}: backing off");
        let later = now + RETRY_POLICY.max * 2;
        let c = s.poll(later);
        assert_eq!(c.len(), 1, "code {code}: {c:?}");
        assert_eq!(
            markets_of(&c[0]),
            vec!["B"],
            "code {code}: B again, on sid 1"
        );
        s.on_reply(ok(c[0].id), later);
        s.on_reply(subscribed(first[1].id, 2), later);
        assert_eq!(s.subscribed_count(), 3, "code {code}");
        assert!(s.is_settled());
        assert_eq!(s.wanted().len(), 3);
    }
}

#[test]
fn markets_refused_before_the_success_are_retried() {
    let now = Instant::now();
    let mut s = Subscriptions::new(vec![], 10);
    add(&mut s, &["A", "B"]);
    s.connected();
    let c = s.poll(now);
    s.on_reply(error(Some(c[0].id), None, 27, &["A"]), now);
    s.on_reply(subscribed(c[0].id, 1), now);
    assert_eq!(s.live(), BTreeMap::from([(1, BTreeSet::from([t("B")]))]));
    let c = s.poll(now + RETRY_POLICY.max * 2);
    assert_eq!(markets_of(&c[0]), vec!["A"]);
    s.on_reply(ok(c[0].id), now);
    assert_eq!(s.subscribed_count(), 2);
}

#[test]
fn error_11_after_the_success_takes_out_only_the_named_market() {
    let now = Instant::now();
    let mut s = Subscriptions::new(vec![], 10);
    add(&mut s, &["A", "GONE"]);
    s.connected();
    let c = s.poll(now);
    s.on_reply(subscribed(c[0].id, 1), now);
    s.on_reply(error(Some(c[0].id), None, 11, &["GONE"]), now);
    assert_eq!(s.live(), BTreeMap::from([(1, BTreeSet::from([t("A")]))]));
    assert_eq!(s.not_found(), BTreeSet::from([t("GONE")]));
    assert!(
        s.poll(now).is_empty(),
        "11 naming markets is no reason to wait"
    );
}

#[test]
fn error_8_on_a_market_subscription_is_not_retried_on_this_socket() {
    let now = Instant::now();
    let mut s = Subscriptions::new(vec![], 10);
    add(&mut s, &["A"]);
    s.connected();
    let c = s.poll(now);
    s.on_reply(error(Some(c[0].id), None, 8, &[]), now);
    assert!(s.take_effects().iter().any(|e| matches!(
        e,
        Effect::Refused {
            code: ErrorCode::UnknownChannel,
            ..
        }
    )));
    assert!(s.poll(now + Duration::from_secs(600)).is_empty());
    assert!(s.wanted().contains("A"), "kept for the next socket");
}

#[test]
fn error_26_shrinks_the_batch() {
    let now = Instant::now();
    let mut s = Subscriptions::new(vec![], 4);
    add(&mut s, &["A", "B", "C", "D"]);
    s.connected();
    let c = s.poll(now);
    s.on_reply(error(Some(c[0].id), None, 26, &["A", "B", "C", "D"]), now);
    assert_eq!(s.per_sub_limit(), 2);
    assert_eq!(s.wanted().len(), 4, "26 drops nothing");
    let c = s.poll(now);
    assert_eq!(markets_of(&c[0]), vec!["A", "B"]);
}

#[test]
fn a_terminal_channel_error_resubscribes() {
    let now = Instant::now();
    let mut s = Subscriptions::new(vec![Channel::Ticker], 10);
    add(&mut s, &["A"]);
    s.connected();
    let c = s.poll(now);
    s.on_reply(
        WsEvent::Subscribed {
            id: Some(c[0].id),
            channel: "ticker".into(),
            sid: 1,
        },
        now,
    );
    s.on_reply(subscribed(c[1].id, 2), now);
    assert!(s.is_settled());
    for (sid, code) in [(2, 10), (1, 25)] {
        s.on_reply(error(None, Some(sid), code, &[]), now);
    }
    assert_eq!(s.subscribed_count(), 0);
    let c = s.poll(now);
    assert_eq!(c.len(), 2, "{c:?}");
    assert_eq!(s.wanted().len(), 1);
}

#[test]
fn unknown_channel_is_not_retried_on_this_socket() {
    let now = Instant::now();
    let mut s = Subscriptions::new(vec![Channel::Other("nope".into())], 10);
    s.connected();
    let c = s.poll(now);
    s.on_reply(error(Some(c[0].id), None, 8, &[]), now);
    assert!(s.poll(now + Duration::from_secs(600)).is_empty());
    s.connected();
    assert_eq!(s.poll(now).len(), 1, "a new socket tries again");
}

#[test]
fn removing_a_market_deletes_it_and_tells_the_router() {
    let now = Instant::now();
    let mut s = Subscriptions::new(vec![], 10);
    add(&mut s, &["A", "B"]);
    s.connected();
    let c = s.poll(now);
    s.on_reply(subscribed(c[0].id, 9), now);
    s.take_effects();
    s.remove(vec![t("A")]);
    let c = s.poll(now);
    match &c[0].body {
        CommandBody::UpdateSubscription(p) => {
            assert_eq!(p.action, UpdateAction::DeleteMarkets);
            assert_eq!(p.market_tickers, vec!["A"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(s.take_effects().contains(&Effect::Unsubscribed {
        sid: 9,
        markets: vec![t("A")]
    }));
    assert_eq!(s.subscribed_count(), 1);
}

#[test]
fn snapshot_requests_respect_the_cooldown() {
    let now = Instant::now();
    let mut s = Subscriptions::new(vec![], 10);
    add(&mut s, &["A", "B"]);
    s.connected();
    let c = s.poll(now);
    s.on_reply(subscribed(c[0].id, 4), now);
    s.request_snapshots(vec![(4, Some("A".into()))]);
    let c = s.poll(now);
    assert_eq!(markets_of(&c[0]), vec!["A"]);
    s.request_snapshots(vec![(4, None)]);
    assert!(s.poll(now).is_empty(), "cooling down");
    let c = s.poll(now + SNAPSHOT_COOLDOWN);
    assert_eq!(markets_of(&c[0]), vec!["A", "B"]);
    // A get_snapshot refused with 27 is asked again.
    s.on_reply(error(Some(c[0].id), Some(4), 27, &["A", "B"]), now);
    assert_eq!(s.wanted().len(), 2);
    let c = s.poll(now + Duration::from_secs(120));
    assert_eq!(markets_of(&c[0]), vec!["A", "B"]);
}

/// A model of the exchange for the property test: it applies each command when it receives
/// it (or refuses it with an error), and answers in order.
#[derive(Default)]
struct Exchange {
    next_sid: u64,
    subs: BTreeMap<u64, (Channel, BTreeSet<String>)>,
    /// Its real per-subscription limit (may be below ours: error 26).
    limit: usize,
    /// Markets it does not know (error 11).
    unknown: BTreeSet<String>,
    replies: VecDeque<WsEvent>,
}

impl Exchange {
    fn receive(&mut self, cmd: &Command, refuse: Option<Refusal>) {
        let id = Some(cmd.id);
        let partial: Option<(u32, u8)> = match refuse {
            Some(Refusal::Whole(code)) => {
                self.replies.push_back(error(id, None, code, &[]));
                return;
            }
            Some(Refusal::Some(code, mask)) => Some((code, mask)),
            None => None,
        };
        // Like the simulator: unknown markets (11) and those a fault picks are named in an
        // error with the command's id, sent after the `subscribed`/`ok` for the others
        // (only the error when none is left).
        let split = |markets: &[String]| {
            let mut refused: Vec<(u32, Vec<String>)> = Vec::new();
            let mut accepted = Vec::new();
            for (i, m) in markets.iter().enumerate() {
                let code = if self.unknown.contains(m) {
                    Some(11)
                } else {
                    partial.and_then(|(c, mask)| ((mask >> (i % 8)) & 1 == 1).then_some(c))
                };
                match code {
                    Some(c) => match refused.iter_mut().find(|r| r.0 == c) {
                        Some(r) => r.1.push(m.clone()),
                        None => refused.push((c, vec![m.clone()])),
                    },
                    None => accepted.push(m.clone()),
                }
            }
            (accepted, refused)
        };
        let errors = |refused: &[(u32, Vec<String>)], replies: &mut VecDeque<WsEvent>| {
            for (c, named) in refused {
                let named: Vec<&str> = named.iter().map(String::as_str).collect();
                replies.push_back(error(id, None, *c, &named));
            }
        };
        match &cmd.body {
            CommandBody::Subscribe(p) if p.market_tickers.is_empty() => {
                self.next_sid += 1;
                let channel = p.channels[0].clone();
                self.subs
                    .insert(self.next_sid, (channel.clone(), BTreeSet::new()));
                self.replies.push_back(WsEvent::Subscribed {
                    id,
                    channel: channel.as_str().to_string(),
                    sid: self.next_sid,
                });
            }
            CommandBody::Subscribe(p) => {
                if p.market_tickers.len() > self.limit {
                    return self.replies.push_back(error(id, None, 26, &[]));
                }
                let (accepted, refused) = split(&p.market_tickers);
                if accepted.is_empty() {
                    return errors(&refused, &mut self.replies);
                }
                self.next_sid += 1;
                let channel = p.channels[0].clone();
                self.subs.insert(
                    self.next_sid,
                    (channel.clone(), accepted.into_iter().collect()),
                );
                self.replies.push_back(WsEvent::Subscribed {
                    id,
                    channel: channel.as_str().to_string(),
                    sid: self.next_sid,
                });
                errors(&refused, &mut self.replies);
            }
            CommandBody::UpdateSubscription(p) => {
                let sid = p.sids[0];
                if !self.subs.contains_key(&sid) {
                    return self.replies.push_back(error(id, Some(sid), 7, &[]));
                }
                let Some((_, markets)) = self.subs.get_mut(&sid) else {
                    return;
                };
                match p.action {
                    UpdateAction::AddMarkets => {
                        let (accepted, refused) = split(&p.market_tickers);
                        let Some((_, markets)) = self.subs.get_mut(&sid) else {
                            return;
                        };
                        if markets.len() + p.market_tickers.len() > self.limit {
                            return self.replies.push_back(error(id, None, 26, &[]));
                        }
                        if accepted.is_empty() {
                            return errors(&refused, &mut self.replies);
                        }
                        markets.extend(accepted);
                        self.replies.push_back(ok(cmd.id));
                        return errors(&refused, &mut self.replies);
                    }
                    UpdateAction::DeleteMarkets => {
                        for m in &p.market_tickers {
                            markets.remove(m);
                        }
                    }
                    UpdateAction::GetSnapshot => return,
                }
                self.replies.push_back(ok(cmd.id));
            }
            _ => {}
        }
    }

    /// The exchange ends a subscription on its own (10 or 25).
    fn kill(&mut self, pick: usize, code: u32) {
        let sids: Vec<u64> = self.subs.keys().copied().collect();
        if sids.is_empty() {
            return;
        }
        let sid = sids[pick % sids.len()];
        self.subs.remove(&sid);
        self.replies.push_back(error(None, Some(sid), code, &[]));
    }
}

/// How the exchange refuses the next command.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// The whole command, naming no market.
    Whole(u32),
    /// The markets at the set bits of the mask (position mod 8), named; the rest accepted.
    Some(u32, u8),
}

#[derive(Debug, Clone)]
enum Step {
    Add(u8),
    Remove(u8),
    /// Deliver this many replies.
    Deliver(u8),
    /// The next command is refused (wholly or in part) with this transient (or other) code.
    Refuse(Refusal),
    Kill(u8, bool),
    Tick(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..40).prop_map(Step::Add),
        1 => (0u8..40).prop_map(Step::Remove),
        4 => (0u8..6).prop_map(Step::Deliver),
        2 => prop_oneof![Just(1u32), Just(18), Just(27), Just(9), Just(4000)]
            .prop_map(|c| Step::Refuse(Refusal::Whole(c))),
        2 => (prop_oneof![Just(1u32), Just(18), Just(27), Just(11)], any::<u8>())
            .prop_map(|(c, m)| Step::Refuse(Refusal::Some(c, m))),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(p, b)| Step::Kill(p, b)),
        2 => (0u16..2000).prop_map(Step::Tick),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Under any interleaving of market changes, replies and errors, every wanted market ends
    /// up subscribed exactly once (and nothing unwanted stays subscribed), and a transient
    /// error never loses a market: only the markets the exchange does not know stay out (and
    /// stay wanted, tried again after their backoff). Refusals come whole or in part, the
    /// partial ones named in an error after the success, as the simulator sends them.
    #[test]
    fn every_wanted_market_ends_subscribed_exactly_once(
        steps in proptest::collection::vec(step(), 1..120),
        limit in 1usize..6,
        ours in 1usize..8,
    ) {
        let name = |i: u8| format!("M-{i}");
        let mut ex = Exchange { limit, ..Exchange::default() };
        ex.unknown.insert(name(13));
        let mut s = Subscriptions::new(vec![Channel::Trade], ours);
        let mut now = Instant::now();
        let mut expected: BTreeSet<String> = BTreeSet::new();
        let mut refuse: Option<Refusal> = None;
        s.connected();
        for step in steps {
            match step {
                Step::Add(i) => {
                    s.add(vec![(t(&name(i)), None)]);
                    expected.insert(name(i));
                }
                Step::Remove(i) => {
                    s.remove(vec![t(&name(i))]);
                    expected.remove(&name(i));
                }
                Step::Deliver(n) => {
                    for _ in 0..n {
                        if let Some(r) = ex.replies.pop_front() {
                            s.on_reply(r, now);
                        }
                    }
                }
                Step::Refuse(code) => refuse = Some(code),
                Step::Kill(pick, overflow) => ex.kill(pick as usize, if overflow { 25 } else { 10 }),
                Step::Tick(ms) => now += Duration::from_millis(u64::from(ms)),
            }
            for cmd in s.poll(now) {
                ex.receive(&cmd, refuse.take());
            }
            // No error loses a market: even the unknown one stays wanted while listed.
            for m in &expected {
                prop_assert!(s.wanted().contains(m.as_str()), "{m} lost");
            }
        }
        // Quiet period: the exchange answers everything, time passes beyond every backoff.
        for _ in 0..2000 {
            while let Some(r) = ex.replies.pop_front() {
                s.on_reply(r, now);
            }
            now += RETRY_POLICY.max * 2;
            for cmd in s.poll(now) {
                ex.receive(&cmd, None);
            }
            // Markets the exchange once called unknown by mistake are back once their
            // backoff passes; only the really unknown one keeps backing off.
            let backing_off = s.not_found().iter().any(|t| **t != *name(13));
            if ex.replies.is_empty() && s.is_settled() && !backing_off {
                break;
            }
        }
        prop_assert!(s.is_settled(), "never settled");
        expected.remove(&name(13));
        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        for (channel, markets) in ex.subs.values() {
            if *channel == Channel::OrderbookDelta {
                for m in markets {
                    *count.entry(m.clone()).or_default() += 1;
                }
            }
        }
        for m in &expected {
            prop_assert_eq!(count.get(m).copied(), Some(1), "{} subscribed {:?} times", m, count.get(m));
        }
        prop_assert_eq!(count.len(), expected.len(), "unwanted markets subscribed: {:?}", count);
        let globals = ex.subs.values().filter(|(c, _)| *c == Channel::Trade).count();
        prop_assert_eq!(globals, 1);
        prop_assert_eq!(s.subscribed_count(), expected.len());
    }
}
