//! What the simulator is told at start.

use crate::faults::FaultSpec;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How WebSocket handshakes are authenticated.
#[derive(Debug, Clone, Default)]
pub enum AuthMode {
    /// Accept every handshake (local runs, benchmarks).
    #[default]
    NoAuth,
    /// Require Kalshi's RSA-PSS headers signed by one of these `(key_id, public key PEM)` pairs.
    Keys(Vec<(String, String)>),
}

/// How the NO side of `orderbook_delta` is priced when a subscription does not say
/// (`use_yes_price`, asyncapi `subscribeCommandPayload`; WIRE.md "2026 changes").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum YesPriceDefault {
    /// Today: NO levels in NO-bid pricing unless the subscription sends `use_yes_price: true`.
    #[default]
    False,
    /// Kalshi's announced flip: YES-leg pricing unless the subscription sends `false`.
    True,
    /// The flag is gone: YES-leg pricing always, `use_yes_price: false` silently ignored.
    Forced,
    /// An exchange from before the flag: NO-bid pricing always, `use_yes_price` (either value)
    /// silently ignored. What a client asking for YES-leg pricing must detect.
    Legacy,
}

impl YesPriceDefault {
    /// Whether a subscription that sent `asked` (or nothing) gets YES-leg pricing.
    pub const fn yes_leg(self, asked: Option<bool>) -> bool {
        match (self, asked) {
            (YesPriceDefault::Forced, _) => true,
            (YesPriceDefault::Legacy, _) => false,
            (_, Some(a)) => a,
            (YesPriceDefault::True, None) => true,
            (YesPriceDefault::False, None) => false,
        }
    }
}

/// Everything `start` needs. `Default` is the documented default of each field.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// REST and WebSocket on one port (tests use port 0).
    pub listen: SocketAddr,
    /// Everything the exchange does is a function of this seed (and of wall-clock pacing).
    pub seed: u64,
    pub series: usize,
    pub events: usize,
    /// Markets at start; more are created while running.
    pub markets: usize,
    /// Data messages per second overall (bursts go above it briefly).
    pub rate: u32,
    /// Faults active from the start.
    pub faults: Vec<FaultSpec>,
    /// Ground-truth log (JSON lines), appended to.
    pub truth: Option<PathBuf>,
    pub auth: AuthMode,
    /// Most markets one subscription may hold (error 26 beyond).
    pub market_limit_per_sub: usize,
    /// How often full books of changed markets go to the ground truth.
    pub checkpoint_every: Duration,
    /// Where the exchange keeps its id counter and state across restarts.
    pub state_dir: Option<PathBuf>,
    /// Interval of server Ping frames (body `heartbeat`).
    pub ping_interval: Duration,
    /// Typical life of a market created while running, from creation to close.
    pub market_life: Duration,
    /// A new market is created this often (zero: never).
    pub create_every: Duration,
    /// Markets that receive order-book activity at a time (the "hot" working set).
    pub hot_markets: usize,
    /// Messages a subscriber may fall behind before it is cut off (error 25).
    pub queue_capacity: usize,
    /// Rate bursts: every so often the rate is multiplied by this for a second (1 = no bursts).
    pub burst_factor: u32,
    /// A ground-truth line waits at most this long to learn whether its message was delivered.
    pub truth_hold: Duration,
    /// REST order books come from an edge cache refreshed this often (zero: always fresh).
    /// A book served is up to this old — stale by design, as WIRE.md says Kalshi's edge is.
    pub rest_book_cache: Duration,
    /// Bursts per minute of repeated pauses of one market (`deactivated`, `activated`,
    /// `deactivated`, `activated` within about 10 s). 0: none.
    pub lifecycle_toggles: u32,
    /// Multivariate (combo) markets at start (`KXMVESIM-…`, on `multivariate_market_lifecycle`).
    pub combo_markets: usize,
    /// A combo market is created this often while running (zero: never).
    pub combo_create_every: Duration,
    /// An `event_fee_update` (set or clear an event's fee override) this often (zero: never).
    pub fee_update_every: Duration,
    /// NO-side pricing of `orderbook_delta` subscriptions that do not send `use_yes_price`.
    pub yes_price_default: YesPriceDefault,
    /// `GET /historical/cutoff`'s `trades_created_ts` is this far behind now; older trades are
    /// served only by `/historical/trades`, newer ones only by `/markets/trades`.
    pub historical_cutoff_lag: Duration,
    /// Commands per second one connection may send (a burst of as many is allowed); beyond,
    /// error 27 "too many requests". 0: no limit.
    pub command_rate_limit: u32,
    /// This often a market appears on REST with no `created` message, and another closes early
    /// with no message (zero: never).
    pub silent_market_every: Duration,
    /// How long each data message waits in the exchange's send queue after it is made (and
    /// stamped): an exchange running behind under load. Snapshots still show the book as it is
    /// when asked for, folding in the changes still queued (zero: sent at once).
    pub send_lag: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            seed: 1,
            series: 10,
            events: 100,
            markets: 1_000,
            rate: 1_000,
            faults: Vec::new(),
            truth: None,
            auth: AuthMode::NoAuth,
            market_limit_per_sub: 10_000,
            checkpoint_every: Duration::from_secs(10),
            state_dir: None,
            ping_interval: Duration::from_secs(10),
            market_life: Duration::from_secs(600),
            create_every: Duration::from_secs(5),
            hot_markets: 5_000,
            queue_capacity: 1 << 16,
            burst_factor: 3,
            truth_hold: Duration::from_secs(10),
            rest_book_cache: Duration::ZERO,
            lifecycle_toggles: 0,
            combo_markets: 0,
            combo_create_every: Duration::ZERO,
            fee_update_every: Duration::ZERO,
            yes_price_default: YesPriceDefault::False,
            historical_cutoff_lag: Duration::from_secs(3_600),
            command_rate_limit: 0,
            silent_market_every: Duration::ZERO,
            send_lag: Duration::ZERO,
        }
    }
}

/// Why the simulator could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("ground-truth log {path}: {source}")]
    Truth {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state directory {path}: {source}")]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] kd_core::dir_lock::LockError),
    #[error("state file {path} is corrupt: {reason}")]
    StateCorrupt { path: PathBuf, reason: String },
    #[error("invalid configuration `{param}`: {reason}")]
    InvalidParameter { param: &'static str, reason: String },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error("a simulator task panicked or was cancelled")]
    Task,
}

impl SimConfig {
    /// Rejects values the simulator cannot run with.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |param, reason: &str| {
            Err(SimError::InvalidParameter {
                param,
                reason: reason.to_string(),
            })
        };
        if self.markets > 50_000_000 {
            return bad("markets", "at most 50,000,000");
        }
        if self.market_limit_per_sub == 0 {
            return bad("market_limit_per_sub", "must be at least 1");
        }
        if self.queue_capacity < 16 {
            return bad("queue_capacity", "must be at least 16");
        }
        if self.checkpoint_every.is_zero() {
            return bad("checkpoint_every", "must be positive");
        }
        if self.ping_interval.is_zero() {
            return bad("ping_interval", "must be positive");
        }
        if self.lifecycle_toggles > 600 {
            return bad("lifecycle_toggles", "at most 600 per minute");
        }
        if self.combo_markets > 1_000_000 {
            return bad("combo_markets", "at most 1,000,000");
        }
        if self.market_life < Duration::from_secs(1) {
            return bad("market_life", "must be at least 1 s");
        }
        Ok(())
    }
}
