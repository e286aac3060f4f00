//! The one replay of a market's stored history in exchange-time order: which snapshot is the
//! book's base at each instant, every delta's effect, and the audit of every REST snapshot.
//!
//! Why REST snapshots are not bases like WebSocket ones: a WebSocket snapshot sits at an exact
//! point of the sequenced delta stream, so "snapshot + every later delta" is the book. A REST
//! book is stamped at receipt but shows the market as it was some time before (Kalshi's edge
//! serves it from a cache up to 2 s old, WIRE.md "Order books"): a delta between the instant
//! shown and the receipt is in neither the snapshot nor "the deltas after it", and a rebuild
//! based on it stays wrong until the next WebSocket snapshot. So (docs/decisions.md):
//!
//! - the base is the latest **WebSocket** snapshot; a REST snapshot never replaces it;
//! - where there is no WebSocket base yet, the first REST snapshot is the base (nothing better
//!   exists; the book may lack deltas of its staleness window), and a later REST snapshot
//!   replaces such a REST base only when it disagrees with the book rebuilt from it (the old
//!   base is then proven wrong, the new one is at most one staleness window off);
//! - every REST snapshot is an **audit point**: it *agrees* when the rebuilt book equals it at
//!   some instant of `[stamp − max_staleness, stamp]`, *disagrees* otherwise (beyond the
//!   staleness window: evidence of lost or extra deltas), and is *unchecked* when no rebuilt
//!   book existed at the window's start.

use super::Book;
use crate::records::{OrderbookDelta, OrderbookSnapshot, SnapshotSource};
use crate::units::TimestampUs;
use serde::Serialize;
use std::borrow::Borrow;

/// How long before its receipt stamp a REST book may show the market: Kalshi's edge cache
/// (up to 2 s, WIRE.md) plus the error of the gatherer's exchange-clock estimate, with room.
pub const MAX_REST_STALENESS_US: i64 = 5_000_000;

/// What the REST snapshots of a replay said about the rebuilt book.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RestAudit {
    /// Equal to the rebuilt book at some instant of their staleness window.
    pub agreed: usize,
    /// Equal to it at no instant of the window: the rebuilt book lacks or has extra deltas.
    pub disagreed: usize,
    /// No rebuilt book at the start of their window (the first ones, which became the base).
    pub unchecked: usize,
    /// Receipt stamps of the disagreeing snapshots, oldest first.
    #[serde(skip)]
    pub disagreed_at: Vec<TimestampUs>,
}

impl RestAudit {
    pub fn checked(&self) -> usize {
        self.agreed + self.disagreed
    }

    /// Adds another market's audit.
    pub fn add(&mut self, other: &RestAudit) {
        self.agreed += other.agreed;
        self.disagreed += other.disagreed;
        self.unchecked += other.unchecked;
        self.disagreed_at.extend_from_slice(&other.disagreed_at);
    }
}

/// The state a replay reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replayed {
    /// The book at the end (`None`: no snapshot yet).
    pub book: Option<Book>,
    /// Source and exchange time of the snapshot the book was last based on.
    pub base: Option<(SnapshotSource, TimestampUs)>,
    /// Deltas applied since that base.
    pub deltas_applied: usize,
    /// Of those, the ones that would have made a level negative.
    pub negative_levels: usize,
    /// The book is known to be right (as far as the stored deltas go): its base is a WebSocket
    /// snapshot, or a REST one a later REST snapshot agreed with.
    pub proven: bool,
    /// The REST snapshots stamped up to the end.
    pub audit: RestAudit,
}

/// A REST snapshot whose staleness window is open.
struct Open {
    idx: usize,
    book: Book,
    /// A rebuilt book existed at the window's start (else the verdict is "unchecked").
    checked: bool,
    agreed: bool,
}

/// Replays one market's `snapshots` and `deltas` (each sorted by exchange time) up to and
/// including `until`. `on_delta(i, flag)` is called for every delta, with `flag` whether it
/// left its level non-negative, `None` where the book is not known (before the first base, or
/// on a REST base nothing has confirmed yet).
pub fn replay<S, D>(
    snapshots: &[S],
    deltas: &[D],
    until: TimestampUs,
    max_staleness_us: i64,
    mut on_delta: impl FnMut(usize, Option<bool>),
) -> Replayed
where
    S: Borrow<OrderbookSnapshot>,
    D: Borrow<OrderbookDelta>,
{
    let lo = |s: &OrderbookSnapshot| s.exchange_ts.micros().saturating_sub(max_staleness_us);
    let mut out = Replayed::default();
    let mut open: Vec<Open> = Vec::new();
    let (mut di, mut si, mut ai) = (0, 0, 0);
    loop {
        // The REST snapshot whose window opens next.
        while snapshots
            .get(ai)
            .is_some_and(|s| s.borrow().source != SnapshotSource::Rest)
        {
            ai += 1;
        }
        let next = [
            deltas.get(di).map(|d| d.borrow().exchange_ts.micros()),
            snapshots.get(si).map(|s| s.borrow().exchange_ts.micros()),
            snapshots.get(ai).map(|s| lo(s.borrow())),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(t) = next.filter(|&t| t <= until.micros()) else {
            break;
        };
        // The book at `t` holds every delta up to `t`; a WebSocket snapshot at `t` wins over
        // deltas at `t` (it is taken to include them, the rule of `MarketHistory::at`).
        while let Some(d) = deltas.get(di).map(Borrow::borrow)
            && d.exchange_ts.micros() == t
        {
            let flag = out.book.as_mut().map(|b| b.apply(d.side, d.price, d.delta));
            if out.book.is_some() {
                out.deltas_applied += 1;
            }
            if flag == Some(false) {
                out.negative_levels += 1;
            }
            on_delta(di, flag.filter(|_| out.proven));
            di += 1;
        }
        let snaps_start = si;
        while let Some(s) = snapshots.get(si).map(Borrow::borrow)
            && s.exchange_ts.micros() == t
        {
            if s.source == SnapshotSource::Ws {
                rebase(&mut out, s);
            }
            si += 1;
        }
        while let Some(s) = snapshots.get(ai).map(Borrow::borrow)
            && lo(s) <= t
        {
            if s.source == SnapshotSource::Rest {
                open.push(Open {
                    idx: ai,
                    book: Book::from_snapshot(s),
                    checked: out.book.is_some(),
                    agreed: false,
                });
            }
            ai += 1;
        }
        if let Some(book) = &out.book {
            for o in open.iter_mut().filter(|o| !o.agreed) {
                o.agreed = o.book == *book;
            }
        }
        for idx in snaps_start..si {
            let Some(s) = snapshots.get(idx).map(Borrow::borrow) else {
                continue;
            };
            if s.source != SnapshotSource::Rest {
                continue;
            }
            let Some(pos) = open.iter().position(|o| o.idx == idx) else {
                continue;
            };
            let o = open.swap_remove(pos);
            let rest_base = matches!(out.base, Some((SnapshotSource::Rest, _)));
            if o.agreed {
                out.audit.agreed += 1;
                out.proven = true;
            } else if out.book.is_none() {
                out.audit.unchecked += 1;
                rebase(&mut out, s);
            } else if !o.checked {
                out.audit.unchecked += 1;
            } else {
                out.audit.disagreed += 1;
                out.audit.disagreed_at.push(s.exchange_ts);
                if rest_base {
                    rebase(&mut out, s);
                }
            }
        }
    }
    out
}

fn rebase(out: &mut Replayed, s: &OrderbookSnapshot) {
    out.book = Some(Book::from_snapshot(s));
    out.base = Some((s.source, s.exchange_ts));
    out.deltas_applied = 0;
    out.negative_levels = 0;
    out.proven = s.source == SnapshotSource::Ws;
}

#[cfg(test)]
mod tests;
