//! `up --exchange URL` against a stand-in for Kalshi: the simulator started by the test as a
//! process of its own, on a port chosen here, requiring signed requests (`--auth`), so `up`
//! runs no simulator and knows nothing the real exchange would not tell it.
//!
//! - The preflight passes, `up` captures, `status` shows no simulator row and the archive's
//!   age, and after the stand-in stops publishing, `verify --truth` against the stand-in's
//!   own truth log is OK. The key id (given through `KALSHI_DATA_UP_KEY_ID`) is on no child's
//!   command line, in no file `up` writes and in no output.
//! - Ctrl-C on that run (the exchange is not ours, so it keeps publishing): the gatherers close
//!   their sockets first (SIGUSR1) and keep serving pulls, the drain completes, production
//!   holds every row each gatherer stored, and `verify --truth --to` the moment of the Ctrl-C
//!   is OK.
//! - The preflight refuses, exit 2, nothing started: a key id the exchange does not know (the
//!   message names the key id, not its value), a key file others can read, an address where
//!   nothing listens (the message names connectivity).

use kd_testkit::http::{get_json, request};
use kd_testkit::process::{signal, spawn_logged, stop, wait_exit};
use kd_testkit::wait::wait_for;
use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kalshi-data");
/// Registered with the stand-in; must never appear where `up` writes or prints.
const KEY_ID: &str = "exchange-key-planted-4417";
const KEY_ENV: &str = "KALSHI_DATA_UP_KEY_ID";

/// The stand-in: `kalshi-data sim` on its own port with `--auth KEY_ID=PUBLIC_PEM`.
struct StandIn {
    child: Child,
    port: u16,
    truth: PathBuf,
}

impl StandIn {
    fn start(dir: &Path, public_pem: &Path) -> kd_testkit::Result<StandIn> {
        let port = kd_testkit::ports::free_port()?;
        let truth = dir.join("sim-truth.jsonl");
        let mut auth = std::ffi::OsString::from(format!("{KEY_ID}="));
        auth.push(public_pem);
        let mut cmd = Command::new(BIN);
        cmd.args(["sim", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--markets", "20", "--rate", "200", "--seed", "7"])
            .arg("--truth")
            .arg(&truth)
            .arg("--state-dir")
            .arg(dir.join("sim-state"))
            .arg("--auth")
            .arg(auth);
        let child = spawn_logged(&mut cmd, &dir.join("sim.log"))?;
        let stand_in = StandIn { child, port, truth };
        wait_for(Duration::from_secs(30), "the stand-in to answer", || {
            get_json(&stand_in.url("/_sim/stats"))
        })?;
        Ok(stand_in)
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        // The main test stops it itself (to flush its truth); a failing one leaves it running.
        if matches!(self.child.try_wait(), Ok(None)) {
            stop(&mut self.child, Duration::from_secs(10));
        }
    }
}

/// A key pair from `kalshi-data keygen`: (private, public).
fn keygen(dir: &Path, name: &str) -> kd_testkit::Result<(PathBuf, PathBuf)> {
    let out = Command::new(BIN)
        .args(["keygen", "--name", name, "--bits", "2048", "--out"])
        .arg(dir)
        .output()?;
    assert!(out.status.success(), "keygen: {out:?}");
    Ok((
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.pub.pem")),
    ))
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// `up --exchange URL` in `dir` (output kept whole), the key id through the environment.
fn up_command(dir: &Path, exchange: &str, key_id: &str, key: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["up", "--plain", "--data-dir"])
        .arg(dir)
        .args(["--exchange", exchange, "--gatherers", "2", "--private-key"])
        .arg(key)
        .env(KEY_ENV, key_id);
    cmd
}

/// Every child's command line, read from `/proc` through `up.json` while they run.
fn child_cmdlines(dir: &Path) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(dir.join("up.json")) else {
        return Vec::new();
    };
    let Ok(state) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in state["processes"].as_array().cloned().unwrap_or_default() {
        let (Some(name), Some(pid)) = (p["name"].as_str(), p["pid"].as_u64()) else {
            continue;
        };
        if let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            out.push((
                name.to_string(),
                String::from_utf8_lossy(&raw).replace('\0', " "),
            ));
        }
    }
    out
}

/// Port of one process of `up.json`.
fn port_of(dir: &Path, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("up.json")).ok()?;
    let state: serde_json::Value = serde_json::from_str(&text).ok()?;
    state["processes"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)?["port"]
        .as_u64()
}

#[test]
fn up_exchange_captures_the_stand_in_and_verify_is_ok() -> kd_testkit::Result<()> {
    let started = Instant::now();
    let tmp = tempfile::tempdir()?;
    let (private, public) = keygen(tmp.path(), "trader")?;
    let stand_in = StandIn::start(tmp.path(), &public)?;
    let dir = tmp.path().join("data");
    let log = tmp.path().join("up.log");
    let mut cmd = up_command(&dir, &stand_in.base(), KEY_ID, &private);
    cmd.args(["--duration", "20"]);
    let mut up = spawn_logged(&mut cmd, &log)?;

    // Capturing: both gatherers and the deduplicator answer, and trades reach a store.
    let cmdlines = wait_for(Duration::from_secs(40), "every child to run", || {
        let lines = child_cmdlines(&dir);
        (lines.len() == 4).then_some(lines)
    })?;
    wait_for(
        Duration::from_secs(30),
        "gatherer-a to store trades",
        || {
            let port = port_of(&dir, "gatherer-a")?;
            let h = get_json(&format!("http://127.0.0.1:{port}/health"))?;
            (h["store"]["tables"]["trades"]["head"].as_u64()? > 0).then_some(())
        },
    )?;
    let status = Command::new(BIN)
        .args(["status", "--json", "--data-dir"])
        .arg(&dir)
        .output()?;
    let report: serde_json::Value = serde_json::from_slice(&status.stdout)
        .map_err(|e| kd_testkit::Error::Failed(format!("status --json: {e}")))?;
    let screen = Command::new(BIN)
        .args(["status", "--data-dir"])
        .arg(&dir)
        .output()?;
    let screen = text(&screen);
    // The stand-in stops publishing (REST keeps serving) so that its truth ends where the
    // capture can: `up` cannot stop an exchange that is not its own.
    let stopped = request("POST", &stand_in.url("/_sim/stop-publishing"), None);
    assert!(
        stopped.as_ref().is_some_and(|(s, _)| *s < 300),
        "{stopped:?}"
    );
    let exit = wait_exit(&mut up, Duration::from_secs(90))?;
    let out = std::fs::read_to_string(&log)?;
    assert!(exit.success(), "up: {exit}\n{out}");
    let mut stand_in = stand_in;
    // SIGTERM flushes the truth log.
    assert!(stop(&mut stand_in.child, Duration::from_secs(10)));

    // The preflight passed and said so; the summary names the exchange; no simulator ran.
    for want in [
        "up: preflight: ",
        "/trade-api/v2/exchange/status answers (exchange_active=true",
        "up: preflight: key accepted (signed WebSocket handshake to ws://127.0.0.1:",
        "up: preflight: clock within ",
        "kalshi-data is up.",
        &format!("exchange:    {} (REST", stand_in.base()),
        "the exchange is not ours",
        "up: drained",
    ] {
        assert!(
            out.contains(want),
            "`{want}` missing from up's output:\n{out}"
        );
    }
    let names: Vec<&str> = cmdlines.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["gatherer-a", "gatherer-b", "dedup", "exporter"]);
    assert!(
        report["sim"].is_null() && !screen.contains("\nsim "),
        "a simulator row: {screen}"
    );
    assert!(
        report["exporter"]["archive"].is_object() && screen.contains("    archive: "),
        "the archive's age: {screen}"
    );
    assert_eq!(report["gatherers"].as_array().map(Vec::len), Some(2));

    // The key id is nowhere `up` wrote or printed, nor on a command line.
    for (name, line) in &cmdlines {
        assert!(!line.contains(KEY_ID), "{name}'s command line: {line}");
    }
    assert!(!out.contains(KEY_ID), "up's output:\n{out}");
    let state = std::fs::read_to_string(dir.join("up.json"))?;
    assert!(!state.contains(KEY_ID), "up.json: {state}");
    for sub in ["config", "logs"] {
        for entry in std::fs::read_dir(dir.join(sub))? {
            let path = entry?.path();
            let body = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                !body.contains(KEY_ID),
                "{}: holds the key id",
                path.display()
            );
        }
    }

    // The capture against the stand-in's own truth.
    let verify = Command::new(BIN)
        .args(["verify", "--truth"])
        .arg(&stand_in.truth)
        .arg("--production")
        .arg(format!("sqlite://{}", dir.join("production.db").display()))
        .output()?;
    let verdict = text(&verify);
    assert!(
        verify.status.success() && verdict.contains("verify: OK"),
        "{verdict}"
    );
    let summary: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("up: ") || l.starts_with("  "))
        .collect();
    eprintln!(
        "FIGURES exchange: {} | {} s wall\n{}",
        verdict
            .lines()
            .find(|l| l.contains("verify:"))
            .unwrap_or(""),
        started.elapsed().as_secs(),
        summary.join("\n")
    );
    Ok(())
}

/// Microseconds since the Unix epoch (the stand-in stamps exchange time from this clock).
fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Identities of every row of the store of gatherer `name` (lifecycle rows aside: their
/// copies are one change within a tolerance, not one identity — see `verify`).
fn stored_identities(
    dir: &Path,
    name: &str,
) -> kd_testkit::Result<HashSet<kd_core::records::Identity>> {
    let failed = |e: kd_gatherer::store::StoreError| {
        kd_testkit::Error::Failed(format!("{name}'s store: {e}"))
    };
    let pool = kd_gatherer::store::ReadPool::new(&dir.join(name)).map_err(failed)?;
    let mut out = HashSet::new();
    for table in kd_core::Table::ALL {
        if table == kd_core::Table::Lifecycle {
            continue;
        }
        let mut after = 0;
        loop {
            let page = pool.pull(table, after, 10_000).map_err(failed)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            out.extend(page.iter().map(|row| row.record.identity()));
        }
    }
    Ok(out)
}

#[test]
fn ctrl_c_on_an_exchange_not_ours_closes_the_sockets_first() -> kd_testkit::Result<()> {
    let started = Instant::now();
    let tmp = tempfile::tempdir()?;
    let (private, public) = keygen(tmp.path(), "trader")?;
    let stand_in = StandIn::start(tmp.path(), &public)?;
    let dir = tmp.path().join("data");
    let log = tmp.path().join("up.log");
    // No --duration: only the Ctrl-C ends this run.
    let mut up = spawn_logged(
        &mut up_command(&dir, &stand_in.base(), KEY_ID, &private),
        &log,
    )?;
    // A capture of some seconds (the stand-in sends ~20 deltas/s), with trades, on both.
    for g in ["gatherer-a", "gatherer-b"] {
        wait_for(
            Duration::from_secs(120),
            &format!("{g} to store 200 deltas"),
            || {
                let port = port_of(&dir, g)?;
                let h = get_json(&format!("http://127.0.0.1:{port}/health"))?;
                let head = |t: &str| h["store"]["tables"][t]["head"].as_u64();
                (h["connections_up"].as_u64()? > 0 && head("trades")? > 0 && head("deltas")? >= 200)
                    .then_some(())
            },
        )?;
    }
    // The stand-in keeps publishing through the whole stop, as Kalshi would.
    let interrupted_us = now_us();
    signal(up.id(), "INT")?;
    let exit = wait_exit(&mut up, Duration::from_secs(180))?;
    let out = std::fs::read_to_string(&log)?;
    assert!(exit.success(), "up: {exit}\n{out}");
    let mut stand_in = stand_in;
    assert!(stop(&mut stand_in.child, Duration::from_secs(10)));

    // In this order: the sockets closed, the drain done, then every process stopped.
    let at = |want: &str| {
        out.find(want)
            .unwrap_or_else(|| panic!("`{want}` missing from up's output:\n{out}"))
    };
    let order = [
        at(
            "Ctrl-C (press it again to stop at once) — the exchange is not ours: closing the gatherers' sockets first",
        ),
        at("up: sockets closed on 2 gatherer(s)"),
        at("up: drained"),
        at("up: stopping every process"),
    ];
    assert!(order.is_sorted(), "out of order {order:?}:\n{out}");
    for g in ["gatherer-a", "gatherer-b"] {
        let glog = std::fs::read_to_string(dir.join("logs").join(format!("{g}.log")))?;
        let closed = glog.find("exchange feed closed");
        let stopping = glog.find("shutdown requested");
        assert!(
            closed.is_some() && stopping.is_some() && closed < stopping,
            "{g}: its feed closed before it was stopped:\n{glog}"
        );
    }

    // Production holds every row each gatherer stored.
    let production = format!("sqlite://{}", dir.join("production.db").display());
    let present = crate::reliability_support::production_identities_with_gaps(&production)
        .map_err(|e| kd_testkit::Error::Failed(format!("production: {e}")))?;
    let mut stored = Vec::new();
    for g in ["gatherer-a", "gatherer-b"] {
        let rows = stored_identities(&dir, g)?;
        let lacking = rows.difference(&present).count();
        assert_eq!(
            lacking,
            0,
            "{g}: {lacking} of its {} rows not in production",
            rows.len()
        );
        stored.push(format!("{g}={}", rows.len()));
    }

    // Everything the stand-in sent before the Ctrl-C is in production.
    let verify = Command::new(BIN)
        .args(["verify", "--truth"])
        .arg(&stand_in.truth)
        .arg("--production")
        .arg(&production)
        .args(["--to", &interrupted_us.to_string()])
        .output()?;
    let verdict = text(&verify);
    assert!(
        verify.status.success() && verdict.contains("verify: OK"),
        "{verdict}"
    );
    let summary: Vec<&str> = out.lines().filter(|l| l.starts_with("up: ")).collect();
    eprintln!(
        "FIGURES exchange-ctrl-c: {} | stored {} all in production | {} s wall\n{}",
        verdict
            .lines()
            .find(|l| l.contains("verify:"))
            .unwrap_or(""),
        stored.join(" "),
        started.elapsed().as_secs(),
        summary.join("\n")
    );
    Ok(())
}

#[test]
fn the_preflight_names_what_is_wrong_and_starts_nothing() -> kd_testkit::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (private, public) = keygen(tmp.path(), "trader")?;
    let stand_in = StandIn::start(tmp.path(), &public)?;
    let run = |dir: &str, exchange: &str, key_id: &str, key: &Path| -> kd_testkit::Result<_> {
        let dir = tmp.path().join(dir);
        let out = up_command(&dir, exchange, key_id, key).output()?;
        Ok((out.status.code(), text(&out), dir))
    };
    let no_secret = |t: &str| {
        assert!(!t.contains(KEY_ID) && !t.contains("wrong-key-8812"), "{t}");
        assert!(!t.contains("PRIVATE KEY"), "{t}");
    };

    // A key id the exchange does not know.
    let (code, out, dir) = run("wrong-id", &stand_in.base(), "wrong-key-8812", &private)?;
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(
            "up: preflight FAILED: key: the exchange refused the signed WebSocket handshake"
        ) && out.contains("the key id (--key-id"),
        "{out}"
    );
    no_secret(&out);
    assert!(!dir.join("up.json").exists(), "nothing started: {out}");

    // Another key pair's private key under the right id: the signature is refused.
    let (other, _) = keygen(tmp.path(), "other")?;
    let (code, out, _) = run("wrong-key", &stand_in.base(), KEY_ID, &other)?;
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("key: the exchange refused the signed WebSocket handshake")
            && out.contains("or the private key"),
        "{out}"
    );
    no_secret(&out);

    // A key file others can read, and a file that is no key: refused before any request.
    let open = tmp.path().join("open.pem");
    std::fs::copy(&private, &open)?;
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644))?;
    let (code, out, _) = run("open-key", &stand_in.base(), KEY_ID, &open)?;
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("readable by other users (mode 644); run `chmod 600"),
        "{out}"
    );
    let junk = tmp.path().join("junk.pem");
    std::fs::write(&junk, "not a key")?;
    std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600))?;
    let (code, out, _) = run("junk-key", &stand_in.base(), KEY_ID, &junk)?;
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("not an RSA (or Ed25519) private key in PEM"),
        "{out}"
    );

    // Nothing listens: connectivity, named with the URL asked.
    let dead = kd_testkit::ports::unused_addr()?;
    let (code, out, dir) = run("dead", &format!("http://{dead}"), KEY_ID, &private)?;
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(&format!(
            "up: preflight FAILED: connectivity: GET http://{dead}/trade-api/v2/exchange/status failed:"
        )),
        "{out}"
    );
    no_secret(&out);
    assert!(!dir.join("up.json").exists(), "nothing started: {out}");
    eprintln!(
        "FIGURES exchange-preflight: unknown key id, wrong key, open key file, junk key, unreachable: exit 2 each"
    );
    Ok(())
}
