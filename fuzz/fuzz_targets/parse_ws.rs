//! Any bytes into `parse_ws`: must return a value or a typed error, never panic.
#![no_main]

use kd_core::TimestampUs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let at = TimestampUs::from_micros(1_782_316_200_123_456);
    if let Ok(event) = kd_kalshi::parse::parse_ws(data, at) {
        let _ = (event.kind_name(), event.sid(), event.seq());
    }
});
