//! The OpenAPI document of the partner, operator and grants APIs is generated from their
//! routers: every route they answer is in it, with its parameters, request body, responses
//! (the errors as the one `Error` schema) and security scheme, and it is valid OpenAPI 3.1.
//! No storage is involved: SQLite is enough.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::*;

/// Every operation of these APIs, as the tests exercise them (and as the hand-written document
/// had them, plus the grants API it lacked), with the security scheme it needs.
const OPERATIONS: &[(&str, &str, Option<&str>)] = &[
    (
        "get",
        "/api/v1/apps/{client_id}/webhooks",
        Some("partnerKey"),
    ),
    (
        "post",
        "/api/v1/apps/{client_id}/webhooks",
        Some("partnerKey"),
    ),
    (
        "get",
        "/api/v1/apps/{client_id}/webhooks/{endpoint_id}",
        Some("partnerKey"),
    ),
    (
        "patch",
        "/api/v1/apps/{client_id}/webhooks/{endpoint_id}",
        Some("partnerKey"),
    ),
    (
        "post",
        "/api/v1/apps/{client_id}/webhooks/{endpoint_id}/secret",
        Some("partnerKey"),
    ),
    (
        "post",
        "/api/v1/apps/{client_id}/webhooks/{endpoint_id}/enable",
        Some("partnerKey"),
    ),
    (
        "post",
        "/api/v1/apps/{client_id}/webhooks/{endpoint_id}/test",
        Some("partnerKey"),
    ),
    (
        "get",
        "/api/v1/apps/{client_id}/webhooks/{endpoint_id}/deliveries",
        Some("partnerKey"),
    ),
    (
        "post",
        "/api/v1/apps/{client_id}/webhook-deliveries/{delivery_id}/retry",
        Some("partnerKey"),
    ),
    (
        "get",
        "/api/v1/apps/{client_id}/backchannel-logout/deliveries",
        Some("partnerKey"),
    ),
    ("get", "/api/v1/openapi.json", None),
    ("get", "/api/v1/partner", Some("partnerKey")),
    ("post", "/api/v1/partner/keys", Some("partnerKey")),
    (
        "delete",
        "/api/v1/partner/keys/{key_id}",
        Some("partnerKey"),
    ),
    ("get", "/api/v1/apps", Some("partnerKey")),
    ("post", "/api/v1/apps", Some("partnerKey")),
    ("get", "/api/v1/apps/{client_id}", Some("partnerKey")),
    ("patch", "/api/v1/apps/{client_id}", Some("partnerKey")),
    (
        "post",
        "/api/v1/apps/{client_id}/submit",
        Some("partnerKey"),
    ),
    ("get", "/api/v1/apps/{client_id}/review", Some("partnerKey")),
    (
        "get",
        "/api/v1/apps/{client_id}/launch-checklist",
        Some("partnerKey"),
    ),
    (
        "get",
        "/api/v1/apps/{client_id}/capabilities",
        Some("partnerKey"),
    ),
    (
        "post",
        "/api/v1/apps/{client_id}/capabilities/{name}",
        Some("partnerKey"),
    ),
    (
        "post",
        "/api/v1/apps/{client_id}/secret",
        Some("partnerKey"),
    ),
    (
        "get",
        "/api/v1/apps/{client_id}/test-accounts",
        Some("partnerKey"),
    ),
    (
        "put",
        "/api/v1/apps/{client_id}/test-accounts",
        Some("partnerKey"),
    ),
    (
        "get",
        "/api/v1/apps/{client_id}/domain-verification",
        Some("partnerKey"),
    ),
    (
        "post",
        "/api/v1/apps/{client_id}/domain-verification",
        Some("partnerKey"),
    ),
    ("get", "/api/v1/operator/reviews", Some("operatorKey")),
    ("post", "/api/v1/operator/partners", Some("operatorKey")),
    (
        "post",
        "/api/v1/operator/partners/{partner_id}/members",
        Some("operatorKey"),
    ),
    (
        "get",
        "/api/v1/operator/apps/{client_id}",
        Some("operatorKey"),
    ),
    (
        "put",
        "/api/v1/operator/apps/{client_id}/steps/{step}",
        Some("operatorKey"),
    ),
    (
        "put",
        "/api/v1/operator/apps/{client_id}/capabilities/{name}",
        Some("operatorKey"),
    ),
    (
        "put",
        "/api/v1/operator/apps/{client_id}/access",
        Some("operatorKey"),
    ),
    (
        "put",
        "/api/v1/operator/apps/{client_id}/trust-level",
        Some("operatorKey"),
    ),
    ("get", "/api/v1/operator/audit", Some("operatorKey")),
    ("get", "/api/v1/grants/{sub}", Some("clientBasic")),
    ("delete", "/api/v1/grants/{sub}", Some("clientBasic")),
    ("get", "/api/v1/grants/{sub}/history", Some("clientBasic")),
];

/// The operations that read a JSON body.
const WITH_BODY: &[(&str, &str)] = &[
    ("post", "/api/v1/partner/keys"),
    ("post", "/api/v1/apps"),
    ("post", "/api/v1/apps/{client_id}/webhooks"),
    ("patch", "/api/v1/apps/{client_id}/webhooks/{endpoint_id}"),
    ("patch", "/api/v1/apps/{client_id}"),
    ("post", "/api/v1/apps/{client_id}/capabilities/{name}"),
    ("post", "/api/v1/apps/{client_id}/secret"),
    ("put", "/api/v1/apps/{client_id}/test-accounts"),
    ("post", "/api/v1/operator/partners"),
    ("post", "/api/v1/operator/partners/{partner_id}/members"),
    ("put", "/api/v1/operator/apps/{client_id}/steps/{step}"),
    (
        "put",
        "/api/v1/operator/apps/{client_id}/capabilities/{name}",
    ),
    ("put", "/api/v1/operator/apps/{client_id}/access"),
    ("put", "/api/v1/operator/apps/{client_id}/trust-level"),
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The served document, checked to be the one the routers generate.
async fn served_document(app: &TestApp) -> Value {
    let res = http()
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let ct = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/json"), "{ct}");
    let doc: Value = res.json().await.unwrap();
    let generated = serde_json::to_value(onyx_id::partner::api::document()).unwrap();
    assert_eq!(doc, generated, "the served document is the routers' own");
    doc
}

/// The validator's verdict without the document it quotes.
fn short(s: &str) -> String {
    s.chars().take(600).collect()
}

/// Every `$ref` in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "$ref" {
                    out.push(v);
                } else {
                    refs(v, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// `{"$ref": "#/components/schemas/Name"}` resolved in `doc`.
fn resolves<'a>(doc: &'a Value, reference: &Value) -> Option<&'a Value> {
    let name = reference.as_str()?.strip_prefix("#/components/schemas/")?;
    doc["components"]["schemas"].get(name)
}

async fn the_openapi_document_lists_every_route_of_the_partner_operator_and_grants_apis(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let doc = served_document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (m.to_string(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        documented.difference(&expected).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented but not in this test's list: add them to OPERATIONS"
    );
    assert_eq!(
        expected.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routes missing from the document"
    );

    for (method, path, scheme) in OPERATIONS {
        let what = format!("{method} {path}");
        let op = &doc["paths"][*path][*method];
        assert!(op["operationId"].is_string(), "{what}");
        assert!(op["tags"][0].is_string(), "{what}");

        // Its security scheme, declared in the components.
        match scheme {
            Some(s) => {
                assert_eq!(op["security"], serde_json::json!([{ *s: [] }]), "{what}");
                assert!(
                    doc["components"]["securitySchemes"][*s]["type"] == "http",
                    "{what}: {s} is declared"
                );
            }
            None => assert!(op.get("security").is_none(), "{what}"),
        }

        // Each `{name}` of the path is a declared path parameter.
        let declared: BTreeSet<&str> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        let in_path: BTreeSet<&str> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        assert_eq!(declared, in_path, "{what}");

        // A JSON request body where the handler reads one, with a schema that resolves.
        if WITH_BODY.contains(&(*method, *path)) {
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            assert!(
                resolves(&doc, &schema["$ref"]).is_some(),
                "{what}: request body schema {schema}"
            );
            assert!(
                op["responses"]["415"].is_object(),
                "{what}: documents its 415"
            );
        } else {
            assert!(op.get("requestBody").is_none(), "{what}");
        }

        // A success, and every error as the one error body.
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{what}: no success response"
        );
        for (status, r) in responses {
            assert!(
                r["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{what} {status}"
            );
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &r["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(schema, "#/components/schemas/Error", "{what} {status}");
            }
        }
        if scheme.is_some() {
            assert!(responses.contains_key("401"), "{what}: documents its 401");
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        assert!(resolves(&doc, r).is_some(), "{r} does not resolve");
    }
    // Rules JSON Schema can state are in the schemas, not in prose: names not blank and free
    // of control characters, whole numbers, the states as enums.
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("KeyBody", "name"),
        ("PartnerBody", "name"),
        ("PartnerBody", "support_contact"),
    ] {
        let pattern = schemas[schema]["properties"][field]["pattern"].as_str();
        assert!(
            pattern.is_some_and(|p| p.contains(r"\S")),
            "{schema}.{field}"
        );
    }
    assert_eq!(
        schemas["RotateBody"]["properties"]["overlap_seconds"]["type"],
        serde_json::json!(["integer", "null"])
    );
    assert_eq!(
        schemas["AccessState"]["enum"],
        serde_json::json!(["active", "limited", "suspended"])
    );
    assert_eq!(
        schemas["AccessBody"]["properties"]["state"]["$ref"],
        "#/components/schemas/AccessState"
    );
    assert!(schemas["Stage"]["enum"].is_array() && schemas["StepState"]["enum"].is_array());
    // Names are not blank; free text has no control characters but newlines and a bound.
    for (schema, field) in [
        ("KeyBody", "name"),
        ("PartnerBody", "name"),
        ("PartnerBody", "support_contact"),
    ] {
        assert_eq!(
            schemas[schema]["properties"][field]["minLength"], 1,
            "{schema}.{field}"
        );
    }
    for (schema, field) in [
        ("DecisionBody", "note"),
        ("CapabilityBody", "note"),
        ("AccessBody", "note"),
        ("CapabilityRequest", "justification"),
    ] {
        let p = &schemas[schema]["properties"][field];
        assert!(
            p["pattern"].as_str().is_some_and(|p| p.contains(r"\u0000")),
            "{schema}.{field}: {p}"
        );
        assert_eq!(p["maxLength"], 2000, "{schema}.{field}");
    }
    assert_eq!(
        schemas["DraftPatchBody"]["properties"]["name"]["maxLength"],
        200
    );
    // The enums a body or a path names, as enums.
    assert_eq!(
        schemas["TrustBody"]["properties"]["trust_level"]["$ref"],
        "#/components/schemas/TrustLevel"
    );
    assert_eq!(
        schemas["TrustLevel"]["enum"],
        serde_json::json!(["basic", "verified", "trusted"])
    );
    assert_eq!(
        schemas["CapabilityName"]["enum"],
        serde_json::json!(onyx_id::partner::CAPABILITIES)
    );
    // Whole numbers with their bounds.
    let overlap = &schemas["RotateBody"]["properties"]["overlap_seconds"];
    assert_eq!(
        (overlap["minimum"].as_i64(), overlap["maximum"].as_i64()),
        (Some(0), Some(onyx_id::partner::secrets::MAX_SECRET_OVERLAP))
    );
    let version = &schemas["DecisionBody"]["properties"]["draft_version"];
    assert_eq!(version["type"], serde_json::json!(["integer", "null"]));
    assert_eq!(version["minimum"], 1);
    // The access state and reason pairs: one branch per state, `restored` for `active` only,
    // in the access change and in every answer that carries an access state.
    for (schema, state, reason) in [
        ("AccessBody", "state", "reason"),
        ("AccessView", "state", "reason"),
        ("CauseView", "state", "reason"),
        ("Grant", "access_state", "access_reason"),
        ("GrantHistory", "access_state", "access_reason"),
    ] {
        let branches = schemas[schema]["oneOf"]
            .as_array()
            .unwrap_or_else(|| panic!("{schema} states its access pairs"));
        let by_state: Vec<(&str, Vec<Value>)> = branches
            .iter()
            .map(|b| {
                let props = &b["properties"];
                (
                    props[state]["const"].as_str().unwrap(),
                    props[reason]["enum"].as_array().unwrap().clone(),
                )
            })
            .collect();
        assert_eq!(
            by_state.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            ["active", "limited", "suspended"],
            "{schema}"
        );
        assert_eq!(
            by_state[0].1,
            [Value::from("restored"), Value::Null],
            "{schema}"
        );
        for (s, reasons) in &by_state[1..] {
            assert!(
                reasons.contains(&"abuse_review".into())
                    && !reasons.contains(&"restored".into())
                    && !reasons.contains(&Value::Null),
                "{schema} {s}: {reasons:?}"
            );
            let branch = branches
                .iter()
                .find(|b| b["properties"][state]["const"] == *s);
            assert_eq!(
                branch.unwrap()["required"],
                serde_json::json!([state, reason]),
                "{schema} {s}"
            );
        }
    }
    // The grants API answers with its own schemas, not a bare object.
    for (path, method) in [
        ("/api/v1/grants/{sub}", "get"),
        ("/api/v1/grants/{sub}", "delete"),
        ("/api/v1/grants/{sub}/history", "get"),
    ] {
        let schema = &doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]
            ["schema"];
        assert!(
            resolves(&doc, &schema["$ref"]).is_some(),
            "{method} {path}: {schema}"
        );
    }
    assert_eq!(
        schemas["Grant"]["properties"]["permissions"]["items"]["$ref"],
        "#/components/schemas/Permission"
    );
    assert!(
        schemas["GrantState"]["enum"]
            .as_array()
            .is_some_and(|e| e.contains(&"limited".into()))
    );
    // Each caller's error set: a body's 413 and 415, the grants API's Basic 401.
    for (method, path, _) in OPERATIONS.iter().filter(|(_, _, s)| s.is_some()) {
        let responses = &doc["paths"][*path][*method]["responses"];
        let body = WITH_BODY.contains(&(*method, *path));
        assert_eq!(responses["413"].is_object(), body, "{method} {path}: 413");
        for status in ["400", "401", "403", "404", "500"] {
            assert!(responses[status].is_object(), "{method} {path}: {status}");
        }
    }
    assert!(
        doc["paths"]["/api/v1/grants/{sub}"]["get"]["responses"]["401"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("Basic"))
    );
    assert!(
        doc["paths"]["/api/v1/operator/reviews"]["get"]["responses"]["403"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("operator API key"))
    );
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(
        error["required"],
        serde_json::json!(["error", "error_description"])
    );
    // The webhook event's schema: every type, each with its data.
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["Event"].to_string().contains("\"timestamp\""),
        "{}",
        schemas["Event"]
    );
    let event = schemas["EventKind"].to_string();
    for t in [
        "consent.granted",
        "consent.updated",
        "consent.revoked",
        "consent.expired",
        "app.access.changed",
        "app.review.updated",
        "app.capability.updated",
        "webhook.test",
        "permission.granted",
    ] {
        assert!(event.contains(t), "the Event schema names {t}: {event}");
    }
    for path in [
        "/api/v1/apps/{client_id}/webhooks",
        "/api/v1/apps/{client_id}/webhooks/{endpoint_id}/deliveries",
        "/api/v1/apps/{client_id}/webhook-deliveries/{delivery_id}/retry",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
}

async fn every_documented_operation_is_answered_by_the_router(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = served_document(&app).await;
    for (method, path, scheme) in OPERATIONS {
        let concrete: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let res = http()
            .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
            .send()
            .await
            .unwrap();
        // Routed: an operation that needs a credential refuses its absence (not 404 or 405).
        let want = if scheme.is_some() { 401 } else { 200 };
        assert_eq!(res.status().as_u16(), want, "{method} {concrete}");
        assert!(doc["paths"][*path][*method].is_object());
    }
}

/// The document validates as OpenAPI 3.1 with `openapi-spec-validator` (PyPI), which `.ci/run`
/// installs; elsewhere the check runs when the validator is there, and under `CI` it must be.
async fn the_openapi_document_validates_as_openapi_3_1(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = served_document(&app).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("openapi-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let run = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
        .arg(&file)
        .output();
    let present = std::process::Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "openapi-spec-validator is missing (pip install openapi-spec-validator)"
        );
        eprintln!("skipped: openapi-spec-validator is not installed");
        let _ = std::fs::remove_file(&file);
        return;
    }
    let out = run.unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "the document is not valid OpenAPI 3.1:\n{}",
        short(&String::from_utf8_lossy(&out.stdout))
    );
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_sqlite() {
    the_openapi_document_lists_every_route_of_the_partner_operator_and_grants_apis(Backend::Sqlite)
        .await;
}

#[tokio::test]
async fn every_documented_operation_is_answered_by_the_router_sqlite() {
    every_documented_operation_is_answered_by_the_router(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_openapi_document_validates_as_openapi_3_1_sqlite() {
    the_openapi_document_validates_as_openapi_3_1(Backend::Sqlite).await;
}
