//! A partner's team pages in the partner console: an owner adds, re-roles and removes members
//! and creates (shown once) and revokes API keys; a partner keeps an owner; a developer gets
//! "no access" and another partner's member "not found"; every action needs the CSRF token and
//! is in the audit log with the person who did it.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::support::browser::*;
use crate::support::console::*;
use crate::support::partner_api;

on_each_backend!(
    an_owner_creates_a_key_shown_once_that_works_and_then_revokes_it,
    an_owner_adds_a_member_sets_their_role_and_removes_them,
    a_partner_always_keeps_an_owner,
    a_developer_has_no_access_and_another_partners_member_finds_nothing,
    the_team_pages_need_a_sign_in_and_their_forms_the_csrf_token,
    more_than_fifty_keys_are_shown_a_page_at_a_time,
);

fn keys_path(p: &Program) -> String {
    format!("/partner/team/{}/keys", p.partner_id)
}

fn members_path(p: &Program) -> String {
    format!("/partner/team/{}/members", p.partner_id)
}

/// The text between `<code id="new-key">` and `</code>`.
fn shown_key(html: &str) -> String {
    let start = html
        .find(r#"<code id="new-key">"#)
        .expect("the new key is shown")
        + 19;
    let end = html[start..].find("</code>").unwrap() + start;
    html[start..end].to_string()
}

async fn audit(app: &TestApp, p: &Program) -> Vec<Value> {
    let (_, v) = partner_api::get(
        app,
        &format!("/api/v1/operator/audit?partner_id={}", p.partner_id),
        &p.op_key,
    )
    .await;
    v["entries"].as_array().cloned().unwrap_or_default()
}

async fn an_owner_creates_a_key_shown_once_that_works_and_then_revokes_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let owner = Console::sign_in(&app, OWNER).await;
    let page = owner.page(&keys_path(&p)).await;
    assert!(words(&page).contains("API keys"), "{page}");

    let a = owner
        .post(&keys_path(&p), &[("name", "billing server")])
        .await;
    assert_eq!(a.status, 200, "{}", a.html);
    let key = shown_key(&a.html);
    assert!(key.starts_with("onyxpk_"), "{key}");
    assert!(words(&a.html).contains("shown only this once"));
    // It works against the partner API, and is never shown again.
    let (status, _) = partner_api::get(&app, "/api/v1/partner", &key).await;
    assert_eq!(status, 200);
    let again = owner.page(&keys_path(&p)).await;
    assert!(!again.contains(&key));
    assert!(words(&again).contains("billing server"));

    let (_, v) = partner_api::get(&app, "/api/v1/partner", &key).await;
    let id = v["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "billing server")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (to, html) = owner
        .post_and_follow(&format!("{}/{id}/revoke", keys_path(&p)), &[])
        .await;
    assert!(to.ends_with("?done=revoked"), "{to}");
    assert!(words(&html).contains("The key was revoked"), "{html}");
    let (status, _) = partner_api::get(&app, "/api/v1/partner", &key).await;
    assert_eq!(status, 401, "a revoked key is refused at once");

    // A blank name is refused next to the field.
    let a = owner.post(&keys_path(&p), &[("name", "   ")]).await;
    assert_eq!(a.status, 400);
    assert!(a.html.contains(r#"id="name-error""#), "{}", a.html);
    assert!(a.html.contains(r#"aria-invalid="true""#));

    let entries = audit(&app, &p).await;
    let owner_id = app_user_id(&app, OWNER).await;
    for action in ["partner.key_created", "partner.key_revoked"] {
        let e = entries.iter().find(|e| e["action"] == action).unwrap();
        assert_eq!(
            e["actor"],
            format!("partner:{}/user:{owner_id}", p.partner_id)
        );
    }
}

async fn app_user_id(app: &TestApp, email: &str) -> String {
    onyx_id::store::users::by_email(&app.state.db, email)
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn an_owner_adds_a_member_sets_their_role_and_removes_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    app.create_user("new@partner.example", "New Member").await;
    let owner = Console::sign_in(&app, OWNER).await;

    // An address with no account is refused next to the field, and what was typed is kept.
    let a = owner
        .post(
            &members_path(&p),
            &[("email", "nobody@partner.example"), ("role", "developer")],
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.html);
    assert!(a.html.contains(r#"id="email-error""#));
    assert!(
        words(&a.html).contains("there is no Onyx account")
            || words(&a.html).contains("There is no Onyx account")
    );
    assert!(a.html.contains(r#"value="nobody@partner.example""#));

    let (to, html) = owner
        .post_and_follow(
            &members_path(&p),
            &[("email", "new@partner.example"), ("role", "developer")],
        )
        .await;
    assert!(to.ends_with("?done=added"));
    assert!(
        words(&html).contains("new@partner.example Role: Developer"),
        "{}",
        words(&html)
    );
    let new_id = app_user_id(&app, "new@partner.example").await;
    // The new member signs in and is a developer: keys are not theirs to open.
    let newcomer = Console::sign_in(&app, "new@partner.example").await;
    assert_eq!(newcomer.get(&keys_path(&p)).await.status, 403);

    owner
        .post_and_follow(
            &format!("{}/{new_id}/role", members_path(&p)),
            &[("role", "owner")],
        )
        .await;
    assert_eq!(
        newcomer.get(&keys_path(&p)).await.status,
        200,
        "the role is read at the next request"
    );

    let (_, html) = owner
        .post_and_follow(&format!("{}/{new_id}/remove", members_path(&p)), &[])
        .await;
    assert!(!html.contains("new@partner.example"));
    assert_eq!(
        newcomer.get(&keys_path(&p)).await.status,
        403,
        "a removed member belongs to no partner: no access"
    );
    let actions: Vec<String> = audit(&app, &p)
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert!(actions.contains(&"partner.member_removed".to_string()));
}

async fn a_partner_always_keeps_an_owner(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let owner = Console::sign_in(&app, OWNER).await;
    let owner_id = app_user_id(&app, OWNER).await;
    for (path, fields) in [
        (format!("{}/{owner_id}/remove", members_path(&p)), vec![]),
        (
            format!("{}/{owner_id}/role", members_path(&p)),
            vec![("role", "developer")],
        ),
    ] {
        let a = owner.post(&path, &fields).await;
        assert_eq!(a.status, 409, "{}", a.html);
        assert!(
            words(&a.html).contains("always keeps one owner"),
            "{}",
            a.html
        );
    }
    // The owner is still the owner.
    assert_eq!(owner.get(&keys_path(&p)).await.status, 200);
    // Through the operator API too.
    let (status, v) = partner_api::post(
        &app,
        &format!("/api/v1/operator/partners/{}/members", p.partner_id),
        &p.op_key,
        serde_json::json!({"email": OWNER, "role": "developer"}),
    )
    .await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"], "last_owner");
}

async fn a_developer_has_no_access_and_another_partners_member_finds_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let dev = Console::sign_in(&app, DEVELOPER).await;
    for path in [keys_path(&p), members_path(&p)] {
        let a = dev.get(&path).await;
        assert_eq!(a.status, 403, "{path}");
        assert!(words(&a.html).contains("Only an owner"), "{}", a.html);
    }
    let a = dev.post(&keys_path(&p), &[("name", "sneaky")]).await;
    assert_eq!(a.status, 403);

    p.other_partner(&app).await;
    let other = Console::sign_in(&app, "other@other.example").await;
    for path in [keys_path(&p), members_path(&p)] {
        let a = other.get(&path).await;
        assert_eq!(a.status, 404, "{path}: another partner's page is not found");
    }
    let a = other.post(&keys_path(&p), &[("name", "sneaky")]).await;
    assert_eq!(a.status, 404);

    app.create_user("nobody@example.com", "No One").await;
    let nobody = Console::sign_in(&app, "nobody@example.com").await;
    let a = nobody.get(&keys_path(&p)).await;
    assert_eq!(a.status, 403);
    assert!(words(&a.html).contains("not a member"), "{}", a.html);
    let (_, v) = partner_api::get(&app, "/api/v1/partner", &p.partner_key).await;
    assert_eq!(
        v["api_keys"].as_array().unwrap().len(),
        1,
        "no key was made"
    );
}

async fn the_team_pages_need_a_sign_in_and_their_forms_the_csrf_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let res = browser().get(app.url(&keys_path(&p))).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        location(res.headers()),
        format!("/login?next={}", keys_path(&p))
    );

    let owner = Console::sign_in(&app, OWNER).await;
    let res = owner
        .browser
        .post(app.url(&keys_path(&p)))
        .form(&[("name", "no token")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("This form has expired"));
    let res = owner
        .browser
        .post(app.url(&keys_path(&p)))
        .form(&[
            ("name", "wrong token"),
            ("csrf_token", "x".repeat(43).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let (_, v) = partner_api::get(&app, "/api/v1/partner", &p.partner_key).await;
    assert_eq!(
        v["api_keys"].as_array().unwrap().len(),
        1,
        "no key was made"
    );

    let res = owner
        .browser
        .get(app.url(&keys_path(&p)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    assert!(
        res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
}

async fn more_than_fifty_keys_are_shown_a_page_at_a_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    for i in 0..55 {
        onyx_id::partner::partners::create_partner_key(
            &app.state.db,
            app.clock_now(),
            "test",
            &p.partner_id,
            &format!("server {i:02}"),
        )
        .await
        .unwrap();
    }
    let owner = Console::sign_in(&app, OWNER).await;
    let first = owner.page(&keys_path(&p)).await;
    assert_eq!(first.matches(r#"<tr id="key-"#).count(), 50);
    assert!(
        words(&first).contains("Showing 1–50 of 56"),
        "{}",
        words(&first)
    );
    assert!(first.contains(&format!(r#"href="{}?page=2""#, keys_path(&p))));
    let second = owner.page(&format!("{}?page=2", keys_path(&p))).await;
    assert_eq!(second.matches(r#"<tr id="key-"#).count(), 6);
    assert!(words(&second).contains("Page 2 of 2"));
}

/// The team pages in a real browser, at phone and desktop widths: the members page, a refused
/// add (an address with no account) with its error at the field, the keys page and a new key
/// shown once. axe-core finds no WCAG 2.2 AA violation, and no page scrolls sideways.
#[tokio::test]
async fn the_team_pages_pass_axe_in_a_real_browser() {
    if !browser_available() {
        return;
    }
    let app = spawn_app(backends()[0]).await;
    let p = Program::start(&app).await;
    let driver = Chromedriver::start();
    let b = driver.browser().await;
    b.goto(&app.url(&format!("/login?next={}", members_path(&p))))
        .await
        .unwrap();
    type_into(&b, "#email", OWNER).await;
    type_into(&b, "#password", PASSWORD).await;
    click(&b, "main button[type=submit]").await;
    element(&b, "#email").await;
    shoot_and_check(&b, "console-team-members").await;
    type_into(&b, "#email", "nobody@partner.example").await;
    click(&b, r#"form[action$="/members"] button[type=submit]"#).await;
    element(&b, "#email-error").await;
    shoot_and_check(&b, "console-team-members-error").await;

    b.goto(&app.url(&keys_path(&p))).await.unwrap();
    element(&b, "#name").await;
    shoot_and_check(&b, "console-team-keys").await;
    type_into(&b, "#name", "billing server").await;
    click(&b, r#"form[action$="/keys"] button[type=submit]"#).await;
    element(&b, "#new-key").await;
    shoot_and_check(&b, "console-team-key-created").await;
}
