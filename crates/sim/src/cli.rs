//! `kalshi-data sim`: arguments and the run loop.

use crate::config::{AuthMode, SimConfig, SimError, YesPriceDefault};
use crate::faults::{FaultParseError, FaultSpec, parse_fault};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| e.to_string())
}

fn fault(text: &str) -> Result<FaultSpec, FaultParseError> {
    parse_fault(text)
}

/// Run the Kalshi exchange simulator (REST + WebSocket + faults + ground truth).
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Address for REST, WebSocket and the `/_sim` control endpoints. Beyond loopback only
    /// with `--auth` (refused otherwise).
    #[arg(long, default_value = "127.0.0.1:8787", env = "KALSHI_DATA_SIM_LISTEN")]
    pub listen: SocketAddr,
    /// Everything the exchange does follows from this seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 10)]
    pub series: usize,
    #[arg(long, default_value_t = 100)]
    pub events: usize,
    /// Markets at start (up to millions; more are created while running).
    #[arg(long, default_value_t = 1_000)]
    pub markets: usize,
    /// Data messages per second overall.
    #[arg(long, default_value_t = 1_000)]
    pub rate: u32,
    /// A fault spec (repeatable), e.g. `http:503:/markets*:0.05`, `ws-drop:0.01`.
    #[arg(long = "fault", value_parser = fault)]
    pub faults: Vec<FaultSpec>,
    /// Append the ground-truth log (JSON lines) to this file.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Accept WebSocket handshakes signed by this key: `KEY_ID=PUBLIC_KEY_PEM_FILE` (or the
    /// PEM text itself). Repeatable.
    #[arg(long = "auth", conflicts_with = "no_auth")]
    pub auth: Vec<String>,
    /// Accept every WebSocket handshake without a signature.
    #[arg(long)]
    pub no_auth: bool,
    /// Most markets one subscription may hold (error 26 beyond).
    #[arg(long, default_value_t = 10_000)]
    pub market_limit: usize,
    /// How often changed books go to the ground truth.
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub checkpoint_every: Duration,
    /// Keep the trade-id counter here so a restart never reuses an id.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Server ping interval (Kalshi: 10 s).
    #[arg(
        long,
        default_value = "10s",
        value_parser = duration,
        env = "KALSHI_DATA_SIM_PING_INTERVAL"
    )]
    pub ping_interval: Duration,
    /// Life of a market created while running (creation to close).
    #[arg(long, default_value = "10m", value_parser = duration)]
    pub market_life: Duration,
    /// Create a market this often (0s: never).
    #[arg(long, default_value = "5s", value_parser = duration)]
    pub create_every: Duration,
    /// Markets with order-book activity at a time.
    #[arg(long, default_value_t = 5_000)]
    pub hot_markets: usize,
    /// Messages a subscriber may fall behind before it is cut off (error 25).
    #[arg(long, default_value_t = 65_536)]
    pub queue_capacity: usize,
    /// Rate multiplier during bursts (one second in ten).
    #[arg(long, default_value_t = 3)]
    pub burst_factor: u32,
    /// Serve REST order books from an edge cache refreshed every N ms (0: always fresh).
    #[arg(long, default_value_t = 0, env = "KALSHI_DATA_SIM_REST_BOOK_CACHE_MS")]
    pub rest_book_cache_ms: u64,
    /// Bursts per minute of repeated pauses of one market (deactivated, activated,
    /// deactivated, activated within about 10 s). 0: none.
    #[arg(long, default_value_t = 0, env = "KALSHI_DATA_SIM_LIFECYCLE_TOGGLES")]
    pub lifecycle_toggles: u32,
    /// Multivariate (combo) markets at start; their lifecycle is only on
    /// `multivariate_market_lifecycle`.
    #[arg(long, default_value_t = 0, env = "KALSHI_DATA_SIM_COMBO_MARKETS")]
    pub combo_markets: usize,
    /// Create a combo market this often while running (0s: never).
    #[arg(long, default_value = "0s", value_parser = duration, env = "KALSHI_DATA_SIM_COMBO_CREATE_EVERY")]
    pub combo_create_every: Duration,
    /// Publish an `event_fee_update` this often (0s: never).
    #[arg(long, default_value = "0s", value_parser = duration, env = "KALSHI_DATA_SIM_FEE_UPDATE_EVERY")]
    pub fee_update_every: Duration,
    /// NO-side pricing when a subscription sends no `use_yes_price`: `false` (today), `true`
    /// (Kalshi's announced flip), `forced` (the flag removed: YES-leg pricing always) or
    /// `legacy` (an exchange from before the flag: NO-bid pricing always, the flag ignored).
    #[arg(
        long,
        value_enum,
        default_value = "false",
        env = "KALSHI_DATA_SIM_YES_PRICE_DEFAULT"
    )]
    pub yes_price_default: YesPriceDefault,
    /// How far behind now `GET /historical/cutoff` sits; older trades leave `/markets/trades`
    /// for `/historical/trades`.
    #[arg(
        long,
        default_value_t = 3_600,
        env = "KALSHI_DATA_SIM_HISTORICAL_CUTOFF_LAG_S"
    )]
    pub historical_cutoff_lag_s: u64,
    /// Commands per second per connection before error 27 "too many requests" (0: no limit).
    #[arg(long, default_value_t = 0, env = "KALSHI_DATA_SIM_COMMAND_RATE_LIMIT")]
    pub command_rate_limit: u32,
    /// This often a market appears on REST without a `created` message and another closes
    /// early without any message (0s: never).
    #[arg(long, default_value = "0s", value_parser = duration, env = "KALSHI_DATA_SIM_SILENT_MARKET_EVERY")]
    pub silent_market_every: Duration,
    /// How long each data message waits in the exchange's send queue after it is made and
    /// stamped (an exchange running behind; snapshots still show the current book, folding in
    /// the queued changes). 0s: sent at once.
    #[arg(long, default_value = "0s", value_parser = duration, env = "KALSHI_DATA_SIM_SEND_LAG")]
    pub send_lag: Duration,
}

/// Why `kalshi-data sim` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum SimCliError {
    #[error(transparent)]
    AuthArg(#[from] kd_kalshi::auth::KeyArgError),
    #[error(
        "--listen {0} is not a loopback address: give --auth KEY_ID=PUBLIC_KEY_PEM_FILE (or listen on 127.0.0.1); \
         without it anyone who can reach the address could connect unsigned and POST /_sim/faults"
    )]
    ExposedWithoutAuth(SocketAddr),
    #[error(transparent)]
    Sim(#[from] SimError),
}

impl SimArgs {
    /// The configuration these arguments describe.
    pub fn to_config(&self) -> Result<SimConfig, SimCliError> {
        // Beyond loopback the simulator is reachable by others: only with signed handshakes.
        if (self.no_auth || self.auth.is_empty()) && !self.listen.ip().is_loopback() {
            return Err(SimCliError::ExposedWithoutAuth(self.listen));
        }
        let auth = if self.no_auth || self.auth.is_empty() {
            if !self.no_auth {
                tracing::warn!(
                    "no --auth key given: accepting unsigned WebSocket handshakes (--no-auth)"
                );
            }
            AuthMode::NoAuth
        } else {
            let mut keys = Vec::new();
            for a in &self.auth {
                keys.push(kd_kalshi::auth::key_arg(a)?);
            }
            AuthMode::Keys(keys)
        };
        Ok(SimConfig {
            listen: self.listen,
            seed: self.seed,
            series: self.series,
            events: self.events,
            markets: self.markets,
            rate: self.rate,
            faults: self.faults.clone(),
            truth: self.truth.clone(),
            auth,
            market_limit_per_sub: self.market_limit,
            checkpoint_every: self.checkpoint_every,
            state_dir: self.state_dir.clone(),
            ping_interval: self.ping_interval,
            market_life: self.market_life,
            create_every: self.create_every,
            hot_markets: self.hot_markets,
            queue_capacity: self.queue_capacity,
            burst_factor: self.burst_factor,
            rest_book_cache: Duration::from_millis(self.rest_book_cache_ms),
            lifecycle_toggles: self.lifecycle_toggles,
            combo_markets: self.combo_markets,
            combo_create_every: self.combo_create_every,
            fee_update_every: self.fee_update_every,
            yes_price_default: self.yes_price_default,
            historical_cutoff_lag: Duration::from_secs(self.historical_cutoff_lag_s),
            command_rate_limit: self.command_rate_limit,
            silent_market_every: self.silent_market_every,
            send_lag: self.send_lag,
            ..SimConfig::default()
        })
    }
}

/// Runs the simulator until Ctrl-C / SIGTERM.
pub async fn run(args: SimArgs) -> Result<(), SimCliError> {
    let config = args.to_config()?;
    let shutdown = kd_core::shutdown::on_signal();
    let handle = crate::start(config, shutdown.clone()).await?;
    // systemd: ready once serving; the watchdog pings from this runtime while it turns.
    kd_core::sd_notify::spawn(|| true, shutdown);
    eprintln!(
        "simulator: REST {}  WebSocket {}  control {}/_sim/faults, {}/_sim/stats",
        handle.rest_base(),
        handle.ws_url(),
        handle.control_base(),
        handle.control_base()
    );
    handle.join().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[test]
    fn todays_kalshi_flags_reach_the_config() {
        let cli = Cli::try_parse_from([
            "sim",
            "--no-auth",
            "--rest-book-cache-ms",
            "2000",
            "--lifecycle-toggles",
            "6",
            "--combo-markets",
            "9",
            "--combo-create-every",
            "2s",
            "--fee-update-every",
            "30s",
            "--yes-price-default",
            "forced",
            "--historical-cutoff-lag-s",
            "20",
            "--command-rate-limit",
            "10",
            "--silent-market-every",
            "15s",
        ]);
        let cfg = cli
            .map_err(|e| e.to_string())
            .and_then(|c| c.sim.to_config().map_err(|e| e.to_string()));
        let cfg = cfg.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.rest_book_cache, Duration::from_secs(2));
        assert_eq!(cfg.lifecycle_toggles, 6);
        assert_eq!(cfg.combo_markets, 9);
        assert_eq!(cfg.combo_create_every, Duration::from_secs(2));
        assert_eq!(cfg.fee_update_every, Duration::from_secs(30));
        assert_eq!(cfg.yes_price_default, YesPriceDefault::Forced);
        assert_eq!(cfg.historical_cutoff_lag, Duration::from_secs(20));
        assert_eq!(cfg.command_rate_limit, 10);
        assert_eq!(cfg.silent_market_every, Duration::from_secs(15));
        // Defaults: everything new is off, the cutoff an hour back.
        let cli = Cli::try_parse_from(["sim", "--no-auth"]).map_err(|e| e.to_string());
        let cfg = cli
            .and_then(|c| c.sim.to_config().map_err(|e| e.to_string()))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.rest_book_cache, Duration::ZERO);
        assert_eq!(cfg.yes_price_default, YesPriceDefault::False);
        assert_eq!(cfg.historical_cutoff_lag, Duration::from_secs(3_600));
        assert!(YesPriceDefault::True.yes_leg(None) && !YesPriceDefault::True.yes_leg(Some(false)));
        assert!(
            YesPriceDefault::Forced.yes_leg(Some(false)) && !YesPriceDefault::False.yes_leg(None)
        );
        assert!(
            !YesPriceDefault::Legacy.yes_leg(Some(true)) && !YesPriceDefault::Legacy.yes_leg(None)
        );
    }

    fn config_of(args: &[&str]) -> Result<SimConfig, String> {
        Cli::try_parse_from(args)
            .map_err(|e| e.to_string())
            .and_then(|c| c.sim.to_config().map_err(|e| e.to_string()))
    }

    #[test]
    fn a_non_loopback_listen_needs_auth() {
        for args in [
            &["sim", "--listen", "0.0.0.0:8787"][..],
            &["sim", "--listen", "0.0.0.0:8787", "--no-auth"][..],
            &["sim", "--listen", "[::]:8787"][..],
        ] {
            let err = config_of(args).err().unwrap_or_default();
            assert!(
                err.contains("not a loopback address") && err.contains("--auth"),
                "{args:?}: {err}"
            );
        }
        // Loopback without auth stays allowed (tests, a laptop), and beyond it with a key.
        assert!(config_of(&["sim", "--listen", "127.0.0.1:0", "--no-auth"]).is_ok());
        let with_key = config_of(&[
            "sim",
            "--listen",
            "0.0.0.0:8787",
            "--auth",
            "key-1=-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        ]);
        assert!(with_key.is_ok(), "{with_key:?}");
    }
}
