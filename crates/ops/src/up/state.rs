//! `DATA_DIR/up.json`: what a running `up` started, so `status` (and people) can find it.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "up.json";

/// The kind of a supervised process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Sim,
    Gatherer,
    Dedup,
    Exporter,
}

/// One supervised process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessState {
    /// `sim`, `gatherer-a`, …, `dedup`, `exporter`.
    pub name: String,
    pub kind: Kind,
    /// Current OS pid; `None` while it is being restarted.
    pub pid: Option<u32>,
    /// HTTP port on 127.0.0.1 (health, metrics, and the process's API).
    pub port: u16,
    pub health_url: String,
    pub metrics_url: String,
    /// Times the supervisor restarted it.
    pub restarts: u32,
    /// Its data directory, when it has one (disk usage alerts).
    pub data_dir: Option<PathBuf>,
    pub log: PathBuf,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpState {
    /// The supervisor's pid.
    pub pid: u32,
    pub started_at: String,
    pub data_dir: PathBuf,
    pub production: String,
    pub archive: String,
    pub truth: Option<PathBuf>,
    pub processes: Vec<ProcessState>,
    /// `running`, `draining`, `stopped`.
    pub phase: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl UpState {
    /// Writes atomically (temp file + rename) so a reader never sees half a file.
    pub fn write(&self, data_dir: &Path) -> Result<(), StateError> {
        let path = data_dir.join(FILE_NAME);
        let tmp = data_dir.join(format!("{FILE_NAME}.tmp"));
        let io = |source| StateError::Io {
            path: path.clone(),
            source,
        };
        let text = serde_json::to_string_pretty(self).map_err(|source| StateError::Json {
            path: path.clone(),
            source,
        })?;
        write_private(&tmp, text.as_bytes()).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    pub fn read(data_dir: &Path) -> Result<UpState, StateError> {
        let path = data_dir.join(FILE_NAME);
        let text = std::fs::read_to_string(&path).map_err(|source| StateError::Io {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| StateError::Json { path, source })
    }
}

/// Writes a file only its owner can read (0600 from creation, not chmod after: no window).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// True when a process with this pid exists (signal 0).
pub fn pid_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None).is_ok()
}
