//! One connection's subscriptions as a pure state machine: no socket, no clock of its own.
//!
//! Inputs: markets added or removed by the manager ([`Subscriptions::add`],
//! [`Subscriptions::remove`]), the socket opening or closing ([`Subscriptions::connected`],
//! [`Subscriptions::disconnected`]), the exchange's replies and errors
//! ([`Subscriptions::on_reply`]), snapshot requests from the router, and the passing of time
//! ([`Subscriptions::poll`], which returns the commands to send now). What the caller should
//! log or count comes out as [`Effect`]s ([`Subscriptions::take_effects`]).
//!
//! Rules (DESIGN §6, WIRE.md error table, issue 15):
//! - `orderbook_delta` markets are batched into subscriptions of at most `per_sub_limit`,
//!   grown with `update_subscription add_markets`; at most one command is in flight per
//!   subscription and [`MAX_SUBSCRIBE_IN_FLIGHT`] per connection.
//! - Every wanted market is in exactly one place: waiting, parked (refused for this socket), or
//!   one subscription.
//! - An error is handled by its [`ErrorCode`]'s action: transient codes (1, 18, 27, unknown)
//!   put the command's markets back and retry after a backoff — they never lose a market; only
//!   11 with named markets takes markets out ("market not found"), and only for a while: they
//!   stay wanted and are tried again after [`NOT_FOUND_POLICY`]'s backoff for as long as the
//!   registry lists them (it removes them when they close or leave the REST listing); 26
//!   shrinks the batch; 8 (and our other malformed commands) are not retried on this socket;
//!   7/10/25 resubscribe.
//! - An error naming only some of a command's markets refuses just those: the exchange takes
//!   the rest (the simulator, like Kalshi, answers `subscribed`/`ok` for them and an `error`
//!   with the same id naming the refused ones, in either order). Commands answered recently
//!   are remembered for that ([`ANSWER_MEMORY`]); before issue 16 such an error was ignored
//!   and the refused markets were believed subscribed — lost until the gatherer restarted.
//!
//! - [`flush`]: building the commands owed ([`Subscriptions::poll`]).
//! - [`replies`]: applying replies and errors.

mod flush;
mod replies;
#[cfg(test)]
mod tests;

pub use replies::ErrorReply;

use crate::registry::Ticker;
use kd_core::TimestampUs;
use kd_core::backoff::{Backoff, BackoffPolicy};
use kd_kalshi::ws::{Channel, Command, ErrorCode, UpdateAction};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// Most `subscribe`/`add_markets` commands awaiting their reply on one connection. Each brings
/// up to `per_sub_limit` snapshots back; sending a whole universe's worth at once (250 commands
/// per connection at 1M markets) makes the exchange answer them all before it sends anything
/// else, and a server that falls behind its own feed that way cuts the connection (1011),
/// which then starts over. A few in flight keep the pipe full without that.
pub const MAX_SUBSCRIBE_IN_FLIGHT: usize = 4;

/// At most one `get_snapshot` per subscription in this interval: a burst of gaps on a busy
/// subscription becomes one request (its markets' books are all re-read).
pub const SNAPSHOT_COOLDOWN: Duration = Duration::from_secs(1);

/// Backoff of commands refused with a transient error (27 too many requests, 1, 18): short,
/// because the markets are unsubscribed meanwhile; capped well below the reconnect backoff.
pub const RETRY_POLICY: BackoffPolicy =
    BackoffPolicy::new(Duration::from_millis(500), Duration::from_secs(30));

/// Retry of markets the exchange said do not exist (error 11 naming them) while the registry
/// still lists them: a market the REST listing shows may not have reached the WebSocket side
/// yet (retry soon), and one that really is gone leaves the listing by the next reconcile
/// (the cap is the default reconcile interval, so a wrong answer costs at most that long).
pub const NOT_FOUND_POLICY: BackoffPolicy =
    BackoffPolicy::new(Duration::from_secs(1), Duration::from_secs(300));

/// Subscribe/add_markets commands remembered after their success, for an `error` with the same
/// id that refuses some of their markets (it may follow the `subscribed`/`ok`).
pub const ANSWER_MEMORY: usize = 64;

/// `get_snapshot` commands remembered for a retry after a transient error. Their answer is an
/// `orderbook_snapshot` the router consumes, so success is never seen here: the oldest are
/// forgotten instead.
const SNAPSHOT_MEMORY: usize = 64;

/// A wanted market the exchange said does not exist.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NotFound {
    /// Answers "not found" so far (the backoff's attempt).
    pub(crate) attempts: u32,
    /// When it is tried again; `None` once it is back in the queue (its command may be in
    /// flight).
    pub(crate) due: Option<Instant>,
}

/// Our name of one `orderbook_delta` subscription (stable while the socket lives; the sid is
/// known only once `subscribed` arrives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SubKey(u64);

/// Where a subscription stands with the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubState {
    /// `subscribe` sent, no reply yet.
    Creating,
    /// Confirmed with this sid.
    Live(u64),
}

/// One `orderbook_delta` subscription.
#[derive(Debug)]
pub(crate) struct DeltaSub {
    pub(crate) state: SubState,
    /// Its markets, including those of an `add_markets` still in flight.
    pub(crate) markets: BTreeSet<Ticker>,
    /// A command for this subscription awaits its reply.
    pub(crate) in_flight: bool,
}

impl DeltaSub {
    fn sid(&self) -> Option<u64> {
        match self.state {
            SubState::Live(sid) => Some(sid),
            SubState::Creating => None,
        }
    }
}

/// A command awaiting its reply.
#[derive(Debug, Clone)]
pub(crate) enum Pending {
    /// `subscribe` of a new delta subscription with these markets.
    DeltaSubscribe { sub: SubKey, markets: Vec<Ticker> },
    /// `update_subscription add_markets` on a delta subscription.
    AddMarkets { sub: SubKey, markets: Vec<Ticker> },
    /// `update_subscription delete_markets`.
    DeleteMarkets { sid: u64, markets: Vec<Ticker> },
    /// `subscribe` of a global channel.
    Global { channel: Channel },
}

impl Pending {
    fn is_subscribe(&self) -> bool {
        matches!(
            self,
            Pending::DeltaSubscribe { .. } | Pending::AddMarkets { .. }
        )
    }
}

/// Something the caller logs or counts (the state machine itself does no I/O).
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Markets confirmed subscribed: the lifecycle arrival time of each that had one.
    Subscribed { noticed: Vec<TimestampUs> },
    /// `delete_markets` is being sent for these: the router forgets their sequence state.
    Unsubscribed { sid: u64, markets: Vec<Ticker> },
    /// The exchange says these markets do not exist (error 11): not subscribed now, tried again
    /// after `retry_in` while they are still wanted.
    NotFound {
        markets: Vec<String>,
        retry_in: Duration,
    },
    /// Error 26: the per-subscription limit is now `limit`.
    Shrunk { limit: usize },
    /// A command the exchange refuses for good on this socket (our bug, or a channel it does
    /// not offer): its markets or channel wait for the next connection.
    Refused { code: ErrorCode, channel: Channel },
    /// A transient error: the command's markets are retried after `delay`.
    RetryLater { code: ErrorCode, delay: Duration },
    /// Error 9: the exchange wants credentials for this channel.
    CredentialsNeeded { code: ErrorCode },
    /// `get_snapshot` is being sent for this many markets.
    SnapshotRequested { markets: usize },
}

/// The subscription state of one connection.
#[derive(Debug)]
pub struct Subscriptions {
    /// Channels subscribed for all markets on this connection.
    global_channels: Vec<Channel>,
    /// Shrinks on error 26, for the life of the connection task.
    per_sub_limit: usize,
    /// `use_yes_price` of every `orderbook_delta` subscribe (`router::scale` reads the answer).
    pub use_yes_price: Option<bool>,
    /// Every market assigned to this connection (what must be subscribed).
    wanted: BTreeSet<Ticker>,
    /// Lifecycle arrival times of wanted markets not yet confirmed subscribed.
    noticed: HashMap<Ticker, TimestampUs>,
    /// Whether a socket is open: the per-socket state below is meaningful only then.
    connected: bool,
    // Per socket:
    subs: BTreeMap<SubKey, DeltaSub>,
    next_sub: u64,
    /// Wanted markets in no subscription yet.
    waiting: BTreeSet<Ticker>,
    /// Wanted markets refused for good on this socket (retried on the next one).
    parked: BTreeSet<Ticker>,
    pending: HashMap<u64, Pending>,
    global_sids: HashMap<u64, Channel>,
    /// Global channels to (re)subscribe.
    global_waiting: Vec<Channel>,
    /// `delete_markets` to send again after a transient error: sid → markets.
    deletes_due: BTreeMap<u64, BTreeSet<Ticker>>,
    next_id: u64,
    /// No `subscribe`/`add_markets` before this (after a transient error).
    retry_at: Option<Instant>,
    retry: Backoff,
    /// Snapshot requests waiting for their subscription's cooldown: sid → markets (None: all).
    snapshot_due: HashMap<u64, Option<BTreeSet<String>>>,
    /// When each subscription last had a `get_snapshot`.
    snapshot_sent: HashMap<u64, Instant>,
    /// Recent `get_snapshot` commands (id, sid, markets), for a retry after a transient error.
    snapshots_sent: VecDeque<(u64, u64, Vec<String>)>,
    /// Recently confirmed subscribe/add_markets commands (id, subscription, markets).
    answered: VecDeque<(u64, SubKey, Vec<Ticker>)>,
    /// Wanted markets the exchange said do not exist (kept across sockets: it is about the
    /// market, not the connection).
    not_found: HashMap<Ticker, NotFound>,
    /// Commands built by inputs, sent with the next [`Subscriptions::poll`].
    outbox: Vec<Command>,
    effects: Vec<Effect>,
}

impl Subscriptions {
    pub fn new(global_channels: Vec<Channel>, per_sub_limit: usize) -> Self {
        Subscriptions {
            global_channels,
            per_sub_limit: per_sub_limit.max(1),
            use_yes_price: Some(true),
            wanted: BTreeSet::new(),
            noticed: HashMap::new(),
            connected: false,
            subs: BTreeMap::new(),
            next_sub: 0,
            waiting: BTreeSet::new(),
            parked: BTreeSet::new(),
            pending: HashMap::new(),
            global_sids: HashMap::new(),
            global_waiting: Vec::new(),
            deletes_due: BTreeMap::new(),
            next_id: 1,
            retry_at: None,
            retry: Backoff::new(RETRY_POLICY),
            snapshot_due: HashMap::new(),
            snapshot_sent: HashMap::new(),
            snapshots_sent: VecDeque::new(),
            answered: VecDeque::new(),
            not_found: HashMap::new(),
            outbox: Vec::new(),
            effects: Vec::new(),
        }
    }

    /// A socket opened: everything wanted is owed to it.
    pub fn connected(&mut self) {
        self.reset_socket();
        self.connected = true;
        // Markets waiting out a "not found" backoff wait on the new socket too.
        self.waiting = self
            .wanted
            .iter()
            .filter(|t| self.not_found.get(*t).is_none_or(|n| n.due.is_none()))
            .cloned()
            .collect();
        self.global_waiting = self.global_channels.clone();
    }

    /// The socket closed: whatever it had subscribed is gone with it.
    pub fn disconnected(&mut self) {
        self.reset_socket();
        self.connected = false;
    }

    fn reset_socket(&mut self) {
        self.subs.clear();
        self.waiting.clear();
        self.parked.clear();
        self.pending.clear();
        self.global_sids.clear();
        self.global_waiting.clear();
        self.deletes_due.clear();
        self.retry_at = None;
        self.retry.reset();
        self.snapshot_due.clear();
        self.snapshot_sent.clear();
        self.snapshots_sent.clear();
        self.answered.clear();
        self.outbox.clear();
    }

    /// Collect these markets (with the time their lifecycle message arrived, when known).
    pub fn add(&mut self, markets: Vec<(Ticker, Option<TimestampUs>)>) {
        for (ticker, noticed) in markets {
            if let Some(at) = noticed {
                self.noticed.insert(ticker.clone(), at);
            }
            if self.wanted.insert(ticker.clone()) && self.connected {
                self.waiting.insert(ticker);
            }
        }
    }

    /// Stop collecting these markets: `delete_markets` for those already subscribed.
    pub fn remove(&mut self, markets: Vec<Ticker>) {
        let mut per_sid: BTreeMap<u64, Vec<Ticker>> = BTreeMap::new();
        for ticker in markets {
            self.forget(&ticker);
            for sub in self.subs.values_mut() {
                if sub.markets.remove(&ticker)
                    && let Some(sid) = sub.sid()
                {
                    per_sid.entry(sid).or_default().push(ticker.clone());
                }
            }
        }
        for (sid, markets) in per_sid {
            self.send_delete(sid, markets);
        }
    }

    /// A market no longer wanted, wherever it waited.
    fn forget(&mut self, ticker: &str) {
        self.wanted.remove(ticker);
        self.noticed.remove(ticker);
        self.waiting.remove(ticker);
        self.parked.remove(ticker);
        self.not_found.remove(ticker);
    }

    fn send_delete(&mut self, sid: u64, markets: Vec<Ticker>) {
        self.effects.push(Effect::Unsubscribed {
            sid,
            markets: markets.clone(),
        });
        let id = self.command_id();
        let tickers = strings(&markets);
        self.pending
            .insert(id, Pending::DeleteMarkets { sid, markets });
        self.outbox.push(Command::update(
            id,
            sid,
            UpdateAction::DeleteMarkets,
            &tickers,
        ));
    }

    /// Fresh snapshots the router asks for after gaps: (sid, market, or `None` for all of the
    /// subscription's markets).
    pub fn request_snapshots(&mut self, requests: Vec<(u64, Option<String>)>) {
        for (sid, ticker) in requests {
            let due = self
                .snapshot_due
                .entry(sid)
                .or_insert_with(|| Some(BTreeSet::new()));
            match (due.as_mut(), ticker) {
                (Some(set), Some(t)) => {
                    set.insert(t);
                }
                (_, None) => *due = None,
                (None, Some(_)) => {}
            }
        }
    }

    /// What was produced since the last call, for the caller to log and count.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    fn command_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Every market assigned to this connection.
    pub fn wanted(&self) -> &BTreeSet<Ticker> {
        &self.wanted
    }

    /// Markets in confirmed subscriptions (with any `add_markets` in flight on them).
    pub fn subscribed_count(&self) -> usize {
        self.subs
            .values()
            .filter(|s| s.sid().is_some())
            .map(|s| s.markets.len())
            .sum()
    }

    /// Nothing owed and nothing awaited: the connection has subscribed everything it can.
    pub fn is_settled(&self) -> bool {
        self.pending.is_empty() && self.waiting.is_empty() && self.global_waiting.is_empty()
    }

    /// The per-subscription market limit in force.
    pub fn per_sub_limit(&self) -> usize {
        self.per_sub_limit
    }

    /// Confirmed subscriptions: sid → markets (for tests and diagnostics).
    pub fn live(&self) -> BTreeMap<u64, BTreeSet<Ticker>> {
        self.subs
            .values()
            .filter_map(|s| s.sid().map(|sid| (sid, s.markets.clone())))
            .collect()
    }

    /// Wanted markets waiting out a "not found" backoff (for tests and diagnostics).
    pub fn not_found(&self) -> BTreeSet<Ticker> {
        self.not_found
            .iter()
            .filter(|(_, n)| n.due.is_some())
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Confirmed global subscriptions: sid → channel.
    pub fn live_globals(&self) -> &HashMap<u64, Channel> {
        &self.global_sids
    }
}

/// The tickers as the strings of a command.
fn strings(tickers: &[Ticker]) -> Vec<String> {
    tickers.iter().map(|t| t.to_string()).collect()
}

/// Takes up to `n` of the smallest elements.
fn take_some(set: &mut BTreeSet<Ticker>, n: usize) -> Vec<Ticker> {
    let mut out = Vec::with_capacity(n.min(set.len()));
    while out.len() < n {
        match set.pop_first() {
            Some(t) => out.push(t),
            None => break,
        }
    }
    out
}
