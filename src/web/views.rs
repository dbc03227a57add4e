//! View structs for the askama templates in `templates/`.

use askama::Template;

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub app_name: &'a str,
    pub request_id: &'a str,
    pub csrf: &'a str,
    pub email: &'a str,
    pub error: Option<&'a str>,
}

pub struct ScopeView {
    pub name: String,
    pub label: String,
    pub description: String,
}

pub struct ScopeGroup {
    pub category: String,
    pub scopes: Vec<ScopeView>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub app_name: &'a str,
    pub app_host: &'a str,
    pub user_email: &'a str,
    pub request_id: &'a str,
    pub csrf: &'a str,
    pub groups: Vec<ScopeGroup>,
    pub already_granted: Vec<ScopeView>,
}
