//! onyx-id as separate processes, as in production: the CLI, and `onyx-id serve` on a port of
//! its own, on one database and keys folder (a [`Place`]).

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use super::cli::one_json_object;
use crate::helpers::{Backend, drop_postgres_database, fresh_postgres_database, http};

/// A database and keys folder, and the settings every process started on them gets.
pub struct Place {
    pub database_url: String,
    pub keys: tempfile::TempDir,
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
    pg_drop: Option<(String, String)>,
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg_drop.take() {
            drop_postgres_database(admin, name);
        }
    }
}

impl Place {
    /// A fresh database of `backend` (a SQLite file, or a PostgreSQL database of its own) and
    /// an empty keys folder.
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = tempfile::tempdir().unwrap();
        let (database_url, pg_drop) = match backend {
            Backend::Postgres | Backend::PostgresPlain => {
                let (url, admin, name) = fresh_postgres_database().await;
                (url, Some((admin, name)))
            }
            Backend::Sqlite | Backend::SqlitePlain => (
                format!("sqlite://{}", dir.path().join("onyx.db").display()),
                None,
            ),
        };
        Self {
            database_url,
            keys,
            env: Vec::new(),
            _dir: dir,
            pg_drop,
        }
    }

    /// Every process started here gets `name=value`.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// `onyx-id` on this place; killed when dropped.
    pub fn onyx(&self) -> Command {
        self.onyx_with_keys_folder(self.keys.path())
    }

    /// `onyx` with a keys folder of its own (the signing keys are in the database: instances
    /// given the same `ONYX_KEY_ENCRYPTION_KEY` need not share a folder).
    pub fn onyx_with_keys_folder(&self, keys: &std::path::Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_onyx-id"));
        cmd.env("ONYX_DATABASE_URL", &self.database_url)
            .env("ONYX_KEYS_DIR", keys)
            .env("RUST_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Runs a CLI command (with `stdin`, if given); its one JSON object. Fails the test when the
    /// command fails.
    pub async fn cli(&self, args: &[&str], stdin: Option<&str>) -> Value {
        let mut child = self
            .onyx()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running onyx-id");
        {
            let mut input = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                input.write_all(s.as_bytes()).await.unwrap();
            }
        }
        let out = child.wait_with_output().await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{args:?}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        one_json_object(&stdout)
    }

    /// `onyx-id serve` on a free port, once its `/healthz` answers (up to 60 s on a loaded
    /// machine).
    pub async fn serve(&self) -> Instance {
        self.serve_with_keys_folder(self.keys.path()).await
    }

    /// `serve`, with the keys folder `keys` (see [`Place::onyx_with_keys_folder`]).
    pub async fn serve_with_keys_folder(&self, keys: &std::path::Path) -> Instance {
        // A free port: bound, read and released; the process binds it next.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = self
            .onyx_with_keys_folder(keys)
            .arg("serve")
            .env("ONYX_BIND", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting onyx-id serve");
        let base = format!("http://127.0.0.1:{port}");
        let client = http();
        let up = super::wait::until(Duration::from_millis(100), || async {
            let res = client.get(format!("{base}/healthz")).send().await.ok()?;
            (res.status() == 200).then_some(())
        })
        .await;
        assert!(up.is_some(), "onyx-id serve on {base} did not start");
        Instance { base, child }
    }
}

/// One `onyx-id serve` process and its base URL.
pub struct Instance {
    pub base: String,
    pub child: Child,
}

impl Instance {
    /// `path` at this instance; an absolute address (under the issuer several instances share)
    /// is asked of this instance too.
    pub fn url(&self, path: &str) -> String {
        match url::Url::parse(path) {
            Ok(u) => match u.query() {
                Some(q) => format!("{}{}?{q}", self.base, u.path()),
                None => format!("{}{}", self.base, u.path()),
            },
            Err(_) => format!("{}{path}", self.base),
        }
    }

    /// Sends SIGTERM, as an orchestrator stopping it does.
    pub async fn terminate(&self) {
        let pid = self.child.id().expect("the process runs");
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .expect("running kill");
        assert!(status.success());
    }
}
