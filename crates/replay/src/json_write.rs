//! JSON text written straight into a reused byte buffer: escaped strings, integers, Kalshi's
//! decimal strings and RFC 3339 times.
//!
//! Hand-written because the replay renders every message it sends (a million a second at
//! `--speed max`): serde through kd-kalshi's wire structs cost a handful of allocations per
//! message (each field an owned `String`, then the document). The output is byte-for-byte what
//! `serde_json` writes for the same values (the tests in `wire_tests` compare the two), so the
//! replay's messages did not change shape.

use kd_core::{Count, Price, TimestampUs};

/// `"text"` with JSON escaping, exactly as `serde_json` escapes: `"` `\` and control characters
/// only (other bytes, UTF-8 included, are copied).
pub fn string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Decimal digits of `n`.
pub fn uint(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0_u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Decimal digits of `n`, `-` first when negative.
pub fn int(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    uint(out, n.unsigned_abs());
}

/// `n` as exactly `width` digits, zero-padded (`n < 10^width`).
fn padded(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let width = width.min(buf.len());
    for slot in buf[..width].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&buf[..width]);
}

/// `value / 10^scale` with `decimals` fractional digits (kd_core's `write_scaled`).
fn scaled(out: &mut Vec<u8>, value: i64, scale: u32, decimals: u32) {
    let unit = 10_u64.pow(scale);
    if value < 0 {
        out.push(b'-');
    }
    let abs = value.unsigned_abs();
    uint(out, abs / unit);
    if decimals > 0 {
        out.push(b'.');
        padded(
            out,
            (abs % unit) / 10_u64.pow(scale - decimals),
            decimals as usize,
        );
    }
}

/// `"0.4200"`: [`Price::to_dollars`] as a JSON string (four decimals, five when needed).
pub fn dollars(out: &mut Vec<u8>, p: Price) {
    let units = p.units();
    let decimals = if units % 10 == 0 { 4 } else { 5 };
    out.push(b'"');
    scaled(out, units, Price::SCALE, decimals);
    out.push(b'"');
}

/// `"12.00"`: [`Count::to_fp`] as a JSON string.
pub fn fp(out: &mut Vec<u8>, c: Count) {
    out.push(b'"');
    scaled(out, c.hundredths(), Count::SCALE, Count::SCALE);
    out.push(b'"');
}

/// `"2026-12-02T10:14:03.120000Z"`: [`TimestampUs::to_rfc3339`] as a JSON string.
pub fn rfc3339(out: &mut Vec<u8>, ts: TimestampUs) {
    let (y, mo, d, h) = ts.civil();
    if !(0..=9999).contains(&y) {
        // Not a time Kalshi sends: kd_core's own formatting (its `{y:04}` widths).
        string(out, &ts.to_rfc3339());
        return;
    }
    let us = ts.micros();
    let sod = us.div_euclid(1_000_000).rem_euclid(86_400);
    out.push(b'"');
    padded(out, y.unsigned_abs(), 4);
    out.push(b'-');
    padded(out, mo.unsigned_abs(), 2);
    out.push(b'-');
    padded(out, d.unsigned_abs(), 2);
    out.push(b'T');
    padded(out, h.unsigned_abs(), 2);
    out.push(b':');
    padded(out, ((sod % 3600) / 60).unsigned_abs(), 2);
    out.push(b':');
    padded(out, (sod % 60).unsigned_abs(), 2);
    out.push(b'.');
    padded(out, us.rem_euclid(1_000_000).unsigned_abs(), 6);
    out.extend_from_slice(b"Z\"");
}

/// `"key":` (keys are the writer's own constants: no escaping needed).
pub fn key(out: &mut Vec<u8>, name: &str) {
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}
