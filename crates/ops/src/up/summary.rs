//! The summary `up` prints once its children are started: each process's URLs, where the
//! data is, and the commands to look at it.

use super::args::UpArgs;
use super::exchange::Exchange;
use super::plan::ProcessSpec;

/// Prints where everything is (stderr), once the children are started.
pub(super) fn print(args: &UpArgs, exchange: Option<&Exchange>, specs: &[ProcessSpec]) {
    let dir = args.data_dir.display();
    let mut out = String::new();
    out.push_str("kalshi-data is up.\n\n");
    out.push_str(&format!(
        "  {:<12} {:<38} {}\n",
        "process", "health", "metrics"
    ));
    for s in specs {
        out.push_str(&format!(
            "  {:<12} {:<38} {}\n",
            s.name,
            s.health_url(),
            s.metrics_url()
        ));
    }
    // Printed, so never with its password (the operator has it; a terminal log must not).
    let prod = kd_core::config::redact_url(&args.production_url());
    out.push_str(&format!(
        "\n  data:        {dir}/   (logs in {dir}/logs/, processes in {dir}/up.json)\n"
    ));
    out.push_str(&format!("  production:  {prod}\n"));
    out.push_str(&format!("  archive:     {}\n", args.archive_url()));
    if let Some(ex) = exchange {
        out.push_str(&format!(
            "  exchange:    {} (REST {}, WebSocket {})\n",
            ex.name, ex.rest_url, ex.ws_url
        ));
    }
    if args.simulated() {
        out.push_str(&format!("  truth:       {}\n", args.truth_path().display()));
    }
    if let Some(path) = prod.strip_prefix("sqlite://") {
        out.push_str(&format!(
            "\n  query:       sqlite3 {path} 'SELECT COUNT(*) FROM trades'\n"
        ));
    } else {
        out.push_str(&format!(
            "\n  query:       psql '{prod}' -c 'SELECT COUNT(*) FROM trades'\n"
        ));
    }
    out.push_str(&format!(
        "  status:      kalshi-data status --data-dir {dir}\n"
    ));
    out.push_str(&format!("  book:        kalshi-data book --production {prod} --ticker TICKER --at 2026-01-01T00:00:00Z\n"));
    if args.simulated() {
        out.push_str(&format!(
            "  verify:      kalshi-data verify --truth {} --production {prod}\n",
            args.truth_path().display()
        ));
    }
    if exchange.is_some() {
        out.push_str(&format!(
            "  audit:       kalshi-data audit --production {prod}\n"
        ));
        out.push_str(
            "\n  Ctrl-C closes the gatherers' sockets, drains what they hold into production,\n  then stops (a second Ctrl-C stops at once); the next `up` on the same data\n  directory resumes.\n",
        );
    } else {
        out.push_str(
            "\n  Ctrl-C stops the exchange feed, drains everything into production, then stops\n  (a second Ctrl-C stops at once); the next `up` on the same data directory resumes.\n",
        );
    }
    eprintln!("{out}");
}
