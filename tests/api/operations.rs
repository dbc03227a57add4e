//! Running it like production (issue 17): the Prometheus metrics at `/metrics` (or on
//! `--metrics-bind`'s internal address), liveness at `/healthz` and readiness at `/readyz`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::*;
use crate::support::processes::Place;

on_each_backend!(
    the_metrics_count_exactly_what_the_server_did_and_carry_no_secret,
    with_metrics_bind_the_metrics_are_on_the_internal_address_only,
    readiness_names_each_check_and_fails_while_a_migration_is_missing,
    on_sigterm_readiness_fails_first_requests_are_served_through_the_drain_then_it_exits,
);

/// The value of one series (`name{labels}` exactly as rendered), if it is there.
fn series(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name_and_labels)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

fn value(text: &str, name_and_labels: &str) -> f64 {
    series(text, name_and_labels).unwrap_or_else(|| panic!("no {name_and_labels} in:\n{text}"))
}

async fn scrape(url: String) -> String {
    let res = http().get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    res.text().await.unwrap()
}

async fn the_metrics_count_exactly_what_the_server_did_and_carry_no_secret(backend: Backend) {
    let app = spawn_app_with(backend, &|s| {
        trust_localhost(s);
        s.login_limits.per_account_and_address = 2;
    })
    .await;
    let client = app
        .create_app_with(full_spec(&["openid", "profile", "grants:read"]))
        .await;
    let email = "ida@example.com";
    app.create_user(email, "Ida").await;

    // A sign-in with its consent approved, and its code exchanged.
    let (code, verifier) = authorize_code(&app, &client.client_id, email, "openid profile").await;
    let res = exchange(&app, &client, &code, &verifier).await;
    assert_eq!(res.status(), 200);
    let signed_in: serde_json::Value = res.json().await.unwrap();
    // Two client credentials tokens.
    let mut cc = String::new();
    for _ in 0..2 {
        let (status, v) = client_credentials(&app, &client, "grants:read").await;
        assert_eq!(status, 200, "{v}");
        cc = text(&v, "access_token");
    }
    // Introspections: active, inactive, and one refused for a wrong secret.
    assert_eq!(introspect(&app, &client, &cc).await["active"], true);
    assert_eq!(
        introspect(&app, &client, "no-such-token").await["active"],
        false
    );
    let wrong = Client {
        client_id: client.client_id.clone(),
        client_secret: Some("not-the-secret".into()),
    };
    let (status, _) = app_post(&app, &wrong, "/introspect", &[("token", &cc)]).await;
    assert_eq!(status, 401);
    // Two wrong passwords, then a refusal by the login limits.
    let browser = browser();
    let (url, _) = authorize_url(&app, &client.client_id, "openid", &[]);
    let login = location(browser.get(url).send().await.unwrap().headers());
    let html = get_text(&browser, app.url(&login)).await;
    for expected in [200, 200, 429] {
        let res = browser
            .post(app.url("/login"))
            .form(&login_form(&html, email, "wrong password"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), expected);
    }
    // An address no route serves.
    let res = http().get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(res.status(), 404);

    let text = scrape(app.url("/metrics")).await;
    let grant = |g: &str| {
        value(
            &text,
            &format!(r#"onyx_tokens_issued_total{{grant_type="{g}"}}"#),
        )
    };
    assert_eq!(grant("authorization_code"), 1.0);
    assert_eq!(grant("client_credentials"), 2.0);
    assert_eq!(grant("refresh_token"), 0.0);
    let answer = |a: &str| {
        value(
            &text,
            &format!(r#"onyx_introspections_total{{answer="{a}"}}"#),
        )
    };
    assert_eq!(
        (answer("active"), answer("inactive"), answer("refused")),
        (1.0, 1.0, 1.0)
    );
    assert_eq!(value(&text, "onyx_login_failures_total"), 2.0);
    assert_eq!(value(&text, "onyx_login_lockouts_total"), 1.0);
    let decision = |d: &str| {
        value(
            &text,
            &format!(r#"onyx_consent_decisions_total{{decision="{d}"}}"#),
        )
    };
    assert_eq!(
        (
            decision("approved"),
            decision("partial"),
            decision("declined")
        ),
        (1.0, 0.0, 0.0)
    );
    // Requests by route template, method and status; the unknown address as `unmatched`.
    for (labels, count) in [
        (r#"route="/token",method="POST",status="200""#, 3.0),
        (r#"route="/introspect",method="POST",status="200""#, 2.0),
        (r#"route="/introspect",method="POST",status="401""#, 1.0),
        (r#"route="/login",method="POST",status="429""#, 1.0),
        (r#"route="unmatched",method="GET",status="404""#, 1.0),
    ] {
        let series = format!("onyx_http_requests_total{{{labels}}}");
        assert_eq!(value(&text, &series), count, "{series}");
    }
    assert!(
        !text.contains("/no/such/page"),
        "never a path a client chose"
    );
    assert_eq!(
        value(
            &text,
            r#"onyx_http_request_duration_seconds_count{route="/token",method="POST"}"#
        ),
        3.0
    );
    // The outbox is empty; the pools and the build are named.
    assert_eq!(value(&text, "onyx_webhook_outbox_pending"), 0.0);
    assert_eq!(
        value(&text, "onyx_webhook_outbox_oldest_pending_age_seconds"),
        0.0
    );
    assert_eq!(value(&text, "onyx_db_waiting"), 0.0);
    assert!(text.contains("onyx_db_connections{pool="), "{text}");
    assert!(
        text.contains(&format!(
            r#"onyx_build_info{{version="{}""#,
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    assert!(text.contains("# HELP onyx_tokens_issued_total "), "{text}");
    // No token, code, secret or email, nor the client's id.
    for secret in [
        cc.as_str(),
        signed_in["access_token"].as_str().unwrap(),
        signed_in["id_token"].as_str().unwrap(),
        code.as_str(),
        client.client_secret.as_deref().unwrap(),
        email,
        &client.client_id,
    ] {
        assert!(!text.contains(secret), "{secret} in the metrics");
    }
}

async fn with_metrics_bind_the_metrics_are_on_the_internal_address_only(backend: Backend) {
    let app = spawn_app_with(backend, &|s| {
        s.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let internal = app.internal_address.clone().expect("the internal address");
    let res = http().get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 404, "not on the main address");
    // A request at the main address is counted, and read at the internal one.
    let res = http()
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = scrape(format!("{internal}/metrics")).await;
    assert_eq!(
        value(
            &text,
            r#"onyx_http_requests_total{route="/.well-known/openid-configuration",method="GET",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"onyx_http_requests_total{route="unmatched",method="GET",status="404"}"#
        ),
        1.0,
        "/metrics at the main address is an unknown address there"
    );
    for probe in ["/healthz", "/readyz"] {
        let res = http()
            .get(format!("{internal}{probe}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{probe}");
    }
    // Nothing else is served there.
    let res = http()
        .get(format!("{internal}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

async fn readiness_names_each_check_and_fails_while_a_migration_is_missing(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, v) = json_of(http().get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        serde_json::json!({
            "status": "ready",
            "checks": {"database": "ok", "migrations": "ok", "keys": "ok", "draining": false},
        })
    );
    // As if an instance of a newer version started before its migration ran: not ready, while
    // alive.
    let newest: i64 = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(app.sql().await)
        .await
        .unwrap();
    sqlx::query("UPDATE _sqlx_migrations SET version = -version WHERE version = $1")
        .bind(newest)
        .execute(app.sql().await)
        .await
        .unwrap();
    let (status, v) = json_of(http().get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["status"], "not_ready");
    assert_eq!(v["checks"]["migrations"], "pending");
    assert!(v["reason"].as_str().unwrap().contains("migrations"), "{v}");
    let res = http().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200, "alive all the same");
    sqlx::query("UPDATE _sqlx_migrations SET version = -version WHERE version = $1")
        .bind(-newest)
        .execute(app.sql().await)
        .await
        .unwrap();
    let res = http().get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

async fn on_sigterm_readiness_fails_first_requests_are_served_through_the_drain_then_it_exits(
    backend: Backend,
) {
    const DRAIN: u64 = 4;
    let place = Place::new(backend)
        .await
        .env("ONYX_DRAIN_SECONDS", &DRAIN.to_string());
    let mut server = place.serve().await;
    let readyz = server.url("/readyz");
    let discovery = server.url("/.well-known/openid-configuration");
    let res = http().get(&readyz).send().await.unwrap();
    assert_eq!(res.status(), 200);

    server.terminate().await;
    let signalled = Instant::now();
    // Readiness fails at once (the signal is handled within moments)...
    let drained = crate::support::wait::until(Duration::from_millis(20), || async {
        let res = http().get(&readyz).send().await.ok()?;
        (res.status() == StatusCode::SERVICE_UNAVAILABLE).then_some(res)
    })
    .await
    .expect("readiness failed after SIGTERM");
    let (_, v) = json_of(drained).await;
    assert_eq!(v["status"], "not_ready", "{v}");
    assert_eq!(v["checks"]["draining"], true, "{v}");
    assert_eq!(v["reason"], "this instance is shutting down", "{v}");
    // ...while everything else is still served, for the whole drain.
    assert_eq!(http().get(&discovery).send().await.unwrap().status(), 200);
    assert_eq!(
        http()
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    if signalled.elapsed() < Duration::from_secs(DRAIN - 1) {
        assert_eq!(
            http().get(&discovery).send().await.unwrap().status(),
            200,
            "still served a second into the drain"
        );
    }
    // Then it stops accepting and exits cleanly.
    let exit = tokio::time::timeout(Duration::from_secs(60), server.child.wait())
        .await
        .expect("onyx-id exited after the drain")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(
        signalled.elapsed() >= Duration::from_secs(DRAIN),
        "not before the drain ended"
    );
    assert!(
        http().get(&discovery).send().await.is_err(),
        "nothing listens"
    );
}
