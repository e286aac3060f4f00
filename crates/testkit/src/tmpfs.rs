//! A small tmpfs on a directory (a disk that can be filled and grown), for the disk-full
//! scenarios. Needs root (or CAP_SYS_ADMIN): without it `mount` fails and the test says so.

use crate::{Error, Result};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `ENOSPC`: the filesystem is full, which is what [`fill`] writes until.
const ENOSPC: i32 = 28;

/// A tmpfs mounted on a directory; unmounted on drop, whatever happened (a failed assertion
/// unwinds through it).
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=`, e.g. `16m`) on `dir`, created if missing.
    pub fn mount(dir: &Path, size: &str) -> Result<Tmpfs> {
        std::fs::create_dir_all(dir)?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()?;
        if !out.status.success() {
            let uid = Command::new("id").arg("-u").output()?;
            return Err(Error::Failed(format!(
                "THIS TEST NEEDS ROOT (or CAP_SYS_ADMIN) TO MOUNT A SMALL TMPFS and could not \
                 (uid {}): `mount -t tmpfs` said: {}",
                String::from_utf8_lossy(&uid.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    /// Grows (or shrinks) the filesystem in place; what it holds stays.
    pub fn resize(&self, size: &str) -> Result<()> {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .output()?;
        if !out.status.success() {
            return Err(Error::Failed(format!(
                "remount of {:?} failed: {}",
                self.dir,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// The mount point.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a store connection still open in a leaked task must not keep it mounted.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Writes a file until the filesystem refuses (`ENOSPC`); returns the bytes written. Any
/// other write error is returned: a filler that stops early would leave space and prove nothing.
pub fn fill(path: &Path) -> Result<u64> {
    let mut f = std::fs::File::create(path)?;
    let chunk = vec![0xA5_u8; 16 * 1024];
    let mut written = 0_u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(ENOSPC) => break,
            Err(e) => return Err(e.into()),
        }
    }
    // A page-sized tail may still fit: fill it byte-wise so nothing is left.
    for _ in 0..64 * 1024 {
        match f.write(&[0]) {
            Ok(1) => written += 1,
            _ => break,
        }
    }
    Ok(written)
}
