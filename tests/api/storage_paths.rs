//! Which storage path serves the hot lookups (the app by client id, a token's status, a resource
//! server with the token it presents): the direct SQLite readers or the pipelined PostgreSQL
//! connections normally, sqlx's pool alone with `DatabaseUrl::plain_sqlx`. The answers are the
//! same either way; the lifecycle tests check them on every path.

use serde_json::Value;

use crate::helpers::*;

on_each_backend!(plain: the_hot_lookups_run_on_the_path_the_setting_picks);

async fn the_hot_lookups_run_on_the_path_the_setting_picks(backend: Backend) {
    let app = spawn_app(backend).await;
    let db = &app.state.db;
    let fast_sqlite = backend == Backend::Sqlite;
    let fast_postgres = backend == Backend::Postgres;
    assert_eq!(db.reads_directly(), fast_sqlite, "direct SQLite readers");
    assert_eq!(
        db.pipelined_lookups().is_some(),
        fast_postgres,
        "pipelined connections"
    );
    assert_eq!(
        app.state.token_writer.writes_inline(),
        fast_sqlite,
        "the inline token writer"
    );

    let audience = "https://api.travel.example";
    let rs = onyx_id::admin::create_resource_server(db, app.clock_now(), "Travel API", audience)
        .await
        .expect("a resource server");
    let (rs_id, rs_secret) = (rs.client_id, rs.client_secret);
    let mut s = spec(&["grants:read"]);
    s.grant_types = vec!["client_credentials".into()];
    let client = app.create_app_with(s).await;

    let pool_before = db.pool_lookups();
    let pipelined_before = db.pipelined_lookups();
    // The token request authenticates the app (one app lookup).
    let (status, t) = token(
        &app,
        &client,
        &[("grant_type", "client_credentials"), ("resource", audience)],
    )
    .await;
    assert_eq!(status, 200, "{t}");
    let at = text(&t, "access_token");
    // The app's own introspection: its row, then the token's status.
    assert_eq!(introspect(&app, &client, &at).await["active"], true);
    // The resource server's: its row and the token's status in one lookup.
    let (status, v): (_, Value) = post_form(
        app.url("/introspect"),
        &rs_id,
        Some(&rs_secret),
        &[("token", &at)],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["active"], true, "{v}");

    let by_pool = db.pool_lookups() - pool_before;
    if backend.is_plain() {
        assert!(
            by_pool >= 4,
            "with plain_sqlx the pool answers every hot lookup ({by_pool})"
        );
    } else {
        assert_eq!(by_pool, 0, "no hot lookup fell back to the pool");
    }
    if let (Some(after), Some(before)) = (db.pipelined_lookups(), pipelined_before) {
        assert!(
            after >= before + 4,
            "the pipelined connections answered the lookups"
        );
    }
}
