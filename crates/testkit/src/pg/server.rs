//! A private PostgreSQL server for the scenarios that stop production or exhaust its
//! connections: its own data directory, port and socket directory, never the shared server.
//!
//! `initdb` refuses to run as root; as root the server runs as the `postgres` user (`runuser`).
//! Binaries: `KALSHI_DATA_PG_BIN`, else `/usr/lib/postgresql/15/bin`, else `pg_config --bindir`.

use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// TLS for a [`PrivatePg`]: the server's certificate and key (PEM) and the `pg_hba.conf` that
/// replaces initdb's (e.g. `hostssl` lines only, so plain TCP is refused).
pub struct ServerTls<'a> {
    pub cert_pem: &'a str,
    pub key_pem: &'a str,
    /// CAs trusted for client certificates (`ssl_ca_file`), if any.
    pub client_ca_pem: Option<&'a str>,
    pub hba: &'a str,
}

/// A PostgreSQL server in a temp directory on a free port; stopped (`immediate`) on drop.
pub struct PrivatePg {
    pub port: u16,
    data: PathBuf,
    log: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    _tmp: tempfile::TempDir,
}

fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("KALSHI_DATA_PG_BIN") {
        return PathBuf::from(d);
    }
    let debian = Path::new("/usr/lib/postgresql/15/bin");
    if debian.join("initdb").exists() {
        return debian.to_owned();
    }
    Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap_or_default()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PrivatePg {
    /// `initdb` and start, with `conf` lines appended to `postgresql.conf`.
    pub fn start(conf: &[&str]) -> Result<PrivatePg> {
        Self::start_in(conf, &std::env::temp_dir())
    }

    /// [`PrivatePg::start`] with the server's directory inside `parent` (e.g. a small disk).
    pub fn start_in(conf: &[&str], parent: &Path) -> Result<PrivatePg> {
        Self::start_with(conf, parent, None)
    }

    /// [`PrivatePg::start`] with `ssl = on`, the certificate and key of `tls` (0600, owned by
    /// the server's user) and its `pg_hba.conf`.
    pub fn start_tls(conf: &[&str], tls: &ServerTls<'_>) -> Result<PrivatePg> {
        Self::start_with(conf, &std::env::temp_dir(), Some(tls))
    }

    fn start_with(conf: &[&str], parent: &Path, tls: Option<&ServerTls<'_>>) -> Result<PrivatePg> {
        let tmp = tempfile::Builder::new()
            .prefix("kd-pg-")
            .tempdir_in(parent)?;
        let as_postgres = is_root();
        if as_postgres {
            let st = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(tmp.path())
                .status()?;
            if !st.success() {
                return Err(Error::Failed(
                    "chown of the private PostgreSQL directory failed".into(),
                ));
            }
        }
        let port = crate::ports::free_port()?;
        let pg = PrivatePg {
            port,
            data: tmp.path().join("data"),
            log: tmp.path().join("server.log"),
            bin: bin_dir(),
            as_postgres,
            _tmp: tmp,
        };
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data.display().to_string(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ],
        )?;
        let mut lines = vec![
            format!("port = {port}"),
            "listen_addresses = '127.0.0.1'".to_string(),
            format!("unix_socket_directories = '{}'", pg._tmp.path().display()),
            // Test speed only; durability of this throwaway server is not under test.
            "fsync = off".to_string(),
        ];
        if let Some(tls) = tls {
            let (cert, key) = (pg.data.join("server.crt"), pg.data.join("server.key"));
            super::tls::write_private(&cert, tls.cert_pem)?;
            super::tls::write_private(&key, tls.key_pem)?;
            std::fs::write(pg.data.join("pg_hba.conf"), tls.hba)?;
            pg.chown_to_server(&[&cert, &key])?;
            lines.push("ssl = on".to_string());
            lines.push(format!("ssl_cert_file = '{}'", cert.display()));
            lines.push(format!("ssl_key_file = '{}'", key.display()));
            if let Some(ca) = tls.client_ca_pem {
                let path = pg.data.join("client-ca.crt");
                std::fs::write(&path, ca)?;
                pg.chown_to_server(&[&path])?;
                lines.push(format!("ssl_ca_file = '{}'", path.display()));
            }
        }
        lines.extend(conf.iter().map(|s| (*s).to_string()));
        let conf_path = pg.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_path)?;
        text.push('\n');
        text.push_str(&lines.join("\n"));
        text.push('\n');
        std::fs::write(&conf_path, text)?;
        pg.start_server()?;
        Ok(pg)
    }

    /// Files the server must own (its key): as root they were written by root.
    fn chown_to_server(&self, files: &[&Path]) -> Result<()> {
        if !self.as_postgres {
            return Ok(());
        }
        let st = Command::new("chown")
            .arg("postgres:")
            .args(files)
            .status()?;
        if st.success() {
            Ok(())
        } else {
            Err(Error::Failed(
                "chown of the server's TLS files failed".into(),
            ))
        }
    }

    fn run(&self, prog: &str, args: &[&str]) -> Result<Output> {
        let exe = self.bin.join(prog);
        let out = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()?
        } else {
            Command::new(&exe).args(args).output()?
        };
        if !out.status.success() {
            return Err(Error::Failed(format!(
                "{} {args:?}: {}\n{}\n{}",
                exe.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(out)
    }

    pub fn start_server(&self) -> Result<()> {
        let (d, l) = (
            self.data.display().to_string(),
            self.log.display().to_string(),
        );
        self.run("pg_ctl", &["-D", &d, "-l", &l, "-w", "-t", "60", "start"])?;
        Ok(())
    }

    /// `pg_ctl stop -m fast`: sessions are ended, the server goes away.
    pub fn stop_server(&self) -> Result<()> {
        let d = self.data.display().to_string();
        self.run(
            "pg_ctl",
            &["-D", &d, "-m", "fast", "-w", "-t", "60", "stop"],
        )?;
        Ok(())
    }

    /// Whether the server is up (`pg_ctl status`); a PANIC can take it down by itself.
    pub fn is_running(&self) -> bool {
        let d = self.data.display().to_string();
        self.run("pg_ctl", &["-D", &d, "status"]).is_ok()
    }

    pub fn url(&self, user: &str, db: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{db}", self.port)
    }

    /// `psql` as `user` on `db`, one statement, tuples only.
    pub fn psql(&self, user: &str, db: &str, sql: &str) -> Result<String> {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-tA",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                user,
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()?;
        if !out.status.success() {
            return Err(Error::Failed(format!(
                "psql {sql}: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Spawns a `psql` holding one connection as `user` until killed.
    pub fn hold_connection(&self, user: &str, db: &str) -> Result<std::process::Child> {
        Ok(Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", user, "-d", db, "-c", "SELECT pg_sleep(3600)"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()?)
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let d = self.data.display().to_string();
        let _ = self.run("pg_ctl", &["-D", &d, "-m", "immediate", "-w", "stop"]);
    }
}
