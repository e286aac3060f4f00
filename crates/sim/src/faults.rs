//! Faults on demand: their spec language, and the set that is active now.
//!
//! Specs (exactly so spelled; times in seconds, probabilities 0..=1):
//! - `http:STATUS:PATH_GLOB:PROB[:RETRY_AFTER_MS]` — answer matching REST paths with STATUS
//!   (glob `*`/`?` over the path with or without the `/trade-api/v2` prefix); with
//!   RETRY_AFTER_MS the error body carries `retry_after_ms` (and a `Retry-After` header), without
//!   it neither (WIRE.md: 429s come both ways).
//! - `maintenance:START_S:DURATION_S` — from START_S after the fault is added, for DURATION_S:
//!   `exchange_active=false` with `exchange_estimated_resume_time`, other REST paths 503, and
//!   the exchange publishes nothing.
//! - `ws-close:CODE:EVERY_S` — close one random connection with CODE every EVERY_S;
//!   `ws-close:CODE:all` closes every connection once.
//! - `ws-stall:EVERY_S:DURATION_S` — every EVERY_S one random connection goes silent (no data,
//!   no pings) for DURATION_S.
//! - `ws-drop:PROB` — each connection drops each data message with PROB, independently
//!   (the sequence number still advances: a gap).
//! - `ws-drop-all:PROB` — the exchange drops a message for everyone with PROB.
//! - `sub-error:CODE:PROB` — each market in a subscribe/add_markets is refused with CODE with PROB.
//! - `cmd-limit:PER_S` — each connection may send PER_S commands per second (a burst of as many);
//!   beyond, error 27 "too many requests".

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One fault, parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum FaultSpec {
    Http {
        status: u16,
        glob: String,
        prob: f64,
        /// `retry_after_ms` in the error body (and `Retry-After` in whole seconds, rounded up).
        retry_after_ms: Option<u64>,
    },
    Maintenance {
        start: Duration,
        duration: Duration,
    },
    /// `every: None` closes all connections once.
    WsClose {
        code: u16,
        every: Option<Duration>,
    },
    WsStall {
        every: Duration,
        duration: Duration,
    },
    WsDrop {
        prob: f64,
    },
    WsDropAll {
        prob: f64,
    },
    SubError {
        code: u32,
        prob: f64,
    },
    /// A per-connection command-rate limit (error 27 beyond it).
    CmdLimit {
        per_s: u32,
    },
}

/// Why a fault spec was rejected; names the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultParseError {
    #[error(
        "unknown fault kind `{0}` (http, maintenance, ws-close, ws-stall, ws-drop, ws-drop-all, sub-error, cmd-limit)"
    )]
    UnknownKind(String),
    #[error("fault `{kind}` takes {expected} fields after the kind")]
    Arity { kind: &'static str, expected: usize },
    #[error("fault field `{field}` is invalid: {reason}")]
    Field { field: &'static str, reason: String },
}

fn field<T: std::str::FromStr>(text: &str, name: &'static str) -> Result<T, FaultParseError> {
    text.trim().parse().map_err(|_| FaultParseError::Field {
        field: name,
        reason: format!("cannot parse `{text}`"),
    })
}

fn prob(text: &str) -> Result<f64, FaultParseError> {
    let p: f64 = field(text, "PROB")?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(FaultParseError::Field {
            field: "PROB",
            reason: "must be within 0..=1".into(),
        })
    }
}

fn secs(text: &str, name: &'static str) -> Result<Duration, FaultParseError> {
    let s: f64 = field(text, name)?;
    if s.is_finite() && (0.0..1e9).contains(&s) {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(FaultParseError::Field {
            field: name,
            reason: "must be a non-negative number of seconds".into(),
        })
    }
}

/// Parses one fault spec (see the module docs for the language).
pub fn parse_fault(spec: &str) -> Result<FaultSpec, FaultParseError> {
    let spec = spec.trim();
    let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
    let parts: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split(':').collect()
    };
    let need = |kind: &'static str, n: usize| {
        if parts.len() == n {
            Ok(())
        } else {
            Err(FaultParseError::Arity { kind, expected: n })
        }
    };
    match kind {
        "http" => {
            if parts.len() != 4 {
                need("http", 3)?;
            }
            let status: u16 = field(parts[0], "STATUS")?;
            if !(100..=599).contains(&status) {
                return Err(FaultParseError::Field {
                    field: "STATUS",
                    reason: "must be an HTTP status 100..=599".into(),
                });
            }
            let retry_after_ms = match parts.get(3) {
                Some(ms) => Some(field(ms, "RETRY_AFTER_MS")?),
                None => None,
            };
            Ok(FaultSpec::Http {
                status,
                glob: parts[1].to_string(),
                prob: prob(parts[2])?,
                retry_after_ms,
            })
        }
        "maintenance" => {
            need("maintenance", 2)?;
            Ok(FaultSpec::Maintenance {
                start: secs(parts[0], "START_S")?,
                duration: secs(parts[1], "DURATION_S")?,
            })
        }
        "ws-close" => {
            need("ws-close", 2)?;
            let code: u16 = field(parts[0], "CODE")?;
            let every = if parts[1].trim() == "all" {
                None
            } else {
                let e = secs(parts[1], "EVERY_S")?;
                if e.is_zero() {
                    return Err(FaultParseError::Field {
                        field: "EVERY_S",
                        reason: "must be positive (or `all`)".into(),
                    });
                }
                Some(e)
            };
            Ok(FaultSpec::WsClose { code, every })
        }
        "ws-stall" => {
            need("ws-stall", 2)?;
            let every = secs(parts[0], "EVERY_S")?;
            if every.is_zero() {
                return Err(FaultParseError::Field {
                    field: "EVERY_S",
                    reason: "must be positive".into(),
                });
            }
            Ok(FaultSpec::WsStall {
                every,
                duration: secs(parts[1], "DURATION_S")?,
            })
        }
        "ws-drop" => {
            need("ws-drop", 1)?;
            Ok(FaultSpec::WsDrop {
                prob: prob(parts[0])?,
            })
        }
        "ws-drop-all" => {
            need("ws-drop-all", 1)?;
            Ok(FaultSpec::WsDropAll {
                prob: prob(parts[0])?,
            })
        }
        "sub-error" => {
            need("sub-error", 2)?;
            Ok(FaultSpec::SubError {
                code: field(parts[0], "CODE")?,
                prob: prob(parts[1])?,
            })
        }
        "cmd-limit" => {
            need("cmd-limit", 1)?;
            let per_s: u32 = field(parts[0], "PER_S")?;
            if per_s == 0 {
                return Err(FaultParseError::Field {
                    field: "PER_S",
                    reason: "must be at least 1".into(),
                });
            }
            Ok(FaultSpec::CmdLimit { per_s })
        }
        other => Err(FaultParseError::UnknownKind(other.to_string())),
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |d: &Duration| d.as_secs_f64();
        match self {
            FaultSpec::Http {
                status,
                glob,
                prob,
                retry_after_ms: None,
            } => write!(f, "http:{status}:{glob}:{prob}"),
            FaultSpec::Http {
                status,
                glob,
                prob,
                retry_after_ms: Some(ms),
            } => write!(f, "http:{status}:{glob}:{prob}:{ms}"),
            FaultSpec::Maintenance { start, duration } => {
                write!(f, "maintenance:{}:{}", s(start), s(duration))
            }
            FaultSpec::WsClose { code, every: None } => write!(f, "ws-close:{code}:all"),
            FaultSpec::WsClose {
                code,
                every: Some(e),
            } => write!(f, "ws-close:{code}:{}", s(e)),
            FaultSpec::WsStall { every, duration } => {
                write!(f, "ws-stall:{}:{}", s(every), s(duration))
            }
            FaultSpec::WsDrop { prob } => write!(f, "ws-drop:{prob}"),
            FaultSpec::WsDropAll { prob } => write!(f, "ws-drop-all:{prob}"),
            FaultSpec::SubError { code, prob } => write!(f, "sub-error:{code}:{prob}"),
            FaultSpec::CmdLimit { per_s } => write!(f, "cmd-limit:{per_s}"),
        }
    }
}

impl TryFrom<String> for FaultSpec {
    type Error = FaultParseError;
    fn try_from(s: String) -> Result<Self, FaultParseError> {
        parse_fault(&s)
    }
}

impl From<FaultSpec> for String {
    fn from(f: FaultSpec) -> String {
        f.to_string()
    }
}

/// `*` matches any run of characters, `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// A fault with the moment it was added (periodic faults count from there).
#[derive(Debug, Clone)]
pub struct ActiveFault {
    pub spec: FaultSpec,
    pub added: Instant,
}

/// The faults active now. Probabilities read on the per-message path are mirrored in atomics.
#[derive(Debug, Default)]
pub struct FaultSet {
    active: RwLock<Vec<ActiveFault>>,
    drop_bits: AtomicU64,
    drop_all_bits: AtomicU64,
    /// Bumped on every change so periodic drivers notice new faults.
    generation: AtomicU64,
}

impl FaultSet {
    pub fn add(&self, spec: FaultSpec) {
        let mut active = self.active.write().unwrap_or_else(|e| e.into_inner());
        active.push(ActiveFault {
            spec,
            added: Instant::now(),
        });
        self.refresh(&active);
    }

    pub fn clear(&self) {
        let mut active = self.active.write().unwrap_or_else(|e| e.into_inner());
        active.clear();
        self.refresh(&active);
    }

    fn refresh(&self, active: &[ActiveFault]) {
        // Several drop faults combine as independent chances.
        let combine = |pick: fn(&FaultSpec) -> Option<f64>| {
            1.0 - active
                .iter()
                .filter_map(|f| pick(&f.spec))
                .fold(1.0, |keep, p| keep * (1.0 - p))
        };
        let drop = combine(|s| match s {
            FaultSpec::WsDrop { prob } => Some(*prob),
            _ => None,
        });
        let drop_all = combine(|s| match s {
            FaultSpec::WsDropAll { prob } => Some(*prob),
            _ => None,
        });
        self.drop_bits.store(drop.to_bits(), Ordering::Relaxed);
        self.drop_all_bits
            .store(drop_all.to_bits(), Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    pub fn list(&self) -> Vec<ActiveFault> {
        self.active
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Probability a connection drops a data message (`ws-drop`).
    pub fn drop_prob(&self) -> f64 {
        f64::from_bits(self.drop_bits.load(Ordering::Relaxed))
    }

    /// Probability the exchange drops a message for everyone (`ws-drop-all`).
    pub fn drop_all_prob(&self) -> f64 {
        f64::from_bits(self.drop_all_bits.load(Ordering::Relaxed))
    }

    /// The status a REST path must fail with now, if any, and its `retry_after_ms` (`roll` is
    /// a uniform draw 0..1).
    pub fn http_status(
        &self,
        path: &str,
        rel_path: &str,
        mut roll: impl FnMut() -> f64,
    ) -> Option<(u16, Option<u64>)> {
        let active = self.active.read().unwrap_or_else(|e| e.into_inner());
        active.iter().find_map(|f| match &f.spec {
            FaultSpec::Http {
                status,
                glob,
                prob,
                retry_after_ms,
            } if (glob_match(glob, rel_path) || glob_match(glob, path)) && roll() < *prob => {
                Some((*status, *retry_after_ms))
            }
            _ => None,
        })
    }

    /// The strictest `cmd-limit` fault, if any.
    pub fn command_limit(&self) -> Option<u32> {
        let active = self.active.read().unwrap_or_else(|e| e.into_inner());
        active
            .iter()
            .filter_map(|f| match f.spec {
                FaultSpec::CmdLimit { per_s } => Some(per_s),
                _ => None,
            })
            .min()
    }

    /// If a maintenance window is on now: when it is expected to end.
    pub fn maintenance_until(&self, now: Instant) -> Option<Instant> {
        let active = self.active.read().unwrap_or_else(|e| e.into_inner());
        active
            .iter()
            .filter_map(|f| match &f.spec {
                FaultSpec::Maintenance { start, duration } => {
                    let from = f.added + *start;
                    let to = from + *duration;
                    (now >= from && now < to).then_some(to)
                }
                _ => None,
            })
            .max()
    }

    /// Subscription-error faults: `(code, prob)`.
    pub fn sub_errors(&self) -> Vec<(u32, f64)> {
        let active = self.active.read().unwrap_or_else(|e| e.into_inner());
        active
            .iter()
            .filter_map(|f| match &f.spec {
                FaultSpec::SubError { code, prob } => Some((*code, *prob)),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print_back() {
        for text in [
            "http:503:/markets*:0.05",
            "maintenance:5:30",
            "ws-close:1011:20",
            "ws-close:1000:all",
            "ws-stall:30:12",
            "ws-drop:0.01",
            "ws-drop-all:0.5",
            "sub-error:26:0.1",
            "http:429:/markets*:0.5:250",
            "cmd-limit:5",
        ] {
            let spec = parse_fault(text).unwrap();
            assert_eq!(parse_fault(&spec.to_string()).unwrap(), spec, "{text}");
        }
    }

    #[test]
    fn bad_specs_are_typed_errors() {
        assert!(matches!(
            parse_fault("boom:1"),
            Err(FaultParseError::UnknownKind(_))
        ));
        assert!(matches!(
            parse_fault("http:503:/x"),
            Err(FaultParseError::Arity { .. })
        ));
        assert!(matches!(
            parse_fault("ws-drop:1.5"),
            Err(FaultParseError::Field { .. })
        ));
        assert!(matches!(
            parse_fault("http:99:/x:1"),
            Err(FaultParseError::Field { .. })
        ));
        assert!(matches!(
            parse_fault("ws-close:1000:0"),
            Err(FaultParseError::Field { .. })
        ));
    }

    #[test]
    fn globs_match() {
        assert!(glob_match("/markets*", "/markets/trades"));
        assert!(glob_match("/markets*", "/markets"));
        assert!(!glob_match("/markets*", "/events"));
        assert!(glob_match("*/orderbook", "/markets/X/orderbook"));
        assert!(glob_match("/m?rkets", "/markets"));
    }

    #[test]
    fn drop_probabilities_combine() {
        let set = FaultSet::default();
        set.add(FaultSpec::WsDrop { prob: 0.5 });
        set.add(FaultSpec::WsDrop { prob: 0.5 });
        assert!((set.drop_prob() - 0.75).abs() < 1e-9);
        set.clear();
        assert_eq!(set.drop_prob(), 0.0);
    }
}
