//! What survives a restart with `--state-dir`: the trade-id counter, reserved ahead in blocks
//! (hi-lo) so a crash can skip ids but never reuse one.

use crate::config::SimError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const BLOCK: u64 = 100_000;

#[derive(Debug, Serialize, Deserialize)]
struct StateFile {
    seed: u64,
    /// Trade counters below this may have been used.
    trade_reserved: u64,
}

/// The persisted id reservation.
#[derive(Debug)]
pub struct IdReservation {
    path: PathBuf,
    seed: u64,
    reserved: u64,
}

impl IdReservation {
    /// Loads (or creates) the reservation; returns it and the first counter this run may use.
    pub fn open(dir: &Path, seed: u64) -> Result<(IdReservation, u64), SimError> {
        std::fs::create_dir_all(dir).map_err(|source| SimError::State {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join("sim-state.json");
        let start = match std::fs::read(&path) {
            Ok(bytes) => {
                let st: StateFile =
                    serde_json::from_slice(&bytes).map_err(|e| SimError::StateCorrupt {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                st.trade_reserved
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(SimError::State { path, source }),
        };
        let mut r = IdReservation {
            path,
            seed,
            reserved: start,
        };
        r.reserve(start + BLOCK).map_err(|source| SimError::State {
            path: r.path.clone(),
            source,
        })?;
        Ok((r, start))
    }

    fn reserve(&mut self, upto: u64) -> std::io::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let body = serde_json::to_vec(&StateFile {
            seed: self.seed,
            trade_reserved: upto,
        })
        .map_err(std::io::Error::other)?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        self.reserved = upto;
        Ok(())
    }

    /// Makes sure counters up to `next` are covered before they are used.
    pub fn ensure(&mut self, next: u64) {
        if next + BLOCK / 10 >= self.reserved
            && let Err(e) = self.reserve(next + BLOCK)
        {
            tracing::error!(error = %e, path = %self.path.display(), "cannot persist trade-id reservation");
        }
    }
}

const STATE_FILE: &str = "sim-exchange.json";

/// Loads the saved exchange, if there is one for this seed.
pub fn load_exchange(dir: &Path, seed: u64) -> Result<Option<crate::engine::SavedState>, SimError> {
    let path = dir.join(STATE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let st: crate::engine::SavedState =
                serde_json::from_slice(&bytes).map_err(|e| SimError::StateCorrupt {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            Ok((st.seed == seed).then_some(st))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SimError::State { path, source }),
    }
}

/// Saves the exchange atomically (write, fsync, rename).
pub fn save_exchange(dir: &Path, state: &crate::engine::SavedState) -> std::io::Result<()> {
    use std::io::Write;
    let path = dir.join(STATE_FILE);
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        serde_json::to_writer(&mut f, state).map_err(std::io::Error::other)?;
        f.flush()?;
        f.get_ref().sync_all()?;
    }
    std::fs::rename(&tmp, &path)
}
