//! What the exchange publishes: one item per data message, serialised once and shared by every
//! subscriber (only the envelope's `sid`/`seq` differ per subscription).

use kd_core::Record;
use kd_kalshi::ws::Channel as WireChannel;
use std::fmt::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Instant;

/// The WebSocket channels the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    OrderbookDelta,
    Trade,
    Ticker,
    Lifecycle,
    /// `multivariate_market_lifecycle`: combo markets' lifecycle and combo events' creation,
    /// never on `market_lifecycle_v2` (WIRE.md "2026 changes").
    MultivariateLifecycle,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::OrderbookDelta,
        Channel::Trade,
        Channel::Ticker,
        Channel::Lifecycle,
        Channel::MultivariateLifecycle,
    ];

    /// The channel in kd-kalshi's vocabulary (issue 15: kd-kalshi owns the channel names; this
    /// enum stays because the hot path wants a `Copy` value with an array index, and the sim
    /// serves only these five, so `Other` has no place here).
    pub fn wire(self) -> &'static WireChannel {
        // A static so `name` can hand out `&'static str` without copying kd-kalshi's names.
        static WIRE: [WireChannel; 5] = [
            WireChannel::OrderbookDelta,
            WireChannel::Trade,
            WireChannel::Ticker,
            WireChannel::MarketLifecycleV2,
            WireChannel::MultivariateMarketLifecycle,
        ];
        &WIRE[self.index()]
    }

    /// Kalshi's name of the channel.
    pub fn name(self) -> &'static str {
        self.wire().as_str()
    }

    /// The channel a `subscribe` names; `None` for any channel the simulator does not serve
    /// (error 8), including names kd-kalshi keeps as `Other`.
    pub fn parse(name: &str) -> Option<Channel> {
        match WireChannel::parse(name) {
            WireChannel::OrderbookDelta => Some(Channel::OrderbookDelta),
            WireChannel::Trade => Some(Channel::Trade),
            WireChannel::Ticker => Some(Channel::Ticker),
            WireChannel::MarketLifecycleV2 => Some(Channel::Lifecycle),
            WireChannel::MultivariateMarketLifecycle => Some(Channel::MultivariateLifecycle),
            WireChannel::Other(_) => None,
        }
    }

    /// `ticker` messages carry no `seq`; the others do.
    pub const fn sequenced(self) -> bool {
        !matches!(self, Channel::Ticker)
    }

    pub const fn index(self) -> usize {
        self as usize
    }

    /// Channels that take no market list: they send everything.
    pub const fn all_markets(self) -> bool {
        matches!(self, Channel::Lifecycle | Channel::MultivariateLifecycle)
    }
}

/// What became of a published message (the `fate` of its ground-truth line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Written to at least one subscriber's socket.
    Delivered,
    /// At least one subscription covered it, and a fault dropped it for every one of them.
    Dropped,
    /// No subscription covered its market and channel when it was sent.
    Unsubscribed,
}

/// One published data message.
#[derive(Debug)]
pub struct Item {
    /// Global publish order; snapshots record the value they were taken at.
    pub gseq: u64,
    pub channel: Channel,
    /// The envelope `type` (`orderbook_delta`, `trade`, `ticker`, `market_lifecycle_v2`,
    /// `multivariate_market_lifecycle`, `event_lifecycle`, `event_fee_update`).
    pub msg_type: &'static str,
    /// Market index (`u32::MAX` for messages about no single market).
    pub market: u32,
    /// The `msg` object, serialised.
    pub body: String,
    /// `ws-drop-all` chose this message: nobody receives it.
    pub drop_all: bool,
    /// Broadcast receivers that have not processed it yet (the truth log waits for zero).
    pub remaining: AtomicU32,
    /// Written to at least one subscriber's socket.
    pub delivered: AtomicBool,
    /// Some subscription covered its market and channel when a connection processed it.
    pub covered: AtomicBool,
    /// The record a correct gatherer makes of it (only when a ground truth is kept).
    pub record: Option<Record>,
    pub born: Instant,
    /// Exchange time of publication (µs).
    pub sent_us: i64,
    /// A NO-side `orderbook_delta`: its price in NO-bid pricing (units), so subscriptions with
    /// `use_yes_price` can be sent `1 − p`.
    pub no_price: Option<i64>,
    /// The body in YES-leg pricing, made on first use (most runs never need it).
    yes_leg_body: OnceLock<String>,
}

impl Item {
    pub fn new(
        gseq: u64,
        channel: Channel,
        msg_type: &'static str,
        market: u32,
        body: String,
    ) -> Item {
        Item {
            gseq,
            channel,
            msg_type,
            market,
            body,
            drop_all: false,
            remaining: AtomicU32::new(0),
            delivered: AtomicBool::new(false),
            covered: AtomicBool::new(false),
            record: None,
            born: Instant::now(),
            sent_us: 0,
            no_price: None,
            yes_leg_body: OnceLock::new(),
        }
    }

    /// What became of it, as far as the connections have told.
    pub fn fate(&self) -> Fate {
        if self.delivered.load(Ordering::Acquire) {
            Fate::Delivered
        } else if self.covered.load(Ordering::Acquire) {
            Fate::Dropped
        } else {
            Fate::Unsubscribed
        }
    }

    /// The frame for one subscription; `yes_leg`: the subscription prices the NO side in
    /// YES-leg pricing (`use_yes_price`), so a NO bid at p is sent as 1 − p.
    pub fn frame_priced(&self, sid: u64, seq: Option<u64>, yes_leg: bool) -> String {
        match (yes_leg, self.no_price) {
            (true, Some(p)) => {
                let body = self.yes_leg_body.get_or_init(|| {
                    let (from, to) = (
                        crate::messages::price_field(p),
                        crate::messages::price_field(100_000 - p),
                    );
                    self.body.replacen(&from, &to, 1)
                });
                Self::envelope(self.msg_type, sid, seq, body)
            }
            _ => self.frame(sid, seq),
        }
    }

    /// The frame for one subscription.
    pub fn frame(&self, sid: u64, seq: Option<u64>) -> String {
        Self::envelope(self.msg_type, sid, seq, &self.body)
    }

    fn envelope(msg_type: &str, sid: u64, seq: Option<u64>, body: &str) -> String {
        let mut out = String::with_capacity(body.len() + 64);
        let _ = write!(out, "{{\"type\":\"{msg_type}\",\"sid\":{sid}");
        if let Some(seq) = seq {
            let _ = write!(out, ",\"seq\":{seq}");
        }
        out.push_str(",\"msg\":");
        out.push_str(body);
        out.push('}');
        out
    }

    /// A receiver is done with this item (sent, filtered out or dropped).
    pub fn processed(&self) {
        let _ = self
            .remaining
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| r.checked_sub(1));
    }

    pub fn mark_delivered(&self) {
        if !self.delivered.load(Ordering::Relaxed) {
            self.delivered.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_are_kd_kalshis() {
        for c in Channel::ALL {
            // `wire` indexes a table by discriminant: a reordered enum must fail here.
            assert_eq!(Channel::parse(c.name()), Some(c));
            assert_eq!(WireChannel::parse(c.name()).as_str(), c.name());
        }
        assert_eq!(Channel::Lifecycle.name(), "market_lifecycle_v2");
        assert_eq!(Channel::parse("fill"), None);
        assert_eq!(Channel::parse(""), None);
    }
}
