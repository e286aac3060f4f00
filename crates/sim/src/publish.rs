//! What the exchange publishes: one item per data message, serialised once and shared by every
//! subscriber (only the envelope's `sid`/`seq` differ per subscription).

use kd_core::Record;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Instant;

/// The WebSocket channels the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    OrderbookDelta,
    Trade,
    Ticker,
    Lifecycle,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::OrderbookDelta,
        Channel::Trade,
        Channel::Ticker,
        Channel::Lifecycle,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Channel::OrderbookDelta => "orderbook_delta",
            Channel::Trade => "trade",
            Channel::Ticker => "ticker",
            Channel::Lifecycle => "market_lifecycle_v2",
        }
    }

    pub fn parse(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.name() == name)
    }

    /// `ticker` messages carry no `seq`; the others do.
    pub const fn sequenced(self) -> bool {
        !matches!(self, Channel::Ticker)
    }

    pub const fn index(self) -> usize {
        self as usize
    }
}

/// One published data message.
#[derive(Debug)]
pub struct Item {
    /// Global publish order; snapshots record the value they were taken at.
    pub gseq: u64,
    pub channel: Channel,
    /// The envelope `type` (`orderbook_delta`, `trade`, `ticker`, `market_lifecycle_v2`).
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
    /// The record a correct gatherer makes of it (only when a ground truth is kept).
    pub record: Option<Record>,
    pub born: Instant,
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
            record: None,
            born: Instant::now(),
        }
    }

    /// The frame for one subscription.
    pub fn frame(&self, sid: u64, seq: Option<u64>) -> String {
        let mut out = String::with_capacity(self.body.len() + 64);
        let _ = write!(out, "{{\"type\":\"{}\",\"sid\":{sid}", self.msg_type);
        if let Some(seq) = seq {
            let _ = write!(out, ",\"seq\":{seq}");
        }
        out.push_str(",\"msg\":");
        out.push_str(&self.body);
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
