//! Automatic pre-checks: the rules a draft must pass before a person reviews it. The product
//! says unclear app names, misleading consent copy, excessive scopes and unsafe redirect
//! settings block approval (partner-program-access.txt, "App Review"); catching the mechanical
//! cases here saves the partner a round trip with a reviewer. Each finding names the step it
//! blocks, the field and the offending value, so the partner can fix the draft alone.
//!
//! Pure: no I/O and no clock; the caller passes in what else the checks need ([`Context`]).

use std::net::IpAddr;

use super::url_rules::{
    has_userinfo, host_within, is_localhost, is_loopback_ip, is_loopback_literal, is_public_host,
    is_reverse_domain_scheme, parse_absolute, reverse_labels,
};
use super::{AppDraft, CAPABILITIES, Finding, Step};
use crate::scopes::catalogue;

/// Longest app name: it has to fit on one line of the consent screen.
const MAX_NAME_CHARS: usize = 60;
/// Longest description, consent copy or intended use.
const MAX_TEXT_CHARS: usize = 500;
/// Values quoted in messages are cut to this, so a huge input cannot flood a page or a log.
const MAX_SHOWN_CHARS: usize = 100;

/// Capabilities reviewed in the connectivity catalogue step rather than with the scopes.
const CONNECTIVITY_CAPABILITIES: [&str; 2] = [
    "partner_connectivity_catalogue",
    "market_connectivity_launches",
];

/// Schemes that already mean something to a browser or an OS, so they can never be a native
/// app's private-use redirect scheme (RFC 8252 §7.1) and some of them run code.
const NON_PRIVATE_SCHEMES: [&str; 14] = [
    "javascript",
    "data",
    "file",
    "ftp",
    "ws",
    "wss",
    "blob",
    "about",
    "vbscript",
    "filesystem",
    "view-source",
    "mailto",
    "tel",
    "sms",
];

/// What the pre-checks need beyond the draft.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// Live names of other apps Onyx has approved (not this app), to catch impersonation.
    pub approved_names: &'a [String],
}

/// Runs every automatic pre-check on a draft; empty means nothing blocks review. Findings come
/// in a stable order: by field in the order below, then by list index, so a partner fixing them
/// top to bottom sees the same list each time.
pub fn run(draft: &AppDraft, ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Findings::default();
    let domain = check_domain(draft.domain.as_deref(), &mut out);
    check_redirect_uris(&draft.redirect_uris, domain.as_deref(), &mut out);
    check_origins(&draft.origins, domain.as_deref(), &mut out);
    check_uri_list(
        &draft.post_logout_redirect_uris,
        domain.as_deref(),
        &SIGN_OUT,
        &mut out,
    );
    check_backchannel(
        draft.backchannel_logout_uri.as_deref(),
        domain.as_deref(),
        &mut out,
    );
    check_name(&draft.name, ctx.approved_names, &mut out);
    check_text(
        &draft.description,
        "description",
        "description",
        Step::AppIdentity,
        &mut out,
    );
    check_text(
        &draft.consent_copy,
        "consent_copy",
        "consent copy",
        Step::AppIdentity,
        &mut out,
    );
    check_use_case(&draft.use_case, &mut out);
    check_text(
        &draft.purpose,
        "purpose",
        "intended use",
        Step::UseCase,
        &mut out,
    );
    check_scopes(draft, &mut out);
    check_capabilities(&draft.capabilities, &mut out);
    check_webhooks(&draft.webhooks, &mut out);
    check_support(draft.support_url.as_deref(), &mut out);
    check_keys(draft, &mut out);
    check_profile(draft, &mut out);
    out.0
}

#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, code: &str, step: Step, field: impl Into<String>, message: String) {
        self.0.push(Finding {
            code: code.to_string(),
            step,
            field: field.into(),
            message,
        });
    }
}

/// Checks the domain and returns it in lowercase when it is a usable DNS name, so the redirect
/// and origin checks can hold hosts to it.
fn check_domain(domain: Option<&str>, out: &mut Findings) -> Option<String> {
    let Some(raw) = domain.filter(|d| !d.trim().is_empty()) else {
        out.add(
            "domain_missing",
            Step::Domain,
            "domain",
            "Add the domain your app lives on, such as example.com, so Onyx can verify you control it."
                .into(),
        );
        return None;
    };
    let domain = match parse_domain(raw) {
        Ok(domain) => domain,
        Err(reason) => {
            let message = format!(
                "The domain {} is not a domain name Onyx can verify: {reason}.",
                shown(raw)
            );
            out.add("domain_invalid", Step::Domain, "domain", message);
            return None;
        }
    };
    if impersonates_onyx_domain(&domain) {
        let message = format!(
            "The domain {} belongs to or imitates Onyx; use a domain your company owns.",
            shown(raw)
        );
        out.add("domain_impersonates_onyx", Step::Domain, "domain", message);
    }
    Some(domain)
}

/// A DNS name (RFC 1035 §2.3.1 labels, as RFC 1123 relaxed them) in lowercase, or why not.
fn parse_domain(raw: &str) -> Result<String, &'static str> {
    if raw.contains('/') {
        return Err("write the domain alone, without a scheme or a path");
    }
    if raw
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok()
    {
        return Err("use a domain name, not an IP address");
    }
    if raw.contains(':') {
        return Err("remove the port");
    }
    if raw.ends_with('.') {
        return Err("remove the trailing dot");
    }
    if raw.len() > 253 {
        return Err("a domain name is at most 253 characters");
    }
    let domain = raw.to_ascii_lowercase();
    if !domain.contains('.') {
        return Err("it needs at least one dot, as in example.com");
    }
    for label in domain.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each part between dots must be 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(
                "use only letters, digits and hyphens (the punycode form for other scripts)",
            );
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("no part between dots may start or end with a hyphen");
        }
    }
    if domain
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("use a domain name, not an IP address");
    }
    Ok(domain)
}

/// A label (or a hyphenated word of one) that reads as "onyx": `onyx.com`, `login.onyx.id`,
/// `0nyx-pay.com`. Whole words only, so a jeweller at `sardonyx.com` is not blocked.
fn impersonates_onyx_domain(domain: &str) -> bool {
    domain
        .split('.')
        .any(|label| fold(label) == "onyx" || label.split('-').any(|word| fold(word) == "onyx"))
}

fn check_redirect_uris(uris: &[String], domain: Option<&str>, out: &mut Findings) {
    check_uri_list(uris, domain, &SIGN_IN, out);
}

/// A list of URIs Onyx sends people back to, and the words its findings use.
struct UriList {
    /// The draft field (`redirect_uris`).
    field: &'static str,
    /// The prefix of its finding codes (`redirect_uri`).
    code: &'static str,
    /// "redirect URI".
    noun: &'static str,
    /// An empty list is a finding.
    required: bool,
}

impl UriList {
    fn code(&self, what: &str) -> String {
        format!("{}_{what}", self.code)
    }
}

const SIGN_IN: UriList = UriList {
    field: "redirect_uris",
    code: "redirect_uri",
    noun: "redirect URI",
    required: true,
};

/// Post-logout redirect URIs (RP-Initiated Logout 1.0 §3.1) follow the redirect URIs' rules.
const SIGN_OUT: UriList = UriList {
    field: "post_logout_redirect_uris",
    code: "post_logout_redirect_uri",
    noun: "post-logout redirect URI",
    required: false,
};

fn check_uri_list(uris: &[String], domain: Option<&str>, kind: &UriList, out: &mut Findings) {
    let step = Step::RedirectUris;
    let noun = kind.noun;
    if kind.required && uris.is_empty() {
        let message = "Add at least one redirect URI, the address Onyx sends users back to after they sign in.";
        out.add(
            &format!("{}_missing", kind.field),
            step,
            kind.field,
            message.into(),
        );
    }
    for (i, raw) in uris.iter().enumerate() {
        let field = format!("{}[{i}]", kind.field);
        let uri = shown(raw);
        if let Some(first) = earlier_copy(uris, i) {
            let message = format!(
                "The {noun} {uri} is already listed at {}[{first}]; remove this copy.",
                kind.field
            );
            out.add(&kind.code("duplicate"), step, field, message);
            continue;
        }
        // Onyx compares redirect URIs as registered strings (RFC 9700 §4.1.3): a wildcard would
        // never match, and pretending it does is how open redirectors happen.
        let wildcard = raw.contains('*');
        if wildcard {
            let message =
                format!("The {noun} {uri} contains a wildcard; register each exact URI instead.");
            out.add(&kind.code("wildcard"), step, field.clone(), message);
        }
        let url = match parse_absolute(raw) {
            Ok(url) => url,
            Err(reason) => {
                if !wildcard {
                    let message = format!("The {noun} {uri} is not usable: {reason}.");
                    out.add(&kind.code("invalid"), step, field, message);
                }
                continue;
            }
        };
        if url.fragment().is_some() {
            let message = format!(
                "The {noun} {uri} has a fragment (#); remove it, as a {noun} must not have one (RFC 6749 §3.1.2)."
            );
            out.add(&kind.code("fragment"), step, field.clone(), message);
        }
        if has_userinfo(raw, &url) {
            let message =
                format!("The {noun} {uri} contains a user name or password; remove them.");
            out.add(&kind.code("credentials"), step, field.clone(), message);
        }
        match url.scheme() {
            "https" => {
                if let Some(domain) = domain
                    && !host_within(&url, domain)
                {
                    let message = format!(
                        "The {noun} {uri} is not on {domain} or one of its subdomains; use a host under your verified domain."
                    );
                    out.add(&kind.code("outside_domain"), step, field, message);
                }
            }
            // RFC 8252 §7.3: native apps listen on the loopback interface, over plain http.
            "http" if is_loopback_literal(raw, &url) => {}
            "http" if url.host().is_some_and(|h| is_localhost(&h)) => {
                let message = format!(
                    "The {noun} {uri} uses localhost; use http://127.0.0.1 instead, which no DNS or hosts file can point elsewhere (RFC 8252 §8.3)."
                );
                out.add(&kind.code("localhost"), step, field, message);
            }
            "http" => {
                let message = format!(
                    "The {noun} {uri} uses http; use https, or http only on 127.0.0.1 or [::1] for a native app (RFC 8252 §7.3)."
                );
                out.add(&kind.code("not_https"), step, field, message);
            }
            scheme if NON_PRIVATE_SCHEMES.contains(&scheme) => {
                let message = format!(
                    "The {noun} {uri} uses the {scheme}: scheme, which cannot receive a sign-in response; use https."
                );
                out.add(&kind.code("not_https"), step, field, message);
            }
            // Anything else is a native app's private-use scheme (RFC 8252 §7.1).
            scheme if !is_reverse_domain_scheme(scheme, domain) => {
                let example = domain.map_or_else(|| "com.example.app".to_string(), reverse_labels);
                let message = format!(
                    "The {noun} {uri} uses the scheme {}, which is not your domain reversed; use a scheme like {example}:/callback (RFC 8252 §7.1).",
                    shown(scheme)
                );
                out.add(
                    &kind.code("scheme_not_reverse_domain"),
                    step,
                    field,
                    message,
                );
            }
            _ => {}
        }
    }
}

fn check_origins(origins: &[String], domain: Option<&str>, out: &mut Findings) {
    let step = Step::RedirectUris;
    for (i, raw) in origins.iter().enumerate() {
        let field = format!("origins[{i}]");
        let origin = shown(raw);
        if let Some(first) = earlier_copy(origins, i) {
            let message = format!(
                "The origin {origin} is already listed at origins[{first}]; remove this copy."
            );
            out.add("origin_duplicate", step, field, message);
            continue;
        }
        if raw.contains('*') {
            let message =
                format!("The origin {origin} contains a wildcard; list each exact origin instead.");
            out.add("origin_not_exact", step, field, message);
            continue;
        }
        let url = match parse_absolute(raw) {
            Ok(url) => url,
            Err(reason) => {
                let message = format!("The origin {origin} is not usable: {reason}.");
                out.add("origin_invalid", step, field, message);
                continue;
            }
        };
        let not_https = format!(
            "The origin {origin} does not use https; use https, or http only on 127.0.0.1 or [::1] while developing."
        );
        if !matches!(url.scheme(), "https" | "http") {
            out.add("origin_not_https", step, field, not_https);
            continue;
        }
        // Browsers send the Origin header in exactly this form; anything else never matches.
        let exact = url.origin().ascii_serialization();
        if *raw != exact {
            let message = format!(
                "The origin {origin} is not an exact origin; write it as {exact:?}, with no path or trailing slash."
            );
            out.add("origin_not_exact", step, field.clone(), message);
        }
        if url.scheme() == "http" {
            if !is_loopback_ip(&url) {
                out.add("origin_not_https", step, field, not_https);
            }
        } else if let Some(domain) = domain
            && !host_within(&url, domain)
        {
            let message = format!(
                "The origin {origin} is not on {domain} or one of its subdomains; use a host under your verified domain."
            );
            out.add("origin_outside_domain", step, field, message);
        }
    }
}

fn check_name(name: &str, approved: &[String], out: &mut Findings) {
    let step = Step::AppIdentity;
    if name.trim().is_empty() {
        out.add(
            "name_missing",
            step,
            "name",
            "Give the app a name; users see it on the consent screen.".into(),
        );
        return;
    }
    let shown_name = shown(name);
    let length = name.chars().count();
    if length > MAX_NAME_CHARS {
        let message = format!(
            "The app name {shown_name} is {length} characters long; shorten it to at most {MAX_NAME_CHARS}."
        );
        out.add("name_too_long", step, "name", message);
    }
    if name.chars().any(is_invisible) {
        let message = format!(
            "The app name {shown_name} contains control or invisible characters; remove them."
        );
        out.add("name_invalid", step, "name", message);
    }
    let folded = fold(name);
    if folded.contains("onyx") {
        let message = format!(
            "The app name {shown_name} reads as Onyx; choose a name that does not suggest the app is made by Onyx."
        );
        out.add("name_impersonates_onyx", step, "name", message);
    }
    if let Some(other) = approved
        .iter()
        .find(|a| !folded.is_empty() && fold(a) == folded)
    {
        let message = format!(
            "The app name {shown_name} reads the same as the approved app {}; choose a distinct name.",
            shown(other)
        );
        out.add("name_impersonates_app", step, "name", message);
    }
}

/// A free-text field shown to users: required, and short enough to read on the consent screen.
fn check_text(text: &str, field: &str, what: &str, step: Step, out: &mut Findings) {
    if text.trim().is_empty() {
        out.add(
            &format!("{field}_missing"),
            step,
            field,
            format!("Add the app's {what}; Onyx shows it to users."),
        );
        return;
    }
    let length = text.chars().count();
    if length > MAX_TEXT_CHARS {
        let message = format!(
            "The {what} {} is {length} characters long; shorten it to at most {MAX_TEXT_CHARS}.",
            shown(text)
        );
        out.add(&format!("{field}_too_long"), step, field, message);
    }
}

fn check_use_case(use_case: &str, out: &mut Findings) {
    let cases = &catalogue().use_cases;
    if cases.contains_key(use_case) {
        return;
    }
    let keys = cases
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let message = if use_case.is_empty() {
        format!("Choose the app's use case, one of: {keys}.")
    } else {
        format!(
            "The use case {} is not one Onyx knows; choose one of: {keys}.",
            shown(use_case)
        )
    };
    out.add("use_case_unknown", Step::UseCase, "use_case", message);
}

fn check_scopes(draft: &AppDraft, out: &mut Findings) {
    let step = Step::Scopes;
    let catalogue = catalogue();
    let use_case = catalogue.use_cases.get(&draft.use_case);
    if draft.scopes.is_empty() {
        out.add(
            "scopes_missing",
            step,
            "scopes",
            "Request at least one scope, such as openid to sign users in.".into(),
        );
    }
    for (i, scope) in draft.scopes.iter().enumerate() {
        let field = format!("scopes[{i}]");
        if let Some(first) = earlier_copy(&draft.scopes, i) {
            let message = format!(
                "The scope {} is already requested at scopes[{first}]; remove this copy.",
                shown(scope)
            );
            out.add("scope_duplicate", step, field, message);
            continue;
        }
        let Some(info) = catalogue.get(scope) else {
            let message = format!(
                "Onyx has no scope {}; remove it or choose a scope from the catalogue.",
                shown(scope)
            );
            out.add("scope_unknown", step, field, message);
            continue;
        };
        // An excessive scope has to go, so asking for its justification or capability is noise.
        if let Some(case) = use_case
            && !case.scopes.contains(scope)
        {
            let message = format!(
                "The app is declared as {}, which does not need {scope}; remove it.",
                with_article(&case.label)
            );
            out.add("scope_excessive", step, field, message);
            continue;
        }
        if info.review
            && draft
                .justifications
                .get(scope)
                .is_none_or(|j| j.trim().is_empty())
        {
            let message = format!(
                "Explain why the app needs {scope}; Onyx reviews every app that requests it."
            );
            out.add(
                "scope_justification_missing",
                step,
                format!("justifications.{scope}"),
                message,
            );
        }
        if let Some(capability) = &info.capability
            && !draft.capabilities.contains(capability)
        {
            let message = format!(
                "The scope {scope} needs the gated capability {capability}; request that capability or remove the scope."
            );
            out.add("capability_not_requested", step, field, message);
        }
    }
    for key in draft.justifications.keys() {
        if !draft.scopes.contains(key) {
            let message = format!(
                "There is a justification for {}, which the app does not request; remove it or request the scope.",
                shown(key)
            );
            out.add(
                "justification_unused",
                step,
                format!("justifications.{key}"),
                message,
            );
        }
    }
    for (i, scope) in draft.optional_scopes.iter().enumerate() {
        let field = format!("optional_scopes[{i}]");
        if scope == "openid" {
            let message = "The scope openid signs the user in, so it cannot be optional; remove it from the optional scopes.";
            out.add("optional_scope_required", step, field, message.into());
        } else if !draft.scopes.contains(scope) {
            let message = format!(
                "The optional scope {} is not among the requested scopes; request it or remove it from the optional scopes.",
                shown(scope)
            );
            out.add("optional_scope_not_requested", step, field, message);
        }
    }
}

fn check_capabilities(capabilities: &[String], out: &mut Findings) {
    for (i, capability) in capabilities.iter().enumerate() {
        let field = format!("capabilities[{i}]");
        let step = if CONNECTIVITY_CAPABILITIES.contains(&capability.as_str()) {
            Step::ConnectivityCatalogue
        } else {
            Step::Scopes
        };
        if let Some(first) = earlier_copy(capabilities, i) {
            let message = format!(
                "The capability {} is already requested at capabilities[{first}]; remove this copy.",
                shown(capability)
            );
            out.add("capability_duplicate", step, field, message);
        } else if !CAPABILITIES.contains(&capability.as_str()) {
            let message = format!(
                "Onyx has no gated capability {}; choose one of: {}.",
                shown(capability),
                CAPABILITIES.join(", ")
            );
            out.add("capability_unknown", step, field, message);
        }
    }
}

fn check_webhooks(webhooks: &[String], out: &mut Findings) {
    let step = Step::Webhooks;
    for (i, raw) in webhooks.iter().enumerate() {
        let field = format!("webhooks[{i}]");
        let webhook = shown(raw);
        if let Some(first) = earlier_copy(webhooks, i) {
            let message = format!(
                "The webhook {webhook} is already listed at webhooks[{first}]; remove this copy."
            );
            out.add("webhook_duplicate", step, field, message);
            continue;
        }
        if raw.contains('*') {
            let message = format!(
                "The webhook {webhook} contains a wildcard; list each exact endpoint instead."
            );
            out.add("webhook_invalid", step, field, message);
            continue;
        }
        let url = match parse_absolute(raw) {
            Ok(url) if url.scheme() != "https" => {
                let message = format!(
                    "The webhook {webhook} does not use https; Onyx delivers events only over https."
                );
                out.add("webhook_not_https", step, field, message);
                continue;
            }
            Ok(url) => url,
            Err(reason) => {
                let message = format!("The webhook {webhook} is not usable: {reason}.");
                out.add("webhook_invalid", step, field, message);
                continue;
            }
        };
        let problem = if url.fragment().is_some() {
            Some("remove the fragment (#)")
        } else if has_userinfo(raw, &url) {
            Some("remove the user name and password")
        } else if !is_public_host(&url) {
            // Onyx itself connects to this address: a private one would aim it at our own network.
            Some("it must be on a public host, not localhost or a private address")
        } else {
            None
        };
        if let Some(reason) = problem {
            let message = format!("The webhook {webhook} is not usable: {reason}.");
            out.add("webhook_invalid", step, field, message);
        }
    }
}

/// The back-channel logout URI (Back-Channel Logout 1.0 §2.2): like a webhook, an absolute
/// https URL on a public host (Onyx connects to it), with no fragment and no credentials, under
/// the app's domain.
fn check_backchannel(uri: Option<&str>, domain: Option<&str>, out: &mut Findings) {
    let (step, field) = (Step::RedirectUris, "backchannel_logout_uri");
    let Some(raw) = uri else {
        return;
    };
    let shown_uri = shown(raw);
    let url = match parse_absolute(raw) {
        Ok(url) => url,
        Err(reason) => {
            let message =
                format!("The back-channel logout URI {shown_uri} is not usable: {reason}.");
            out.add("backchannel_logout_uri_invalid", step, field, message);
            return;
        }
    };
    let problem = if url.scheme() != "https" {
        Some(("backchannel_logout_uri_not_https", "use https"))
    } else if url.fragment().is_some() {
        Some(("backchannel_logout_uri_invalid", "remove the fragment (#)"))
    } else if has_userinfo(raw, &url) {
        Some((
            "backchannel_logout_uri_invalid",
            "remove the user name and password",
        ))
    } else if !is_public_host(&url) {
        Some((
            "backchannel_logout_uri_invalid",
            "it must be on a public host, not localhost or a private address",
        ))
    } else if domain.is_some_and(|d| !host_within(&url, d)) {
        Some((
            "backchannel_logout_uri_outside_domain",
            "use a host under your verified domain",
        ))
    } else {
        None
    };
    if let Some((code, reason)) = problem {
        let message = format!("The back-channel logout URI {shown_uri} is not usable: {reason}.");
        out.add(code, step, field, message);
    }
}

fn check_support(support_url: Option<&str>, out: &mut Findings) {
    let step = Step::Support;
    let Some(raw) = support_url.filter(|s| !s.trim().is_empty()) else {
        out.add(
            "support_missing",
            step,
            "support_url",
            "Add a support URL where the app's users can get help.".into(),
        );
        return;
    };
    if !parse_absolute(raw).is_ok_and(|url| url.scheme() == "https") {
        let message = format!(
            "The support URL {} is not an https URL; give an https page where users can get help.",
            shown(raw)
        );
        out.add("support_not_https", step, "support_url", message);
    }
}

/// Index of an earlier entry equal to `list[i]`: lists compare as written, like redirect URIs.
fn earlier_copy(list: &[String], i: usize) -> Option<usize> {
    let item = list.get(i)?;
    list.iter().take(i).position(|other| other == item)
}

/// How a finding shows what was typed, and how names are compared at a glance.
#[path = "prechecks_text.rs"]
mod text;
use text::{fold, is_invisible, shown, with_article};

/// The app's keys and security profile (`jwks`, `jwks_uri`, `profile`).
#[path = "prechecks_keys.rs"]
mod keys;
use keys::{check_keys, check_profile};

#[cfg(test)]
#[path = "prechecks_tests.rs"]
mod tests;
