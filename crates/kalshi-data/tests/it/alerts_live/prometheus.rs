//! A real Prometheus server (Debian's `prometheus` package) for the live alert test: its own
//! temp TSDB, a free loopback port, a generated scrape configuration and a rules file that can
//! be swapped (SIGHUP reloads both). Read through its HTTP API with the testkit's plain probes.

use kd_testkit::http::get;
use kd_testkit::process::{signal, spawn_logged};
use kd_testkit::wait::wait_for;
use kd_testkit::{Error, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

/// One scrape job: its name and its targets (`host:port`, a `process` label each).
pub struct Job {
    pub name: &'static str,
    pub targets: Vec<(String, String)>,
}

/// An alert as `/api/v1/alerts` lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Alert {
    pub name: String,
    pub state: String,
    /// Every label but `alertname`, as `k=v` joined by commas (sorted by Prometheus).
    pub labels: String,
}

impl Alert {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .split(',')
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    }
}

/// A running Prometheus server; killed on drop.
pub struct Prometheus {
    pub port: u16,
    pub log: PathBuf,
    rules: PathBuf,
    child: Child,
}

/// Rules evaluated every second (an alert's `for` is then its real duration to a second) and
/// targets scraped every 2 s with a 2 s timeout: a frozen target is `up == 0` within 2 s, and
/// on a loaded test machine a /metrics answer slower than a second is not an outage.
fn config(jobs: &[Job], rules: &Path) -> String {
    let mut out = format!(
        "global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {}\nscrape_configs:\n",
        rules.display()
    );
    for job in jobs {
        out.push_str(&format!(
            "  - job_name: {}\n    static_configs:\n",
            job.name
        ));
        for (target, process) in &job.targets {
            out.push_str(&format!(
                "      - targets: [\"{target}\"]\n        labels: {{ process: {process} }}\n"
            ));
        }
    }
    out
}

/// Percent-encodes a PromQL expression for a query string.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Prometheus {
    /// Starts `/usr/bin/prometheus` (or `prometheus` on PATH) in `dir` scraping `jobs` with
    /// `rules` loaded; returns once it is ready and has loaded the rules.
    pub fn start(exe: &Path, dir: &Path, jobs: &[Job], rules: &str) -> Result<Prometheus> {
        let rules_path = dir.join("rules.yml");
        std::fs::write(&rules_path, rules)?;
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config(jobs, &rules_path))?;
        let port = kd_testkit::ports::free_port()?;
        let log = dir.join("prometheus.log");
        let child = spawn_logged(
            Command::new(exe)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("tsdb").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn"),
            &log,
        )?;
        let prom = Prometheus {
            port,
            log,
            rules: rules_path,
            child,
        };
        wait_for(Duration::from_secs(60), "Prometheus ready", || {
            get(&prom.url("/-/ready"), None).filter(|(s, _)| *s == 200)
        })
        .map_err(|e| Error::Failed(format!("{e}\n{}", prom.log_text())))?;
        Ok(prom)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `data` of a successful API answer.
    pub fn api(&self, path: &str) -> Option<Value> {
        let (status, body) = get(&self.url(path), None)?;
        let v: Value = serde_json::from_str(&body).ok()?;
        (status == 200 && v["status"] == "success").then(|| v["data"].clone())
    }

    /// An instant query's result vector.
    pub fn query(&self, q: &str) -> Option<Vec<Value>> {
        self.api(&format!("/api/v1/query?query={}", encode(q)))?["result"]
            .as_array()
            .cloned()
    }

    /// Every pending or firing alert.
    pub fn alerts(&self) -> Option<Vec<Alert>> {
        let data = self.api("/api/v1/alerts")?;
        let mut out: Vec<Alert> = data["alerts"]
            .as_array()?
            .iter()
            .map(|a| {
                let labels = a["labels"].as_object().map_or(String::new(), |m| {
                    m.iter()
                        .filter(|(k, _)| *k != "alertname")
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                });
                Alert {
                    name: a["labels"]["alertname"].as_str().unwrap_or_default().into(),
                    state: a["state"].as_str().unwrap_or_default().into(),
                    labels,
                }
            })
            .collect();
        out.sort();
        Some(out)
    }

    /// Each loaded alerting rule: (name, `for` in seconds, evaluated without error).
    pub fn rules(&self) -> Option<Vec<(String, f64, bool)>> {
        let data = self.api("/api/v1/rules?type=alert")?;
        let mut out = Vec::new();
        for g in data["groups"].as_array()? {
            for r in g["rules"].as_array()? {
                out.push((
                    r["name"].as_str()?.to_string(),
                    r["duration"].as_f64()?,
                    r["health"] == "ok",
                ));
            }
        }
        Some(out)
    }

    /// Targets whose last scrape succeeded, and all targets.
    pub fn targets_up(&self) -> Option<(usize, usize)> {
        let data = self.api("/api/v1/targets?state=active")?;
        let all = data["activeTargets"].as_array()?;
        let up = all.iter().filter(|t| t["health"] == "up").count();
        Some((up, all.len()))
    }

    /// `process: last scrape error` of every target whose last scrape failed.
    pub fn target_errors(&self) -> Vec<String> {
        let Some(data) = self.api("/api/v1/targets?state=active") else {
            return vec!["targets unreadable".into()];
        };
        data["activeTargets"]
            .as_array()
            .map(|all| {
                all.iter()
                    .filter(|t| t["health"] != "up")
                    .map(|t| {
                        format!(
                            "{}: {}",
                            t["labels"]["process"].as_str().unwrap_or("?"),
                            t["lastError"].as_str().unwrap_or("?")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Replaces the rules file and reloads (SIGHUP); returns once `check` holds for the
    /// loaded rules.
    pub fn reload_rules(
        &self,
        rules: &str,
        check: impl Fn(&[(String, f64, bool)]) -> bool,
    ) -> Result<()> {
        std::fs::write(&self.rules, rules)?;
        signal(self.child.id(), "HUP")?;
        wait_for(
            Duration::from_secs(30),
            "Prometheus reloading the rules",
            || self.rules().filter(|r| check(r)).map(|_| ()),
        )
        .map_err(|e| Error::Failed(format!("{e}\n{}", self.log_text())))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_encoded_and_labels_read() {
        assert_eq!(
            encode("max(a{b=\"c\"}) > 3"),
            "max%28a%7Bb%3D%22c%22%7D%29%20%3E%203"
        );
        let a = Alert {
            name: "GathererDown".into(),
            state: "firing".into(),
            labels: "instance=127.0.0.1:1,job=j,process=gatherer-b".into(),
        };
        assert_eq!(a.label("process"), Some("gatherer-b"));
        assert_eq!(a.label("instance"), Some("127.0.0.1:1"));
        assert_eq!(a.label("proc"), None);
    }
}
