//! An exclusive lock on a data directory: one process at a time may own a gatherer's store,
//! the simulator's state or `up`'s data directory.
//!
//! The lock is an advisory `flock` on `<dir>/kalshi-data.lock` (std's `File::try_lock`), held
//! for as long as the returned [`DirLock`] lives. The kernel releases it when the process dies,
//! whatever the cause (`kill -9` included), so there is never a stale lock to clean up — unlike
//! a pid file, which is only a hint. The file is opened close-on-exec, so children `up` starts
//! do not inherit it. The holder writes its pid and role into the file so that the process
//! refused can name it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Name of the lock file inside a locked directory.
pub const LOCK_FILE: &str = "kalshi-data.lock";

/// Why a directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "data directory {dir} is in use by another process ({holder}); stop it first or choose another directory"
    )]
    Held { dir: PathBuf, holder: String },
    #[error("cannot lock data directory {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The held lock; dropping it releases the directory.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    dir: PathBuf,
}

impl DirLock {
    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Creates `dir` if needed and locks it for this process, recording `role` (e.g. `gatherer a`)
/// and the pid as the holder. Fails at once (never waits) when another process holds it.
pub fn lock_dir(dir: &Path, role: &str) -> Result<DirLock, LockError> {
    let io = |source| LockError::Io {
        dir: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let holder = match file.read_to_string(&mut text) {
                Ok(_) if !text.trim().is_empty() => text.trim().to_owned(),
                _ => "holder unknown".to_owned(),
            };
            return Err(LockError::Held {
                dir: dir.to_owned(),
                holder,
            });
        }
        Err(TryLockError::Error(source)) => return Err(io(source)),
    }
    // Only the holder writes, so the text is never torn for a reader that lost the race.
    let holder = format!("{role}, pid {}", std::process::id());
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.write_all(holder.as_bytes()).map_err(io)?;
    file.flush().map_err(io)?;
    Ok(DirLock {
        _file: file,
        dir: dir.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_directory_and_holder() -> Result<(), LockError> {
        let dir = tempfile::tempdir().map_err(|source| LockError::Io {
            dir: PathBuf::new(),
            source,
        })?;
        let held = lock_dir(dir.path(), "gatherer a")?;
        let refused = lock_dir(dir.path(), "gatherer b");
        let Err(LockError::Held { dir: named, holder }) = refused else {
            panic!("second lock was not refused: {refused:?}");
        };
        assert_eq!(named, dir.path());
        assert!(
            holder.contains("gatherer a") && holder.contains(&std::process::id().to_string()),
            "{holder}"
        );
        drop(held);
        // Released with the handle: the next owner gets it.
        lock_dir(dir.path(), "gatherer b")?;
        Ok(())
    }
}
