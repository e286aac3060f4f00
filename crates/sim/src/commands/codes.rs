//! The texts of the `error` replies the simulator sends. The codes themselves are
//! [`kd_kalshi::ws::ErrorCode`] (issue 15: kd-kalshi owns the vocabulary); the texts stay here
//! because `ErrorCode` carries none, and they are the asyncapi `x-error-codes` names exactly.

use kd_kalshi::ws::ErrorCode;

/// The `msg.msg` of an error reply: the asyncapi `x-error-codes` name of the code. Codes the
/// simulator never chooses by itself (shard, match/index/underlying ids, retired, unknown; a
/// `sub-error` fault can still pick them) get the generic "Error" the simulator has always sent.
pub fn error_text(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Processing => "Unable to process message",
        ErrorCode::ParamsRequired => "Params required",
        ErrorCode::ChannelsRequired => "Channels required",
        ErrorCode::SidsRequired => "Subscription IDs required",
        ErrorCode::UnknownCommand => "Unknown command",
        ErrorCode::UnknownSid => "Unknown subscription ID",
        ErrorCode::UnknownChannel => "Unknown channel name",
        ErrorCode::AuthenticationRequired => "Authentication required",
        ErrorCode::ChannelError => "Channel error",
        ErrorCode::InvalidParameter => "Invalid parameter",
        ErrorCode::ExactlyOneSid => "Exactly one subscription ID is required",
        ErrorCode::UnsupportedAction => "Unsupported action",
        ErrorCode::MarketTickerRequired => "Market Ticker required",
        ErrorCode::ActionRequired => "Action required",
        ErrorCode::CommandTimeout => "Command timeout",
        ErrorCode::BufferOverflow => "Subscription buffer overflow",
        ErrorCode::MarketLimit => "Subscription market limit exceeded",
        ErrorCode::TooManyRequests => "Too many requests",
        ErrorCode::Shard(_)
        | ErrorCode::MatchIdsRequired
        | ErrorCode::IndexIdsRequired
        | ErrorCode::UnderlyingTickersRequired
        | ErrorCode::Retired(_)
        | ErrorCode::Other(_) => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts the simulator sent by bare number before issue 15, unchanged.
    #[test]
    fn texts_are_unchanged() {
        let expected = [
            (1, "Unable to process message"),
            (2, "Params required"),
            (3, "Channels required"),
            (4, "Subscription IDs required"),
            (5, "Unknown command"),
            (7, "Unknown subscription ID"),
            (8, "Unknown channel name"),
            (9, "Authentication required"),
            (10, "Channel error"),
            (11, "Invalid parameter"),
            (12, "Exactly one subscription ID is required"),
            (13, "Unsupported action"),
            (14, "Market Ticker required"),
            (15, "Action required"),
            (18, "Command timeout"),
            (25, "Subscription buffer overflow"),
            (26, "Subscription market limit exceeded"),
            (27, "Too many requests"),
        ];
        for code in 0..=40u32 {
            let want = expected
                .iter()
                .find(|(c, _)| *c == code)
                .map_or("Error", |(_, t)| *t);
            assert_eq!(error_text(ErrorCode::from_code(code)), want, "{code}");
        }
    }
}
