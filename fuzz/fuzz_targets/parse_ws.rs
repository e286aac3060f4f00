//! Any bytes into `parse_ws` (and, when they are UTF-8, into `parse_ws_text`): each must return
//! a value or a typed error, never panic, and the two must agree.
#![no_main]

use kd_core::TimestampUs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let at = TimestampUs::from_micros(1_782_316_200_123_456);
    let parsed = kd_kalshi::parse::parse_ws(data, at);
    if let Ok(event) = &parsed {
        let _ = (event.kind_name(), event.sid(), event.seq());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let as_text = kd_kalshi::parse::parse_ws_text(text, at);
        assert_eq!(format!("{as_text:?}"), format!("{parsed:?}"));
    }
});
