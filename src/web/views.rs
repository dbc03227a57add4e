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
    /// The app being signed in to, for an authorization request.
    pub app_name: Option<&'a str>,
    pub request_id: Option<&'a str>,
    /// The account page to go to, otherwise.
    pub next: Option<&'a str>,
    pub csrf: &'a str,
    pub email: &'a str,
    pub error: Option<&'a str>,
}

pub struct ScopeView {
    pub name: String,
    pub label: String,
    pub description: String,
    /// The user may untick it.
    pub optional: bool,
    /// When consent to it would end ("23 December 2026").
    pub expiry: Option<String>,
}

pub struct UnavailableView {
    pub label: String,
    pub reason: &'static str,
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
    /// The app's verified domain.
    pub app_domain: Option<&'a str>,
    /// The app's declared intended use.
    pub purpose: &'a str,
    pub consent_copy: &'a str,
    /// The user answered an earlier version of the app's consent copy.
    pub copy_changed: bool,
    /// Why the page is shown again (something changed since it was last shown).
    pub notice: Option<&'a str>,
    pub user_email: &'a str,
    pub request_id: &'a str,
    pub csrf: &'a str,
    /// The digest of what this page shows, bound into the form.
    pub shown: &'a str,
    pub groups: Vec<ScopeGroup>,
    /// When every asked scope ends at the same time: said once, not per scope.
    pub common_expiry: Option<String>,
    pub unavailable: Vec<UnavailableView>,
    pub already_granted: Vec<ScopeView>,
    /// A partner's preview of the screen, from the app's draft: where to go back to. The page
    /// then says it is a preview and has no form to answer.
    pub preview: Option<&'a str>,
}

pub struct PermissionView {
    pub scope: String,
    pub label: String,
    /// The state's name (a CSS class suffix).
    pub state: &'static str,
    pub state_label: &'static str,
    pub reason: Option<&'static str>,
    pub expiry: Option<String>,
    pub revocable: bool,
}

pub struct HistoryView {
    pub when: String,
    pub label: String,
    pub change: String,
    pub reason: Option<&'static str>,
    pub actor: &'static str,
}

pub struct ConnectedAppView {
    pub client_id: String,
    pub name: String,
    pub domain: Option<String>,
    pub purpose: String,
    pub summary: &'static str,
    pub connected: bool,
    pub since: String,
    pub last_used: Option<String>,
    pub permissions: Vec<PermissionView>,
    pub history: Vec<HistoryView>,
}

#[derive(Template)]
#[template(path = "account_apps.html")]
pub struct AccountAppsPage<'a> {
    pub nav: AccountNav<'a>,
    pub csrf: &'a str,
    pub connected: Vec<ConnectedAppView>,
    pub ended: Vec<ConnectedAppView>,
}

/// The header of every account page: its links (the current one marked), and Sign out.
pub struct AccountNav<'a> {
    /// `apps`, `sessions` or `security`: the page shown.
    pub current: &'static str,
    pub csrf: &'a str,
    pub email: &'a str,
}

/// A browser session, as the sessions page shows it.
pub struct SessionView {
    pub sid: String,
    /// "Firefox 131".
    pub browser: String,
    /// "Windows 10".
    pub os: String,
    /// The address at sign-in, or "Unknown".
    pub address: String,
    /// "23 November 2026, 14:05 UTC", and as RFC 3339 for `<time datetime>`.
    pub started: String,
    pub started_iso: String,
    /// "2 minutes ago", or a date.
    pub last_used: String,
    pub last_used_iso: String,
}

#[derive(Template)]
#[template(path = "account_sessions.html")]
pub struct AccountSessionsPage<'a> {
    pub nav: AccountNav<'a>,
    pub this: SessionView,
    pub others: Vec<SessionView>,
    /// What was just done ("The session has ended.").
    pub notice: Option<String>,
    /// Why the last action was refused.
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "account_security.html")]
pub struct AccountSecurityPage<'a> {
    pub nav: AccountNav<'a>,
    /// The password was just changed.
    pub notice: Option<String>,
    /// The field the error is about (`current_password`, `new_password`, `confirm_password`),
    /// or empty for none.
    pub error_field: &'static str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "sign_out.html")]
pub struct SignOutPage<'a> {
    /// Signed in as this email: ask to confirm. `None`: the person is signed out.
    pub confirm: Option<&'a str>,
    pub csrf: &'a str,
}
