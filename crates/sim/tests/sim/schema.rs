//! Every REST response validates against `openapi.yaml` and carries every required key of
//! `rest-fields-3.34.md`; every WebSocket message validates against `asyncapi.yaml`.
//!
//! The specs are Kalshi's official files, under Kalshi's licence: they are not copied into the
//! project. The tests read them from `../shared/kalshi-api/` beside the workspace root (CI always
//! has it), or from `$KALSHI_DATA_API_SPECS`. Where they are absent the tests skip with a message
//! saying so — except under `CI=true`, where an absent spec is a failure, so these checks can
//! never pass silently in CI.

use crate::helpers::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

const SPEC_FILES: [&str; 3] = ["openapi.yaml", "asyncapi.yaml", "rest-fields-3.34.md"];

/// Where Kalshi's specs are: `Ok(None)` means "absent, skip" (never under `CI=true`).
pub fn spec_dir() -> Result<Option<PathBuf>, Box<dyn std::error::Error + Send + Sync>> {
    let dir = std::env::var_os("KALSHI_DATA_API_SPECS")
        .or_else(|| std::env::var_os("KALSHI_API_SPECS"))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/kalshi-api"
            ))
        });
    let missing: Vec<&str> = SPEC_FILES
        .into_iter()
        .filter(|f| !dir.join(f).exists())
        .collect();
    if missing.is_empty() {
        return Ok(Some(dir));
    }
    let what = format!(
        "Kalshi's API specs ({}) not found in {} (set KALSHI_DATA_API_SPECS to their folder)",
        missing.join(", "),
        dir.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        return Err(format!("{what}; under CI=true this is a failure").into());
    }
    eprintln!("\n*** SKIPPED SCHEMA TEST: {what} ***\n");
    Ok(None)
}

fn load_yaml(path: &std::path::Path) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    let text = std::fs::read_to_string(path)?;
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text)?;
    Ok(serde_json::to_value(yaml)?)
}

/// A small JSON-schema checker for the subset the Kalshi specs use: `$ref`, `type`,
/// `nullable`, `required`, `properties`, `items`, `enum`, `const`, `minItems`, `maxItems`,
/// `minimum`, `allOf`/`anyOf`/`oneOf`, and `format` `date-time` / `uuid`. (`pattern` is not
/// checked: the live exchange's tickers do not follow the spec's pattern.)
pub struct Checker<'a> {
    pub root: &'a Value,
}

impl Checker<'_> {
    fn resolve<'b>(&'b self, schema: &'b Value) -> &'b Value {
        let mut s = schema;
        for _ in 0..16 {
            match s.get("$ref").and_then(Value::as_str) {
                Some(r) => {
                    let ptr = r.trim_start_matches('#');
                    s = self.root.pointer(ptr).unwrap_or(&Value::Null);
                }
                None => break,
            }
        }
        s
    }

    pub fn check(&self, schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if schema.is_null() {
            errors.push(format!("{path}: unresolved schema"));
            return;
        }
        if v.is_null() && schema.get("nullable") == Some(&Value::Bool(true)) {
            return;
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for s in all {
                self.check(s, v, path, errors);
            }
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(any) = schema.get(key).and_then(Value::as_array) {
                let ok = any.iter().any(|s| {
                    let mut e = Vec::new();
                    self.check(s, v, path, &mut e);
                    e.is_empty()
                });
                if !ok {
                    errors.push(format!("{path}: matches none of {key}"));
                }
            }
        }
        if let Some(c) = schema.get("const")
            && c != v
        {
            errors.push(format!("{path}: {v} is not const {c}"));
        }
        if let Some(e) = schema.get("enum").and_then(Value::as_array)
            && !e.contains(v)
        {
            errors.push(format!("{path}: {v} not in enum {e:?}"));
        }
        let is = |ty: &str| match ty {
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            "null" => v.is_null(),
            _ => true,
        };
        // `type` is a name, or (JSON Schema 2020, as asyncapi uses) a list of names.
        let (type_ok, ty) = match schema.get("type") {
            Some(Value::String(t)) => (is(t), t.clone()),
            Some(Value::Array(ts)) => (
                ts.iter().filter_map(Value::as_str).any(is),
                format!("{ts:?}"),
            ),
            _ => (true, String::new()),
        };
        if !type_ok {
            errors.push(format!("{path}: {v} is not of type {ty}"));
            return;
        }
        if let (Some(f), Some(s)) = (schema.get("format").and_then(Value::as_str), v.as_str()) {
            match f {
                "date-time" if kd_core::TimestampUs::parse_rfc3339(s).is_err() => {
                    errors.push(format!("{path}: `{s}` is not date-time"));
                }
                "uuid" if !(s.len() == 36 && s.matches('-').count() == 4) => {
                    errors.push(format!("{path}: `{s}` is not a uuid"));
                }
                _ => {}
            }
        }
        if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_f64), v.as_f64())
            && n < min
        {
            errors.push(format!("{path}: {n} below minimum {min}"));
        }
        if let Some(obj) = v.as_object() {
            if let Some(req) = schema.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !obj.contains_key(r) {
                        errors.push(format!("{path}: missing required `{r}`"));
                    }
                }
            }
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, s) in props {
                    if let Some(x) = obj.get(k) {
                        self.check(s, x, &format!("{path}.{k}"), errors);
                    }
                }
            }
        }
        if let Some(arr) = v.as_array() {
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (arr.len() as u64) < min
            {
                errors.push(format!("{path}: fewer than {min} items"));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && (arr.len() as u64) > max
            {
                errors.push(format!("{path}: more than {max} items"));
            }
            if let Some(items) = schema.get("items") {
                for (i, x) in arr.iter().enumerate() {
                    self.check(items, x, &format!("{path}[{i}]"), errors);
                }
            }
        }
    }
}

/// Required keys per object from `rest-fields-3.34.md` (`## Name` then `- required: `k` …`).
fn required_334(
    dir: &std::path::Path,
) -> Result<HashMap<String, Vec<String>>, Box<dyn std::error::Error + Send + Sync>> {
    let text = std::fs::read_to_string(dir.join("rest-fields-3.34.md"))?;
    let mut out = HashMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("## ") {
            current = name.trim().to_string();
        } else if let Some(req) = line.strip_prefix("- required: ") {
            let keys: Vec<String> = req
                .split(';')
                .filter_map(|part| {
                    let part = part.trim();
                    let start = part.find('`')?;
                    let end = part[start + 1..].find('`')?;
                    Some(part[start + 1..start + 1 + end].to_string())
                })
                .collect();
            out.insert(current.clone(), keys);
        }
    }
    Ok(out)
}

fn check_334(
    req: &HashMap<String, Vec<String>>,
    object: &str,
    v: &Value,
    path: &str,
    errors: &mut Vec<String>,
) {
    let Some(keys) = req.get(object) else {
        errors.push(format!("{object}: not in rest-fields-3.34.md"));
        return;
    };
    for k in keys {
        if v.get(k).is_none() {
            errors.push(format!("{path} ({object}): missing 3.34 required `{k}`"));
        }
    }
}

/// Objects nested in a response, for the 3.34 key check: (JSON pointer to a list or object,
/// object name, is it a list).
fn nested_334(response: &str) -> Vec<(&'static str, &'static str, bool)> {
    match response {
        "ExchangeStatus" => vec![("", "ExchangeStatus", false)],
        "GetExchangeScheduleResponse" => vec![
            ("", "GetExchangeScheduleResponse", false),
            ("/schedule", "Schedule", false),
            ("/schedule/standard_hours", "WeeklySchedule", true),
            ("/schedule/maintenance_windows", "MaintenanceWindow", true),
        ],
        "GetSeriesListResponse" => vec![
            ("", "GetSeriesListResponse", false),
            ("/series", "Series", true),
        ],
        "GetSeriesResponse" => vec![
            ("", "GetSeriesResponse", false),
            ("/series", "Series", false),
        ],
        "GetEventsResponse" => vec![
            ("", "GetEventsResponse", false),
            ("/events", "EventData", true),
        ],
        "GetEventResponse" => vec![
            ("", "GetEventResponse", false),
            ("/event", "EventData", false),
            ("/markets", "Market", true),
        ],
        "GetMarketsResponse" => vec![
            ("", "GetMarketsResponse", false),
            ("/markets", "Market", true),
        ],
        "GetMarketResponse" => vec![
            ("", "GetMarketResponse", false),
            ("/market", "Market", false),
        ],
        "GetMarketOrderbookResponse" => vec![
            ("", "GetMarketOrderbookResponse", false),
            ("/orderbook_fp", "OrderbookCountFp", false),
        ],
        "GetMarketOrderbooksResponse" => vec![
            ("", "GetMarketOrderbooksResponse", false),
            ("/orderbooks", "MarketOrderbookFp", true),
        ],
        "GetTradesResponse" => vec![("", "GetTradesResponse", false), ("/trades", "Trade", true)],
        // Not in the 3.34 list: its events are EventData like GetEventsResponse's.
        "GetMultivariateEventsResponse" => vec![("/events", "EventData", true)],
        _ => vec![],
    }
}

#[tokio::test]
async fn every_rest_response_validates_against_openapi_and_334() -> TestResult {
    let Some(dir) = spec_dir()? else {
        return Ok(());
    };
    let openapi = load_yaml(&dir.join("openapi.yaml"))?;
    let req = required_334(&dir)?;
    let checker = Checker { root: &openapi };
    let sim = start(kd_sim::SimConfig {
        rate: 5_000,
        create_every: Duration::from_millis(200),
        market_life: Duration::from_secs(2),
        faults: vec![kd_sim::parse_fault("maintenance:3600:60")?],
        combo_markets: 6,
        combo_create_every: Duration::from_millis(300),
        fee_update_every: Duration::from_millis(100),
        historical_cutoff_lag: Duration::from_secs(1),
        rest_book_cache: Duration::from_millis(500),
        ..config()
    })
    .await?;
    // Let trades and lifecycle changes (closed, determined, settled markets) accumulate.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sim.stats().await.trades < 50 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let base = sim.rest_base();
    let market = sim.active_markets(2);
    let (m0, m1) = (market[0].clone(), market[1].clone());
    let event = m0
        .rsplit_once("-M")
        .map(|(e, _)| e.to_string())
        .ok_or("ticker")?;
    let series = m0.split('-').next().ok_or("ticker")?.to_string();
    // Older trades have moved to the historical tier; some combos and fee overrides exist.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let combo = sim.active_combo_markets(1).pop().ok_or("no combo market")?;
    let combo_event = combo
        .rsplit_once("-M")
        .map(|(e, _)| e.to_string())
        .ok_or("combo ticker")?;
    let cases: Vec<(String, &str)> = vec![
        ("/exchange/status".into(), "ExchangeStatus"),
        ("/exchange/schedule".into(), "GetExchangeScheduleResponse"),
        ("/series".into(), "GetSeriesListResponse"),
        (format!("/series/{series}"), "GetSeriesResponse"),
        ("/events?limit=5".into(), "GetEventsResponse"),
        (
            "/events?limit=5&with_nested_markets=true&status=open".into(),
            "GetEventsResponse",
        ),
        (format!("/events/{event}"), "GetEventResponse"),
        (
            format!("/events/{event}?with_nested_markets=true"),
            "GetEventResponse",
        ),
        ("/markets?limit=1000".into(), "GetMarketsResponse"),
        ("/markets?status=settled".into(), "GetMarketsResponse"),
        ("/markets?status=closed".into(), "GetMarketsResponse"),
        ("/markets?status=unopened".into(), "GetMarketsResponse"),
        (
            format!("/markets?event_ticker={event}"),
            "GetMarketsResponse",
        ),
        (format!("/markets/{m0}"), "GetMarketResponse"),
        (
            format!("/markets/{m0}/orderbook"),
            "GetMarketOrderbookResponse",
        ),
        (
            format!("/markets/{m0}/orderbook?depth=2"),
            "GetMarketOrderbookResponse",
        ),
        (
            format!("/markets/orderbooks?tickers={m0}&tickers={m1}"),
            "GetMarketOrderbooksResponse",
        ),
        ("/markets/trades?limit=100".into(), "GetTradesResponse"),
        (format!("/markets/trades?ticker={m0}"), "GetTradesResponse"),
        ("/historical/trades".into(), "GetTradesResponse"),
        ("/historical/cutoff".into(), "GetHistoricalCutoffResponse"),
        ("/markets?mve_filter=only".into(), "GetMarketsResponse"),
        ("/markets?mve_filter=exclude".into(), "GetMarketsResponse"),
        (format!("/markets/{combo}"), "GetMarketResponse"),
        (
            format!("/markets/{combo}/orderbook"),
            "GetMarketOrderbookResponse",
        ),
        (
            format!("/markets/trades?ticker={combo}"),
            "GetTradesResponse",
        ),
        (
            "/events/multivariate?with_nested_markets=true".into(),
            "GetMultivariateEventsResponse",
        ),
        (
            format!("/events/{combo_event}?with_nested_markets=true"),
            "GetEventResponse",
        ),
        ("/series/KXMVESIM".into(), "GetSeriesResponse"),
    ];
    let mut errors = Vec::new();
    for (path, schema_name) in &cases {
        let (status, body) = get_json(&format!("{base}{path}")).await?;
        assert_eq!(status, 200, "{path}: {body}");
        let schema = json!({"$ref": format!("#/components/schemas/{schema_name}")});
        checker.check(&schema, &body, path, &mut errors);
        for (ptr, object, list) in nested_334(schema_name) {
            let Some(node) = body.pointer(ptr) else {
                errors.push(format!("{path}: no {ptr}"));
                continue;
            };
            if list {
                for (i, x) in node.as_array().into_iter().flatten().enumerate() {
                    check_334(&req, object, x, &format!("{path}{ptr}[{i}]"), &mut errors);
                }
            } else {
                check_334(&req, object, node, &format!("{path}{ptr}"), &mut errors);
            }
        }
    }
    // Settled and determined markets carry their extra fields and still validate.
    let (_, historical) = get_json(&format!("{base}/historical/trades")).await?;
    assert!(
        historical["trades"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "no historical trades"
    );
    let (_, settled) = get_json(&format!("{base}/markets?status=settled&limit=5")).await?;
    assert!(
        settled["markets"].as_array().is_some_and(|a| !a.is_empty()),
        "no settled markets"
    );
    // Error bodies are Kalshi-shaped.
    let (status, body) = get_json(&format!("{base}/markets/NOPE-1")).await?;
    assert_eq!(status, 404);
    checker.check(
        &json!({"$ref": "#/components/schemas/ErrorResponse"}),
        &body["error"],
        "404",
        &mut errors,
    );
    assert!(
        body["error"]["code"].is_string() && body["error"]["message"].is_string(),
        "{body}"
    );
    assert!(
        errors.is_empty(),
        "{} schema violations:\n{}",
        errors.len(),
        errors.join("\n")
    );
    sim.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn every_ws_message_validates_against_asyncapi() -> TestResult {
    let Some(dir) = spec_dir()? else {
        return Ok(());
    };
    let asyncapi = load_yaml(&dir.join("asyncapi.yaml"))?;
    let checker = Checker { root: &asyncapi };
    let sim = start(kd_sim::SimConfig {
        rate: 5_000,
        create_every: Duration::from_millis(100),
        market_life: Duration::from_secs(2),
        combo_markets: 3,
        combo_create_every: Duration::from_millis(200),
        fee_update_every: Duration::from_millis(200),
        ..config()
    })
    .await?;
    let tickers = sim.active_markets(20);
    let mut ws = connect(&sim).await?;
    send(&mut ws, subscribe_cmd(1, &["orderbook_delta"], &tickers)).await?;
    send(
        &mut ws,
        subscribe_cmd(
            2,
            &[
                "trade",
                "ticker",
                "market_lifecycle_v2",
                "multivariate_market_lifecycle",
            ],
            &[],
        ),
    )
    .await?;
    let combos = sim.active_combo_markets(3);
    send(
        &mut ws,
        json!({"id": 8, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_tickers": combos, "use_yes_price": true}}),
    )
    .await?;
    send(&mut ws, json!({"id": 3, "cmd": "list_subscriptions"})).await?;
    send(&mut ws, json!({"id": 4, "cmd": "update_subscription", "params": {"sid": 1, "action": "add_markets", "market_tickers": [sim.active_markets(21)[20]]}})).await?;
    send(&mut ws, json!({"id": 5, "cmd": "update_subscription", "params": {"sid": 1, "action": "get_snapshot", "market_tickers": [tickers[0]]}})).await?;
    send(
        &mut ws,
        json!({"id": 6, "cmd": "subscribe", "params": {"channels": ["bogus"]}}),
    )
    .await?;
    let schema_for = |v: &Value| -> Option<&'static str> {
        Some(match v["type"].as_str()? {
            "orderbook_snapshot" => "orderbookSnapshotPayload",
            "orderbook_delta" => "orderbookDeltaPayload",
            "trade" => "tradePayload",
            "ticker" => "tickerPayload",
            "market_lifecycle_v2" => "marketLifecycleV2Payload",
            "multivariate_market_lifecycle" => "multivariateMarketLifecyclePayload",
            "event_lifecycle" => "eventLifecyclePayload",
            "event_fee_update" => "eventFeeUpdatePayload",
            "subscribed" => "subscribedResponsePayload",
            "unsubscribed" => "unsubscribedResponsePayload",
            "error" => "errorResponsePayload",
            "ok" if v["msg"].is_array() => "listSubscriptionsResponsePayload",
            "ok" => "okResponsePayload",
            _ => return None,
        })
    };
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut errors = Vec::new();
    let needed = [
        "orderbook_snapshot",
        "orderbook_delta",
        "trade",
        "ticker",
        "market_lifecycle_v2",
        "multivariate_market_lifecycle",
        "event_lifecycle",
        "event_fee_update",
        "subscribed",
        "ok",
        "error",
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut lifecycle_events = std::collections::HashSet::new();
    while std::time::Instant::now() < deadline
        && (needed.iter().any(|n| !seen.contains_key(*n))
            || lifecycle_events.len() < 4
            || seen.values().sum::<u64>() < 3_000)
    {
        let Some(v) = next_json(&mut ws, Duration::from_millis(500)).await? else {
            continue;
        };
        let ty = v["type"].as_str().unwrap_or("?").to_string();
        if ty == "market_lifecycle_v2" {
            lifecycle_events.insert(v["msg"]["event_type"].as_str().unwrap_or("").to_string());
        }
        *seen.entry(ty.clone()).or_default() += 1;
        match schema_for(&v) {
            Some(name) => checker.check(
                &json!({"$ref": format!("#/components/schemas/{name}")}),
                &v,
                &ty,
                &mut errors,
            ),
            None => errors.push(format!("unexpected message type {ty}")),
        }
    }
    send(
        &mut ws,
        json!({"id": 7, "cmd": "unsubscribe", "params": {"sids": [1]}}),
    )
    .await?;
    let un = wait_for(&mut ws, Duration::from_secs(5), |v| v["id"] == 7).await?;
    checker.check(
        &json!({"$ref": "#/components/schemas/unsubscribedResponsePayload"}),
        &un,
        "unsubscribed",
        &mut errors,
    );
    for n in needed {
        assert!(seen.contains_key(n), "never saw {n}: {seen:?}");
    }
    assert!(
        lifecycle_events.len() >= 4,
        "lifecycle events seen: {lifecycle_events:?}"
    );
    assert!(
        errors.is_empty(),
        "{} violations:\n{}",
        errors.len(),
        errors.join("\n")
    );
    sim.shutdown().await?;
    Ok(())
}

#[test]
fn the_checker_can_fail() -> TestResult {
    let Some(dir) = spec_dir()? else {
        return Ok(());
    };
    let openapi = load_yaml(&dir.join("openapi.yaml"))?;
    let checker = Checker { root: &openapi };
    let mut errors = Vec::new();
    let market = json!({"$ref": "#/components/schemas/Market"});
    checker.check(&market, &json!({"ticker": 5}), "m", &mut errors);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("missing required `event_ticker`")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("is not of type string")),
        "{errors:?}"
    );
    let req = required_334(&dir)?;
    assert!(
        req.get("Market")
            .is_some_and(|k| k.contains(&"settlement_bounds_type".to_string()))
    );
    assert!(
        req.get("Trade")
            .is_some_and(|k| k.contains(&"taker_book_side".to_string()))
    );
    Ok(())
}
