//! The threads and tasks that make the exchange move: the publisher (a dedicated thread —
//! generation is CPU work that must not starve the async runtime), and the fault driver.

use crate::book::Book;
use crate::faults::FaultSpec;
use crate::persist::IdReservation;
use crate::publish::Item;
use crate::rng::Rng;
use crate::shared::{Ctl, Shared};
use crate::stats::bump;
use crate::truth::{TruthLine, TruthMsg};
use kd_core::{Side, TimestampUs};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Most messages generated under one hold of the exchange lock.
const BATCH: usize = 2_048;

fn checkpoint_lines(
    shared: &Shared,
    truth: &Option<std::sync::mpsc::SyncSender<TruthMsg>>,
    books: Vec<(u32, i64, Book)>,
) {
    let Some(tx) = truth else {
        return;
    };
    if books.is_empty() {
        return;
    }
    let tickers: Vec<String> = {
        let ex = shared.exchange();
        books.iter().map(|(m, _, _)| ex.ticker(*m)).collect()
    };
    for ((_, ts, book), ticker) in books.into_iter().zip(tickers) {
        let _ = tx.send(TruthMsg::Line(Box::new(TruthLine::Book {
            ticker,
            ts: TimestampUs::from_micros(ts),
            yes: book.levels(Side::Yes),
            no: book.levels(Side::No),
        })));
    }
}

/// `market` truth lines for markets that became listed (see [`TruthLine::Market`]).
pub(crate) fn listed_lines(
    ex: &crate::engine::Exchange,
    listed: Vec<(u32, i64, Option<crate::publish::Channel>)>,
) -> Vec<TruthLine> {
    listed
        .into_iter()
        .map(|(m, at, announced)| TruthLine::Market {
            ticker: ex.ticker(m),
            event_ticker: ex.event_ticker_of(m),
            listed_at: TimestampUs::from_micros(at),
            combo: ex.is_combo(m),
            announced: announced.map(|c| c.name().to_string()),
        })
        .collect()
}

/// A periodic action of market life: due when `next` has passed; `every` zero means never.
struct Every {
    every: Duration,
    next: Instant,
}

impl Every {
    fn new(every: Duration) -> Every {
        Every {
            every,
            next: Instant::now() + every,
        }
    }

    fn due(&mut self, now: Instant) -> bool {
        if self.every.is_zero() || now < self.next {
            return false;
        }
        self.next = now + self.every;
        true
    }
}

/// Publishes until `stop`: paces generation to the configured rate, runs the market schedule,
/// and writes book check points.
pub(crate) fn publisher(
    shared: Arc<Shared>,
    stop: CancellationToken,
    mut ids: Option<IdReservation>,
    truth: Option<std::sync::mpsc::SyncSender<TruthMsg>>,
) {
    let cfg = &shared.cfg;
    let mut last = Instant::now();
    let mut budget = 0.0_f64;
    let mut next_life = Instant::now() + cfg.create_every;
    let mut combos = Every::new(cfg.combo_create_every);
    let mut toggles = Every::new(match cfg.lifecycle_toggles {
        0 => Duration::ZERO,
        n => Duration::from_secs(60) / n,
    });
    let mut fees = Every::new(cfg.fee_update_every);
    let mut silent = Every::new(cfg.silent_market_every);
    let mut cache = Every::new(Duration::from_micros(
        shared.exchange().rest_cache_period_us().max(0) as u64,
    ));
    let mut next_ckpt = Instant::now() + cfg.checkpoint_every;
    let mut out: Vec<Item> = Vec::with_capacity(BATCH * 4);
    let mut due: Vec<Item> = Vec::with_capacity(BATCH * 4);
    let mut lagged: std::collections::VecDeque<(Instant, Item)> = Default::default();
    let mut was_publishing = true;
    let burst_period = Duration::from_secs(10);
    // Periodic saves of the whole exchange, for universes small enough to save quickly (a
    // crash loses at most this interval of market state; ids are protected by the reservation).
    let save_every = Duration::from_secs(60);
    let mut next_save = Instant::now() + save_every;
    let started = Instant::now();
    loop {
        if stop.is_cancelled() {
            break;
        }
        let now = Instant::now();
        let publishing = shared.publishing.load(Ordering::Relaxed)
            && shared.faults.maintenance_until(now).is_none();
        let dt = now.duration_since(last).as_secs_f64();
        last = now;
        // One second in every ten runs at `burst_factor` times the rate.
        let in_burst = (now.duration_since(started).as_secs() % burst_period.as_secs()) == 9;
        let rate = f64::from(cfg.rate)
            * if in_burst {
                f64::from(cfg.burst_factor.max(1))
            } else {
                1.0
            };
        if publishing {
            budget = (budget + rate * dt).min(rate * 0.05 + BATCH as f64);
        } else {
            budget = 0.0;
        }
        let n = (budget.floor() as usize).min(BATCH);
        let now_us = TimestampUs::now().micros();
        let mut books = Vec::new();
        let mut listed = Vec::new();
        {
            let mut ex = shared.exchange();
            if cache.due(now) {
                ex.refresh_rest_cache(now_us);
            }
            if publishing {
                ex.run_due(now_us, &mut out);
                if !cfg.create_every.is_zero() && now >= next_life {
                    ex.life_tick(now_us, &mut out);
                    next_life = now + cfg.create_every;
                }
                if combos.due(now) {
                    ex.combo_tick(now_us, &mut out);
                }
                if toggles.due(now) {
                    ex.toggle_tick(now_us, &mut out);
                }
                if fees.due(now) {
                    ex.fee_tick(now_us, &mut out);
                }
                if silent.due(now) {
                    ex.silent_tick(now_us);
                }
                if n > 0 {
                    ex.step(n, now_us, shared.faults.drop_all_prob(), &mut out);
                }
            }
            let ckpt_due = now >= next_ckpt || (was_publishing && !publishing);
            if ckpt_due && truth.is_some() {
                books = ex.take_checkpoint(now_us);
            }
            if now >= next_ckpt {
                next_ckpt = now + cfg.checkpoint_every;
            }
            if let Some(ids) = ids.as_mut() {
                ids.ensure(ex.next_trade);
            }
            if !ex.listed.is_empty() {
                let new = std::mem::take(&mut ex.listed);
                if truth.is_some() {
                    listed = listed_lines(&ex, new);
                }
            }
        }
        if let Some(tx) = &truth {
            for line in listed {
                let _ = tx.send(TruthMsg::Line(Box::new(line)));
            }
        }
        if let Some(dir) = cfg.state_dir.as_ref()
            && now >= next_save
        {
            next_save = now + save_every;
            let state = {
                let ex = shared.exchange();
                (ex.market_count() <= 200_000).then(|| ex.save())
            };
            if let Some(state) = state
                && let Err(e) = crate::persist::save_exchange(dir, &state)
            {
                tracing::error!(error = %e, "cannot save the exchange state");
            }
        }
        was_publishing = publishing;
        budget -= out.len() as f64;
        // The send queue (`send_lag`): messages leave it in the order they were made, once
        // their lag has passed; all at once when publishing stops (nothing is left unsent).
        if cfg.send_lag.is_zero() {
            due.append(&mut out);
        } else {
            lagged.extend(out.drain(..).map(|item| (now + cfg.send_lag, item)));
            while lagged
                .front()
                .is_some_and(|(at, _)| *at <= now || !publishing)
            {
                if let Some((_, item)) = lagged.pop_front() {
                    due.push(item);
                }
            }
        }
        let sent_us = if cfg.send_lag.is_zero() {
            now_us
        } else {
            TimestampUs::now().micros()
        };
        for mut item in due.drain(..) {
            item.sent_us = sent_us;
            bump(&shared.stats.published[item.channel.index()]);
            if item.drop_all {
                bump(&shared.stats.dropped_all);
            }
            item.remaining
                .store(shared.tx.receiver_count() as u32, Ordering::Release);
            let item = Arc::new(item);
            if let (Some(tx), true) = (&truth, item.record.is_some()) {
                let _ = tx.send(TruthMsg::Item(item.clone()));
            }
            let _ = shared.tx.send(item);
        }
        checkpoint_lines(&shared, &truth, books);
        if !publishing {
            shared.paused_ack.store(true, Ordering::SeqCst);
        }
        if n == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let books = shared
        .exchange()
        .take_checkpoint(TimestampUs::now().micros());
    checkpoint_lines(&shared, &truth, books);
}

/// Fires periodic faults (`ws-close`, `ws-stall`) against random connections.
pub(crate) async fn fault_driver(shared: Arc<Shared>, stop: CancellationToken) {
    let mut fired: HashMap<(Instant, usize), u64> = HashMap::new();
    let mut rng = Rng::derive(shared.cfg.seed, 0xFA17);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        for (idx, f) in shared.faults.list().into_iter().enumerate() {
            let key = (f.added, idx);
            let done = fired.get(&key).copied().unwrap_or(0);
            let elapsed = now.duration_since(f.added);
            let (due, ctl) = match f.spec {
                FaultSpec::WsClose { code, every: None } => {
                    (u64::from(done == 0), Ctl::Close(code))
                }
                FaultSpec::WsClose {
                    code,
                    every: Some(e),
                } => (
                    (elapsed.as_secs_f64() / e.as_secs_f64()) as u64,
                    Ctl::Close(code),
                ),
                FaultSpec::WsStall { every, duration } => (
                    (elapsed.as_secs_f64() / every.as_secs_f64()) as u64,
                    Ctl::Stall(duration),
                ),
                _ => continue,
            };
            let all_once = matches!(f.spec, FaultSpec::WsClose { every: None, .. });
            if all_once {
                if done > 0 {
                    continue;
                }
            } else if due <= done {
                continue;
            }
            fired.insert(key, if all_once { 1 } else { due });
            let conns = shared.conn_ids();
            if conns.is_empty() {
                continue;
            }
            let targets: Vec<_> = if all_once {
                conns
            } else {
                vec![conns[rng.below(conns.len() as u64) as usize].clone()]
            };
            for (id, tx) in targets {
                if tx.try_send(ctl).is_ok() {
                    match ctl {
                        Ctl::Close(_) => bump(&shared.stats.ws_closed_by_fault),
                        Ctl::Stall(_) => bump(&shared.stats.ws_stalls),
                    }
                    shared.fault_event("fired", &f.spec, Some(format!("connection {id}")));
                }
            }
        }
        fired.retain(|(added, _), _| shared.faults.list().iter().any(|f| f.added == *added));
    }
}
