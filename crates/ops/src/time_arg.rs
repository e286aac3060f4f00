//! Time arguments of the commands: RFC 3339 (`2026-06-24T15:49:55.033836Z`) or integer
//! microseconds since the Unix epoch.

use kd_core::TimestampUs;

/// Parses a time flag.
pub fn parse_time(text: &str) -> Result<TimestampUs, String> {
    if let Ok(us) = text.parse::<i64>() {
        return Ok(TimestampUs::from_micros(us));
    }
    TimestampUs::parse_rfc3339(text)
        .map_err(|e| format!("`{text}`: {e} (use RFC 3339 or microseconds since the epoch)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_parse() {
        assert_eq!(parse_time("5").map(TimestampUs::micros), Ok(5));
        assert_eq!(
            parse_time("2022-11-22T20:44:01Z").map(TimestampUs::micros),
            Ok(1_669_149_841_000_000)
        );
        assert!(parse_time("yesterday").is_err());
    }
}
