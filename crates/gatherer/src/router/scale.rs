//! The NO side's price scale of each `orderbook_delta` subscription: which scale the parser
//! reads its NO levels on, and the check that the exchange answered on the scale asked for.
//!
//! Every subscribe sends `use_yes_price: true` (YES-leg pricing, Kalshi's announced default and
//! later only behaviour), and the parser maps NO levels back to the stored NO-bid scale. An
//! exchange that ignores the flag (one from before it existed) answers on the NO-bid scale
//! without any error; storing that as YES-leg would turn every NO price into `1 − p`.
//!
//! The evidence is the snapshot itself: its YES side is on the same scale whatever
//! `use_yes_price` says, and a real book never crosses (best YES bid + best NO bid < $1, else
//! the two would have traded). A two-sided snapshot read on the wrong scale crosses unless all
//! its NO bids lie above the best YES bid; such a snapshot proves nothing and the next one is
//! looked at. No second source is needed, so there is no timing to reconcile (a REST book may be
//! 2 s old; a ticker comes on another connection at another instant).
//!
//! Until one of its snapshots proves the scale, a subscription's snapshots and deltas are held
//! here (in order, bounded); once proven they are released — re-read on the other scale first
//! when the proof says so, which is exact because the mapping is its own inverse. Nothing is
//! stored on a wrong scale and nothing is lost. Every later snapshot is checked too: a
//! contradiction after release (the exchange changed behaviour under a live subscription) flips
//! the subscription and records a `price_scale` gap for its markets, whose repair is a fresh
//! snapshot.

use crate::config::NoPriceScale;
use crate::metrics as m;
use crate::sequence::{GapNotice, GapReason};
use kd_core::TimestampUs;
use kd_core::records::Level;
use kd_kalshi::parse::{NoScale, WsEvent};
use std::collections::{BTreeSet, HashMap};

/// Longest a subscription's data waits for a proof of its scale (then the scale asked for is
/// trusted and `gatherer_price_scale_undecided_total` counts it).
const HOLD_US: i64 = 3_000_000;
/// Most events held per subscription while unproven.
const HOLD_EVENTS: usize = 50_000;

/// What one snapshot says about the scale it was read on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// Read on this scale the book is valid, read on the other it crosses.
    Confirms,
    /// Read on this scale it crosses, read on the other it is valid.
    Contradicts,
    /// One side empty, valid both ways, or crossed both ways.
    Undecided,
}

/// `yes` and `no` as parsed (NO levels already on the stored NO-bid scale if the parser's scale
/// was right). Valid: best YES + best NO < $1. Read on the other scale the NO prices are
/// `1 − p`, whose best is `1 − min(no)`.
pub fn evidence(yes: &[Level], no: &[Level]) -> Evidence {
    const ONE: i64 = 100_000;
    let best_yes = yes.iter().map(|l| l.price.units()).max();
    let best_no = no.iter().map(|l| l.price.units()).max();
    let worst_no = no.iter().map(|l| l.price.units()).min();
    let (Some(y), Some(hi), Some(lo)) = (best_yes, best_no, worst_no) else {
        return Evidence::Undecided;
    };
    let as_read = y + hi < ONE;
    let flipped = y + (ONE - lo) < ONE;
    match (as_read, flipped) {
        (true, false) => Evidence::Confirms,
        (false, true) => Evidence::Contradicts,
        _ => Evidence::Undecided,
    }
}

/// An event held with its receive times (local, and on the exchange's clock).
#[derive(Debug)]
pub struct Held {
    pub event: WsEvent,
    pub received_at: TimestampUs,
    pub at: TimestampUs,
}

/// What to do with an order-book event now.
// `Pass` is the path of every message: boxing it would allocate per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Admit {
    /// Route it (its scale is known, or it is not order-book data).
    Pass(WsEvent),
    /// Held until its subscription's scale is proven.
    Held,
    /// The subscription's scale was just proven: route these, in order (the event admitted is
    /// the last one).
    Release(Vec<Held>),
}

#[derive(Debug)]
struct Sub {
    scale: NoScale,
    /// `Some` while unproven: the events held, and when the first was received (local).
    held: Option<(Vec<Held>, TimestampUs)>,
    /// When the scale was proven (exchange clock): the start of a late contradiction's gap.
    proven_at: TimestampUs,
    /// Markets whose snapshot came on this subscription (a late contradiction's gap names them).
    markets: BTreeSet<String>,
}

/// The scale state of one connection.
#[derive(Debug)]
pub struct ScaleCheck {
    mode: NoPriceScale,
    /// The scale new subscriptions are read on: the one asked for, until this connection's
    /// exchange is seen answering on the other.
    belief: NoScale,
    subs: HashMap<u64, Sub>,
    conn: usize,
    logged: bool,
    gaps: Vec<GapNotice>,
}

impl ScaleCheck {
    pub fn new(mode: NoPriceScale, conn: usize) -> Self {
        let belief = NoScale::asked(use_yes_price(mode));
        ScaleCheck {
            mode,
            belief,
            subs: HashMap::new(),
            conn,
            logged: false,
            gaps: Vec::new(),
        }
    }

    /// The scale the parser reads `sid`'s NO levels on.
    pub fn of(&self, sid: u64) -> NoScale {
        self.subs.get(&sid).map_or(self.belief, |s| s.scale)
    }

    /// A subscription was confirmed: order-book ones are held until proven.
    pub fn subscribed(&mut self, sid: u64, channel: &str) {
        if channel != kd_kalshi::ws::Channel::OrderbookDelta.as_str() {
            return;
        }
        let checked = self.mode == NoPriceScale::Checked;
        self.subs.insert(
            sid,
            Sub {
                scale: self.belief,
                held: if checked {
                    Some((Vec::new(), TimestampUs::from_micros(i64::MAX)))
                } else {
                    None
                },
                proven_at: TimestampUs::from_micros(0),
                markets: BTreeSet::new(),
            },
        );
    }

    /// A subscription ended (`at`, exchange clock): data it still held cannot be proven and
    /// is not stored; each of its markets gets a `price_scale` gap from its first held event.
    pub fn ended(&mut self, sid: u64, at: TimestampUs) {
        let Some(sub) = self.subs.remove(&sid) else {
            return;
        };
        let Some((held, _)) = sub.held else { return };
        let mut first: HashMap<String, TimestampUs> = HashMap::new();
        for h in &held {
            let ticker = match &h.event {
                WsEvent::Snapshot { snapshot, .. } => &snapshot.ticker,
                WsEvent::Delta { delta, .. } => &delta.ticker,
                _ => continue,
            };
            first.entry(ticker.clone()).or_insert(h.at);
        }
        for (ticker, start) in first {
            self.gaps.push(price_scale_gap(sid, ticker, start, at));
        }
    }

    /// The connection ended (`at`, exchange clock): as [`ScaleCheck::ended`] for every
    /// subscription.
    pub fn reset(&mut self, at: TimestampUs) {
        let sids: Vec<u64> = self.subs.keys().copied().collect();
        for sid in sids {
            self.ended(sid, at);
        }
    }

    /// Gaps of late contradictions, for the gap tracker.
    pub fn take_gaps(&mut self) -> Vec<GapNotice> {
        std::mem::take(&mut self.gaps)
    }

    /// Passes, holds or releases one event (`received_at` local, `at` exchange clock).
    pub fn admit(
        &mut self,
        mut event: WsEvent,
        received_at: TimestampUs,
        at: TimestampUs,
    ) -> Admit {
        let sid = match &event {
            WsEvent::Snapshot { sid, .. } | WsEvent::Delta { sid, .. } => *sid,
            _ => return Admit::Pass(event),
        };
        if self.mode == NoPriceScale::AsReceived {
            return Admit::Pass(event);
        }
        let Some(sub) = self.subs.get_mut(&sid) else {
            // Data before its `subscribed` reply (never seen from Kalshi): nothing to prove it
            // against yet; read on the connection's belief.
            return Admit::Pass(event);
        };
        let proof = match &event {
            WsEvent::Snapshot { snapshot, .. } => {
                sub.markets.insert(snapshot.ticker.clone());
                evidence(&snapshot.yes, &snapshot.no)
            }
            _ => Evidence::Undecided,
        };
        match (sub.held.as_mut(), proof) {
            (None, Evidence::Contradicts) => {
                // Proven before, contradicted now: what was stored since is on the wrong scale.
                sub.scale = sub.scale.other();
                flip(&mut event);
                let markets: Vec<String> = sub.markets.iter().cloned().collect();
                let since = sub.proven_at;
                let scale = sub.scale;
                self.mismatch(sid, scale, true);
                self.belief = scale;
                for ticker in markets {
                    self.gaps.push(price_scale_gap(sid, ticker, since, at));
                }
                Admit::Pass(event)
            }
            (None, _) => Admit::Pass(event),
            (Some((held, first)), Evidence::Undecided) => {
                if held.is_empty() {
                    *first = received_at;
                }
                held.push(Held {
                    event,
                    received_at,
                    at,
                });
                if held.len() >= HOLD_EVENTS {
                    metrics::counter!(m::GATHERER_PRICE_SCALE_UNDECIDED_TOTAL).increment(1);
                    return Admit::Release(self.prove(sid, false, at));
                }
                Admit::Held
            }
            (Some((held, _)), proof) => {
                held.push(Held {
                    event,
                    received_at,
                    at,
                });
                Admit::Release(self.prove(sid, proof == Evidence::Contradicts, at))
            }
        }
    }

    /// Subscriptions unproven for longer than the bound: their data is released on the scale
    /// asked for (counted). `now` is local.
    pub fn expired(&mut self, now: TimestampUs) -> Vec<Held> {
        let due: Vec<u64> = self
            .subs
            .iter()
            .filter(|(_, s)| {
                s.held.as_ref().is_some_and(|(h, first)| {
                    !h.is_empty() && now.micros().saturating_sub(first.micros()) >= HOLD_US
                })
            })
            .map(|(sid, _)| *sid)
            .collect();
        let mut out = Vec::new();
        for sid in due {
            metrics::counter!(m::GATHERER_PRICE_SCALE_UNDECIDED_TOTAL).increment(1);
            out.extend(self.prove(sid, false, now));
        }
        out
    }

    /// `sid`'s scale is settled (`other`: it is the other one than read on): its held events,
    /// re-read if needed.
    fn prove(&mut self, sid: u64, other: bool, at: TimestampUs) -> Vec<Held> {
        let Some(sub) = self.subs.get_mut(&sid) else {
            return Vec::new();
        };
        sub.proven_at = at;
        let mut held = sub.held.take().map(|(h, _)| h).unwrap_or_default();
        if other {
            sub.scale = sub.scale.other();
            for h in &mut held {
                flip(&mut h.event);
            }
            let scale = sub.scale;
            // Later subscriptions of this connection start on the scale seen.
            self.belief = scale;
            self.mismatch(sid, scale, false);
        }
        held
    }

    fn mismatch(&mut self, sid: u64, seen: NoScale, late: bool) {
        metrics::counter!(m::GATHERER_PRICE_SCALE_MISMATCH_TOTAL).increment(1);
        if !self.logged {
            self.logged = true;
            tracing::error!(
                conn = self.conn,
                sid,
                asked = ?use_yes_price(self.mode),
                seen = seen.as_str(),
                late,
                "orderbook_delta answered on the other NO price scale than use_yes_price asked \
                 for; reading it on the scale seen (stored NO levels stay on the NO-bid scale)"
            );
        }
    }
}

/// The `use_yes_price` every `orderbook_delta` subscribe sends in `mode`.
pub const fn use_yes_price(mode: NoPriceScale) -> Option<bool> {
    match mode {
        NoPriceScale::Checked => Some(true),
        NoPriceScale::AsReceived => None,
    }
}

fn price_scale_gap(sid: u64, ticker: String, start: TimestampUs, end: TimestampUs) -> GapNotice {
    GapNotice {
        sid: Some(sid),
        ticker: Some(ticker),
        channel: kd_kalshi::ws::Channel::OrderbookDelta.as_str().into(),
        reason: GapReason::PriceScale,
        start,
        end,
        expected: None,
        got: None,
    }
}

/// Re-reads an order-book event on the other scale.
fn flip(event: &mut WsEvent) {
    match event {
        WsEvent::Snapshot { snapshot, .. } => NoScale::flip_snapshot(snapshot),
        WsEvent::Delta { delta, .. } => NoScale::flip_delta(delta),
        _ => {}
    }
}

#[cfg(test)]
#[path = "scale_tests.rs"]
mod tests;
