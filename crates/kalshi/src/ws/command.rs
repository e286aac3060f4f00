//! Kalshi's WebSocket commands, typed and serialised with serde (WIRE.md, "Commands").
//!
//! `{"id": n, "cmd": "subscribe"|"unsubscribe"|"update_subscription"|"list_subscriptions",
//! "params": {…}}`. Building them from types keeps every client on the documented shape.

use super::Channel;
use serde::Serialize;

/// One command with its id (the id comes back on the reply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Command {
    pub id: u64,
    #[serde(flatten)]
    pub body: CommandBody,
}

/// The command and its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "cmd", content = "params", rename_all = "snake_case")]
pub enum CommandBody {
    Subscribe(SubscribeParams),
    Unsubscribe(UnsubscribeParams),
    UpdateSubscription(UpdateParams),
    ListSubscriptions(NoParams),
}

/// `subscribe` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscribeParams {
    pub channels: Vec<Channel>,
    /// Required for `orderbook_delta`; `trade` and `ticker` send every market when omitted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub market_tickers: Vec<String>,
    /// `orderbook_delta` only: NO-side levels in YES-leg pricing (a NO bid at p sent as 1 − p)
    /// when `true`, NO-bid pricing when `false`; absent: the exchange's default, which Kalshi
    /// has announced will flip (WIRE.md "2026 changes"). Clients should always send it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_yes_price: Option<bool>,
}

/// `unsubscribe` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnsubscribeParams {
    pub sids: Vec<u64>,
}

/// `update_subscription` parameters. Kalshi takes `sid` or `sids` with exactly one element;
/// `sids: [sid]` is the documented form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateParams {
    pub sids: [u64; 1],
    pub market_tickers: Vec<String>,
    pub action: UpdateAction,
}

/// `list_subscriptions` takes an empty object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NoParams {}

/// `update_subscription` actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateAction {
    /// Add markets to the subscription.
    AddMarkets,
    /// Remove markets from the subscription.
    DeleteMarkets,
    /// Send a fresh `orderbook_snapshot` for the markets without changing the subscription.
    GetSnapshot,
}

impl UpdateAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateAction::AddMarkets => "add_markets",
            UpdateAction::DeleteMarkets => "delete_markets",
            UpdateAction::GetSnapshot => "get_snapshot",
        }
    }
}

impl Command {
    /// `subscribe` to `channels`, limited to `market_tickers` when not empty.
    pub fn subscribe(id: u64, channels: &[Channel], market_tickers: &[String]) -> Command {
        Command {
            id,
            body: CommandBody::Subscribe(SubscribeParams {
                channels: channels.to_vec(),
                market_tickers: market_tickers.to_vec(),
                use_yes_price: None,
            }),
        }
    }

    /// `subscribe` to `orderbook_delta` for `market_tickers`, with `use_yes_price` sent when
    /// `Some` (the NO side's price scale; see [`SubscribeParams::use_yes_price`]).
    pub fn subscribe_orderbook(
        id: u64,
        market_tickers: &[String],
        use_yes_price: Option<bool>,
    ) -> Command {
        Command {
            id,
            body: CommandBody::Subscribe(SubscribeParams {
                channels: vec![Channel::OrderbookDelta],
                market_tickers: market_tickers.to_vec(),
                use_yes_price,
            }),
        }
    }

    /// `unsubscribe` from `sids`.
    pub fn unsubscribe(id: u64, sids: &[u64]) -> Command {
        Command {
            id,
            body: CommandBody::Unsubscribe(UnsubscribeParams {
                sids: sids.to_vec(),
            }),
        }
    }

    /// `update_subscription` of one `sid`.
    pub fn update(id: u64, sid: u64, action: UpdateAction, market_tickers: &[String]) -> Command {
        Command {
            id,
            body: CommandBody::UpdateSubscription(UpdateParams {
                sids: [sid],
                market_tickers: market_tickers.to_vec(),
                action,
            }),
        }
    }

    /// `list_subscriptions`.
    pub fn list_subscriptions(id: u64) -> Command {
        Command {
            id,
            body: CommandBody::ListSubscriptions(NoParams {}),
        }
    }

    /// The command's wire name.
    pub fn name(&self) -> &'static str {
        match self.body {
            CommandBody::Subscribe(_) => "subscribe",
            CommandBody::Unsubscribe(_) => "unsubscribe",
            CommandBody::UpdateSubscription(_) => "update_subscription",
            CommandBody::ListSubscriptions(_) => "list_subscriptions",
        }
    }

    /// The JSON text sent on the socket.
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: string keys, no maps with non-string keys, no
        // custom serialisers that error. The fallback keeps the no-panic rule regardless.
        serde_json::to_string(self).unwrap_or_else(|e| {
            tracing::error!(error = %e, "command not serialisable");
            String::new()
        })
    }
}

/// `subscribe` to `channels` (JSON text), limited to `market_tickers` when not empty (required
/// for `orderbook_delta`; `trade` and `ticker` send every market when omitted).
pub fn subscribe(id: u64, channels: &[Channel], market_tickers: &[String]) -> String {
    Command::subscribe(id, channels, market_tickers).to_json()
}

/// `unsubscribe` from `sids` (JSON text).
pub fn unsubscribe(id: u64, sids: &[u64]) -> String {
    Command::unsubscribe(id, sids).to_json()
}

/// `update_subscription` of one `sid` (JSON text, sent as `sids: [sid]`).
pub fn update_subscription(
    id: u64,
    sid: u64,
    action: UpdateAction,
    market_tickers: &[String],
) -> String {
    Command::update(id, sid, action, market_tickers).to_json()
}

/// `list_subscriptions` (JSON text).
pub fn list_subscriptions(id: u64) -> String {
    Command::list_subscriptions(id).to_json()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn commands_are_kalshis_json() -> Result<(), serde_json::Error> {
        let v: Value = serde_json::from_str(&subscribe(
            1,
            &[Channel::OrderbookDelta],
            &[
                "FED-23DEC-T3.00".into(),
                "KXBTCD-26MAY3017-T73499.99".into(),
            ],
        ))?;
        assert_eq!(
            v,
            json!({"id": 1, "cmd": "subscribe", "params": {
                "channels": ["orderbook_delta"],
                "market_tickers": ["FED-23DEC-T3.00", "KXBTCD-26MAY3017-T73499.99"]}})
        );
        let v: Value =
            serde_json::from_str(&subscribe(2, &[Channel::Trade, Channel::Ticker], &[]))?;
        assert_eq!(
            v,
            json!({"id": 2, "cmd": "subscribe", "params": {"channels": ["trade", "ticker"]}})
        );
        let v: Value = serde_json::from_str(&unsubscribe(3, &[1, 2]))?;
        assert_eq!(
            v,
            json!({"id": 3, "cmd": "unsubscribe", "params": {"sids": [1, 2]}})
        );
        let v: Value = serde_json::from_str(&update_subscription(
            4,
            456,
            UpdateAction::GetSnapshot,
            &["M-1".into()],
        ))?;
        assert_eq!(
            v,
            json!({"id": 4, "cmd": "update_subscription",
                   "params": {"sids": [456], "market_tickers": ["M-1"], "action": "get_snapshot"}})
        );
        assert_eq!(UpdateAction::AddMarkets.as_str(), "add_markets");
        assert_eq!(UpdateAction::DeleteMarkets.as_str(), "delete_markets");
        let v: Value = serde_json::from_str(&list_subscriptions(5))?;
        assert_eq!(
            v,
            json!({"id": 5, "cmd": "list_subscriptions", "params": {}})
        );
        Ok(())
    }

    #[test]
    fn orderbook_subscribe_sends_use_yes_price_when_asked() -> Result<(), serde_json::Error> {
        let m = ["M-1".to_string()];
        for (asked, want) in [
            (
                Some(true),
                json!({"channels": ["orderbook_delta"], "market_tickers": ["M-1"],
                                "use_yes_price": true}),
            ),
            (
                Some(false),
                json!({"channels": ["orderbook_delta"], "market_tickers": ["M-1"],
                                 "use_yes_price": false}),
            ),
            (
                None,
                json!({"channels": ["orderbook_delta"], "market_tickers": ["M-1"]}),
            ),
        ] {
            let v: Value =
                serde_json::from_str(&Command::subscribe_orderbook(7, &m, asked).to_json())?;
            assert_eq!(v, json!({"id": 7, "cmd": "subscribe", "params": want}));
        }
        Ok(())
    }

    #[test]
    fn action_names_match_serde() -> Result<(), serde_json::Error> {
        for a in [
            UpdateAction::AddMarkets,
            UpdateAction::DeleteMarkets,
            UpdateAction::GetSnapshot,
        ] {
            assert_eq!(serde_json::to_string(&a)?, format!("\"{}\"", a.as_str()));
        }
        assert_eq!(Command::list_subscriptions(1).name(), "list_subscriptions");
        Ok(())
    }
}
