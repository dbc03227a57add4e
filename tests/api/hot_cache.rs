//! The caches of the hot lookups (issue 17): SQLite's readers keep what a lookup made until
//! `PRAGMA data_version` moves (`src/store/fast/direct.rs`); PostgreSQL's instances keep it
//! until a change notification arrives (`src/store/fast/changes.rs`). A change committed behind
//! the server's back, on a connection of the test's own, is seen by the very next request. On
//! PostgreSQL that still holds while the listening session is cut and after it reconnects.

use std::time::{Duration, Instant};

use crate::helpers::*;

on_each_backend!(a_change_committed_behind_the_servers_back_is_seen_by_the_very_next_request);

async fn a_change_committed_behind_the_servers_back_is_seen_by_the_very_next_request(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let client = app.create_app_with(full_spec(&["grants:read"])).await;
    let (status, t) = client_credentials(&app, &client, "grants:read").await;
    assert_eq!(status, 200, "{t}");
    let token = text(&t, "access_token");
    let active = || async { introspect(&app, &client, &token).await["active"] == true };
    let db = &app.state.db;
    let hits = || {
        db.direct_cache_hits()
            .or(db.changes_cache_hits())
            .expect("a cache of the hot lookups on this backend")
    };

    // Nothing committed between lookups: they are answered from the cache (on PostgreSQL once
    // the change listener, started by the first lookup, listens).
    let before = hits();
    for _ in 0..10 {
        assert!(active().await);
    }
    assert!(hits() >= before + 5, "{before} -> {}", hits());

    // Revoked, and restored, by SQL of the test's own: each seen by the very next request.
    let sql = app.sql().await;
    let client_id = client.client_id.clone();
    let set_revoked = |revoked: Option<i64>| {
        let client_id = client_id.clone();
        async move {
            sqlx::query("UPDATE access_tokens SET revoked_at = $1 WHERE client_id = $2")
                .bind(revoked)
                .bind(client_id)
                .execute(sql)
                .await
                .expect("update");
        }
    };
    set_revoked(Some(app.clock_now())).await;
    assert!(!active().await, "revoked behind the server's back");
    assert!(!active().await);
    set_revoked(None).await;
    assert!(active().await, "restored");

    if backend != Backend::Postgres {
        return;
    }
    // The listening session is cut (as a database restart or a dropped network would): nothing
    // kept is used while no session listens, so a change made meanwhile is seen at once.
    for _ in 0..3 {
        assert!(active().await);
    }
    let cut: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = $1",
    )
    .bind(onyx_id::store::CHANGE_LISTENER_NAME)
    .fetch_all(sql)
    .await
    .expect("terminate");
    assert_eq!(cut, vec![(true,)], "one listening session, cut");
    set_revoked(Some(app.clock_now())).await;
    assert!(!active().await, "revoked while the listener was cut");
    set_revoked(None).await;
    assert!(active().await);

    // A new session listens within a second or so, and the cache serves again, and is emptied
    // by the next change as before.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = hits();
    loop {
        assert!(active().await);
        let now = hits();
        if now > last {
            break;
        }
        last = now;
        assert!(Instant::now() < deadline, "the cache never served again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    set_revoked(Some(app.clock_now())).await;
    assert!(!active().await, "revoked after the listener reconnected");
}
