//! The NO-price flip (issue 16, WIRE.md "2026 changes"): `kalshi-data up` against each NO-side
//! pricing the simulator can model (`--yes-price-default false|true|forced|legacy`), then
//! `verify` against its ground truth, which keeps every NO level on the NO-bid scale.
//!
//! - `false`, `true`, `forced`: the gatherers send `use_yes_price: true` and store NO levels on
//!   the NO-bid scale: `verify: OK`, books included.
//! - `true` with `no_price_scale = "as_received"` (the diagnostic that turns the handling off):
//!   every NO level is stored as `1 − p`, and `verify` must say FAIL naming deltas and books —
//!   the check can fail.
//! - `legacy` (an exchange that ignores the flag: NO-bid pricing whatever is asked): each
//!   gatherer detects the other scale (`gatherer_price_scale_mismatch_total` > 0) and re-reads
//!   it, so nothing wrong is stored and `verify: OK`.
//!
//! The simulator's and the gatherers' settings go through `up`'s environment
//! (`KALSHI_DATA_SIM_YES_PRICE_DEFAULT`, `KALSHI_DATA_GATHERER_NO_PRICE_SCALE`), the same keys
//! as `--sim-arg=--yes-price-default --sim-arg=V` and `--gatherer-setting 'no_price_scale = …'`.

use crate::reliability_support::*;
use std::time::Duration;

const DURATION: u64 = 22;
const EXIT: Duration = Duration::from_secs(240);

fn opts(yes_price_default: &str, handling: Option<&str>) -> UpOpts {
    let mut env = vec![(
        "KALSHI_DATA_SIM_YES_PRICE_DEFAULT".to_string(),
        yes_price_default.to_string(),
    )];
    if let Some(h) = handling {
        env.push(("KALSHI_DATA_GATHERER_NO_PRICE_SCALE".into(), h.into()));
    }
    UpOpts {
        markets: 50,
        rate: 400,
        duration: DURATION,
        env,
        ..UpOpts::default()
    }
}

/// One `up` run to its end; the sum over the gatherers of the mismatch counter, read while
/// they still run, and `verify`'s outcome.
fn run(o: &UpOpts) -> Res<(f64, Verified)> {
    let tmp = tempfile::Builder::new().prefix("kd-noprice-").tempdir()?;
    let dir = tmp.path().join("data");
    let mut up = start_up(&dir, o)?;
    up.wait_ready(Duration::from_secs(90))
        .map_err(|e| format!("{e}\n{}", up.log_text()))?;
    let mut mismatches = 0.0;
    for g in GATHERERS {
        let text = up.metrics(g).unwrap_or_default();
        mismatches += prom::sum(&text, "gatherer_price_scale_mismatch_total").unwrap_or(0.0);
    }
    println!("gatherer_price_scale_mismatch_total (sum over the gatherers): {mismatches}");
    up.wait_exit(EXIT)?;
    let v = verify(&dir, &up.production)?;
    println!("{}", v.text);
    Ok((mismatches, v))
}

fn assert_ok_with_books(v: &Verified) -> Res<()> {
    v.assert_ok()?;
    // books: equal, expected, mismatched, in a gap of every gatherer, before first snapshot.
    if v.books[1] == 0 || v.books[2] != 0 {
        return Err(format!("books not checked or wrong: {:?}\n{}", v.books, v.text).into());
    }
    Ok(())
}

#[test]
fn yes_price_default_true_verifies() -> Res<()> {
    let (mismatches, v) = run(&opts("true", None))?;
    assert_ok_with_books(&v)?;
    assert_eq!(mismatches, 0.0, "the flag was honoured: no mismatch");
    Ok(())
}

#[test]
fn flag_removed_verifies() -> Res<()> {
    let (mismatches, v) = run(&opts("forced", None))?;
    assert_ok_with_books(&v)?;
    assert_eq!(mismatches, 0.0);
    Ok(())
}

#[test]
fn yes_price_default_false_verifies() -> Res<()> {
    let (mismatches, v) = run(&opts("false", None))?;
    assert_ok_with_books(&v)?;
    assert_eq!(mismatches, 0.0);
    Ok(())
}

#[test]
fn handling_disabled_under_the_flip_fails_verify() -> Res<()> {
    let (_, v) = run(&opts("true", Some("as_received")))?;
    assert!(
        !v.passed,
        "verify passed with NO levels stored as 1 − p:\n{}",
        v.text
    );
    assert!(v.last.starts_with("verify: FAIL"), "{}", v.text);
    let deltas = v.cats.get("deltas").copied().unwrap_or_default();
    assert!(
        deltas.missing + deltas.altered + deltas.extra > 0,
        "no delta named wrong:\n{}",
        v.text
    );
    assert!(v.books[2] > 0, "no book named wrong:\n{}", v.text);
    Ok(())
}

#[test]
fn legacy_exchange_is_detected_and_nothing_wrong_is_stored() -> Res<()> {
    let (mismatches, v) = run(&opts("legacy", None))?;
    assert!(mismatches > 0.0, "no mismatch counted:\n{}", v.text);
    assert_ok_with_books(&v)?;
    Ok(())
}
