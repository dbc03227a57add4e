//! The apps part of the partner console: a member registers an app (its secret shown once),
//! edits its draft with the pre-checks' findings next to their fields, previews which review
//! steps a save reopens (and the save reopens exactly those), is refused a save on a stale
//! draft version, submits the draft and follows its review with the reviewer's notes, and
//! previews the consent screen; another partner's member finds nothing, every form needs the
//! CSRF token and every action is in the audit log with the person who did it.

use serde_json::{Value, json};

use crate::helpers::*;
use crate::support::browser::*;
use crate::support::console::*;
use crate::support::partner_api;

on_each_backend!(
    an_app_created_with_an_unsafe_redirect_uri_shows_the_finding_at_the_field_and_its_secret_once,
    a_refused_create_keeps_what_was_typed_with_the_error_at_its_field,
    a_preview_names_the_steps_a_save_reopens_and_the_save_reopens_exactly_those,
    a_save_on_a_stale_draft_version_is_refused_and_keeps_what_was_typed,
    the_review_page_shows_each_step_with_the_reviewers_note_and_findings_link_to_their_field,
    the_consent_preview_shows_the_drafts_name_words_and_scopes,
    another_partners_member_finds_nothing_and_a_non_member_has_no_access,
    forms_without_the_csrf_token_are_refused_and_change_nothing,
    every_action_is_in_the_audit_log_with_the_person_who_did_it,
    more_than_fifty_apps_are_listed_a_page_at_a_time,
    the_draft_form_asks_in_words_whether_the_app_requires_pushed_authorization_requests,
    the_draft_form_takes_the_apps_keys_and_the_fapi2_profile,
);

/// The form fields of a draft as the edit form sends them.
fn fields_of(draft: &Value) -> Vec<(String, String)> {
    let text = |k: &str| draft[k].as_str().unwrap_or("").to_string();
    let lines = |k: &str| {
        draft[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    };
    let mut out: Vec<(String, String)> = [
        "name",
        "description",
        "use_case",
        "purpose",
        "consent_copy",
        "domain",
        "backchannel_logout_uri",
        "support_url",
    ]
    .into_iter()
    .map(|k| (k.to_string(), text(k)))
    .collect();
    for k in [
        "redirect_uris",
        "origins",
        "post_logout_redirect_uris",
        "webhooks",
    ] {
        out.push((k.to_string(), lines(k)));
    }
    for k in ["scopes", "optional_scopes", "capabilities"] {
        for v in draft[k].as_array().into_iter().flatten() {
            out.push((k.to_string(), v.as_str().unwrap().to_string()));
        }
    }
    if let Some(j) = draft["justifications"].as_object() {
        for (scope, why) in j {
            out.push((
                format!("justification.{scope}"),
                why.as_str().unwrap().into(),
            ));
        }
    }
    out.push(("backchannel_logout_session_required".into(), "true".into()));
    if draft["require_pushed_authorization_requests"] == true {
        out.push((
            "require_pushed_authorization_requests".into(),
            "true".into(),
        ));
    }
    if draft["profile"] == "fapi2" {
        out.push(("profile_fapi2".into(), "true".into()));
    }
    if !draft["jwks"].is_null() {
        out.push(("jwks".into(), draft["jwks"].to_string()));
    }
    out.push(("jwks_uri".into(), text("jwks_uri")));
    out
}

fn set(fields: &mut Vec<(String, String)>, name: &str, value: &str) {
    match fields.iter_mut().find(|(k, _)| k == name) {
        Some(f) => f.1 = value.to_string(),
        None => fields.push((name.to_string(), value.to_string())),
    }
}

fn as_refs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// The text of the element `id="ID"` up to its closing `</div>` (an error box).
fn error_at(html: &str, id: &str) -> String {
    let marker = format!(r#"id="{id}-error""#);
    let Some(start) = html.find(&marker) else {
        return String::new();
    };
    let end = html[start..].find("</div>").unwrap() + start;
    words(&html[start..end])
}

/// The text between `<code id="client-secret">` and `</code>`.
fn shown_secret(html: &str) -> Option<String> {
    let marker = r#"<code id="client-secret">"#;
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find("</code>")? + start;
    Some(html[start..end].to_string())
}

fn client_id_of(html: &str) -> String {
    let marker = r#"<code id="client-id">"#;
    let start = html.find(marker).expect("the client id is shown") + marker.len();
    let end = html[start..].find("</code>").unwrap() + start;
    html[start..end].to_string()
}

/// An app registered through the partner API with `draft`; its client id.
async fn api_app(app: &TestApp, p: &Program, draft: Value) -> String {
    let (status, v) = partner_api::post(app, "/api/v1/apps", &p.partner_key, draft).await;
    assert_eq!(status, 201, "{v}");
    v["client_id"].as_str().unwrap().to_string()
}

async fn api_view(app: &TestApp, p: &Program, client_id: &str) -> Value {
    let (status, v) =
        partner_api::get(app, &format!("/api/v1/apps/{client_id}"), &p.partner_key).await;
    assert_eq!(status, 200, "{v}");
    v
}

fn step_state(view: &Value, step: &str) -> String {
    view["review"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == step)
        .unwrap()["state"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn user_id(app: &TestApp, email: &str) -> String {
    onyx_id::store::users::by_email(&app.state.db, email)
        .await
        .unwrap()
        .unwrap()
        .id
}

fn new_app_fields(p: &Program, redirect: &str) -> Vec<(String, String)> {
    let mut draft = partner_api::good_draft();
    draft["redirect_uris"] = json!([redirect]);
    let mut fields = fields_of(&draft);
    fields.push(("partner_id".into(), p.partner_id.clone()));
    fields.push(("client_type".into(), "confidential".into()));
    fields
}

async fn an_app_created_with_an_unsafe_redirect_uri_shows_the_finding_at_the_field_and_its_secret_once(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let dev = Console::sign_in(&app, DEVELOPER).await;
    let new = dev
        .page(&format!("/partner/apps/new?partner={}", p.partner_id))
        .await;
    for id in [
        "name",
        "description",
        "use_case",
        "purpose",
        "consent_copy",
        "domain",
        "redirect_uris",
        "origins",
        "post_logout_redirect_uris",
        "webhooks",
        "backchannel_logout_uri",
        "support_url",
        "scope-openid",
        "optional-email",
        "justification-trust:read",
        "capability-expanded_messaging",
        "require_pushed_authorization_requests",
        "jwks",
        "jwks_uri",
        "profile_fapi2",
    ] {
        assert!(new.contains(&format!(r#"id="{id}""#)), "the form has {id}");
    }
    assert!(
        words(&new).contains("Travel product"),
        "use cases from the catalogue"
    );
    assert!(
        words(&new).contains("Your name"),
        "scopes with their labels"
    );

    let fields = new_app_fields(&p, "http://app.example/cb");
    let a = dev.post("/partner/apps", &as_refs(&fields)).await;
    assert_eq!(a.status, 200, "{}", a.html);
    assert!(words(&a.html).contains("App created"));
    let secret = shown_secret(&a.html).expect("the secret is shown");
    assert!(secret.len() >= 20, "{secret}");
    assert!(words(&a.html).contains("shown only this once"));
    let client_id = client_id_of(&a.html);
    assert!(
        a.html
            .contains(&format!(r#"href="/partner/apps/{client_id}/edit""#))
    );

    // The app is the partner's, with the draft as typed.
    let view = api_view(&app, &p, &client_id).await;
    assert_eq!(view["draft"]["name"], "Travel Buddy");
    assert_eq!(
        view["draft"]["redirect_uris"],
        json!(["http://app.example/cb"])
    );
    assert_eq!(view["draft"]["optional_scopes"], json!(["email"]));

    // The edit form: the finding in words under the redirect URIs, and no secret anywhere.
    let edit = dev.page(&format!("/partner/apps/{client_id}/edit")).await;
    let finding = error_at(&edit, "redirect_uris");
    assert!(
        finding.contains("Line 1: The redirect URI")
            && finding.contains("http://app.example/cb")
            && finding.contains("uses http; use https"),
        "{finding}"
    );
    assert!(
        !finding.contains("redirect_uri_not_https"),
        "no codes: {finding}"
    );
    assert!(edit.contains(r#"aria-describedby="redirect_uris-hint redirect_uris-error""#));
    assert!(!edit.contains(&secret));
    let overview = dev.page(&format!("/partner/apps/{client_id}")).await;
    assert!(!overview.contains(&secret));
    assert!(words(&overview).contains("Not submitted for review yet"));
    assert!(words(&overview).contains("Stage: Draft"));
}

async fn a_refused_create_keeps_what_was_typed_with_the_error_at_its_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let owner = Console::sign_in(&app, OWNER).await;
    let mut fields = new_app_fields(&p, REDIRECT);
    set(&mut fields, "name", "   ");
    set(&mut fields, "description", "Typed with care.");
    let a = owner.post("/partner/apps", &as_refs(&fields)).await;
    assert_eq!(a.status, 400, "{}", a.html);
    assert!(
        error_at(&a.html, "name").contains("Name is required"),
        "{}",
        a.html
    );
    assert!(a.html.contains("Typed with care.</textarea>"));
    assert!(
        a.html
            .contains(r#"value="openid" id="scope-openid" checked"#)
    );
    assert!(a.html.contains(&format!("{REDIRECT}</textarea>")));

    set(&mut fields, "name", "Travel Buddy");
    set(
        &mut fields,
        "domain",
        &format!("{}.example", "a".repeat(300)),
    );
    let a = owner.post("/partner/apps", &as_refs(&fields)).await;
    assert_eq!(a.status, 400, "{}", a.html);
    assert!(
        error_at(&a.html, "domain").contains("at most 253"),
        "{}",
        a.html
    );
    assert!(a.html.contains(r#"value="Travel Buddy""#));

    set(&mut fields, "domain", "app.example");
    set(&mut fields, "client_type", "secretive");
    let a = owner.post("/partner/apps", &as_refs(&fields)).await;
    assert_eq!(a.status, 400);
    assert!(error_at(&a.html, "client_type").contains("Choose the kind of app"));

    let (_, list) = partner_api::get(&app, "/api/v1/apps", &p.partner_key).await;
    assert_eq!(list["apps"], json!([]), "nothing was created");
}

async fn a_preview_names_the_steps_a_save_reopens_and_the_save_reopens_exactly_those(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let client_id = api_app(&app, &p, partner_api::good_draft()).await;
    partner_api::post(
        &app,
        &format!("/api/v1/apps/{client_id}/submit"),
        &p.partner_key,
        json!({}),
    )
    .await;
    for step in ["app_identity", "redirect_uris", "use_case"] {
        let (status, v) = partner_api::decide(&app, &p.op_key, &client_id, step, "approved").await;
        assert_eq!(status, 200, "{step}: {v}");
    }
    let dev = Console::sign_in(&app, DEVELOPER).await;
    let path = format!("/partner/apps/{client_id}/edit");
    let edit = dev.page(&path).await;
    assert!(
        words(&edit).contains(
            "Reviewed in the step “App identity: name, description and consent language”: approved."
        ),
        "{}",
        words(&edit)
    );
    let version = hidden_field(&edit, "draft_version");
    let view = api_view(&app, &p, &client_id).await;
    let mut fields = fields_of(&view["draft"]);
    fields.push(("draft_version".into(), version.clone()));
    set(&mut fields, "name", "Travel Buddy Plus");
    set(&mut fields, "support_url", "https://app.example/support");

    let mut preview = fields.clone();
    preview.push(("action".into(), "preview".into()));
    let a = dev.post(&path, &as_refs(&preview)).await;
    assert_eq!(a.status, 200, "{}", a.html);
    let said = words(&a.html);
    assert!(
        said.contains("Saving this reopens: App identity: name, description and consent language."),
        "{said}"
    );
    assert!(
        !said.contains("Saving this reopens: Redirect URIs"),
        "{said}"
    );
    assert!(
        a.html.contains(r#"value="Travel Buddy Plus""#),
        "typed values kept"
    );
    assert_eq!(
        api_view(&app, &p, &client_id).await["draft"]["name"],
        "Travel Buddy",
        "a preview saves nothing"
    );

    let mut save = fields.clone();
    save.push(("action".into(), "save".into()));
    let (to, html) = dev.post_and_follow(&path, &as_refs(&save)).await;
    assert!(to.starts_with(&format!("{path}?done=saved")), "{to}");
    assert!(
        words(&html).contains("The draft was saved. It reopened these review steps: App identity: name, description and consent language."),
        "{}",
        words(&html)
    );
    let view = api_view(&app, &p, &client_id).await;
    assert_eq!(view["draft"]["name"], "Travel Buddy Plus");
    assert_eq!(view["draft"]["support_url"], "https://app.example/support");
    assert_eq!(step_state(&view, "app_identity"), "pending");
    assert_eq!(step_state(&view, "redirect_uris"), "approved");
    assert_eq!(step_state(&view, "use_case"), "approved");
    // The live app keeps what was approved.
    assert_eq!(view["live"]["name"], "Travel Buddy");

    // A preview of changing nothing reopens nothing, and saving it saves nothing.
    let edit = dev.page(&path).await;
    let mut same = fields_of(&api_view(&app, &p, &client_id).await["draft"]);
    same.push(("draft_version".into(), hidden_field(&edit, "draft_version")));
    let mut preview = same.clone();
    preview.push(("action".into(), "preview".into()));
    let a = dev.post(&path, &as_refs(&preview)).await;
    assert!(
        words(&a.html).contains("Saving this reopens no review step"),
        "{}",
        words(&a.html)
    );
    same.push(("action".into(), "save".into()));
    let a = dev.post(&path, &as_refs(&same)).await;
    assert_eq!(
        a.location.as_deref(),
        Some(format!("{path}?done=unchanged").as_str())
    );
}

async fn a_save_on_a_stale_draft_version_is_refused_and_keeps_what_was_typed(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let client_id = api_app(&app, &p, partner_api::good_draft()).await;
    let owner = Console::sign_in(&app, OWNER).await;
    let path = format!("/partner/apps/{client_id}/edit");
    let edit = owner.page(&path).await;
    let version = hidden_field(&edit, "draft_version");
    assert_eq!(version, "1");
    // Someone else changes the draft meanwhile.
    let (status, v) = partner_api::patch(
        &app,
        &format!("/api/v1/apps/{client_id}"),
        &p.partner_key,
        json!({"purpose": "Show your name on your bookings and tickets."}),
    )
    .await;
    assert_eq!(status, 200, "{v}");

    let mut fields = fields_of(&partner_api::good_draft());
    fields.push(("draft_version".into(), version));
    fields.push(("action".into(), "save".into()));
    set(&mut fields, "description", "Typed before the other edit.");
    let a = owner.post(&path, &as_refs(&fields)).await;
    assert_eq!(a.status, 409, "{}", a.html);
    let said = words(&a.html);
    assert!(said.contains("The draft changed since version 1"), "{said}");
    assert!(said.contains("(changed: purpose)"), "{said}");
    assert!(said.contains("nothing was saved"), "{said}");
    assert!(a.html.contains("Typed before the other edit.</textarea>"));
    let view = api_view(&app, &p, &client_id).await;
    assert_eq!(view["draft"]["description"], "Plan trips with friends.");
    assert_eq!(view["draft_version"], 2);
}

async fn the_review_page_shows_each_step_with_the_reviewers_note_and_findings_link_to_their_field(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let mut draft = partner_api::good_draft();
    draft["redirect_uris"] = json!(["http://app.example/cb"]);
    let client_id = api_app(&app, &p, draft).await;
    let dev = Console::sign_in(&app, DEVELOPER).await;
    let review_path = format!("/partner/apps/{client_id}/review");
    let before = dev.page(&review_path).await;
    assert!(words(&before).contains("has not been submitted for review yet"));
    assert!(before.contains(&format!(r#"action="/partner/apps/{client_id}/submit""#)));

    let a = dev
        .post(&format!("/partner/apps/{client_id}/submit"), &[])
        .await;
    assert_eq!(a.status, 303, "{}", a.html);
    assert_eq!(a.location.as_deref(), Some(review_path.as_str()));

    let version = partner_api::draft_version(&app, &p.op_key, &client_id).await;
    let (status, v) = partner_api::put(
        &app,
        &format!("/api/v1/operator/apps/{client_id}/steps/app_identity"),
        &p.op_key,
        json!({"state": "changes_requested", "note": "Say in the description who the app is for.", "draft_version": version}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = partner_api::decide(&app, &p.op_key, &client_id, "company", "approved").await;
    assert_eq!(status, 200, "{v}");

    let page = dev.page(&review_path).await;
    let said = words(&page);
    assert!(page.contains(r#"id="step-app_identity""#));
    assert!(said.contains("Changes requested"), "{said}");
    assert!(
        said.contains("Say in the description who the app is for."),
        "{said}"
    );
    assert!(said.contains("Company review Approved"), "{said}");
    assert!(
        said.contains("Requested scopes Waiting for review"),
        "{said}"
    );
    assert!(
        said.contains("2 of 11 steps done") || said.contains("of 11 steps done"),
        "{said}"
    );
    // The finding in words, linking to its field on the edit form.
    assert!(
        page.contains(&format!(
            r#"href="/partner/apps/{client_id}/edit#redirect_uris""#
        )),
        "{page}"
    );
    assert!(said.contains("uses http; use https"), "{said}");
    assert!(!said.contains("redirect_uri_not_https"));
}

async fn the_consent_preview_shows_the_drafts_name_words_and_scopes(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let mut draft = partner_api::good_draft();
    draft["scopes"] = json!(["openid", "profile", "email", "grants:read"]);
    let client_id = api_app(&app, &p, draft).await;
    // The draft, not the live app: a change shows at once.
    partner_api::patch(
        &app,
        &format!("/api/v1/apps/{client_id}"),
        &p.partner_key,
        json!({"consent_copy": "Travel Buddy never sells your details."}),
    )
    .await;
    let dev = Console::sign_in(&app, DEVELOPER).await;
    let page = dev
        .page(&format!("/partner/apps/{client_id}/consent-preview"))
        .await;
    let said = words(&page);
    assert!(said.contains("Preview."), "{said}");
    assert!(
        said.contains("Travel Buddy wants to access your Onyx account"),
        "{said}"
    );
    assert!(said.contains("Show your name on your bookings."), "{said}");
    assert!(
        said.contains("Travel Buddy never sells your details."),
        "{said}"
    );
    for label in [
        "Sign you in with Onyx ID",
        "Your name",
        "Your email address",
    ] {
        assert!(said.contains(label), "{label}: {said}");
    }
    assert!(
        !said.contains("Read permission states"),
        "the app's own scopes are not shown"
    );
    assert!(said.contains("optional"), "email is optional: {said}");
    assert!(!page.contains(r#"action="/consent""#), "nothing to answer");
    assert!(page.contains(r#"value="approve" disabled"#));
    assert!(said.contains(&format!("Signed in as {DEVELOPER}")));
}

async fn another_partners_member_finds_nothing_and_a_non_member_has_no_access(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let client_id = api_app(&app, &p, partner_api::good_draft()).await;
    p.other_partner(&app).await;
    let other = Console::sign_in(&app, "other@other.example").await;
    let list = other.page("/partner").await;
    assert!(!list.contains(&client_id) && !words(&list).contains("Buddy Ltd"));
    for page in ["", "/edit", "/review", "/consent-preview"] {
        let a = other.get(&format!("/partner/apps/{client_id}{page}")).await;
        assert_eq!(a.status, 404, "{page}");
        assert!(!a.html.contains("Travel Buddy"));
    }
    let a = other
        .get(&format!("/partner/apps/new?partner={}", p.partner_id))
        .await;
    assert_eq!(a.status, 404);
    let mut fields = fields_of(&partner_api::good_draft());
    fields.push(("draft_version".into(), "1".into()));
    fields.push(("action".into(), "save".into()));
    set(&mut fields, "name", "Hijacked");
    let a = other
        .post(
            &format!("/partner/apps/{client_id}/edit"),
            &as_refs(&fields),
        )
        .await;
    assert_eq!(a.status, 404);
    let a = other
        .post(&format!("/partner/apps/{client_id}/submit"), &[])
        .await;
    assert_eq!(a.status, 404);
    let mut create = new_app_fields(&p, REDIRECT);
    set(&mut create, "name", "Planted");
    let a = other.post("/partner/apps", &as_refs(&create)).await;
    assert_eq!(a.status, 404);
    let view = api_view(&app, &p, &client_id).await;
    assert_eq!(view["draft"]["name"], "Travel Buddy");
    assert!(view["review"].is_null(), "not submitted");
    let (_, list) = partner_api::get(&app, "/api/v1/apps", &p.partner_key).await;
    assert_eq!(list["apps"].as_array().unwrap().len(), 1);

    app.create_user("nobody@example.com", "No One").await;
    let nobody = Console::sign_in(&app, "nobody@example.com").await;
    let a = nobody.get("/partner").await;
    assert_eq!(a.status, 403);
    assert!(words(&a.html).contains("not a member"));

    let res = browser()
        .get(app.url(&format!("/partner/apps/{client_id}/edit")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        location(res.headers()),
        format!("/login?next=/partner/apps/{client_id}/edit")
    );
    let res = browser().get(app.url("/partner")).send().await.unwrap();
    assert_eq!(location(res.headers()), "/login?next=/partner");
}

async fn forms_without_the_csrf_token_are_refused_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let client_id = api_app(&app, &p, partner_api::good_draft()).await;
    let owner = Console::sign_in(&app, OWNER).await;
    let mut edit = fields_of(&partner_api::good_draft());
    edit.push(("draft_version".into(), "1".into()));
    edit.push(("action".into(), "save".into()));
    set(&mut edit, "name", "No token");
    let create = new_app_fields(&p, REDIRECT);
    for (path, fields) in [
        ("/partner/apps".to_string(), create),
        (format!("/partner/apps/{client_id}/edit"), edit),
        (format!("/partner/apps/{client_id}/submit"), vec![]),
    ] {
        let res = owner
            .browser
            .post(app.url(&path))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{path}");
        assert!(
            res.text().await.unwrap().contains("This form has expired"),
            "{path}"
        );
    }
    let view = api_view(&app, &p, &client_id).await;
    assert_eq!(view["draft"]["name"], "Travel Buddy");
    assert_eq!(view["draft_version"], 1);
    assert!(view["review"].is_null());
    let (_, list) = partner_api::get(&app, "/api/v1/apps", &p.partner_key).await;
    assert_eq!(list["apps"].as_array().unwrap().len(), 1);

    let res = owner
        .browser
        .get(app.url(&format!("/partner/apps/{client_id}/edit")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-frame-options"], "DENY");
}

async fn every_action_is_in_the_audit_log_with_the_person_who_did_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let dev = Console::sign_in(&app, DEVELOPER).await;
    let a = dev
        .post("/partner/apps", &as_refs(&new_app_fields(&p, REDIRECT)))
        .await;
    assert_eq!(a.status, 200, "{}", a.html);
    let client_id = client_id_of(&a.html);
    let path = format!("/partner/apps/{client_id}/edit");
    let edit = dev.page(&path).await;
    let mut fields = fields_of(&api_view(&app, &p, &client_id).await["draft"]);
    fields.push(("draft_version".into(), hidden_field(&edit, "draft_version")));
    fields.push(("action".into(), "save".into()));
    set(&mut fields, "description", "Plan trips with your friends.");
    dev.post_and_follow(&path, &as_refs(&fields)).await;
    dev.post_and_follow(&format!("/partner/apps/{client_id}/submit"), &[])
        .await;

    let (status, v) = partner_api::get(
        &app,
        &format!("/api/v1/operator/audit?client_id={client_id}"),
        &p.op_key,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let entries = v["entries"].as_array().unwrap();
    let actor = format!(
        "partner:{}/user:{}",
        p.partner_id,
        user_id(&app, DEVELOPER).await
    );
    for action in ["app.created", "app.draft_updated", "review.submitted"] {
        let e = entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("{action} in {v}"));
        assert_eq!(e["actor"], actor, "{action}");
    }
    let updated = entries
        .iter()
        .find(|e| e["action"] == "app.draft_updated")
        .unwrap();
    assert!(updated.to_string().contains("description"), "{updated}");
}

async fn more_than_fifty_apps_are_listed_a_page_at_a_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    for i in 0..55 {
        // A second apart: the list is oldest first, so "App 00" leads page 1 on every backend.
        onyx_id::partner::apps::create_app(
            &app.state.db,
            app.clock_now() + i,
            "test",
            &p.partner_id,
            onyx_id::partner::apps::NewPartnerApp {
                client_type: onyx_id::store::apps::ClientType::Public,
                draft: onyx_id::partner::AppDraft {
                    name: format!("App {i:02}"),
                    ..Default::default()
                },
            },
        )
        .await
        .unwrap();
    }
    let owner = Console::sign_in(&app, OWNER).await;
    let first = owner.page("/partner").await;
    assert_eq!(first.matches(r#"<tr id="app-"#).count(), 50);
    let said = words(&first);
    assert!(said.contains("Showing 1–50 of 55"), "{said}");
    assert!(said.contains("App 00 ") && said.contains("Draft") && said.contains("Active"));
    assert!(said.contains("Not submitted for review yet"));
    assert!(first.contains(r#"href="/partner?page=2""#));
    assert!(first.contains(&format!(
        r#"href="/partner/apps/new?partner={}""#,
        p.partner_id
    )));
    assert!(first.contains(&format!(r#"href="/partner/team/{}/members""#, p.partner_id)));
    let second = owner.page("/partner?page=2").await;
    assert_eq!(second.matches(r#"<tr id="app-"#).count(), 5);
    assert!(words(&second).contains("Page 2 of 2"));
    let both = format!("{} {}", words(&first), words(&second));
    for i in 0..55 {
        assert!(
            both.contains(&format!("App {i:02} ")),
            "App {i:02} is listed once"
        );
    }
    // A developer manages the apps, not the team.
    let dev = Console::sign_in(&app, DEVELOPER).await;
    let list = dev.page("/partner").await;
    assert!(!list.contains("/members\""));
    assert!(list.contains("/partner/apps/new?partner="));
}

/// Each page of the apps part in a real browser: axe-core finds no WCAG 2.2 AA violation, and
/// screenshots at 390 and 1280 px go to target/test-artifacts/console-*.png.
#[tokio::test]
async fn the_apps_pages_pass_axe_in_a_real_browser() {
    if !browser_available() {
        return;
    }
    let app = spawn_app(backends()[0]).await;
    let p = Program::start(&app).await;
    // Another app, submitted and partly decided, for the list and the review page.
    let reviewed = api_app(&app, &p, partner_api::good_draft()).await;
    partner_api::post(
        &app,
        &format!("/api/v1/apps/{reviewed}/submit"),
        &p.partner_key,
        json!({}),
    )
    .await;
    partner_api::decide(&app, &p.op_key, &reviewed, "company", "approved").await;
    let version = partner_api::draft_version(&app, &p.op_key, &reviewed).await;
    partner_api::put(
        &app,
        &format!("/api/v1/operator/apps/{reviewed}/steps/app_identity"),
        &p.op_key,
        json!({"state": "changes_requested", "note": "Say who the app is for.", "draft_version": version}),
    )
    .await;

    let driver = Chromedriver::start();
    let b = driver.browser().await;
    b.goto(&app.url("/login?next=/partner")).await.unwrap();
    type_into(&b, "#email", DEVELOPER).await;
    type_into(&b, "#password", PASSWORD).await;
    click(&b, "main button[type=submit]").await;
    element(&b, "table.list").await;
    shoot_and_check(&b, "console-apps-list").await;

    b.goto(&app.url(&format!("/partner/apps/new?partner={}", p.partner_id)))
        .await
        .unwrap();
    element(&b, "#name").await;
    shoot_and_check(&b, "console-app-new").await;
    type_into(&b, "#name", "Trip Planner").await;
    type_into(&b, "#description", "Plan trips with friends.").await;
    type_into(&b, "#purpose", "Show your name on your trips.").await;
    type_into(
        &b,
        "#consent_copy",
        "Trip Planner never shares your details.",
    )
    .await;
    type_into(&b, "#domain", "app.example").await;
    type_into(&b, "#redirect_uris", "http://app.example/cb").await;
    click(&b, r#"#scope-openid"#).await;
    click(&b, r#"#scope-profile"#).await;
    click(&b, "form.draft-form .actions button[type=submit]").await;
    element(&b, "#client-secret").await;
    shoot_and_check(&b, "console-app-created").await;
    let client_id = element(&b, "#client-id").await.text().await.unwrap();

    b.goto(&app.url(&format!("/partner/apps/{client_id}")))
        .await
        .unwrap();
    element(&b, "dl.compare").await;
    shoot_and_check(&b, "console-app-overview").await;

    b.goto(&app.url(&format!("/partner/apps/{client_id}/edit")))
        .await
        .unwrap();
    element(&b, "#redirect_uris-error").await;
    shoot_and_check(&b, "console-app-edit").await;
    type_into(&b, "#name", " Plus").await;
    click(&b, r#"button[name="action"][value="preview"]"#).await;
    element(&b, "#reopens").await;
    shoot_and_check(&b, "console-app-edit-preview").await;

    b.goto(&app.url(&format!("/partner/apps/{reviewed}/review")))
        .await
        .unwrap();
    element(&b, "#step-app_identity").await;
    shoot_and_check(&b, "console-app-review").await;

    b.goto(&app.url(&format!("/partner/apps/{reviewed}/consent-preview")))
        .await
        .unwrap();
    element(&b, ".preview-banner").await;
    shoot_and_check(&b, "console-consent-preview").await;
}

/// Whether the checkbox `id` is ticked in `html`.
fn ticked(html: &str, id: &str) -> bool {
    let marker = format!(r#"id="{id}""#);
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {id} in the page"));
    let start = html[..at].rfind('<').unwrap();
    let end = at + html[at..].find('>').unwrap();
    let tag = &html[start..end];
    assert!(tag.contains(r#"type="checkbox""#), "{tag}");
    tag.contains(" checked")
}

async fn the_draft_form_asks_in_words_whether_the_app_requires_pushed_authorization_requests(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let client_id = api_app(&app, &p, partner_api::good_draft()).await;
    let dev = Console::sign_in(&app, DEVELOPER).await;
    let path = format!("/partner/apps/{client_id}/edit");
    let edit = dev.page(&path).await;
    assert!(!ticked(&edit, "require_pushed_authorization_requests"));
    assert!(
        words(&edit).contains("(pushed authorization requests, PAR)"),
        "a label in words"
    );
    assert!(edit.contains(r#"<label for="require_pushed_authorization_requests">"#));

    // Ticked and saved: the draft requires PAR, and the form shows it ticked.
    let mut draft = api_view(&app, &p, &client_id).await["draft"].clone();
    draft["require_pushed_authorization_requests"] = json!(true);
    let mut fields = fields_of(&draft);
    fields.push(("draft_version".into(), hidden_field(&edit, "draft_version")));
    fields.push(("action".into(), "save".into()));
    let a = dev.post(&path, &as_refs(&fields)).await;
    assert!(a.status.is_redirection() || a.status == 200, "{}", a.html);
    let view = api_view(&app, &p, &client_id).await;
    assert_eq!(
        view["draft"]["require_pushed_authorization_requests"], true,
        "{view}"
    );
    let edit = dev.page(&path).await;
    assert!(ticked(&edit, "require_pushed_authorization_requests"));

    // Unticked and saved: it does not any more.
    draft["require_pushed_authorization_requests"] = json!(false);
    let mut fields = fields_of(&draft);
    fields.push(("draft_version".into(), hidden_field(&edit, "draft_version")));
    fields.push(("action".into(), "save".into()));
    let a = dev.post(&path, &as_refs(&fields)).await;
    assert!(a.status.is_redirection() || a.status == 200, "{}", a.html);
    let view = api_view(&app, &p, &client_id).await;
    assert_eq!(
        view["draft"]["require_pushed_authorization_requests"], false,
        "{view}"
    );
}

async fn the_draft_form_takes_the_apps_keys_and_the_fapi2_profile(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let client_id = api_app(&app, &p, partner_api::good_draft()).await;
    let dev = Console::sign_in(&app, DEVELOPER).await;
    let path = format!("/partner/apps/{client_id}/edit");
    let edit = dev.page(&path).await;
    assert!(!ticked(&edit, "profile_fapi2"));
    assert!(edit.contains(r#"<label for="profile_fapi2">FAPI 2.0 Security Profile</label>"#));

    // The profile ticked without keys is saved (the pre-checks flag that at submission).
    let mut draft = api_view(&app, &p, &client_id).await["draft"].clone();
    draft["profile"] = json!("fapi2");
    let mut fields = fields_of(&draft);
    fields.push(("draft_version".into(), hidden_field(&edit, "draft_version")));
    fields.push(("action".into(), "save".into()));
    let a = dev.post(&path, &as_refs(&fields)).await;
    assert!(a.status.is_redirection() || a.status == 200, "{}", a.html);
    let view = api_view(&app, &p, &client_id).await;
    assert_eq!(view["draft"]["profile"], "fapi2", "{view}");
    let edit = dev.page(&path).await;
    assert!(ticked(&edit, "profile_fapi2"));

    // Keys typed in: the draft holds them as a JWK Set, shown again in the box.
    let jwk = json!({ "kty": "EC", "crv": "P-256", "kid": "k1",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" });
    draft["jwks"] = json!({ "keys": [jwk] });
    let mut fields = fields_of(&draft);
    fields.push(("draft_version".into(), hidden_field(&edit, "draft_version")));
    fields.push(("action".into(), "save".into()));
    let a = dev.post(&path, &as_refs(&fields)).await;
    assert!(a.status.is_redirection() || a.status == 200, "{}", a.html);
    let view = api_view(&app, &p, &client_id).await;
    assert_eq!(view["draft"]["jwks"]["keys"][0]["kid"], "k1", "{view}");
    let edit = dev.page(&path).await;
    assert!(edit.contains("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"));
}
