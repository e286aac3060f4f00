//! The simulated universe's static shape: which series, events and markets exist and what they
//! are called, derived from indices so a million markets cost no strings until asked for.
//!
//! Market `m` belongs to event `m % events`; event `e` belongs to series `e % series`. Tickers
//! follow the live exchange's shape and the spec's pattern (`^[A-Z0-9-]+$`):
//! series `SIM3`, event `SIM3-E13`, market `SIM3-E13-M1013`.

/// Tick structure of a market: `linear_cent` (step 0.01) or `deci_cent` (step 0.001).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ticks {
    LinearCent,
    DeciCent,
}

impl Ticks {
    /// Step in price units (hundred-thousandths of a dollar).
    pub const fn step(self) -> i64 {
        match self {
            Ticks::LinearCent => 1_000,
            Ticks::DeciCent => 100,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Ticks::LinearCent => "linear_cent",
            Ticks::DeciCent => "deci_cent",
        }
    }

    pub const fn step_dollars(self) -> &'static str {
        match self {
            Ticks::LinearCent => "0.0100",
            Ticks::DeciCent => "0.0010",
        }
    }
}

/// Counts of series and events (markets grow while running and are counted by the exchange).
#[derive(Debug, Clone, Copy)]
pub struct Universe {
    pub series: u32,
    pub events: u32,
}

impl Universe {
    pub fn new(series: usize, events: usize) -> Self {
        let series = series.clamp(1, u32::MAX as usize) as u32;
        let events = events.clamp(1, u32::MAX as usize) as u32;
        Universe {
            series,
            events: events.max(series),
        }
    }

    pub const fn event_of(&self, market: u32) -> u32 {
        market % self.events
    }

    pub const fn series_of_event(&self, event: u32) -> u32 {
        event % self.series
    }

    pub fn series_ticker(&self, series: u32) -> String {
        format!("SIM{series}")
    }

    pub fn event_ticker(&self, event: u32) -> String {
        format!("SIM{}-E{event}", self.series_of_event(event))
    }

    pub fn market_ticker(&self, market: u32) -> String {
        let e = self.event_of(market);
        format!("SIM{}-E{e}-M{market}", self.series_of_event(e))
    }

    pub fn ticks(&self, market: u32) -> Ticks {
        if market % 4 == 3 {
            Ticks::DeciCent
        } else {
            Ticks::LinearCent
        }
    }

    /// Index of a market ticker, if it names one of the first `count` markets.
    pub fn parse_market(&self, ticker: &str, count: u32) -> Option<u32> {
        let (_, m) = ticker.rsplit_once("-M")?;
        let m: u32 = m.parse().ok()?;
        (m < count && self.market_ticker(m) == ticker).then_some(m)
    }

    pub fn parse_event(&self, ticker: &str) -> Option<u32> {
        let (_, e) = ticker.rsplit_once("-E")?;
        let e: u32 = e.parse().ok()?;
        (e < self.events && self.event_ticker(e) == ticker).then_some(e)
    }

    pub fn parse_series(&self, ticker: &str) -> Option<u32> {
        let s: u32 = ticker.strip_prefix("SIM")?.parse().ok()?;
        (s < self.series && self.series_ticker(s) == ticker).then_some(s)
    }

    /// Markets of event `e` among the first `count`, ascending.
    pub fn markets_of_event(&self, e: u32, count: u32) -> impl Iterator<Item = u32> + use<> {
        (u64::from(e)..u64::from(count))
            .step_by(self.events as usize)
            .map(|m| m as u32)
    }

    pub fn series_title(&self, s: u32) -> String {
        format!("Simulated series {s}")
    }

    pub fn event_title(&self, e: u32) -> String {
        format!("Simulated event {e}")
    }

    /// The strike of a market (its `floor_strike`), a plain number for the metadata.
    pub fn strike(&self, market: u32) -> u32 {
        (market / self.events) * 5 + 50
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickers_round_trip() {
        let u = Universe::new(3, 10);
        for m in 0..100 {
            let t = u.market_ticker(m);
            assert_eq!(u.parse_market(&t, 100), Some(m));
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
            );
        }
        assert_eq!(u.parse_market("SIM0-E1-M1", 100), None);
        assert_eq!(u.parse_market(&u.market_ticker(100), 100), None);
        assert_eq!(u.parse_event(&u.event_ticker(7)), Some(7));
        assert_eq!(u.parse_series("SIM2"), Some(2));
        assert_eq!(
            u.markets_of_event(3, 35).collect::<Vec<_>>(),
            vec![3, 13, 23, 33]
        );
    }
}
