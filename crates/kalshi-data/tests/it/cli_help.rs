//! The binary's command line: `--help` lists the twelve subcommands of DESIGN §1, `audit` and `replay`, each has its
//! own `--help`, and a wrong invocation is a usage error (exit 2), never a silent success.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kalshi-data");

const SUBCOMMANDS: [&str; 14] = [
    "up", "sim", "gatherer", "dedup", "export", "status", "verify", "audit", "book", "backfill",
    "migrate", "keygen", "bench", "replay",
];

fn run(args: &[&str]) -> std::process::Output {
    match Command::new(BIN).args(args).output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run {BIN}: {e}"),
    }
}

/// The subcommand names of the `Commands:` section of a clap help text.
fn listed_subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|name| name != "help")
        .collect()
}

#[test]
fn help_lists_the_twelve_subcommands() {
    let out = run(&["--help"]);
    assert!(out.status.success(), "--help exit {:?}", out.status);
    let help = String::from_utf8_lossy(&out.stdout);
    assert_eq!(listed_subcommands(&help), SUBCOMMANDS, "{help}");
}

#[test]
fn every_subcommand_has_its_own_help() {
    for name in SUBCOMMANDS {
        let out = run(&[name, "--help"]);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name} --help exit {:?}", out.status);
        assert!(
            help.contains(&format!("Usage: kalshi-data {name}")),
            "{name} --help:\n{help}"
        );
        // Every subcommand takes at least one option of its own beyond the global ones.
        let own_options = help
            .lines()
            .filter(|l| l.trim_start().starts_with('-') && l.contains("--"))
            .filter(|l| !l.contains("--log-format") && !l.contains("--help"))
            .count();
        assert!(own_options > 0, "{name} --help lists no options:\n{help}");
    }
}

#[test]
fn unknown_subcommand_and_unknown_flag_are_usage_errors() {
    for args in [&["frobnicate"][..], &["verify", "--no-such-flag"], &[]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?} printed no error");
    }
}
