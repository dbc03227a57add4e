//! Crashes lose nothing (issue 13): events committed to the outbox survive a server killed with
//! SIGKILL before they were delivered, and arrive after a restart with the same `webhook-id`.
//! The server runs as a child process, as in production; the app, its endpoint and the events
//! are made with the CLI (test events, written with their deliveries, and access changes,
//! written to the outbox for the server's worker to split).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::helpers::*;
use crate::support::processes::Place;
use crate::support::receiver::Receiver;

on_each_backend!(events_committed_before_a_sigkill_arrive_after_the_restart_with_their_ids);

/// A place whose server delivers to the test's receiver on loopback, retrying every second.
async fn place(backend: Backend) -> Place {
    Place::new(backend)
        .await
        .env("ONYX_ISSUER", "http://127.0.0.1:9")
        .env("ONYX_WEBHOOK_ALLOW_PRIVATE", "1")
        .env("ONYX_WEBHOOK_INSECURE_HTTP", "1")
        .env(
            "ONYX_WEBHOOK_RETRY_SCHEDULE",
            "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s",
        )
}

async fn cli(place: &Place, args: &[&str]) -> serde_json::Value {
    place.cli(args, None).await
}

/// Waits until the receiver has seen every id of `ids` at least `times` times.
async fn seen(receiver: &Receiver, ids: &BTreeSet<String>, times: usize) {
    let all = crate::support::wait::until(Duration::from_millis(20), || async {
        let got = receiver.got();
        ids.iter()
            .all(|id| got.iter().filter(|d| &d.id == id).count() >= times)
            .then_some(())
    })
    .await;
    if all.is_some() {
        return;
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

    // And two caused by an operator's access changes, also while no server runs: these wait in
    // the outbox, for the server to split them into their deliveries.
    for state in ["suspended", "active"] {
        let mut args = vec!["apps", "access", "--app", &client_id, "--state", state];
        if state == "suspended" {
            args.extend(["--reason", "abuse_review", "--note", "a crash test"]);
        }
        cli(&place, &args).await;
    }
    let caused = |got: &[crate::support::receiver::Delivery]| -> BTreeSet<String> {
        got.iter()
            .filter(|d| d.event_type() == "app.access.changed")
            .map(|d| d.id.clone())
            .collect()
    };

    // The server tries each once (the receiver fails them), and is killed.
    let mut server = place.serve().await;
    seen(&receiver, &ids, 1).await;
    let access_events = crate::support::wait::until(Duration::from_millis(20), || async {
        let got = caused(&receiver.got());
        (got.len() == 2).then_some(got)
    })
    .await
    .expect("the two access changes arrive from the outbox");
    ids.extend(access_events);
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.child.start_kill().expect("SIGKILL");
    server.child.wait().await.unwrap();
    let before = receiver.got().len();

    // Restarted, it delivers every one, with the id it had.
    receiver.answer(200);
    let mut server = place.serve().await;
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
            .is_some_and(|d| d.len() == 5 && d.iter().all(|d| d["state"] == "delivered"));
        if all_done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();
    let deliveries = log["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 5, "{log}");
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
