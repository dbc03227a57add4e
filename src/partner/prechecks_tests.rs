use super::*;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn valid_draft() -> AppDraft {
    AppDraft {
        name: "Partner Trips".into(),
        description: "Plan and book trips with your Onyx account.".into(),
        use_case: "travel".into(),
        purpose: "Sign travellers in and show which connectivity plans fit their trip.".into(),
        consent_copy: "Partner Trips uses your name and email to keep your bookings.".into(),
        domain: Some("partner.example".into()),
        redirect_uris: strings(&[
            "https://app.partner.example/cb",
            "https://partner.example/cb?from=web",
            "example.partner.app:/cb",
            "example.partner:/cb",
            "http://127.0.0.1:8400/cb",
            "http://[::1]/cb",
        ]),
        origins: strings(&["https://app.partner.example", "http://127.0.0.1:8400"]),
        post_logout_redirect_uris: vec![],
        backchannel_logout_uri: None,
        backchannel_logout_session_required: None,
        require_pushed_authorization_requests: false,
        profile: None,
        jwks: None,
        jwks_uri: None,
        webhooks: strings(&["https://hooks.partner.example/onyx"]),
        support_url: Some("https://partner.example/help".into()),
        scopes: strings(&["openid", "profile", "email", "connectivity:catalogue"]),
        optional_scopes: strings(&["email"]),
        justifications: [(
            "connectivity:catalogue".to_string(),
            "We match travellers with connectivity plans for their destination.".to_string(),
        )]
        .into(),
        capabilities: strings(&["partner_connectivity_catalogue"]),
    }
}

/// The valid draft with `value` in `field`: text fields are replaced, lists get it appended
/// (so it lands after the valid entries), justifications get it as a key.
fn with(field: &str, value: &str) -> AppDraft {
    let mut draft = valid_draft();
    let value = value.to_string();
    match field {
        "name" => draft.name = value,
        "description" => draft.description = value,
        "use_case" => draft.use_case = value,
        "purpose" => draft.purpose = value,
        "consent_copy" => draft.consent_copy = value,
        "domain" => draft.domain = Some(value),
        "support_url" => draft.support_url = Some(value),
        "redirect_uris" => draft.redirect_uris.push(value),
        "origins" => draft.origins.push(value),
        "webhooks" => draft.webhooks.push(value),
        "scopes" => draft.scopes.push(value),
        "optional_scopes" => draft.optional_scopes.push(value),
        "capabilities" => draft.capabilities.push(value),
        "justifications" => {
            draft.justifications.insert(value, "Because.".into());
        }
        other => panic!("the tests know no field {other}"),
    }
    draft
}

fn check(draft: &AppDraft) -> Vec<Finding> {
    run(draft, &Context::default())
}

/// Asserts `draft` yields exactly one finding, with this code, step and field.
#[track_caller]
fn only(draft: &AppDraft, code: &str, step: Step, field: &str) -> Finding {
    let mut findings = check(draft);
    assert_eq!(findings.len(), 1, "expected only {code}: {findings:#?}");
    let finding = findings.remove(0);
    let got = (finding.code.as_str(), finding.step, finding.field.as_str());
    assert_eq!(got, (code, step, field), "{}", finding.message);
    finding
}

#[test]
fn a_complete_valid_draft_has_no_findings() {
    assert_eq!(check(&valid_draft()), vec![]);
    // Plain OAuth apps need not sign users in; lengths count characters, not bytes.
    let mut draft = valid_draft();
    draft.scopes.retain(|s| s != "openid");
    draft.domain = Some("Partner.Example".into());
    draft.description = "é".repeat(MAX_TEXT_CHARS);
    draft
        .redirect_uris
        .push("Example.Partner.Mobile://cb".into());
    draft.origins.push("https://partner.example:8443".into());
    draft.origins.push("http://[::1]:3000".into());
    draft
        .capabilities
        .push("market_connectivity_launches".into());
    draft.webhooks.clear();
    assert_eq!(check(&draft), vec![]);
}

#[test]
fn the_domain_must_be_present_valid_and_not_onyx() {
    let mut draft = valid_draft();
    draft.domain = None;
    only(&draft, "domain_missing", Step::Domain, "domain");
    only(
        &with("domain", " "),
        "domain_missing",
        Step::Domain,
        "domain",
    );
    let long_label = format!("{}.example", "a".repeat(64));
    for bad in [
        "localhost",
        "partner.example.",
        "partner.example:443",
        "https://partner.example",
        "1.2.3.4",
        "[::1]",
        "-partner.example",
        "part_ner.example",
        "bücher.example",
        "a..example",
        long_label.as_str(),
    ] {
        // The hosts cannot be held to an unusable domain, so the domain finding is the only one.
        let f = only(
            &with("domain", bad),
            "domain_invalid",
            Step::Domain,
            "domain",
        );
        assert!(f.message.contains(&format!("{bad:?}")), "{}", f.message);
    }
    for onyx in [
        "onyx.com",
        "onyx.id",
        "login.onyx.com",
        "0nyx-pay.example",
        "onyx.partner.example",
    ] {
        let mut draft = with("domain", onyx);
        draft.redirect_uris = vec![format!("https://{onyx}/cb")];
        draft.origins.clear();
        only(&draft, "domain_impersonates_onyx", Step::Domain, "domain");
    }
    let mut draft = with("domain", "sardonyx.example");
    draft.redirect_uris = vec!["https://sardonyx.example/cb".into()];
    draft.origins.clear();
    assert_eq!(check(&draft), vec![]);
}

#[test]
fn redirect_uris_must_be_safe_exact_and_registered_once() {
    let mut draft = valid_draft();
    draft.redirect_uris.clear();
    only(
        &draft,
        "redirect_uris_missing",
        Step::RedirectUris,
        "redirect_uris",
    );
    for (uri, code) in [
        ("/cb", "redirect_uri_invalid"),
        ("app.partner.example/cb", "redirect_uri_invalid"),
        ("", "redirect_uri_invalid"),
        (" https://app.partner.example/cb", "redirect_uri_invalid"),
        ("https://app.partner.example/c b", "redirect_uri_invalid"),
        ("https://*.partner.example/cb", "redirect_uri_wildcard"),
        ("https://app.partner.example/*", "redirect_uri_wildcard"),
        ("https://app.partner.example/cb#", "redirect_uri_fragment"),
        (
            "https://app.partner.example/cb#top",
            "redirect_uri_fragment",
        ),
        (
            "https://user:pw@app.partner.example/cb",
            "redirect_uri_credentials",
        ),
        (
            "https://@app.partner.example/cb",
            "redirect_uri_credentials",
        ),
        (
            "https://partner.example.evil.example/cb",
            "redirect_uri_outside_domain",
        ),
        (
            "https://evilpartner.example/cb",
            "redirect_uri_outside_domain",
        ),
        ("https://93.184.216.34/cb", "redirect_uri_outside_domain"),
        ("http://localhost:8400/cb", "redirect_uri_localhost"),
        ("http://app.localhost/cb", "redirect_uri_localhost"),
        ("http://app.partner.example/cb", "redirect_uri_not_https"),
        ("http://127.0.0.2/cb", "redirect_uri_not_https"),
        ("http://127.1/cb", "redirect_uri_not_https"),
        ("http://10.0.0.1/cb", "redirect_uri_not_https"),
        ("javascript:alert(1)", "redirect_uri_not_https"),
        ("data:text/html,hi", "redirect_uri_not_https"),
        ("file:///etc/passwd", "redirect_uri_not_https"),
        ("myapp:/cb", "redirect_uri_scheme_not_reverse_domain"),
        (
            "com.example.app:/cb",
            "redirect_uri_scheme_not_reverse_domain",
        ),
        (
            "example.partnerx:/cb",
            "redirect_uri_scheme_not_reverse_domain",
        ),
        (
            "partner.example:/cb",
            "redirect_uri_scheme_not_reverse_domain",
        ),
        ("a..b:/cb", "redirect_uri_scheme_not_reverse_domain"),
        ("https://app.partner.example/cb", "redirect_uri_duplicate"),
    ] {
        let f = only(
            &with("redirect_uris", uri),
            code,
            Step::RedirectUris,
            "redirect_uris[6]",
        );
        assert!(f.message.contains(&format!("{uri:?}")), "{}", f.message);
    }
    let f = only(
        &with("redirect_uris", "http://localhost/cb"),
        "redirect_uri_localhost",
        Step::RedirectUris,
        "redirect_uris[6]",
    );
    assert!(f.message.contains("http://127.0.0.1"), "{}", f.message);
    let f = only(
        &with("redirect_uris", "myapp:/cb"),
        "redirect_uri_scheme_not_reverse_domain",
        Step::RedirectUris,
        "redirect_uris[6]",
    );
    assert!(
        f.message.contains("example.partner:/callback"),
        "{}",
        f.message
    );
    let codes: Vec<_> = check(&with(
        "redirect_uris",
        "http://127.0.0.1:80@evil.example/cb",
    ))
    .into_iter()
    .map(|f| f.code)
    .collect();
    assert_eq!(
        codes,
        ["redirect_uri_credentials", "redirect_uri_not_https"]
    );
    // Without a usable domain, https hosts cannot be held to it yet.
    let mut draft = with("redirect_uris", "https://elsewhere.example/cb");
    draft.domain = None;
    only(&draft, "domain_missing", Step::Domain, "domain");
}

#[test]
fn origins_are_exact_https_origins_under_the_domain() {
    for (origin, code) in [
        ("https://app.partner.example/", "origin_not_exact"),
        ("https://app.partner.example:443", "origin_not_exact"),
        ("https://APP.partner.example", "origin_not_exact"),
        ("https://app.partner.example/path", "origin_not_exact"),
        ("https://app.partner.example?x=1", "origin_not_exact"),
        ("https://u@app.partner.example", "origin_not_exact"),
        ("https://*.partner.example", "origin_not_exact"),
        ("app.partner.example", "origin_invalid"),
        ("http://app.partner.example", "origin_not_https"),
        ("http://localhost:3000", "origin_not_https"),
        ("ftp://app.partner.example", "origin_not_https"),
        ("https://evil.example", "origin_outside_domain"),
        ("https://app.partner.example", "origin_duplicate"),
    ] {
        let f = only(
            &with("origins", origin),
            code,
            Step::RedirectUris,
            "origins[2]",
        );
        assert!(f.message.contains(&format!("{origin:?}")), "{}", f.message);
    }
    let f = only(
        &with("origins", "https://app.partner.example/"),
        "origin_not_exact",
        Step::RedirectUris,
        "origins[2]",
    );
    assert!(
        f.message
            .contains("write it as \"https://app.partner.example\""),
        "{}",
        f.message
    );
}

#[test]
fn the_name_is_required_short_printable_and_not_borrowed() {
    let long = "x".repeat(MAX_NAME_CHARS + 1);
    for (name, code) in [
        ("  ", "name_missing"),
        (long.as_str(), "name_too_long"),
        ("Partner\u{202e}Trips", "name_invalid"),
        ("Partner\nTrips", "name_invalid"),
        ("Onyx", "name_impersonates_onyx"),
        ("ONYX Pay", "name_impersonates_onyx"),
        ("0nyx", "name_impersonates_onyx"),
        ("O.N.Y.X", "name_impersonates_onyx"),
        ("Оnyх", "name_impersonates_onyx"),
        ("ｏｎｙｘ", "name_impersonates_onyx"),
        ("Sign in with onyx", "name_impersonates_onyx"),
    ] {
        only(&with("name", name), code, Step::AppIdentity, "name");
    }
    let approved = strings(&["PayPal Travel", "Atlas"]);
    let ctx = Context {
        approved_names: &approved,
    };
    let mut draft = with("name", "Pay-PaI  trave1");
    let findings = run(&draft, &ctx);
    let got: Vec<_> = findings
        .iter()
        .map(|f| (f.code.as_str(), f.step, f.field.as_str()))
        .collect();
    assert_eq!(got, [("name_impersonates_app", Step::AppIdentity, "name")]);
    assert!(
        findings[0].message.contains("\"PayPal Travel\""),
        "{}",
        findings[0].message
    );
    draft.name = "Atlas Trips".into();
    assert_eq!(run(&draft, &ctx), vec![]);
}

#[test]
fn texts_shown_to_users_are_required_and_bounded() {
    let long = "x".repeat(MAX_TEXT_CHARS + 1);
    for (field, value, code, step) in [
        ("description", "", "description_missing", Step::AppIdentity),
        (
            "description",
            long.as_str(),
            "description_too_long",
            Step::AppIdentity,
        ),
        (
            "consent_copy",
            "\t",
            "consent_copy_missing",
            Step::AppIdentity,
        ),
        (
            "consent_copy",
            long.as_str(),
            "consent_copy_too_long",
            Step::AppIdentity,
        ),
        ("purpose", " ", "purpose_missing", Step::UseCase),
        ("purpose", long.as_str(), "purpose_too_long", Step::UseCase),
    ] {
        only(&with(field, value), code, step, field);
    }
}

#[test]
fn the_use_case_comes_from_the_catalogue() {
    let f = only(
        &with("use_case", "gaming"),
        "use_case_unknown",
        Step::UseCase,
        "use_case",
    );
    assert!(
        f.message.contains("\"gaming\"") && f.message.contains("travel"),
        "{}",
        f.message
    );
    only(
        &with("use_case", ""),
        "use_case_unknown",
        Step::UseCase,
        "use_case",
    );
}

#[test]
fn scopes_are_known_justified_and_fit_the_use_case() {
    let mut draft = valid_draft();
    draft.scopes.clear();
    draft.optional_scopes.clear();
    draft.justifications.clear();
    only(&draft, "scopes_missing", Step::Scopes, "scopes");
    for (field, value, code, at) in [
        ("scopes", "admin", "scope_unknown", "scopes[4]"),
        ("scopes", "email", "scope_duplicate", "scopes[4]"),
        ("scopes", "trust:read", "scope_excessive", "scopes[4]"),
        (
            "justifications",
            "trust:read",
            "justification_unused",
            "justifications.trust:read",
        ),
        (
            "optional_scopes",
            "openid",
            "optional_scope_required",
            "optional_scopes[1]",
        ),
        (
            "optional_scopes",
            "display:read",
            "optional_scope_not_requested",
            "optional_scopes[1]",
        ),
    ] {
        only(&with(field, value), code, Step::Scopes, at);
    }
    let f = only(
        &with("scopes", "trust:read"),
        "scope_excessive",
        Step::Scopes,
        "scopes[4]",
    );
    let expected =
        "The app is declared as a travel product, which does not need trust:read; remove it.";
    assert_eq!(f.message, expected);
    let mut draft = valid_draft();
    draft
        .justifications
        .insert("connectivity:catalogue".into(), "  ".into());
    only(
        &draft,
        "scope_justification_missing",
        Step::Scopes,
        "justifications.connectivity:catalogue",
    );
    let mut draft = valid_draft();
    draft.capabilities.clear();
    let f = only(
        &draft,
        "capability_not_requested",
        Step::Scopes,
        "scopes[3]",
    );
    assert!(
        f.message.contains("connectivity:catalogue")
            && f.message.contains("partner_connectivity_catalogue")
    );
}

#[test]
fn capabilities_are_known_and_requested_once() {
    only(
        &with("capabilities", "telepathy"),
        "capability_unknown",
        Step::Scopes,
        "capabilities[1]",
    );
    only(
        &with("capabilities", "partner_connectivity_catalogue"),
        "capability_duplicate",
        Step::ConnectivityCatalogue,
        "capabilities[1]",
    );
}

#[test]
fn webhooks_are_public_https_endpoints_listed_once() {
    for (webhook, code) in [
        ("http://hooks.partner.example/onyx", "webhook_not_https"),
        ("ftp://hooks.partner.example/onyx", "webhook_not_https"),
        ("hooks.partner.example", "webhook_invalid"),
        ("https://hooks.partner.example/onyx#x", "webhook_invalid"),
        ("https://u:p@hooks.partner.example/onyx", "webhook_invalid"),
        ("https://*.partner.example/onyx", "webhook_invalid"),
        ("https://127.0.0.1/onyx", "webhook_invalid"),
        ("https://localhost/onyx", "webhook_invalid"),
        ("https://169.254.169.254/latest", "webhook_invalid"),
        ("https://10.1.2.3/onyx", "webhook_invalid"),
        ("https://[::1]/onyx", "webhook_invalid"),
        ("https://[::ffff:192.168.0.1]/onyx", "webhook_invalid"),
        ("https://224.0.0.1/onyx", "webhook_invalid"),
        ("https://240.0.0.1/onyx", "webhook_invalid"),
        ("https://[64:ff9b::7f00:1]/onyx", "webhook_invalid"),
        ("https://[2002:a9fe:a9fe::1]/onyx", "webhook_invalid"),
        (
            "https://[2001:0:808:808::80ff:fffe]/onyx",
            "webhook_invalid",
        ),
        ("https://intranet/onyx", "webhook_invalid"),
        ("https://hooks.partner.example/onyx", "webhook_duplicate"),
    ] {
        only(
            &with("webhooks", webhook),
            code,
            Step::Webhooks,
            "webhooks[1]",
        );
    }
}

#[test]
fn a_support_url_over_https_is_required() {
    let mut draft = valid_draft();
    draft.support_url = None;
    only(&draft, "support_missing", Step::Support, "support_url");
    for (url, code) in [
        ("", "support_missing"),
        ("http://partner.example/help", "support_not_https"),
        ("mailto:help@partner.example", "support_not_https"),
        ("partner.example/help", "support_not_https"),
    ] {
        only(
            &with("support_url", url),
            code,
            Step::Support,
            "support_url",
        );
    }
}

#[test]
fn findings_come_in_check_order_then_list_order() {
    let mut draft = with("scopes", "nope");
    draft.support_url = None;
    draft.name.clear();
    draft.redirect_uris = strings(&["http://a.example/cb", "https://app.partner.example/cb#x"]);
    draft.domain = None;
    let got: Vec<_> = check(&draft)
        .into_iter()
        .map(|f| (f.code, f.field))
        .collect();
    let expected = [
        ("domain_missing", "domain"),
        ("redirect_uri_not_https", "redirect_uris[0]"),
        ("redirect_uri_fragment", "redirect_uris[1]"),
        ("name_missing", "name"),
        ("scope_unknown", "scopes[4]"),
        ("support_missing", "support_url"),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(c, f)| (c.to_string(), f.to_string()))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn no_input_panics_and_messages_stay_short() {
    let huge = "é".repeat(100_000);
    let weird = [
        "",
        " ",
        "\0",
        "#",
        "*",
        ":",
        "://",
        "[",
        "[::",
        "http://[",
        "https://",
        "a:",
        ".",
        "..",
        "-",
        "\u{202e}",
        "🦀",
        "ｏｎｙｘ",
        "xn--",
        "https://ü.example/",
        "http://127.0.0.1:99999/",
        huge.as_str(),
    ];
    for raw in weird {
        let value = raw.to_string();
        let list = vec![value.clone(), value.clone()];
        let draft = AppDraft {
            name: value.clone(),
            description: value.clone(),
            use_case: value.clone(),
            purpose: value.clone(),
            consent_copy: value.clone(),
            domain: Some(value.clone()),
            redirect_uris: list.clone(),
            origins: list.clone(),
            post_logout_redirect_uris: list.clone(),
            backchannel_logout_uri: Some(value.clone()),
            backchannel_logout_session_required: None,
            require_pushed_authorization_requests: true,
            profile: Some(crate::store::apps::Profile::Fapi2),
            jwks: Some(serde_json::Value::String(value.clone())),
            jwks_uri: Some(value.clone()),
            webhooks: list.clone(),
            support_url: Some(value.clone()),
            scopes: list.clone(),
            optional_scopes: list.clone(),
            justifications: [(value.clone(), value.clone())].into(),
            capabilities: list.clone(),
        };
        for f in run(
            &draft,
            &Context {
                approved_names: &list,
            },
        ) {
            assert!(
                f.message.chars().count() < 1_000,
                "{}: {}",
                f.code,
                f.message.len()
            );
        }
    }
}

/// The valid draft with sign-out URIs registered.
fn with_sign_out() -> AppDraft {
    AppDraft {
        post_logout_redirect_uris: strings(&[
            "https://app.partner.example/signed-out",
            "http://127.0.0.1:8400/signed-out",
        ]),
        backchannel_logout_uri: Some("https://app.partner.example/onyx/logout".into()),
        ..valid_draft()
    }
}

#[test]
fn post_logout_redirect_uris_follow_the_redirect_uri_rules_and_may_be_absent() {
    assert_eq!(check(&with_sign_out()), vec![]);
    let cases = [
        (
            "http://app.partner.example/out",
            "post_logout_redirect_uri_not_https",
        ),
        (
            "https://app.partner.example/out#x",
            "post_logout_redirect_uri_fragment",
        ),
        (
            "https://elsewhere.example/out",
            "post_logout_redirect_uri_outside_domain",
        ),
        (
            "https://app.partner.example/*",
            "post_logout_redirect_uri_wildcard",
        ),
        ("http://localhost/out", "post_logout_redirect_uri_localhost"),
        (
            "https://app.partner.example/signed-out",
            "post_logout_redirect_uri_duplicate",
        ),
    ];
    for (uri, code) in cases {
        let mut draft = with_sign_out();
        draft.post_logout_redirect_uris.push(uri.into());
        let f = only(
            &draft,
            code,
            Step::RedirectUris,
            "post_logout_redirect_uris[2]",
        );
        assert!(
            f.message.contains("post-logout redirect URI"),
            "{}",
            f.message
        );
    }
}

#[test]
fn the_backchannel_logout_uri_is_a_public_https_url_under_the_domain() {
    let cases = [
        (
            "http://app.partner.example/logout",
            "backchannel_logout_uri_not_https",
        ),
        (
            "https://app.partner.example/logout#x",
            "backchannel_logout_uri_invalid",
        ),
        (
            "https://u:p@app.partner.example/logout",
            "backchannel_logout_uri_invalid",
        ),
        ("https://127.0.0.1/logout", "backchannel_logout_uri_invalid"),
        ("logout", "backchannel_logout_uri_invalid"),
        (
            "https://elsewhere.example/logout",
            "backchannel_logout_uri_outside_domain",
        ),
    ];
    for (uri, code) in cases {
        let mut draft = with_sign_out();
        draft.backchannel_logout_uri = Some(uri.into());
        only(&draft, code, Step::RedirectUris, "backchannel_logout_uri");
    }
}
