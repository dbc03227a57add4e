//! Crashes lose nothing (issue 13): events committed to the outbox survive a server killed with
//! SIGKILL before they were delivered, and arrive after a restart with the same `webhook-id`.
//! The server runs as a child process, as in production; the app, its endpoint and the events
//! are made with the CLI.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::helpers::*;
use crate::support::cli::one_json_object;
use crate::support::receiver::Receiver;

on_each_backend!(events_committed_before_a_sigkill_arrive_after_the_restart_with_their_ids);

/// The database and keys folder the processes share.
struct Place {
    database_url: String,
    keys: tempfile::TempDir,
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

async fn place(backend: Backend) -> Place {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (database_url, pg_drop) = match backend {
        Backend::Postgres | Backend::PostgresPlain => {
            let (url, admin, name) = fresh_postgres_database().await;
            (url, Some((admin, name)))
        }
        _ => (
            format!("sqlite://{}", dir.path().join("onyx.db").display()),
            None,
        ),
    };
    Place {
        database_url,
        keys,
        _dir: dir,
        pg_drop,
    }
}

fn onyx(place: &Place) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_onyx-id"));
    cmd.env("ONYX_DATABASE_URL", &place.database_url)
        .env("ONYX_KEYS_DIR", place.keys.path())
        .env("ONYX_ISSUER", "http://127.0.0.1:9")
        .env("ONYX_BIND", "127.0.0.1:0")
        .env("ONYX_WEBHOOK_ALLOW_PRIVATE", "1")
        .env("ONYX_WEBHOOK_INSECURE_HTTP", "1")
        .env(
            "ONYX_WEBHOOK_RETRY_SCHEDULE",
            "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s",
        )
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

async fn cli(place: &Place, args: &[&str]) -> serde_json::Value {
    let out = onyx(place)
        .args(args)
        .output()
        .await
        .expect("running onyx-id");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?}: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    one_json_object(&stdout)
}

fn serve(place: &Place) -> Child {
    onyx(place)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting onyx-id serve")
}

/// Waits (up to 20 s) until the receiver has seen every id of `ids` at least `times` times.
async fn seen(receiver: &Receiver, ids: &BTreeSet<String>, times: usize) {
    for _ in 0..1000 {
        let got = receiver.got();
        if ids
            .iter()
            .all(|id| got.iter().filter(|d| &d.id == id).count() >= times)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "not every event arrived {times} time(s): {:?}",
        receiver.got()
    );
}

async fn events_committed_before_a_sigkill_arrive_after_the_restart_with_their_ids(
    backend: Backend,
) {
    let place = place(backend).await;
    let receiver = Receiver::start().await;
    receiver.answer(500);
    let app = cli(
        &place,
        &[
            "apps",
            "create",
            "--name",
            "Crash Test",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid",
        ],
    )
    .await;
    let client_id = app["client_id"].as_str().unwrap().to_string();
    let url = receiver.url("/hook");
    let added = cli(
        &place,
        &[
            "apps", "webhooks", "add", "--app", &client_id, "--url", &url,
        ],
    )
    .await;
    receiver.trust(added["secret"].as_str().unwrap());
    let endpoint = added["endpoint_id"].as_str().unwrap().to_string();

    // Three events committed while no server runs.
    let mut ids = BTreeSet::new();
    for _ in 0..3 {
        let sent = cli(
            &place,
            &[
                "apps",
                "webhooks",
                "test",
                "--app",
                &client_id,
                "--endpoint",
                &endpoint,
            ],
        )
        .await;
        ids.insert(sent["event_id"].as_str().unwrap().to_string());
    }

    // The server tries each once (the receiver fails them), and is killed.
    let mut server = serve(&place);
    seen(&receiver, &ids, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.start_kill().expect("SIGKILL");
    server.wait().await.unwrap();
    let before = receiver.got().len();

    // Restarted, it delivers every one, with the id it had.
    receiver.answer(200);
    let mut server = serve(&place);
    seen(&receiver, &ids, 2).await;
    let after: Vec<_> = receiver.got().into_iter().skip(before).collect();
    assert!(after.iter().all(|d| d.verified), "signed as before");
    let redelivered: BTreeSet<String> = after.iter().map(|d| d.id.clone()).collect();
    assert_eq!(redelivered, ids, "the same webhook-ids, and no other");
    // The log shows both attempts of each, once the server has recorded them.
    let mut log = serde_json::Value::Null;
    for _ in 0..200 {
        log = cli(
            &place,
            &[
                "apps",
                "webhooks",
                "deliveries",
                "--app",
                &client_id,
                "--endpoint",
                &endpoint,
            ],
        )
        .await;
        let all_done = log["deliveries"]
            .as_array()
            .is_some_and(|d| d.len() == 3 && d.iter().all(|d| d["state"] == "delivered"));
        if all_done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.start_kill().unwrap();
    server.wait().await.unwrap();
    let deliveries = log["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 3, "{log}");
    for d in deliveries {
        assert_eq!(d["state"], "delivered", "{d}");
        let statuses: Vec<i64> = d["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["status"].as_i64())
            .collect();
        assert!(statuses.contains(&500) && statuses.contains(&200), "{d}");
    }
}
