//! What `up` starts: one [`ProcessSpec`] per child, with its command line, port and files.
//!
//! Every child is this same binary (`std::env::current_exe()`) with a subcommand, so `up`
//! runs exactly what an operator would run under systemd.

use super::args::UpArgs;
use super::state::Kind;
use std::ffi::OsString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// One process to supervise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    pub name: String,
    pub kind: Kind,
    pub port: u16,
    /// Arguments after the binary (the subcommand first). Never a secret: command lines are
    /// world-readable (`/proc/PID/cmdline`); secrets go in [`ProcessSpec::env`].
    pub args: Vec<OsString>,
    /// Environment variables set for the child (the production URL, which may hold a
    /// password).
    pub env: Vec<(OsString, OsString)>,
    pub data_dir: Option<PathBuf>,
    pub log: PathBuf,
    /// Path of `/health` (the simulator has its stats endpoint instead).
    pub health_path: &'static str,
}

impl ProcessSpec {
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Empty when the process serves no HTTP.
    pub fn health_url(&self) -> String {
        if self.health_path.is_empty() {
            return String::new();
        }
        format!("{}{}", self.base_url(), self.health_path)
    }

    /// Empty when the process serves no HTTP.
    pub fn metrics_url(&self) -> String {
        if self.health_path.is_empty() {
            return String::new();
        }
        format!("{}/metrics", self.base_url())
    }
}

/// Files of the key pair registered with the simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub key_id: String,
    pub private_pem: PathBuf,
    pub public_pem: PathBuf,
}

/// `n` distinct free ports on 127.0.0.1, for the children to bind a moment later.
///
/// All `n` are held open until every one is chosen: a port bound and released at once is free
/// again, and the next `bind(0)` may return it (a CI run gave gatherer-b and the deduplicator
/// the same port; the deduplicator then failed to bind at every restart).
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// Gatherer names: `gatherer-a`, `gatherer-b`, …
pub fn gatherer_name(i: usize) -> String {
    let letter = char::from(b'a' + u8::try_from(i % 26).unwrap_or(0));
    if i < 26 {
        format!("gatherer-{letter}")
    } else {
        format!("gatherer-{letter}{}", i / 26)
    }
}

fn os(parts: &[&str]) -> Vec<OsString> {
    parts.iter().map(OsString::from).collect()
}

/// The simulator's command line.
pub fn sim(args: &UpArgs, keys: &Keys, port: u16) -> ProcessSpec {
    let dir = &args.data_dir;
    let mut argv = os(&["sim", "--listen"]);
    argv.push(format!("127.0.0.1:{port}").into());
    argv.extend(os(&["--seed"]));
    argv.push(args.seed.to_string().into());
    argv.push("--markets".into());
    argv.push(args.markets.to_string().into());
    argv.push("--rate".into());
    argv.push(args.rate.to_string().into());
    argv.push("--truth".into());
    argv.push(args.truth_path().into());
    argv.push("--state-dir".into());
    argv.push(dir.join("sim").into());
    argv.push("--auth".into());
    let mut auth = OsString::from(format!("{}=", keys.key_id));
    auth.push(&keys.public_pem);
    argv.push(auth);
    for fault in &args.faults {
        argv.push("--fault".into());
        argv.push(fault.into());
    }
    argv.extend(args.sim_args.iter().map(OsString::from));
    ProcessSpec {
        name: "sim".into(),
        kind: Kind::Sim,
        port,
        args: argv,
        env: Vec::new(),
        data_dir: Some(dir.join("sim")),
        log: dir.join("logs").join("sim.log"),
        health_path: "/_sim/stats",
    }
}

/// The TOML configuration of one gatherer (flat keys of `GathererConfig`), then the
/// `--gatherer-setting` lines as given.
pub fn gatherer_config(
    name: &str,
    dir: &Path,
    port: u16,
    sim_port: u16,
    keys: &Keys,
    extra: &[String],
) -> String {
    let esc = |p: &Path| {
        p.display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    };
    format!(
        "# Written by `kalshi-data up`; rewritten at every start.\n\
         gatherer_id = \"{name}\"\n\
         rest_url = \"http://127.0.0.1:{sim_port}/trade-api/v2\"\n\
         ws_url = \"ws://127.0.0.1:{sim_port}/trade-api/ws/v2\"\n\
         key_id = \"{}\"\n\
         private_key_path = \"{}\"\n\
         data_dir = \"{}\"\n\
         listen = \"127.0.0.1:{port}\"\n{}",
        keys.key_id,
        esc(&keys.private_pem),
        esc(&dir.join(name)),
        extra
            .iter()
            .map(|line| format!("{line}\n"))
            .collect::<String>(),
    )
}

/// One gatherer's command line (its config file is written by the caller).
pub fn gatherer(args: &UpArgs, name: &str, port: u16) -> ProcessSpec {
    let dir = &args.data_dir;
    let config = dir.join("config").join(format!("{name}.toml"));
    ProcessSpec {
        name: name.into(),
        kind: Kind::Gatherer,
        port,
        args: vec!["gatherer".into(), "--config".into(), config.into()],
        env: Vec::new(),
        data_dir: Some(dir.join(name)),
        log: dir.join("logs").join(format!("{name}.log")),
        health_path: "/health",
    }
}

/// The variable the deduplicator (and `migrate`) read the production URL from.
pub const PRODUCTION_ENV_DEDUP: &str = "KALSHI_DATA_DEDUP_PRODUCTION";
/// The variable the exporter reads the production URL from (`production_url` of its config).
pub const PRODUCTION_ENV_EXPORT: &str = "KALSHI_DATA_EXPORT_PRODUCTION_URL";

/// The production URL as a child's environment variable: it may hold a password, and a
/// command line is readable by every user of the machine.
fn production_env(var: &str, args: &UpArgs) -> (OsString, OsString) {
    (var.into(), args.production_url().into())
}

/// The deduplicator's command line against the simulator.
pub fn dedup(args: &UpArgs, port: u16, gatherers: &[(String, u16)], sim_port: u16) -> ProcessSpec {
    let rest_url = format!("http://127.0.0.1:{sim_port}/trade-api/v2");
    dedup_at(args, port, gatherers, &rest_url)
}

/// The deduplicator's command line, reading metadata from the exchange at `rest_url`.
pub fn dedup_at(
    args: &UpArgs,
    port: u16,
    gatherers: &[(String, u16)],
    rest_url: &str,
) -> ProcessSpec {
    let dir = &args.data_dir;
    let mut argv: Vec<OsString> = vec!["dedup".into()];
    argv.push("--listen".into());
    argv.push(format!("127.0.0.1:{port}").into());
    for (name, gport) in gatherers {
        argv.push("--gatherer".into());
        argv.push(format!("{name}=http://127.0.0.1:{gport}").into());
    }
    argv.push("--rest-url".into());
    argv.push(rest_url.into());
    ProcessSpec {
        name: "dedup".into(),
        kind: Kind::Dedup,
        port,
        args: argv,
        env: vec![production_env(PRODUCTION_ENV_DEDUP, args)],
        data_dir: None,
        log: dir.join("logs").join("dedup.log"),
        health_path: "/health",
    }
}

/// The exporter's command line.
pub fn exporter(args: &UpArgs, port: u16) -> ProcessSpec {
    let dir = &args.data_dir;
    let argv: Vec<OsString> = vec![
        "export".into(),
        "--archive".into(),
        args.archive_url().into(),
        "--listen".into(),
        format!("127.0.0.1:{port}").into(),
    ];
    ProcessSpec {
        name: "exporter".into(),
        kind: Kind::Exporter,
        port,
        args: argv,
        env: vec![production_env(PRODUCTION_ENV_EXPORT, args)],
        data_dir: Some(dir.join("archive")),
        log: dir.join("logs").join("exporter.log"),
        health_path: "/health",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gatherer_names_are_letters() {
        assert_eq!(gatherer_name(0), "gatherer-a");
        assert_eq!(gatherer_name(2), "gatherer-c");
    }

    #[test]
    fn the_exporter_listens_on_its_port() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            up: UpArgs,
        }
        let cli = Cli::parse_from(["up", "--data-dir", "d"]);
        let spec = exporter(&cli.up, 4321);
        let argv: Vec<String> = spec
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let at = argv.iter().position(|a| a == "--listen");
        assert_eq!(
            at.and_then(|i| argv.get(i + 1)).map(String::as_str),
            Some("127.0.0.1:4321"),
            "{argv:?}"
        );
        assert_eq!(spec.health_url(), "http://127.0.0.1:4321/health");
        assert_eq!(spec.metrics_url(), "http://127.0.0.1:4321/metrics");
    }

    #[test]
    fn config_escapes_paths() {
        let keys = Keys {
            key_id: "k".into(),
            private_pem: PathBuf::from("a\"b.pem"),
            public_pem: PathBuf::from("p"),
        };
        let text = gatherer_config("gatherer-a", Path::new("d"), 1, 2, &keys, &[]);
        assert!(text.contains("private_key_path = \"a\\\"b.pem\""));
        assert!(text.contains("listen = \"127.0.0.1:1\""));
    }
}
