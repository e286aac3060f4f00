//! What `querying` reads from docs/querying.md and from the snippets' output: the snippets
//! (fences `sql snippet=NAME` / `python snippet=NAME`), their inputs rewritten, their CSV
//! parsed, and the exact decimals and timestamps in it turned back into stored integers.

use std::collections::BTreeMap;

/// The page under test.
pub const PAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/querying.md");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Sql,
    Python,
}

#[derive(Debug, Clone)]
pub struct Snippet {
    pub name: String,
    pub lang: Lang,
    pub body: String,
}

/// Every snippet of the page, in order. A `sql` or `python` fence without a name is an error:
/// it would be a query on the page that no test runs.
pub fn snippets(page: &str) -> Result<Vec<Snippet>, String> {
    let mut out = Vec::new();
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let mut words = info.split_whitespace();
        let lang = match words.next() {
            Some("sql") => Some(Lang::Sql),
            Some("python") => Some(Lang::Python),
            _ => None,
        };
        let name = words.find_map(|w| w.strip_prefix("snippet=").map(str::to_string));
        let mut body = String::new();
        for l in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        match (lang, name) {
            (Some(lang), Some(name)) => out.push(Snippet { name, lang, body }),
            (Some(_), None) => return Err(format!("a `{info}` block without snippet=NAME")),
            _ => {}
        }
    }
    Ok(out)
}

/// Rewrites the input lines (`\set name '…'` in SQL, `NAME = "…"` in Python) with `vars`
/// (keys upper case). An input the test has no value for is an error.
pub fn substitute(s: &Snippet, vars: &BTreeMap<&str, String>) -> Result<String, String> {
    let mut out = String::new();
    for line in s.body.lines() {
        let rewritten = match s.lang {
            Lang::Sql => line.strip_prefix("\\set ").and_then(|rest| {
                let (name, _) = rest.split_once(' ')?;
                Some((name.to_uppercase(), format!("\\set {name} '{{}}'")))
            }),
            Lang::Python => line.split_once(" = \"").and_then(|(name, rest)| {
                let input =
                    name.chars().all(|c| c.is_ascii_uppercase() || c == '_') && rest.ends_with('"');
                input.then(|| (name.to_string(), format!("{name} = \"{{}}\"")))
            }),
        };
        match rewritten {
            Some((key, template)) => {
                let value = vars
                    .get(key.as_str())
                    .ok_or_else(|| format!("{}: input {key} has no test value", s.name))?;
                out.push_str(&template.replace("{}", value));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    Ok(out)
}

/// A CSV result: the header and the rows, as text.
#[derive(Debug, Clone, Default)]
pub struct Csv {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Csv {
    /// Parses RFC 4180 CSV (quoted fields, doubled quotes); blank lines are skipped.
    pub fn parse(text: &str) -> Result<Csv, String> {
        let mut records = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (mut fields, mut field, mut quoted, mut chars) =
                (Vec::new(), String::new(), false, line.chars().peekable());
            while let Some(c) = chars.next() {
                match (c, quoted) {
                    ('"', true) if chars.peek() == Some(&'"') => {
                        field.push('"');
                        chars.next();
                    }
                    ('"', _) => quoted = !quoted,
                    (',', false) => fields.push(std::mem::take(&mut field)),
                    _ => field.push(c),
                }
            }
            fields.push(field);
            records.push(fields);
        }
        let mut it = records.into_iter();
        let header = it.next().ok_or("no CSV header in the output")?;
        Ok(Csv {
            header,
            rows: it.collect(),
        })
    }

    /// The values of column `name`, one per row.
    pub fn column(&self, name: &str) -> Result<Vec<&str>, String> {
        let i = self
            .header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("no column `{name}` in {:?}", self.header))?;
        self.rows
            .iter()
            .map(|r| {
                r.get(i)
                    .map(String::as_str)
                    .ok_or_else(|| format!("short row {r:?}"))
            })
            .collect()
    }
}

/// An exact decimal string (`0.52500`, `-25.23`, `341`) as an integer of `scale` decimals;
/// digits beyond the scale must be zeros (a float's `0.52499999` is an error, not rounded).
pub fn scaled(text: &str, scale: usize) -> Result<i64, String> {
    let bad = || format!("`{text}` is not an exact decimal of {scale} places");
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let (kept, extra) = frac.split_at(frac.len().min(scale));
    if extra.chars().any(|c| c != '0') {
        return Err(bad());
    }
    let v: i64 = format!("{int}{kept:0<scale$}").parse().map_err(|_| bad())?;
    Ok(if neg { -v } else { v })
}

/// A timestamp as the engines print it (`2026-12-02 16:42:51.3255+00`, `…+00:00`,
/// `2026-12-02T16:42:51.325597+0000`, `…Z`), in µs; only UTC offsets are accepted.
pub fn micros(text: &str) -> Result<i64, String> {
    let bad = || format!("`{text}` is not a UTC timestamp");
    let (base, rest) = (text.get(..19).ok_or_else(bad)?, &text[19..]);
    let (frac, zone) = match rest.strip_prefix('.') {
        Some(r) => {
            let n = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            (&r[..n], &r[n..])
        }
        None => ("", rest),
    };
    if !["", "Z", "+00", "+00:00", "+0000"].contains(&zone) || frac.len() > 6 {
        return Err(bad());
    }
    let iso = format!("{}T{}.{frac:0<6}Z", &base[..10], &base[11..]);
    kd_core::TimestampUs::parse_rfc3339(&iso)
        .map(kd_core::TimestampUs::micros)
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_and_times_parse_exactly() {
        assert_eq!(scaled("0.52500", 5), Ok(52_500));
        assert_eq!(scaled("-25.23", 2), Ok(-2_523));
        assert_eq!(scaled("341", 2), Ok(34_100));
        assert!(scaled("0.524999", 5).is_err());
        let us = 1_796_229_771_325_597;
        for t in [
            "2026-12-02 16:42:51.325597+00",
            "2026-12-02 16:42:51.325597+00:00",
            "2026-12-02T16:42:51.325597+0000",
        ] {
            assert_eq!(micros(t), Ok(us), "{t}");
        }
        assert!(micros("2026-12-02 16:42:51+01").is_err());
    }
}
