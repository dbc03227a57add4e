//! The consoles as their tests drive them over HTTP: a browser (its own cookie jar) signed in
//! with the login form, which reads pages and submits their forms with the browser's CSRF
//! token; and the people of a partner program (an operator, a partner's owner and developer).

use reqwest::StatusCode;

use super::partner_api;
use crate::helpers::*;

/// A browser signed in to onyx-id.
pub struct Console {
    pub browser: reqwest::Client,
    /// The browser's CSRF token (the value of its cookie, as every form carries it).
    pub csrf: String,
    base: String,
}

/// A page or an action's answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    /// Where a redirect goes.
    pub location: Option<String>,
    pub html: String,
}

impl Console {
    /// Signs `email` (an account with the tests' password) in on the login page.
    pub async fn sign_in(app: &TestApp, email: &str) -> Self {
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .unwrap();
        let login = get_text(&browser, app.url("/login?next=/partner")).await;
        let csrf = hidden_field(&login, "csrf_token");
        let res = browser
            .post(app.url("/login"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("next", "/partner"),
                ("email", email),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "signing {email} in");
        Console {
            browser,
            csrf,
            base: app.address.clone(),
        }
    }

    async fn answer(res: reqwest::Response) -> Answer {
        let status = res.status();
        let location = res
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        Answer {
            status,
            location,
            html: res.text().await.unwrap(),
        }
    }

    /// GETs `path` (no redirect is followed).
    pub async fn get(&self, path: &str) -> Answer {
        let res = self
            .browser
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        Self::answer(res).await
    }

    /// GETs `path`, which must answer 200, and returns its HTML.
    pub async fn page(&self, path: &str) -> String {
        let a = self.get(path).await;
        assert_eq!(a.status, 200, "GET {path}: {}", a.html);
        a.html
    }

    /// Submits a form to `path` with `fields` and the CSRF token (no redirect is followed).
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut form: Vec<(&str, &str)> = vec![("csrf_token", self.csrf.as_str())];
        form.extend_from_slice(fields);
        let res = self
            .browser
            .post(format!("{}{path}", self.base))
            .form(&form)
            .send()
            .await
            .unwrap();
        Self::answer(res).await
    }

    /// Submits a form that must redirect (303), and returns the page it redirects to.
    pub async fn post_and_follow(&self, path: &str, fields: &[(&str, &str)]) -> (String, String) {
        let a = self.post(path, fields).await;
        assert_eq!(a.status, 303, "POST {path}: {}", a.html);
        let to = a.location.expect("a 303 has a Location");
        let html = self.page(&to).await;
        (to, html)
    }
}

/// A partner program: an operator (`reviewer@onyx.example`, with an API key), and a partner
/// (`Buddy Ltd`) with its owner (`owner@partner.example`) and a developer
/// (`dev@partner.example`), each with an account that can sign in.
pub struct Program {
    pub op_key: String,
    pub partner_id: String,
    pub partner_key: String,
}

pub const OPERATOR: &str = "reviewer@onyx.example";
pub const OWNER: &str = "owner@partner.example";
pub const DEVELOPER: &str = "dev@partner.example";

impl Program {
    pub async fn start(app: &TestApp) -> Self {
        let op_key = partner_api::operator_key(app, OPERATOR).await;
        let (partner_id, partner_key) =
            partner_api::partner(app, &op_key, OWNER, "Buddy Ltd").await;
        app.create_user(DEVELOPER, "Partner Developer").await;
        let (status, v) = partner_api::post(
            app,
            &format!("/api/v1/operator/partners/{partner_id}/members"),
            &op_key,
            serde_json::json!({"email": DEVELOPER, "role": "developer"}),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        Program {
            op_key,
            partner_id,
            partner_key,
        }
    }

    /// A second partner (`Other Co`, owned by `other@other.example`); returns its id and key.
    pub async fn other_partner(&self, app: &TestApp) -> (String, String) {
        partner_api::partner(app, &self.op_key, "other@other.example", "Other Co").await
    }
}

/// The text of `html` with its tags removed and its whitespace folded, for "the page says …"
/// checks.
pub fn words(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}
