//! A private PostgreSQL server for the tests that stop, start or restart one (a service
//! started before its database, a restart under load): they cannot do that to the server the
//! rest of the suite shares. Made with Debian's binaries (`initdb`, `pg_ctl`) in a temporary
//! directory and run as the `postgres` user (the server refuses to run as root), as
//! `.ci/postgres` does for the shared one.

use std::{path::PathBuf, process::Command};

use crate::database::with_database;

/// The password of the `postgres` user of every cluster made here.
pub const PASSWORD: &str = "bookstore";

/// A stopped-or-running PostgreSQL server on `port`; stopped and deleted when dropped.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// The TCP port it listens on (127.0.0.1).
    pub port: u16,
}

impl Cluster {
    /// A fresh cluster on a free port, not started.
    pub fn init() -> Cluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL binaries in /usr/lib/postgresql (Debian's postgresql package)")
            .filter_map(Result::ok)
            .map(|version| version.path().join("bin"))
            .filter(|bin| bin.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::Builder::new()
            .prefix("bookstore-pg-")
            .tempdir_in("/var/tmp")
            .expect("a temporary directory");
        let data = dir.path().join("data");
        let password = dir.path().join("password");
        std::fs::write(&password, PASSWORD).expect("write the password file");
        run(Command::new("chown")
            .arg("-R")
            .arg("postgres")
            .arg(dir.path()));
        run(as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
            ])
            .arg(format!("--pwfile={}", password.display())));
        let port = crate::any_port_number();
        Cluster { dir, bin, port }
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self) {
        let data = self.dir.path().join("data");
        run(as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "start", "-o"])
            .arg(format!(
                "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={}",
                self.port,
                data.display()
            )));
    }

    /// Stops the server the way a restart does (`-m fast`: sessions are cut, committed work
    /// is kept).
    pub fn stop(&self) {
        run(as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-w", "stop", "-m", "fast"]));
    }

    /// The URL of database `name` on this server (`postgres` always exists).
    pub fn url(&self, name: &str) -> String {
        with_database(
            &format!(
                "postgres://postgres:{PASSWORD}@127.0.0.1:{}/postgres",
                self.port
            ),
            name,
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-w", "stop", "-m", "immediate"])
            .output();
    }
}

fn as_postgres(program: &std::path::Path) -> Command {
    let mut command = Command::new("runuser");
    command.args(["-u", "postgres", "--"]).arg(program);
    command
}

fn run(command: &mut Command) {
    let out = command.output().expect("run a PostgreSQL tool");
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
