//! The draft form shared by "New app" and "Edit draft": every field of `partner::AppDraft`, the
//! catalogue's values to choose from (use cases, scopes with their words, capabilities), what
//! was typed, and the errors and pre-check findings at the field they concern.

use crate::store::apps::Profile;
use std::collections::BTreeMap;

use crate::console::form::{FieldErrors, Form};
use crate::partner::apps::DraftPatch;
use crate::partner::{AppDraft, CAPABILITIES, Finding, Step, StepState};
use crate::scopes::{Subject, catalogue};
use crate::store::reviews::Review;

/// A scope as the form offers it.
pub struct ScopeChoice {
    pub name: String,
    pub label: String,
    pub description: String,
    pub category: String,
    /// Onyx reviews every app that asks for it: the form asks why.
    pub review: bool,
    /// The app's own access (client credentials), never on the consent screen.
    pub app_scope: bool,
    /// The gated capability it needs, in words.
    pub capability: Option<String>,
    /// Not in the catalogue (a draft written through the API): kept so saving drops nothing.
    pub unknown: bool,
    pub ticked: bool,
    pub optional: bool,
    pub justification: String,
    /// Show the justification box (the scope needs review, or the draft has one for it).
    pub asks_justification: bool,
    /// Show the "optional" box.
    pub offers_optional: bool,
}

impl ScopeChoice {
    /// Its "request" checkbox.
    pub fn id(&self) -> String {
        format!("scope-{}", self.name)
    }

    pub fn optional_id(&self) -> String {
        format!("optional-{}", self.name)
    }

    pub fn justification_id(&self) -> String {
        format!("justification-{}", self.name)
    }

    pub fn justification_name(&self) -> String {
        format!("justification.{}", self.name)
    }
}

/// A capability as the form offers it.
pub struct CapabilityChoice {
    pub name: String,
    pub label: String,
    pub ticked: bool,
}

/// The words of a gated capability.
pub fn capability_label(name: &str) -> String {
    match name {
        "expanded_messaging" => "Expanded messaging permissions".into(),
        "community_execution" => "Community execution".into(),
        "support_agent_execution" => "Support-agent execution".into(),
        "partner_connectivity_catalogue" => "Partner connectivity catalogue access".into(),
        "market_connectivity_launches" => "Market-specific connectivity launches".into(),
        "advanced_event_subscriptions" => "Advanced event subscriptions".into(),
        other => format!("{} (not a capability Onyx offers)", other.replace('_', " ")),
    }
}

/// A review step's state in words.
pub fn step_state_words(state: StepState) -> &'static str {
    match state {
        StepState::Pending => "Waiting for review",
        StepState::Approved => "Approved",
        StepState::ChangesRequested => "Changes requested",
        StepState::Rejected => "Rejected",
        StepState::NotApplicable => "Not applicable",
    }
}

/// The badge class of a step's state (the words say the same).
pub fn step_state_class(state: StepState) -> &'static str {
    match state {
        StepState::Approved => "good",
        StepState::Pending => "wait",
        StepState::ChangesRequested | StepState::Rejected => "bad",
        StepState::NotApplicable => "quiet",
    }
}

/// A group of fields and the review step it belongs to, with the step's state now.
pub struct GroupStep {
    pub title: &'static str,
    pub state: String,
}

/// The form as shown: the values (as typed, or as the draft holds them) and the choices.
pub struct DraftForm {
    pub name: String,
    pub description: String,
    pub use_case: String,
    pub purpose: String,
    pub consent_copy: String,
    pub domain: String,
    pub redirect_uris: String,
    pub origins: String,
    pub post_logout_redirect_uris: String,
    pub webhooks: String,
    pub backchannel_logout_uri: String,
    pub backchannel_logout_session_required: bool,
    pub require_pushed_authorization_requests: bool,
    /// Ticked: the FAPI 2.0 Security Profile.
    pub fapi2: bool,
    pub jwks: String,
    pub jwks_uri: String,
    pub support_url: String,
    pub use_cases: Vec<(String, String)>,
    pub scopes: Vec<ScopeChoice>,
    pub capabilities: Vec<CapabilityChoice>,
    /// Each group's review step and its state (`identity`, `use_case`, `scopes`, `domain`,
    /// `redirects`, `webhooks`, `support`).
    pub steps: BTreeMap<&'static str, GroupStep>,
}

impl CapabilityChoice {
    pub fn id(&self) -> String {
        format!("capability-{}", self.name)
    }
}

impl DraftForm {
    /// The line under a group's heading: the step it is reviewed in, and where that stands.
    pub fn step_line(&self, group: &str) -> String {
        match self.steps.get(group) {
            Some(s) => format!("Reviewed in the step “{}”: {}.", s.title, s.state),
            None => String::new(),
        }
    }

    /// The form holding `draft`.
    pub fn of(draft: &AppDraft, review: Option<&Review>) -> Self {
        let text = |list: &[String]| list.join("\n");
        Self::build(
            Values {
                name: draft.name.clone(),
                description: draft.description.clone(),
                use_case: draft.use_case.clone(),
                purpose: draft.purpose.clone(),
                consent_copy: draft.consent_copy.clone(),
                domain: draft.domain.clone().unwrap_or_default(),
                redirect_uris: text(&draft.redirect_uris),
                origins: text(&draft.origins),
                post_logout_redirect_uris: text(&draft.post_logout_redirect_uris),
                webhooks: text(&draft.webhooks),
                backchannel_logout_uri: draft.backchannel_logout_uri.clone().unwrap_or_default(),
                backchannel_logout_session_required: draft
                    .backchannel_logout_session_required
                    .unwrap_or(true),
                require_pushed_authorization_requests: draft.require_pushed_authorization_requests,
                fapi2: draft.profile == Some(Profile::Fapi2),
                jwks: draft.jwks.as_ref().map(jwks_text).unwrap_or_default(),
                jwks_uri: draft.jwks_uri.clone().unwrap_or_default(),
                support_url: draft.support_url.clone().unwrap_or_default(),
                scopes: draft.scopes.clone(),
                optional_scopes: draft.optional_scopes.clone(),
                justifications: draft.justifications.clone(),
                capabilities: draft.capabilities.clone(),
            },
            review,
        )
    }

    /// The form with what was typed in `form`.
    pub fn typed(form: &Form, review: Option<&Review>) -> Self {
        let owned = |v: Vec<&str>| v.into_iter().map(String::from).collect::<Vec<_>>();
        Self::build(
            Values {
                name: form.raw("name").into(),
                description: form.raw("description").into(),
                use_case: form.raw("use_case").into(),
                purpose: form.raw("purpose").into(),
                consent_copy: form.raw("consent_copy").into(),
                domain: form.raw("domain").into(),
                redirect_uris: form.raw("redirect_uris").into(),
                origins: form.raw("origins").into(),
                post_logout_redirect_uris: form.raw("post_logout_redirect_uris").into(),
                webhooks: form.raw("webhooks").into(),
                backchannel_logout_uri: form.raw("backchannel_logout_uri").into(),
                backchannel_logout_session_required: form
                    .ticked("backchannel_logout_session_required"),
                require_pushed_authorization_requests: form
                    .ticked("require_pushed_authorization_requests"),
                fapi2: form.ticked("profile_fapi2"),
                jwks: form.raw("jwks").into(),
                jwks_uri: form.raw("jwks_uri").into(),
                support_url: form.raw("support_url").into(),
                scopes: owned(form.all("scopes")),
                optional_scopes: owned(form.all("optional_scopes")),
                justifications: justifications_typed(form),
                capabilities: owned(form.all("capabilities")),
            },
            review,
        )
    }

    fn build(v: Values, review: Option<&Review>) -> Self {
        let cat = catalogue();
        let mut scopes: Vec<ScopeChoice> = cat
            .all()
            .iter()
            .map(|s| ScopeChoice {
                name: s.name.clone(),
                label: s.label.clone(),
                description: s.description.clone(),
                category: cat.category_label(&s.category).to_string(),
                review: s.review,
                app_scope: s.subject == Subject::App,
                capability: s.capability.as_deref().map(capability_label),
                unknown: false,
                ticked: false,
                optional: false,
                justification: String::new(),
                asks_justification: s.review,
                offers_optional: s.subject == Subject::User,
            })
            .collect();
        // Names the catalogue does not know, from a draft written through the API.
        let extra = v
            .scopes
            .iter()
            .chain(&v.optional_scopes)
            .chain(v.justifications.keys());
        for name in extra {
            if !scopes.iter().any(|s| &s.name == name) {
                scopes.push(ScopeChoice {
                    name: name.clone(),
                    label: format!("Unknown scope {name}"),
                    description: "Onyx has no such scope; untick it.".into(),
                    category: "Not in the catalogue".into(),
                    review: false,
                    app_scope: false,
                    capability: None,
                    unknown: true,
                    ticked: false,
                    optional: false,
                    justification: String::new(),
                    asks_justification: false,
                    offers_optional: true,
                });
            }
        }
        for s in &mut scopes {
            s.ticked = v.scopes.contains(&s.name);
            s.optional = v.optional_scopes.contains(&s.name);
            if let Some(j) = v.justifications.get(&s.name) {
                s.justification = j.clone();
                s.asks_justification = true;
            }
            s.offers_optional |= s.optional;
        }
        let mut capabilities: Vec<CapabilityChoice> = CAPABILITIES
            .iter()
            .map(|c| CapabilityChoice {
                name: (*c).to_string(),
                label: capability_label(c),
                ticked: false,
            })
            .collect();
        for c in &v.capabilities {
            if !capabilities.iter().any(|x| &x.name == c) {
                capabilities.push(CapabilityChoice {
                    name: c.clone(),
                    label: capability_label(c),
                    ticked: false,
                });
            }
        }
        for c in &mut capabilities {
            c.ticked = v.capabilities.contains(&c.name);
        }
        let mut use_cases: Vec<(String, String)> = cat
            .use_cases
            .iter()
            .map(|(k, u)| (k.clone(), u.label.clone()))
            .collect();
        if !v.use_case.trim().is_empty() && !cat.use_cases.contains_key(v.use_case.trim()) {
            use_cases.push((
                v.use_case.clone(),
                format!("{} (not a use case Onyx knows)", v.use_case),
            ));
        }
        let state = |step: Step| match review {
            None => "not submitted for review yet".to_string(),
            Some(r) => step_state_words(r.step_state(step)).to_lowercase(),
        };
        let steps = [
            ("identity", Step::AppIdentity),
            ("use_case", Step::UseCase),
            ("scopes", Step::Scopes),
            ("domain", Step::Domain),
            ("redirects", Step::RedirectUris),
            ("webhooks", Step::Webhooks),
            ("support", Step::Support),
        ]
        .into_iter()
        .map(|(group, step)| {
            (
                group,
                GroupStep {
                    title: step.title(),
                    state: state(step),
                },
            )
        })
        .collect();
        Self {
            name: v.name,
            description: v.description,
            use_case: v.use_case,
            purpose: v.purpose,
            consent_copy: v.consent_copy,
            domain: v.domain,
            redirect_uris: v.redirect_uris,
            origins: v.origins,
            post_logout_redirect_uris: v.post_logout_redirect_uris,
            webhooks: v.webhooks,
            backchannel_logout_uri: v.backchannel_logout_uri,
            backchannel_logout_session_required: v.backchannel_logout_session_required,
            require_pushed_authorization_requests: v.require_pushed_authorization_requests,
            fapi2: v.fapi2,
            jwks: v.jwks,
            jwks_uri: v.jwks_uri,
            support_url: v.support_url,
            use_cases,
            scopes,
            capabilities,
            steps,
        }
    }

    /// The scope choices, grouped by category in the catalogue's order.
    pub fn scope_groups(&self) -> Vec<(&str, Vec<&ScopeChoice>)> {
        let mut out: Vec<(&str, Vec<&ScopeChoice>)> = Vec::new();
        for s in &self.scopes {
            match out.iter_mut().find(|(c, _)| *c == s.category) {
                Some((_, list)) => list.push(s),
                None => out.push((&s.category, vec![s])),
            }
        }
        out
    }
}

struct Values {
    name: String,
    description: String,
    use_case: String,
    purpose: String,
    consent_copy: String,
    domain: String,
    redirect_uris: String,
    origins: String,
    post_logout_redirect_uris: String,
    webhooks: String,
    backchannel_logout_uri: String,
    backchannel_logout_session_required: bool,
    require_pushed_authorization_requests: bool,
    fapi2: bool,
    jwks: String,
    jwks_uri: String,
    support_url: String,
    scopes: Vec<String>,
    optional_scopes: Vec<String>,
    justifications: BTreeMap<String, String>,
    capabilities: Vec<String>,
}

/// The justification boxes that were filled in, by scope.
fn justifications_typed(form: &Form) -> BTreeMap<String, String> {
    form.keyed("justification.")
}

/// A draft's JWK Set as the form shows it: pretty JSON (a text that was not JSON, as typed).
fn jwks_text(jwks: &serde_json::Value) -> String {
    match jwks {
        serde_json::Value::String(typed) => typed.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

/// The keys box: blank is none; text that is not JSON is kept as typed (a string), for the
/// pre-checks to say so.
fn jwks_typed(form: &Form) -> Option<serde_json::Value> {
    let raw = form.text("jwks")?;
    Some(serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.into())))
}

/// `None` for a blank optional text field.
fn optional(form: &Form, name: &str) -> Option<String> {
    form.text(name).map(String::from)
}

/// `ticked` in the order of `before` for what it already held, then the new ones in the form's
/// order: saving a form does not reorder a list (a reordered list would reopen its step).
fn keep_order(before: &[String], ticked: Vec<&str>) -> Vec<String> {
    let mut out: Vec<String> = before
        .iter()
        .filter(|b| ticked.contains(&b.as_str()))
        .cloned()
        .collect();
    for t in ticked {
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    out
}

/// The draft the submitted form describes, starting from `before` (the draft shown; for a new
/// app, an empty one) for the order of its lists.
pub fn draft_of(form: &Form, before: &AppDraft) -> AppDraft {
    let session_required = form.ticked("backchannel_logout_session_required");
    AppDraft {
        name: form.raw("name").trim().to_string(),
        description: form.raw("description").trim().to_string(),
        use_case: form.raw("use_case").trim().to_string(),
        purpose: form.raw("purpose").trim().to_string(),
        consent_copy: form.raw("consent_copy").trim().to_string(),
        domain: optional(form, "domain"),
        redirect_uris: form.lines("redirect_uris"),
        origins: form.lines("origins"),
        post_logout_redirect_uris: form.lines("post_logout_redirect_uris"),
        backchannel_logout_uri: optional(form, "backchannel_logout_uri"),
        // Unset means "required" (Onyx always sends `sid`): only a change is written.
        backchannel_logout_session_required: match before.backchannel_logout_session_required {
            None if session_required => None,
            _ => Some(session_required),
        },
        require_pushed_authorization_requests: form.ticked("require_pushed_authorization_requests"),
        profile: form.ticked("profile_fapi2").then_some(Profile::Fapi2),
        jwks: jwks_typed(form),
        jwks_uri: optional(form, "jwks_uri"),
        webhooks: form.lines("webhooks"),
        support_url: optional(form, "support_url"),
        scopes: keep_order(&before.scopes, form.all("scopes")),
        optional_scopes: keep_order(&before.optional_scopes, form.all("optional_scopes")),
        justifications: justifications_typed(form),
        capabilities: keep_order(&before.capabilities, form.all("capabilities")),
    }
}

/// The change from `before` to `after`: only the fields that differ (so the history and the
/// audit log name what the partner changed).
pub fn patch_between(before: &AppDraft, after: AppDraft) -> DraftPatch {
    fn diff<T: PartialEq>(b: &T, a: T) -> Option<T> {
        (b != &a).then_some(a)
    }
    DraftPatch {
        name: diff(&before.name, after.name),
        description: diff(&before.description, after.description),
        use_case: diff(&before.use_case, after.use_case),
        purpose: diff(&before.purpose, after.purpose),
        consent_copy: diff(&before.consent_copy, after.consent_copy),
        domain: diff(&before.domain, after.domain),
        redirect_uris: diff(&before.redirect_uris, after.redirect_uris),
        origins: diff(&before.origins, after.origins),
        post_logout_redirect_uris: diff(
            &before.post_logout_redirect_uris,
            after.post_logout_redirect_uris,
        ),
        backchannel_logout_uri: diff(&before.backchannel_logout_uri, after.backchannel_logout_uri),
        backchannel_logout_session_required: diff(
            &before.backchannel_logout_session_required,
            after.backchannel_logout_session_required,
        )
        .flatten(),
        require_pushed_authorization_requests: diff(
            &before.require_pushed_authorization_requests,
            after.require_pushed_authorization_requests,
        ),
        profile: diff(&before.profile, after.profile),
        jwks: diff(&before.jwks, after.jwks),
        jwks_uri: diff(&before.jwks_uri, after.jwks_uri),
        webhooks: diff(&before.webhooks, after.webhooks),
        support_url: diff(&before.support_url, after.support_url),
        scopes: diff(&before.scopes, after.scopes),
        optional_scopes: diff(&before.optional_scopes, after.optional_scopes),
        justifications: diff(&before.justifications, after.justifications),
        capabilities: diff(&before.capabilities, after.capabilities),
    }
}

/// The form field (its `id`) a draft field names: a list entry is its textarea, a scope or a
/// capability its checkbox, a justification its box.
pub fn field_id(field: &str, draft: &AppDraft) -> String {
    if let Some(scope) = field.strip_prefix("justifications.") {
        return format!("justification-{scope}");
    }
    let (name, index) = match field.split_once('[') {
        Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
        None => (field, None),
    };
    let entry = |list: &[String], prefix: &str| match index.and_then(|i| list.get(i)) {
        Some(v) => format!("{prefix}-{v}"),
        None => name.to_string(),
    };
    match name {
        "scopes" => entry(&draft.scopes, "scope"),
        "optional_scopes" => entry(&draft.optional_scopes, "optional"),
        "capabilities" => entry(&draft.capabilities, "capability"),
        "justifications" => "scopes".into(),
        "profile" => "profile_fapi2".into(),
        _ => name.to_string(),
    }
}

/// Where an error about `field` is shown: under the form field it concerns (a list's textarea
/// says which line).
pub fn add_error(errors: &mut FieldErrors, field: &str, draft: &AppDraft, message: String) {
    let id = field_id(field, draft);
    match field.split_once('[') {
        Some((name, _))
            if id == name && !matches!(name, "scopes" | "optional_scopes" | "capabilities") =>
        {
            errors.add(field, message)
        }
        _ => errors.add(&id, message),
    }
}

/// The pre-checks' findings, each at its form field, in words.
pub fn finding_errors(findings: &[Finding], draft: &AppDraft) -> FieldErrors {
    let mut errors = FieldErrors::new();
    for f in findings {
        add_error(
            &mut errors,
            &f.field,
            draft,
            crate::console::sentence(&f.message),
        );
    }
    errors
}
