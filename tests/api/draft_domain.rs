//! A draft's `domain` is refused when it is written if domain verification would call it
//! invalid (a space, a path, a query, a port, an IP address, uppercase...), so the server never
//! hands out a challenge URL for a domain it cannot verify.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::support::partner_api::{get, good_draft, operator_key, partner, patch, post};

on_each_backend!(a_domain_the_verification_would_refuse_is_refused_when_written);

async fn a_domain_the_verification_would_refuse_is_refused_when_written(backend: Backend) {
    let app = spawn_app(backend).await;
    let op = operator_key(&app, "reviewer@onyx.example").await;
    let (_, key) = partner(&app, &op, "owner@acme.example", "Acme").await;
    for bad in [
        "a b/c?d#e",
        "app.example/path",
        "app.example:8443",
        "10.0.0.1",
        "nodot",
    ] {
        let mut draft = good_draft();
        draft["domain"] = json!(bad);
        let (status, v) = post(&app, "/api/v1/apps", &key, draft).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert_eq!(v["error"], "invalid_request", "{v}");
        assert_eq!(v["field"], "domain", "{v}");
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .contains("not a domain name"),
            "{v}"
        );
    }
    let (status, v) = post(&app, "/api/v1/apps", &key, good_draft()).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let client_id = v["client_id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/apps/{client_id}");
    let (status, v) = patch(&app, &path, &key, json!({ "domain": "a b/c?d#e" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["field"], "domain", "{v}");
    // The challenge is still for the domain that was accepted; a domain is normalised first.
    let (status, v) = get(&app, &format!("{path}/domain-verification"), &key).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["domain"], "app.example");
    let (status, v) = patch(&app, &path, &key, json!({ "domain": " App.Example " })).await;
    assert_eq!(status, StatusCode::OK, "{v}");
}
