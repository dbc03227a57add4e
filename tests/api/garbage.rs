//! Garbage input to every endpoint: a 4xx with a clear error, never a 5xx, and the server keeps
//! serving.

use crate::helpers::*;

on_each_backend!(
    garbage_to_the_token_endpoint_gets_json_errors,
    garbage_to_the_pages_gets_readable_error_pages,
);

async fn still_serving(app: &TestApp) {
    let res = http().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = http()
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

fn assert_client_error(status: reqwest::StatusCode, what: &str) {
    assert!(
        status.is_client_error(),
        "{what}: expected a 4xx, got {status}"
    );
}

async fn garbage_to_the_token_endpoint_gets_json_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid"]).await;
    let huge = "x".repeat(100_000);
    let bodies: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "application/x-www-form-urlencoded"),
        (
            "missing grant_type",
            b"code=abc".to_vec(),
            "application/x-www-form-urlencoded",
        ),
        (
            "json body",
            br#"{"grant_type":"authorization_code"}"#.to_vec(),
            "application/json",
        ),
        (
            "invalid utf-8",
            b"grant_type=%FF%FE&code=\xff\xfe".to_vec(),
            "application/x-www-form-urlencoded",
        ),
        (
            "huge value",
            format!("grant_type=authorization_code&code={}", &huge[..5000]).into_bytes(),
            "application/x-www-form-urlencoded",
        ),
        (
            "over the body limit",
            format!("code={huge}").into_bytes(),
            "application/x-www-form-urlencoded",
        ),
        (
            "duplicated parameter",
            b"grant_type=authorization_code&grant_type=refresh_token".to_vec(),
            "application/x-www-form-urlencoded",
        ),
        (
            "binary",
            vec![0, 1, 2, 255, 254, 10, 13],
            "application/octet-stream",
        ),
    ];
    for (what, body, ct) in bodies {
        let res = http()
            .post(app.url("/token"))
            .basic_auth(&client.client_id, client.client_secret.as_deref())
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        assert_client_error(status, what);
        if status != 413 {
            let json: serde_json::Value = res
                .json()
                .await
                .unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
            assert!(
                json["error"].is_string() && json["error_description"].is_string(),
                "{what}: {json}"
            );
        }
    }
    // Garbage credentials.
    for auth in [
        "Basic",
        "Basic ====",
        "Basic bm9jb2xvbg==",
        "Digest abc",
        "Basic \u{7f}",
    ] {
        let res = http()
            .post(app.url("/token"))
            .header("authorization", auth)
            .form(&[("grant_type", "authorization_code")])
            .send()
            .await;
        if let Ok(res) = res {
            assert_client_error(res.status(), auth);
        }
    }
    still_serving(&app).await;
}

async fn garbage_to_the_pages_gets_readable_error_pages(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid"]).await;
    let huge = "y".repeat(6000);
    let gets = [
        "/authorize".to_string(),
        "/authorize?client_id=%FF%FE".to_string(),
        format!("/authorize?client_id={huge}"),
        format!("/authorize?client_id={}&client_id=x", client.client_id),
        "/login".to_string(),
        "/login?request_id=nonexistent".to_string(),
        "/consent?request_id=nonexistent".to_string(),
        format!("/consent?request_id={huge}"),
        "/nothing-here".to_string(),
    ];
    for path in gets {
        let res = http().get(app.url(&path)).send().await.unwrap();
        assert_client_error(res.status(), &path);
        assert!(
            res.headers().get("location").is_none(),
            "{path} must not redirect"
        );
        let ct = res.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
    }
    let posts: Vec<(&str, Vec<u8>, &str)> = vec![
        ("/login", vec![], "application/x-www-form-urlencoded"),
        (
            "/login",
            b"request_id=x&csrf_token=y&email=%FF&password=\xff".to_vec(),
            "application/x-www-form-urlencoded",
        ),
        ("/login", b"{}".to_vec(), "application/json"),
        (
            "/consent",
            b"request_id=x&decision=approve".to_vec(),
            "application/x-www-form-urlencoded",
        ),
        ("/consent", vec![0xff; 100], "text/plain"),
        ("/authorize", b"client_id=x".to_vec(), "application/json"),
        (
            "/authorize",
            b"client_id=%FF".to_vec(),
            "application/x-www-form-urlencoded",
        ),
    ];
    for (path, body, ct) in posts {
        let res = http()
            .post(app.url(path))
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_client_error(res.status(), path);
    }
    still_serving(&app).await;
}

#[tokio::test]
async fn garbage_to_userinfo_gets_bearer_errors() {
    let app = spawn_app(Backend::Sqlite).await;
    let huge = "z".repeat(5000);
    for auth in [
        "Bearer",
        "Bearer ",
        "Basic abc",
        "bearer ????",
        &format!("Bearer {huge}"),
    ] {
        let res = http()
            .get(app.url("/userinfo"))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{auth}");
        assert!(res.headers().contains_key("www-authenticate"));
    }
    let res = http()
        .post(app.url("/userinfo"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"access_token=%FF%FE".to_vec())
        .send()
        .await
        .unwrap();
    assert_client_error(res.status(), "invalid utf-8 form");
    let res = http()
        .post(app.url("/userinfo"))
        .bearer_auth("a")
        .form(&[("access_token", "b")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "a token in two places");
    still_serving(&app).await;
}
