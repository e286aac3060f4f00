//! Kalshi's WebSocket error codes (WIRE.md, asyncapi `x-error-codes`) and what a client must
//! do about each (DESIGN §6). Clients decide by variant, never by a bare number.

use std::fmt;

/// One error code of an `error` reply. Every code WIRE.md and the asyncapi list has a variant;
/// a code that appears later is [`ErrorCode::Other`] and is treated as transient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 1: "Unable to process message" — a general processing error on the exchange's side.
    Processing,
    /// 2: the command has no `params` object.
    ParamsRequired,
    /// 3: `subscribe` without `channels`.
    ChannelsRequired,
    /// 4: `unsubscribe` without `sids`.
    SidsRequired,
    /// 5: unknown command name.
    UnknownCommand,
    /// 7: the `sid` is not (or no longer) a subscription of this connection.
    UnknownSid,
    /// 8: unknown channel name.
    UnknownChannel,
    /// 9: the channel needs an authenticated connection.
    AuthenticationRequired,
    /// 10: channel error (terminal for the subscription).
    ChannelError,
    /// 11: malformed parameter value; with market tickers named, those markets do not exist.
    InvalidParameter,
    /// 12: `update_subscription` needs exactly one `sid`.
    ExactlyOneSid,
    /// 13: unsupported `update_subscription` action.
    UnsupportedAction,
    /// 14: missing market (`market_ticker` or `market_id`).
    MarketTickerRequired,
    /// 15: `update_subscription` without `action`.
    ActionRequired,
    /// 18: the exchange timed out processing the command.
    CommandTimeout,
    /// 19–22: shard parameters invalid (we send none).
    Shard(u32),
    /// 23: `match_ids` required (a channel we do not capture).
    MatchIdsRequired,
    /// 24: `index_ids` required (`cfbenchmarks_value`, not captured).
    IndexIdsRequired,
    /// 25: the subscription's outbound buffer overflowed (terminal for the subscription).
    BufferOverflow,
    /// 26: adding the markets would exceed the per-subscription market limit.
    MarketLimit,
    /// 27: the connection exceeded its command rate limit.
    TooManyRequests,
    /// 28: `underlying_tickers` required (`pyth_value`, not captured).
    UnderlyingTickersRequired,
    /// 6, 16, 17: retired codes (WIRE.md); never expected.
    Retired(u32),
    /// Any code not documented yet.
    Other(u32),
}

/// What a client does about an error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscribeErrorAction {
    /// Our command is wrong (unknown channel 8, missing/invalid parts 2–5, 12–15, 19–24, 28):
    /// log, alert, do not retry on this connection.
    NoRetry,
    /// Invalid parameter (11): the named markets do not exist (delisted, unknown): drop them
    /// and carry on with the rest.
    DropMarkets,
    /// Per-subscription market limit (26): shrink the batch, retry the rest elsewhere, alert.
    ShrinkBatch,
    /// Terminal channel error (10), buffer overflow (25), unknown sid (7): the subscription is
    /// gone — resubscribe its markets (and repair the gap).
    Resubscribe,
    /// Rate limit (27), timeout (18), processing error (1), unknown codes: transient — retry
    /// the same command later with backoff; nothing is dropped.
    Backoff,
    /// Authentication required (9): check credentials, alert.
    CheckCredentials,
}

impl ErrorCode {
    /// The variant of a wire code.
    pub fn from_code(code: u32) -> ErrorCode {
        match code {
            1 => ErrorCode::Processing,
            2 => ErrorCode::ParamsRequired,
            3 => ErrorCode::ChannelsRequired,
            4 => ErrorCode::SidsRequired,
            5 => ErrorCode::UnknownCommand,
            7 => ErrorCode::UnknownSid,
            8 => ErrorCode::UnknownChannel,
            9 => ErrorCode::AuthenticationRequired,
            10 => ErrorCode::ChannelError,
            11 => ErrorCode::InvalidParameter,
            12 => ErrorCode::ExactlyOneSid,
            13 => ErrorCode::UnsupportedAction,
            14 => ErrorCode::MarketTickerRequired,
            15 => ErrorCode::ActionRequired,
            18 => ErrorCode::CommandTimeout,
            19..=22 => ErrorCode::Shard(code),
            23 => ErrorCode::MatchIdsRequired,
            24 => ErrorCode::IndexIdsRequired,
            25 => ErrorCode::BufferOverflow,
            26 => ErrorCode::MarketLimit,
            27 => ErrorCode::TooManyRequests,
            28 => ErrorCode::UnderlyingTickersRequired,
            6 | 16 | 17 => ErrorCode::Retired(code),
            other => ErrorCode::Other(other),
        }
    }

    /// The wire code.
    pub fn code(self) -> u32 {
        match self {
            ErrorCode::Processing => 1,
            ErrorCode::ParamsRequired => 2,
            ErrorCode::ChannelsRequired => 3,
            ErrorCode::SidsRequired => 4,
            ErrorCode::UnknownCommand => 5,
            ErrorCode::UnknownSid => 7,
            ErrorCode::UnknownChannel => 8,
            ErrorCode::AuthenticationRequired => 9,
            ErrorCode::ChannelError => 10,
            ErrorCode::InvalidParameter => 11,
            ErrorCode::ExactlyOneSid => 12,
            ErrorCode::UnsupportedAction => 13,
            ErrorCode::MarketTickerRequired => 14,
            ErrorCode::ActionRequired => 15,
            ErrorCode::CommandTimeout => 18,
            ErrorCode::MatchIdsRequired => 23,
            ErrorCode::IndexIdsRequired => 24,
            ErrorCode::BufferOverflow => 25,
            ErrorCode::MarketLimit => 26,
            ErrorCode::TooManyRequests => 27,
            ErrorCode::UnderlyingTickersRequired => 28,
            ErrorCode::Shard(c) | ErrorCode::Retired(c) | ErrorCode::Other(c) => c,
        }
    }

    /// What a client must do (DESIGN §6, WIRE.md).
    pub fn action(self) -> SubscribeErrorAction {
        use SubscribeErrorAction as A;
        match self {
            ErrorCode::UnknownChannel
            | ErrorCode::ParamsRequired
            | ErrorCode::ChannelsRequired
            | ErrorCode::SidsRequired
            | ErrorCode::UnknownCommand
            | ErrorCode::ExactlyOneSid
            | ErrorCode::UnsupportedAction
            | ErrorCode::MarketTickerRequired
            | ErrorCode::ActionRequired
            | ErrorCode::Shard(_)
            | ErrorCode::MatchIdsRequired
            | ErrorCode::IndexIdsRequired
            | ErrorCode::UnderlyingTickersRequired => A::NoRetry,
            ErrorCode::InvalidParameter => A::DropMarkets,
            ErrorCode::MarketLimit => A::ShrinkBatch,
            ErrorCode::UnknownSid | ErrorCode::ChannelError | ErrorCode::BufferOverflow => {
                A::Resubscribe
            }
            ErrorCode::AuthenticationRequired => A::CheckCredentials,
            // Transient on the exchange's side, or a code we cannot know the meaning of:
            // retrying later is the only choice that cannot lose a market.
            ErrorCode::Processing
            | ErrorCode::CommandTimeout
            | ErrorCode::TooManyRequests
            | ErrorCode::Retired(_)
            | ErrorCode::Other(_) => A::Backoff,
        }
    }

    /// Whether retrying the same command later can succeed (never drops anything).
    pub fn is_transient(self) -> bool {
        self.action() == SubscribeErrorAction::Backoff
    }

    /// Whether the error ends the subscription it names (`sid`): its stream has a gap.
    pub fn ends_subscription(self) -> bool {
        matches!(self, ErrorCode::ChannelError | ErrorCode::BufferOverflow)
    }

    /// A fixed label for metrics (the wire number as text, so stored series keep their names).
    pub fn label(self) -> String {
        self.code().to_string()
    }
}

impl From<u32> for ErrorCode {
    fn from(code: u32) -> Self {
        ErrorCode::from_code(code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?})", self.code(), self)
    }
}

/// The action for a wire code (`i64`: codes as they come out of JSON).
pub fn subscribe_error_action(code: i64) -> SubscribeErrorAction {
    match u32::try_from(code) {
        Ok(c) => ErrorCode::from_code(c).action(),
        Err(_) => SubscribeErrorAction::Backoff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_errors_follow_wire_md() {
        use SubscribeErrorAction as A;
        assert_eq!(subscribe_error_action(8), A::NoRetry);
        assert_eq!(subscribe_error_action(11), A::DropMarkets);
        assert_eq!(subscribe_error_action(26), A::ShrinkBatch);
        assert_eq!(subscribe_error_action(10), A::Resubscribe);
        assert_eq!(subscribe_error_action(25), A::Resubscribe);
        assert_eq!(subscribe_error_action(27), A::Backoff);
        assert_eq!(subscribe_error_action(18), A::Backoff);
        assert_eq!(subscribe_error_action(9), A::CheckCredentials);
        assert_eq!(subscribe_error_action(999), A::Backoff);
    }

    #[test]
    fn every_code_round_trips_and_transients_never_drop() {
        for code in 0..=40u32 {
            let e = ErrorCode::from_code(code);
            assert_eq!(e.code(), code);
        }
        // DESIGN §6 / issue 15: 1, 18 and 27 are transient: retried, no market dropped.
        for code in [1, 18, 27] {
            assert!(ErrorCode::from_code(code).is_transient(), "{code}");
        }
        for code in [2, 3, 4, 5, 8, 11, 12, 13, 14, 15, 26] {
            assert!(!ErrorCode::from_code(code).is_transient(), "{code}");
        }
        assert!(ErrorCode::ChannelError.ends_subscription());
        assert!(ErrorCode::BufferOverflow.ends_subscription());
        assert!(!ErrorCode::UnknownSid.ends_subscription());
        assert_eq!(subscribe_error_action(-1), SubscribeErrorAction::Backoff);
        assert_eq!(ErrorCode::from(27).label(), "27");
    }
}
