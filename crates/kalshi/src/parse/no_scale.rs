//! The NO side's price scale on the wire, and the one scale records keep.
//!
//! Records keep every NO level (snapshot level, delta price) on the **NO-bid scale**: the price a
//! NO buyer pays, in `kd_core::units` (1/100 000 dollar) — what Kalshi sent before
//! `use_yes_price` existed and what production has always held. A subscription with
//! `use_yes_price: true` receives NO levels in YES-leg pricing, `1 − p`; the parser maps them
//! back exactly (`p = 100 000 − wire`). The mapping is its own inverse, so reading a level on the
//! wrong scale and correcting it later is the same operation (see [`NoScale::flip_level`]).

use kd_core::Price;
use kd_core::Side;
use kd_core::records::{Level, OrderbookDelta, OrderbookSnapshot};

/// How one subscription's NO levels arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NoScale {
    /// NO bids at the NO buyer's price (`use_yes_price: false`, and every exchange before the
    /// flag). Stored as received.
    #[default]
    NoBid,
    /// YES-leg pricing (`use_yes_price: true`, Kalshi's announced default, later the only
    /// behaviour): a NO bid at p arrives as `1 − p`.
    YesLeg,
}

impl NoScale {
    /// The scale a subscription that sent `use_yes_price` (or nothing: `None`) asked for,
    /// assuming the exchange's documented default of `false`.
    pub const fn asked(use_yes_price: Option<bool>) -> NoScale {
        match use_yes_price {
            Some(true) => NoScale::YesLeg,
            Some(false) | None => NoScale::NoBid,
        }
    }

    /// The other scale.
    pub const fn other(self) -> NoScale {
        match self {
            NoScale::NoBid => NoScale::YesLeg,
            NoScale::YesLeg => NoScale::NoBid,
        }
    }

    /// The stored (NO-bid) price of a NO level received at `wire` on this scale. Exact; total
    /// on every valid price (`0` and `1` swap on the YES-leg scale).
    pub const fn to_stored(self, wire: Price) -> Price {
        match self {
            NoScale::NoBid => wire,
            NoScale::YesLeg => wire.complement(),
        }
    }

    /// The wire price on this scale of a stored NO level (inverse of [`NoScale::to_stored`]).
    pub const fn to_wire(self, stored: Price) -> Price {
        // The YES-leg mapping is an involution: the same formula both ways.
        self.to_stored(stored)
    }

    /// The NO levels of a snapshot (ascending on the wire) on the stored scale, ascending.
    pub fn levels(self, mut levels: Vec<Level>) -> Vec<Level> {
        if self == NoScale::YesLeg {
            for l in &mut levels {
                l.price = l.price.complement();
            }
            levels.reverse();
        }
        levels
    }

    /// Re-reads a snapshot that was converted as if on `self` when it was on the other scale.
    pub fn flip_snapshot(snapshot: &mut OrderbookSnapshot) {
        let no = std::mem::take(&mut snapshot.no);
        snapshot.no = NoScale::YesLeg.levels(no);
    }

    /// Re-reads a delta converted on the wrong scale (NO side only; YES levels never move).
    pub fn flip_delta(delta: &mut OrderbookDelta) {
        if delta.side == Side::No {
            delta.price = delta.price.complement();
        }
    }

    /// One level flipped (the involution itself).
    pub fn flip_level(level: Level) -> Level {
        Level {
            price: level.price.complement(),
            size: level.size,
        }
    }

    /// The label used in metrics, logs and notes.
    pub const fn as_str(self) -> &'static str {
        match self {
            NoScale::NoBid => "no_bid",
            NoScale::YesLeg => "yes_leg",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kd_core::Count;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip_on_both_scales(units in 0i64..=100_000) {
            let p = Price::new(units).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for s in [NoScale::NoBid, NoScale::YesLeg] {
                prop_assert_eq!(s.to_stored(s.to_wire(p)), p);
                prop_assert_eq!(s.to_wire(s.to_stored(p)), p);
            }
            prop_assert_eq!(NoScale::YesLeg.to_stored(p).units(), 100_000 - units);
            prop_assert_eq!(NoScale::NoBid.to_stored(p), p);
        }

        #[test]
        fn levels_stay_ascending_and_keep_sizes(
            mut raw in proptest::collection::vec((0i64..=100_000, 1i64..1_000_000), 0..20)
        ) {
            raw.sort_unstable();
            let levels: Vec<Level> = raw
                .iter()
                .filter_map(|&(p, s)| Some(Level { price: Price::new(p).ok()?, size: Count::new(s) }))
                .collect();
            let stored = NoScale::YesLeg.levels(levels.clone());
            prop_assert!(stored.windows(2).all(|w| w[0].price <= w[1].price));
            let mut back: Vec<Level> = stored.into_iter().map(NoScale::flip_level).collect();
            back.sort_by_key(|l| (l.price, l.size));
            let mut want = levels.clone();
            want.sort_by_key(|l| (l.price, l.size));
            prop_assert_eq!(back, want);
            prop_assert_eq!(NoScale::NoBid.levels(levels.clone()), levels);
        }
    }

    fn scaled(
        frame: &str,
        scale: NoScale,
    ) -> Result<crate::parse::WsEvent, crate::parse::WsParseError> {
        crate::parse::parse_ws_frame_scaled(
            crate::parse::WsFrame::Text(frame),
            crate::parse::ReceiveTimes::same(kd_core::TimestampUs::from_micros(
                1_700_000_000_000_000,
            )),
            &|_| scale,
        )
    }

    #[test]
    fn parser_converts_no_levels_of_the_sid() -> Result<(), Box<dyn std::error::Error>> {
        use crate::parse::WsEvent;
        let snap = r#"{"type":"orderbook_snapshot","sid":2,"seq":1,"msg":{"market_ticker":"M",
            "yes_dollars_fp":[["0.3000","5.00"]],"no_dollars_fp":[["0.4000","1.00"],["0.9900","2.00"]]}}"#;
        let WsEvent::Snapshot { snapshot, .. } = scaled(snap, NoScale::YesLeg)? else {
            return Err("not a snapshot".into());
        };
        let no: Vec<(i64, i64)> = snapshot
            .no
            .iter()
            .map(|l| (l.price.units(), l.size.hundredths()))
            .collect();
        assert_eq!(no, vec![(1_000, 200), (60_000, 100)]);
        assert_eq!(snapshot.yes[0].price.units(), 30_000);
        let WsEvent::Snapshot { snapshot, .. } = scaled(snap, NoScale::NoBid)? else {
            return Err("not a snapshot".into());
        };
        assert_eq!(snapshot.no[1].price.units(), 99_000);
        let delta = |side: &str, p: &str| {
            format!(
                r#"{{"type":"orderbook_delta","sid":2,"seq":2,"msg":{{"market_ticker":"M","side":"{side}",
            "price_dollars":"{p}","delta_fp":"-1.00","ts_ms":1700000000005}}}}"#
            )
        };
        let WsEvent::Delta { delta: d, .. } = scaled(&delta("no", "0.7200"), NoScale::YesLeg)?
        else {
            return Err("not a delta".into());
        };
        assert_eq!(d.price.units(), 28_000);
        let WsEvent::Delta { delta: d, .. } = scaled(&delta("yes", "0.7200"), NoScale::YesLeg)?
        else {
            return Err("not a delta".into());
        };
        assert_eq!(d.price.units(), 72_000);
        for p in ["1.0001", "-0.01"] {
            assert!(matches!(
                scaled(&delta("no", p), NoScale::YesLeg),
                Err(crate::parse::WsParseError::Field {
                    field: "price_dollars",
                    ..
                })
            ));
        }
        Ok(())
    }

    #[test]
    fn edges_swap_and_invalid_is_refused() -> Result<(), kd_core::UnitError> {
        assert_eq!(NoScale::YesLeg.to_stored(Price::ZERO), Price::ONE_DOLLAR);
        assert_eq!(NoScale::YesLeg.to_stored(Price::ONE_DOLLAR), Price::ZERO);
        assert_eq!(
            NoScale::YesLeg.to_stored(Price::new(50_000)?).units(),
            50_000
        );
        // A wire price outside 0..=1 never reaches the conversion: the unit type refuses it.
        assert!(Price::new(100_001).is_err() && Price::new(-1).is_err());
        assert_eq!(NoScale::asked(Some(true)), NoScale::YesLeg);
        assert_eq!(NoScale::asked(None), NoScale::NoBid);
        assert_eq!(NoScale::YesLeg.other(), NoScale::NoBid);
        Ok(())
    }
}
