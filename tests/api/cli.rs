//! The operator CLI, run as a separate process against the same database and keys folder as a
//! running server.

use crate::helpers::*;
use crate::support::cli::*;

on_each_backend!(
    accounts_and_apps_made_by_the_cli_work_at_once_on_the_running_server,
    the_partner_program_commands_register_partners_and_change_access_at_once,
    introspection_sees_a_change_made_by_another_process_on_the_very_next_request,
);

async fn accounts_and_apps_made_by_the_cli_work_at_once_on_the_running_server(backend: Backend) {
    let app = spawn_app(backend).await;
    let (code, out, err) = onyx(
        &app,
        &[
            "users",
            "create",
            "--email",
            "Quinn@Example.com",
            "--name",
            "Quinn",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let user = one_json_object(&out);
    assert_eq!(user["email"], "quinn@example.com");

    let (code, out, err) = onyx(
        &app,
        &[
            "apps",
            "create",
            "--name",
            "CLI App",
            "--redirect-uri",
            REDIRECT,
            "--redirect-uri",
            "https://app.example/second",
            "--origin",
            "https://app.example",
            "--scope",
            "openid",
            "--scope",
            "email",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let created = one_json_object(&out);
    let client = Client {
        client_id: created["client_id"].as_str().unwrap().to_string(),
        client_secret: Some(created["client_secret"].as_str().unwrap().to_string()),
    };
    // The running server sees both without a restart.
    let (c, verifier) =
        authorize_code(&app, &client.client_id, "quinn@example.com", "openid email").await;
    let res = exchange(&app, &client, &c, &verifier).await;
    assert_eq!(res.status(), 200);

    let (code, out, _) = onyx(
        &app,
        &[
            "apps",
            "create",
            "--name",
            "P",
            "--redirect-uri",
            "com.example.app:/cb",
            "--public",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0);
    assert!(
        one_json_object(&out).get("client_secret").is_none(),
        "public apps get no secret"
    );
}

#[tokio::test]
async fn resource_servers_and_machine_apps_made_by_the_cli_can_use_the_token_lifecycle() {
    let app = spawn_app(Backend::Sqlite).await;
    let (code, out, err) = onyx(
        &app,
        &[
            "resource-servers",
            "create",
            "--name",
            "Travel API",
            "--audience",
            "https://api.travel.example",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let rs = one_json_object(&out);
    assert!(rs["client_id"].as_str().unwrap().starts_with("rs_"));
    let (code, out, err) = onyx(
        &app,
        &[
            "apps",
            "create",
            "--name",
            "Batch job",
            "--grant-type",
            "client_credentials",
            "--scope",
            "grants:read",
            "--app-access-token-ttl",
            "120",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let machine = one_json_object(&out);
    let res = http()
        .post(app.url("/token"))
        .basic_auth(
            machine["client_id"].as_str().unwrap(),
            machine["client_secret"].as_str(),
        )
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", "https://api.travel.example"),
        ])
        .send()
        .await
        .unwrap();
    let t: serde_json::Value = res.json().await.unwrap();
    assert_eq!(t["expires_in"], 120, "{t}");
    let (_, seen) = post_form(
        app.url("/introspect"),
        rs["client_id"].as_str().unwrap(),
        rs["client_secret"].as_str(),
        &[("token", t["access_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["scope"], "grants:read");
    // The same audience twice is refused.
    let (code, _, err) = onyx(
        &app,
        &[
            "resource-servers",
            "create",
            "--name",
            "Again",
            "--audience",
            "https://api.travel.example",
        ],
        None,
    )
    .await;
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");
}

#[tokio::test]
async fn the_cli_refuses_bad_input_with_a_reason_and_a_non_zero_exit() {
    let app = spawn_app(Backend::Sqlite).await;
    let cases: Vec<(Vec<&str>, Option<&str>)> = vec![
        (
            vec![
                "users",
                "create",
                "--email",
                "not-an-email",
                "--name",
                "X",
                "--password-stdin",
            ],
            Some("long enough password"),
        ),
        (
            vec![
                "users",
                "create",
                "--email",
                "a@b.example",
                "--name",
                "X",
                "--password-stdin",
            ],
            Some("short"),
        ),
        (
            vec![
                "apps",
                "create",
                "--name",
                "X",
                "--redirect-uri",
                "http://evil.example/cb",
            ],
            None,
        ),
        (
            vec![
                "apps",
                "create",
                "--name",
                "X",
                "--redirect-uri",
                "https://a.example/cb#frag",
            ],
            None,
        ),
        (
            vec![
                "apps",
                "create",
                "--name",
                "X",
                "--redirect-uri",
                "https://a.example/cb",
                "--scope",
                "admin",
            ],
            None,
        ),
        (
            vec![
                "apps",
                "create",
                "--name",
                "X",
                "--redirect-uri",
                "https://a.example/cb",
                "--origin",
                "https://a.example/",
            ],
            None,
        ),
        (vec!["apps", "create", "--name", "X"], None),
        (
            vec![
                "apps",
                "create",
                "--name",
                "X",
                "--redirect-uri",
                "https://a.example/cb",
                "--app-access-token-ttl",
                "0",
            ],
            None,
        ),
        (
            vec![
                "apps",
                "create",
                "--name",
                "X",
                "--grant-type",
                "client_credentials",
                "--public",
            ],
            None,
        ),
        (
            vec![
                "resource-servers",
                "create",
                "--name",
                "X",
                "--audience",
                "not a uri",
            ],
            None,
        ),
    ];
    for (args, stdin) in cases {
        let (code, out, err) = onyx(&app, &args, stdin).await;
        assert_ne!(code, 0, "{args:?}");
        assert_eq!(err.trim().lines().count(), 1, "one-line reason: {err}");
        assert!(err.starts_with("onyx-id: error: "), "{err}");
        assert_eq!(one_json_object(&out)["error"], "invalid_input");
    }
    // The same email twice.
    let args = [
        "users",
        "create",
        "--email",
        "r@example.com",
        "--name",
        "R",
        "--password-stdin",
    ];
    assert_eq!(onyx(&app, &args, Some(PASSWORD)).await.0, 0);
    assert_ne!(onyx(&app, &args, Some(PASSWORD)).await.0, 0);
}

#[tokio::test]
async fn invalid_configuration_exits_non_zero_with_a_one_line_reason() {
    let app = spawn_app(Backend::Sqlite).await;
    for (var, value) in [
        ("ONYX_ISSUER", "http://id.example.com"),
        ("ONYX_ISSUER", "not a url"),
        ("ONYX_BIND", "nowhere"),
        ("ONYX_DATABASE_URL", "mysql://x"),
    ] {
        assert_serve_refuses(&app, var, value).await;
    }
}

#[tokio::test]
async fn keys_rotate_from_the_cli_is_seen_by_the_running_server() {
    let app = spawn_app(Backend::Sqlite).await;
    let (code, out, err) = onyx(&app, &["keys", "rotate"], None).await;
    assert_eq!(code, 0, "{err}");
    let rotated = one_json_object(&out);
    let kid = rotated["keys"][0]["kid"].as_str().unwrap();
    let jwks: serde_json::Value = get_json(&http(), app.url("/jwks.json")).await;
    assert!(jwks.to_string().contains(kid));
}

async fn the_partner_program_commands_register_partners_and_change_access_at_once(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_user("owner@partner.example", "Owner").await;
    app.create_user("reviewer@onyx.example", "Reviewer").await;
    let (code, out, err) = onyx(
        &app,
        &[
            "partners",
            "create",
            "--name",
            "Buddy Ltd",
            "--website",
            "https://partner.example",
            "--support-contact",
            "help@partner.example",
            "--region",
            "GB",
            "--owner",
            "owner@partner.example",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let partner = one_json_object(&out);
    let key = partner["api_key"].as_str().unwrap();
    assert!(key.starts_with("onyxpk_"));
    let (code, out, _) = onyx(
        &app,
        &["operators", "create", "--email", "reviewer@onyx.example"],
        None,
    )
    .await;
    assert_eq!(code, 0);
    assert!(
        one_json_object(&out)["api_key"]
            .as_str()
            .unwrap()
            .starts_with("onyxok_")
    );
    // The partner key works against the running server at once.
    let res = http()
        .get(app.url("/api/v1/partner"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // An operator suspends a development app; the server refuses it on the next request.
    let client = app.create_app(&["openid", "grants:read"]).await;
    let (code, out, err) = onyx(
        &app,
        &[
            "apps",
            "access",
            "--app",
            &client.client_id,
            "--state",
            "suspended",
            "--reason",
            "abuse_review",
            "--note",
            "spam reports",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(one_json_object(&out)["access"]["state"], "suspended");
    let (_, v) = token(&app, &client, &[("grant_type", "client_credentials")]).await;
    assert_eq!(
        (v["access_state"].as_str(), v["reason"].as_str()),
        (Some("suspended"), Some("abuse_review")),
        "{v}"
    );
    let (code, out, _) = onyx(
        &app,
        &[
            "apps",
            "trust",
            "--app",
            &client.client_id,
            "--level",
            "trusted",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(one_json_object(&out)["trust_level"], "trusted");
    let (code, out, _) = onyx(&app, &["audit", "--app", &client.client_id], None).await;
    assert_eq!(code, 0);
    let actions: Vec<String> = one_json_object(&out)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        actions,
        ["app.trust_level_set", "access.suspended", "app.created"]
    );
    let (code, out, _) = onyx(&app, &["reviews", "queue"], None).await;
    assert_eq!(
        (code, one_json_object(&out)["reviews"].clone()),
        (0, serde_json::json!([]))
    );

    // Bad input: a one-line reason and a non-zero exit.
    for args in [
        vec![
            "apps",
            "access",
            "--app",
            client.client_id.as_str(),
            "--state",
            "limited",
            "--reason",
            "abuse_review",
        ],
        vec!["apps", "access", "--app", "nope", "--state", "active"],
        // Client ids are base64url and may start with '-': still read as the value.
        vec!["apps", "access", "--app", "-yNotAnApp", "--state", "active"],
        vec![
            "reviews",
            "decide",
            "--app",
            client.client_id.as_str(),
            "--step",
            "vibes",
            "--state",
            "approved",
        ],
        vec![
            "partners",
            "create",
            "--name",
            "X",
            "--website",
            "http://x.example",
            "--support-contact",
            "a@x.example",
            "--owner",
            "owner@partner.example",
        ],
        vec!["operators", "create", "--email", "nobody@example.com"],
    ] {
        let (code, out, err) = onyx(&app, &args, None).await;
        assert_ne!(code, 0, "{args:?}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(one_json_object(&out)["error_description"].is_string());
    }
}

/// On SQLite the hot lookups are answered from a reading connection's cache while nothing has
/// been committed (`store::fast::direct`): a change the CLI commits from its own process, and one
/// the server commits itself, must still be seen by the very next introspection, by a resource
/// server and by the app introspecting its own token.
async fn introspection_sees_a_change_made_by_another_process_on_the_very_next_request(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let rs = ok_json(
        &app,
        &[
            "resource-servers",
            "create",
            "--name",
            "Travel API",
            "--audience",
            "https://api.travel.example",
        ],
    )
    .await;
    let machine = ok_json(
        &app,
        &[
            "apps",
            "create",
            "--name",
            "Batch job",
            "--grant-type",
            "client_credentials",
            "--scope",
            "grants:read",
        ],
    )
    .await;
    let (app_id, app_secret) = (
        machine["client_id"].as_str().unwrap().to_string(),
        machine["client_secret"].as_str().unwrap().to_string(),
    );
    let (rs_id, rs_secret) = (
        rs["client_id"].as_str().unwrap().to_string(),
        rs["client_secret"].as_str().unwrap().to_string(),
    );
    let issue = || async {
        let (status, t) = post_form(
            app.url("/token"),
            &app_id,
            Some(&app_secret),
            &[
                ("grant_type", "client_credentials"),
                ("resource", "https://api.travel.example"),
            ],
        )
        .await;
        assert_eq!(status, 200, "{t}");
        t["access_token"].as_str().unwrap().to_string()
    };
    let (first, second) = (issue().await, issue().await);
    // Whether `token` is active, asked by the caller with these credentials.
    let active = |id: String, secret: String, token: String| {
        let app = &app;
        async move {
            let (status, v) = post_form(
                app.url("/introspect"),
                &id,
                Some(&secret),
                &[("token", &token)],
            )
            .await;
            assert_eq!(status, 200, "{v}");
            v["active"] == true
        }
    };
    let by_rs = |token: String| active(rs_id.clone(), rs_secret.clone(), token);
    let by_app = |token: String| active(app_id.clone(), app_secret.clone(), token);

    // Warm: the same lookups again and again, with nothing committed in between. Both backends
    // keep what the lookups made (SQLite's readers, PostgreSQL's instance cache, whose change
    // listener starts with the first lookup).
    let db = &app.state.db;
    let hits = || db.direct_cache_hits().or(db.changes_cache_hits());
    let hits_before = hits().expect("a cache of the hot lookups on this backend");
    for _ in 0..10 {
        assert!(by_rs(first.clone()).await);
        assert!(by_app(second.clone()).await);
    }
    let hits_after = hits().unwrap_or(0);
    assert!(
        hits_after >= hits_before + 8,
        "the repeated lookups were answered from the cache ({hits_before} -> {hits_after})"
    );

    // Another process suspends the app: both callers see it on the very next request.
    ok_json(
        &app,
        &[
            "apps",
            "access",
            "--app",
            &app_id,
            "--state",
            "suspended",
            "--reason",
            "abuse_review",
        ],
    )
    .await;
    assert!(
        !by_rs(first.clone()).await,
        "suspended, seen by the resource server"
    );
    assert!(!by_app(second.clone()).await, "suspended, seen by the app");
    // ... and the restoration too (after more warm lookups of the suspended state).
    assert!(!by_rs(first.clone()).await);
    ok_json(
        &app,
        &["apps", "access", "--app", &app_id, "--state", "active"],
    )
    .await;
    assert!(by_rs(first.clone()).await, "restored");
    assert!(by_app(second.clone()).await, "restored");

    // The server itself revokes a token (RFC 7009): the next introspection says inactive, and
    // the other token stays active.
    assert!(by_rs(first.clone()).await);
    let res = http()
        .post(app.url("/revoke"))
        .basic_auth(&app_id, Some(&app_secret))
        .form(&[("token", first.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(!by_rs(first.clone()).await, "revoked");
    assert!(!by_app(first.clone()).await, "revoked");
    assert!(by_rs(second.clone()).await);
}

/// Runs the CLI, which must succeed, and returns the one JSON object it printed.
async fn ok_json(app: &TestApp, args: &[&str]) -> serde_json::Value {
    let (code, out, err) = onyx(app, args, None).await;
    assert_eq!(code, 0, "{args:?}: {err}");
    one_json_object(&out)
}
