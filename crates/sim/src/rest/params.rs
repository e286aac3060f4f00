//! Query parameters as Kalshi reads them: repeated keys, percent-decoding, limits, cursors.

use super::bad_request;
use axum::response::Response;

pub(super) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A rejected parameter's response (boxed: responses are large).
pub(super) type Reject = Box<Response>;

/// Query parameters in order (repeated keys kept: `tickers=A&tickers=B`).
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn parse(raw: Option<String>) -> Params {
        Params(
            raw.unwrap_or_default()
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    pub(super) fn int(&self, key: &str) -> Result<Option<i64>, Reject> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| Box::new(bad_request(&format!("invalid `{key}`")))),
        }
    }

    pub(super) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    /// `limit` within `1..=max`, `default` when absent or 0.
    pub(super) fn limit(&self, default: usize, max: usize) -> Result<usize, Reject> {
        match self.int("limit")? {
            None | Some(0) => Ok(default),
            Some(n) if n < 0 || n as usize > max => Err(Box::new(bad_request(&format!(
                "`limit` must be within 1..={max}"
            )))),
            Some(n) => Ok(n as usize),
        }
    }

    pub(super) fn cursor(&self) -> Result<Option<u64>, Reject> {
        match self.get("cursor") {
            None => Ok(None),
            Some(c) => c
                .parse()
                .map(Some)
                .map_err(|_| Box::new(bad_request("invalid `cursor`"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing_keeps_repeats_and_decodes() {
        let p = Params::parse(Some("tickers=A%2DB&tickers=C,D&limit=5&x=a+b".into()));
        assert_eq!(p.all("tickers"), vec!["A-B", "C", "D"]);
        assert_eq!(p.get("x"), Some("a b"));
        assert!(matches!(p.limit(100, 1000), Ok(5)));
        assert_eq!(percent_decode("%zz%"), "%zz%");
    }
}
