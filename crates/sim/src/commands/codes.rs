//! Kalshi's WebSocket error codes (asyncapi `x-error-codes`, WIRE.md) and their texts.

/// The codes the simulator answers with.
pub mod code {
    pub const PROCESSING: u32 = 1;
    pub const PARAMS_REQUIRED: u32 = 2;
    pub const CHANNELS_REQUIRED: u32 = 3;
    pub const SIDS_REQUIRED: u32 = 4;
    pub const UNKNOWN_COMMAND: u32 = 5;
    pub const UNKNOWN_SID: u32 = 7;
    pub const UNKNOWN_CHANNEL: u32 = 8;
    pub const INVALID_PARAMETER: u32 = 11;
    pub const EXACTLY_ONE_SID: u32 = 12;
    pub const UNSUPPORTED_ACTION: u32 = 13;
    pub const MARKET_REQUIRED: u32 = 14;
    pub const ACTION_REQUIRED: u32 = 15;
    pub const BUFFER_OVERFLOW: u32 = 25;
    pub const MARKET_LIMIT: u32 = 26;
    pub const TOO_MANY_REQUESTS: u32 = 27;
}

pub fn error_text(code: u32) -> &'static str {
    match code {
        1 => "Unable to process message",
        2 => "Params required",
        3 => "Channels required",
        4 => "Subscription IDs required",
        5 => "Unknown command",
        7 => "Unknown subscription ID",
        8 => "Unknown channel name",
        9 => "Authentication required",
        10 => "Channel error",
        11 => "Invalid parameter",
        12 => "Exactly one subscription ID is required",
        13 => "Unsupported action",
        14 => "Market Ticker required",
        15 => "Action required",
        18 => "Command timeout",
        25 => "Subscription buffer overflow",
        26 => "Subscription market limit exceeded",
        27 => "Too many requests",
        _ => "Error",
    }
}
