//! Secrets stay where they belong (issue 18's leak test). A production password is planted in
//! both of its URL forms (user info and `?password=`), with a numeric pull token and a key id:
//! - `up` (given the URL through its environment) runs to its drain, and the password is in no
//!   child's command line (`/proc/PID/cmdline`, read while they run), not in `up.json` (which
//!   is 0600), not in any log line, not in `up`'s own output;
//! - `--help` of every command, with every secret-bearing variable set, shows none of them;
//! - a numeric token is a token, and a refused configuration never echoes it.
//!
//! Trust authentication ignores passwords, so the run works while the password still travels
//! everywhere it could leak.

use kd_testkit::pg::TestDb;
use kd_testkit::up::{Up, UpOpts};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_kalshi-data");
const PASSWORD: &str = "Pw1userinfo7731";
const QUERY_PASSWORD: &str = "Pw2query8842";
const TOKEN: &str = "987654321012";
const KEY_ID: &str = "keyid-planted-5531";

fn planted() -> [&'static str; 4] {
    [PASSWORD, QUERY_PASSWORD, TOKEN, KEY_ID]
}

/// `postgres://postgres@h/db` → `postgres://postgres:PASSWORD@h/db?password=QUERY_PASSWORD`.
fn with_passwords(url: &str) -> String {
    let url = url.replacen("://postgres@", &format!("://postgres:{PASSWORD}@"), 1);
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}password={QUERY_PASSWORD}")
}

fn leaks(text: &str) -> Vec<&'static str> {
    planted().into_iter().filter(|p| text.contains(p)).collect()
}

/// Every child's command line, by pid, read while `up` runs.
fn child_cmdlines(up: &Up) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(state) = up.state() else {
        return out;
    };
    for p in state["processes"].as_array().cloned().unwrap_or_default() {
        let (Some(name), Some(pid)) = (p["name"].as_str(), p["pid"].as_u64()) else {
            continue;
        };
        if let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            out.insert(
                name.to_string(),
                String::from_utf8_lossy(&raw).replace('\0', " "),
            );
        }
    }
    out
}

#[test]
fn up_keeps_the_production_password_off_command_lines_files_and_logs() -> kd_testkit::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let db = rt.block_on(TestDb::create("secrets"))?;
    let url = with_passwords(&db.url);
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("data");
    let opts = UpOpts {
        markets: 20,
        rate: 200,
        duration: 14,
        production: Some(url.clone()),
        ..UpOpts::default()
    };
    let mut up = Up::start_with_production_env(BIN.as_ref(), &dir, &opts)?;
    up.wait_ready(Duration::from_secs(60))?;
    let cmdlines = child_cmdlines(&up);
    let mode = std::fs::metadata(dir.join("up.json"))?.permissions().mode() & 0o777;
    up.wait_exit(Duration::from_secs(120))?;

    assert!(
        cmdlines.len() >= 6,
        "every child's command line was read: {cmdlines:?}"
    );
    for (name, line) in &cmdlines {
        assert!(leaks(line).is_empty(), "{name}'s command line: {line}");
    }
    assert_eq!(mode, 0o600, "up.json is readable by its owner only");
    let state = std::fs::read_to_string(dir.join("up.json"))?;
    assert!(leaks(&state).is_empty(), "up.json: {state}");
    assert!(
        state.contains("***"),
        "up.json shows the redacted URL: {state}"
    );
    let own = up.log_text();
    assert!(leaks(&own).is_empty(), "up's output: {own}");
    for (file, text) in up.child_log_files() {
        let bad: Vec<&str> = text.lines().filter(|l| !leaks(l).is_empty()).collect();
        assert!(bad.is_empty(), "{file}: {bad:?}");
    }
    // The run itself worked: production got the data through the URL given by environment.
    assert!(own.contains("up: drained"), "{own}");
    rt.block_on(db.drop_db())?;
    Ok(())
}

#[test]
fn help_never_shows_a_secret_from_the_environment() -> kd_testkit::Result<()> {
    let url = with_passwords("postgres://postgres@127.0.0.1:5432/kd");
    let env = [
        ("KALSHI_DATA_PRODUCTION", url.as_str()),
        ("KALSHI_DATA_DEDUP_PRODUCTION", url.as_str()),
        ("KALSHI_DATA_EXPORT_PRODUCTION_URL", url.as_str()),
        ("KALSHI_DATA_GATHERER_TOKEN", TOKEN),
        ("KALSHI_DATA_DEDUP_TOKEN", TOKEN),
        ("KALSHI_DATA_BACKFILL_KEY_ID", KEY_ID),
        ("KALSHI_DATA_GATHERER_KEY_ID", KEY_ID),
    ];
    let top = Command::new(BIN).arg("--help").output()?;
    let top = String::from_utf8_lossy(&top.stdout).into_owned();
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 10, "commands found: {commands:?}");
    for command in &commands {
        let out = Command::new(BIN)
            .args([command.as_str(), "--help"])
            .envs(env)
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{command} --help: {text}");
        assert!(
            leaks(&text).is_empty(),
            "{command} --help shows a secret:\n{text}"
        );
    }
    Ok(())
}

#[test]
fn a_numeric_token_is_a_token_and_is_never_echoed() -> kd_testkit::Result<()> {
    let tmp = tempfile::tempdir()?;
    // A configuration the gatherer refuses for another reason (an unknown key, sorted after
    // `token` so the token is read first): the error
    // names the key, the token (from the environment, numeric) is accepted and not shown.
    let config = tmp.path().join("g.toml");
    std::fs::write(&config, "zz_no_such_key = 1\n")?;
    let out = Command::new(BIN)
        .args(["gatherer", "--config"])
        .arg(&config)
        .env("KALSHI_DATA_GATHERER_TOKEN", TOKEN)
        .output()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the unknown key is refused: {text}");
    assert!(text.contains("zz_no_such_key"), "{text}");
    assert!(
        !text.contains("key `token`"),
        "the numeric token was accepted: {text}"
    );
    assert!(leaks(&text).is_empty(), "{text}");
    Ok(())
}
