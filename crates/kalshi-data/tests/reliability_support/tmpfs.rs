//! A small tmpfs on a directory (a disk that can be filled and grown), for the disk-full
//! scenarios. Needs root (or CAP_SYS_ADMIN): without it `mount` fails and the test says so.

use super::Res;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on a directory; unmounted on drop, whatever happened.
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Res<Tmpfs> {
        std::fs::create_dir_all(dir)?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()?;
        if !out.status.success() {
            let uid = Command::new("id").arg("-u").output()?;
            return Err(format!(
                "THIS TEST NEEDS ROOT (or CAP_SYS_ADMIN) TO MOUNT A SMALL TMPFS and could not \
                 (uid {}): `mount -t tmpfs` said: {}",
                String::from_utf8_lossy(&uid.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        Ok(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    pub fn resize(&self, size: &str) -> Res<()> {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "remount of {:?} failed: {}",
                self.dir,
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        Ok(())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Writes a file until the filesystem refuses; returns the bytes written.
pub fn fill(path: &Path) -> Res<u64> {
    let mut f = std::fs::File::create(path)?;
    let chunk = vec![0xA5_u8; 16 * 1024];
    let mut written = 0_u64;
    while let Ok(n) = f.write(&chunk) {
        if n == 0 {
            break;
        }
        written += n as u64;
    }
    while let Ok(1) = f.write(&[0]) {
        written += 1;
    }
    Ok(written)
}
