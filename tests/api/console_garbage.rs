//! Every console page and action, fed what a careless or hostile browser sends: unknown ids,
//! steps, capabilities and states, nonsense page numbers, blank, over-long, repeated and
//! non-UTF-8 form values. Each answer is a readable page (a 3xx or a 4xx, or 200 for a page that
//! shows the refusal in its form), never a 500, and the app is still there afterwards.

use serde_json::Value;

use crate::helpers::*;
use crate::support::console::*;
use crate::support::partner_api;

on_each_backend!(no_console_page_or_action_answers_a_server_error_to_bad_input);

async fn no_console_page_or_action_answers_a_server_error_to_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let (_, created) = partner_api::post(
        &app,
        "/api/v1/apps",
        &p.partner_key,
        partner_api::good_draft(),
    )
    .await;
    let cid = created["client_id"].as_str().unwrap().to_string();
    partner_api::post(
        &app,
        &format!("/api/v1/apps/{cid}/submit"),
        &p.partner_key,
        serde_json::json!({}),
    )
    .await;
    let owner = Console::sign_in(&app, OWNER).await;
    let operator = Console::sign_in(&app, OPERATOR).await;
    let pid = &p.partner_id;
    let long = "x".repeat(20_000);

    let gets = [
        "/partner?page=-1".to_string(),
        "/partner?page=99999999999999999999".into(),
        "/partner/apps/new".into(),
        "/partner/apps/new?partner=nope".into(),
        format!("/partner/apps/{cid}/edit?done=%3Cscript%3E"),
        format!("/partner/apps/{cid}/webhooks/nope"),
        format!("/partner/apps/{cid}/webhooks/nope?page=abc"),
        "/partner/apps/%FF%FE".into(),
        format!("/partner/team/{pid}/keys?page=0"),
        "/review?step=nope".into(),
        "/review?step=scopes&page=x".into(),
        "/review/apps/nope".into(),
        format!("/review/apps/{cid}/audit?page=-5"),
        format!("/review/apps/{cid}/audit?page=18446744073709551616"),
    ];
    for path in &gets {
        for who in [&owner, &operator] {
            let a = who.get(path).await;
            assert!(
                !a.status.is_server_error(),
                "GET {path}: {} {}",
                a.status,
                a.html
            );
        }
    }

    let bodies: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("name", ""), ("state", ""), ("role", "")],
        vec![
            ("name", long.as_str()),
            ("note", long.as_str()),
            ("reason", long.as_str()),
        ],
        vec![
            ("state", "nope"),
            ("reason", "nope"),
            ("trust_level", "nope"),
            ("role", "king"),
        ],
        vec![
            ("draft_version", "abc"),
            ("action", "save"),
            ("scopes", "nope"),
        ],
        vec![
            ("draft_version", "-1"),
            ("action", "preview"),
            ("redirect_uris", "::::"),
        ],
        vec![
            ("partner_id", "nope"),
            ("client_type", "robot"),
            ("domain", "-.-"),
        ],
        vec![
            ("emails", "not an email\n@@@"),
            ("events", "nope"),
            ("withdrawn", "nope"),
        ],
        vec![
            ("state", "suspended"),
            ("reason", "abuse_review"),
            ("cause", "nope"),
        ],
        vec![
            ("state", "approved"),
            ("draft_version", "999999999999999999999"),
        ],
    ];
    let posts = [
        "/partner/apps".to_string(),
        format!("/partner/apps/{cid}/edit"),
        format!("/partner/apps/{cid}/submit"),
        format!("/partner/apps/{cid}/domain/check"),
        format!("/partner/apps/{cid}/test-accounts"),
        format!("/partner/apps/{cid}/capabilities/nope"),
        format!("/partner/apps/{cid}/capabilities/expanded_messaging"),
        format!("/partner/apps/{cid}/webhooks/nope/test"),
        format!("/partner/apps/{cid}/webhooks/nope/secret"),
        format!("/partner/apps/{cid}/webhooks/nope/enable"),
        format!("/partner/apps/{cid}/webhooks/nope/events"),
        format!("/partner/apps/{cid}/webhook-deliveries/nope/retry"),
        format!("/partner/team/{pid}/members"),
        format!("/partner/team/{pid}/members/nope/role"),
        format!("/partner/team/{pid}/members/nope/remove"),
        format!("/partner/team/{pid}/keys/nope/revoke"),
        format!("/review/apps/{cid}/steps/nope"),
        format!("/review/apps/{cid}/steps/scopes"),
        format!("/review/apps/{cid}/capabilities/nope"),
        format!("/review/apps/{cid}/capabilities/expanded_messaging"),
        format!("/review/apps/{cid}/access"),
        format!("/review/apps/{cid}/trust-level"),
        "/review/apps/nope/trust-level".into(),
    ];
    for path in &posts {
        for body in &bodies {
            for who in [&owner, &operator] {
                let a = who.post(path, body).await;
                assert!(
                    !a.status.is_server_error(),
                    "POST {path} {body:?}: {} {}",
                    a.status,
                    a.html
                );
            }
        }
        // A body that is not UTF-8, with the right token.
        let raw = format!("csrf_token={}&name=%FF%FE", owner.csrf);
        let res = owner
            .browser
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert!(!res.status().is_server_error(), "POST {path} non-UTF-8");
    }

    // Nothing was lost: the app and its draft are there.
    let (status, v): (_, Value) =
        partner_api::get(&app, &format!("/api/v1/apps/{cid}"), &p.partner_key).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["draft"]["name"], "Travel Buddy", "{v}");
}
