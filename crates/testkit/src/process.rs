//! Running a built binary (`kalshi-data`, a helper server) as a child process of a test: its
//! output to a log file, signals by name, waiting for its exit with a limit, and stopping it the
//! way an operator would (SIGTERM, then SIGKILL after a grace period).

use crate::{Error, Result};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How often exits are polled.
const POLL: Duration = Duration::from_millis(200);

/// Spawns `cmd` with no stdin and stdout and stderr both appended to a new file `log`.
pub fn spawn_logged(cmd: &mut Command, log: &Path) -> Result<Child> {
    let out = std::fs::File::create(log)?;
    Ok(cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()?)
}

/// Sends a signal (`TERM`, `KILL`, `STOP`, `CONT`, …) with the `kill` program, so tests need no
/// signal binding of their own.
pub fn signal(pid: u32, sig: &str) -> Result<()> {
    let st = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()?;
    if !st.success() {
        return Err(Error::Failed(format!("kill -{sig} {pid} failed: {st}")));
    }
    Ok(())
}

/// Waits for `child` to end by itself. After `limit` it is killed and the wait fails: a test
/// must not leave a process behind.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Result<ExitStatus> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(POLL);
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(Error::Timeout {
        what: "the process to exit".into(),
        limit,
    })
}

/// Stops `child` like an operator: SIGTERM (a supervisor stops its children, closing their
/// connections), then SIGKILL if it has not ended within `grace`. Returns whether it ended by
/// itself.
pub fn stop(child: &mut Child, grace: Duration) -> bool {
    let _ = signal(child.id(), "TERM");
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return true;
        }
        std::thread::sleep(POLL);
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_logged_waited_for_and_stopped() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("echo.log");
        let mut child = spawn_logged(
            Command::new("sh").args(["-c", "echo hi; echo err >&2"]),
            &log,
        )?;
        assert!(wait_exit(&mut child, Duration::from_secs(10))?.success());
        assert_eq!(std::fs::read_to_string(&log)?, "hi\nerr\n");

        let mut sleeper = spawn_logged(Command::new("sleep").arg("60"), &log)?;
        assert!(
            stop(&mut sleeper, Duration::from_secs(10)),
            "SIGTERM ends sleep"
        );
        let mut sleeper = spawn_logged(Command::new("sleep").arg("60"), &log)?;
        let err = wait_exit(&mut sleeper, Duration::from_millis(100)).err();
        assert!(matches!(err, Some(Error::Timeout { .. })), "{err:?}");
        assert!(sleeper.try_wait()?.is_some(), "killed after the limit");
        Ok(())
    }
}
