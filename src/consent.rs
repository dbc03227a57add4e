//! The permission model: for one user and one app, one permission per scope, with a state and,
//! for every state but `granted`, a reason a machine can act on and a sentence a person can read.
//!
//! What is stored is the last decision (`requested`, `granted`, `denied`, `revoked`,
//! `unavailable`, or `expired` once the expiry sweep has recorded it). What an app may use *now*
//! is worked out from that decision, its expiry and the current conditions (the app's approval,
//! trust and capabilities, the account's verification and region): a granted permission past
//! its expiry is `expired`, and one whose conditions no longer hold is `limited`. Everything
//! that answers "may the app use this scope" (consent screen, token, refresh, introspection,
//! userinfo, the partner API, the Connected apps page) goes through [`effective`].

use serde::Serialize;

use crate::scopes::{Eligibility, ScopeInfo, ScopeName, TrustLevel, catalogue};
use crate::wire::wire_enum;

wire_enum! {
    /// A permission's state. Its string form (stored, and sent by the APIs) is derived once:
    /// `as_str`, `parse`, `Display`, the serde form and [`State::VARIANTS`] all come from it.
    pub enum State as "lowercase" {
        Requested,
        Granted,
        /// Worked out from the conditions, never stored.
        Limited,
        Revoked,
        Expired,
        Denied,
        Unavailable,
    }
}

impl State {
    /// Words for the Connected apps page.
    pub fn label(self) -> &'static str {
        match self {
            Self::Requested => "Asked, not answered",
            Self::Granted => "Allowed",
            Self::Limited => "Limited",
            Self::Revoked => "Removed",
            Self::Expired => "Expired",
            Self::Denied => "Not allowed",
            Self::Unavailable => "Unavailable",
        }
    }
}

wire_enum! {
    /// Why a permission is not (or no longer) granted, for machines. Its string form is derived
    /// once, like [`State`]'s.
    pub enum Reason as "snake_case" {
        /// The consent screen was shown; no answer yet.
        AwaitingDecision,
        /// The user approved fewer scopes (unticked this one) or declined the request.
        UserDeclined,
        /// Onyx has not approved the app for this scope (not in its approved list, or its trust
        /// level is too low).
        AppNotApproved,
        /// The account does not meet the scope's eligibility rule.
        AccountNotEligible,
        /// The scope is not offered in the account's region.
        RegionNotSupported,
        /// The scope needs a gated capability Onyx has not enabled for the app.
        ScopeGated,
        /// The app asked for the scope and Onyx has not finished reviewing it.
        ReviewRequired,
        /// Onyx limited the app's access and withdrew this scope (see the app's access reason).
        AppAccessLimited,
        /// The permission reached the end of the lifetime its policy allows.
        ExpiredByPolicy,
        RevokedByUser,
        RevokedByPartner,
        RevokedByOnyx,
    }
}

impl Reason {
    /// One sentence a person can read (the same for the user and the partner).
    pub fn sentence(self) -> &'static str {
        match self {
            Self::AwaitingDecision => {
                "The app asked for this; the account holder has not answered yet."
            }
            Self::UserDeclined => "The account holder chose not to allow this.",
            Self::AppNotApproved => "Onyx has not approved this app for this access.",
            Self::AccountNotEligible => {
                "This access needs an Onyx account with a verified email address."
            }
            Self::RegionNotSupported => "This access is not offered in the account's region.",
            Self::ScopeGated => {
                "This access depends on a capability Onyx has not enabled for this app."
            }
            Self::ReviewRequired => {
                "Onyx has not finished reviewing this app's request for this access."
            }
            Self::AppAccessLimited => {
                "Onyx has limited this app's access and withdrawn this permission for now."
            }
            Self::ExpiredByPolicy => {
                "This permission reached the end of the time it may last; the app must ask again."
            }
            Self::RevokedByUser => "The account holder removed this access.",
            Self::RevokedByPartner => "The app gave up this access.",
            Self::RevokedByOnyx => "Onyx removed this access.",
        }
    }
}

/// What decides whether an app may hold a scope at all.
#[derive(Debug, Clone)]
pub struct AppFacts<'a> {
    /// Scopes Onyx approved for the app.
    pub approved: &'a [ScopeName],
    /// Scopes the app asked for that are still under review.
    pub pending: &'a [String],
    pub trust: TrustLevel,
    /// Gated capabilities enabled for the app.
    pub capabilities: &'a [String],
    /// Scopes withdrawn while the app's access is limited.
    pub withdrawn: &'a [String],
    /// The app's own consent lifetime, seconds.
    pub consent_ttl: Option<i64>,
}

/// What decides whether an account may grant a scope, and for how long.
#[derive(Debug, Clone)]
pub struct UserFacts<'a> {
    pub email_verified: bool,
    pub region: Option<&'a str>,
    pub elevated_risk: bool,
}

/// `None` when the app may hold `scope` for this account now, or why not.
pub fn unavailable_because(scope: &ScopeInfo, app: &AppFacts, user: &UserFacts) -> Option<Reason> {
    if let Some(r) = app_unavailable_because(scope, app) {
        return Some(r);
    }
    if scope.eligibility == Some(Eligibility::VerifiedAccount) && !user.email_verified {
        return Some(Reason::AccountNotEligible);
    }
    if !scope.regions.is_empty()
        && !user
            .region
            .is_some_and(|r| scope.regions.iter().any(|x| x == r))
    {
        return Some(Reason::RegionNotSupported);
    }
    None
}

/// `None` when Onyx lets the app hold `scope` (approval, review, trust, capability), or why not.
pub fn app_unavailable_because(scope: &ScopeInfo, app: &AppFacts) -> Option<Reason> {
    if app.withdrawn.contains(&scope.name) {
        return Some(Reason::AppAccessLimited);
    }
    let approved = app.approved.iter().any(|s| s.as_str() == scope.name);
    if !approved && app.pending.contains(&scope.name) {
        return Some(Reason::ReviewRequired);
    }
    if !approved || app.trust < scope.min_trust {
        return Some(Reason::AppNotApproved);
    }
    if let Some(cap) = &scope.capability
        && !app.capabilities.iter().any(|c| c == cap)
    {
        return Some(Reason::ScopeGated);
    }
    None
}

const DAY: i64 = 24 * 3600;

/// When consent given `now` for `scope` ends: the shortest of the app's consent lifetime, the
/// scope's maximum, and the catalogue's limits for unverified accounts, elevated risk and the
/// account's region. `None`: it lasts until revoked.
pub fn expires_at(scope: &ScopeInfo, app: &AppFacts, user: &UserFacts, now: i64) -> Option<i64> {
    let rules = &catalogue().expiry;
    let limits = [
        app.consent_ttl,
        scope.max_consent_days.map(|d| d * DAY),
        (!user.email_verified)
            .then_some(rules.unverified_account_max_days)
            .flatten()
            .map(|d| d * DAY),
        user.elevated_risk
            .then_some(rules.elevated_risk_max_days)
            .flatten()
            .map(|d| d * DAY),
        user.region
            .and_then(|r| rules.region_max_days.get(r))
            .map(|d| d * DAY),
    ];
    limits.into_iter().flatten().min().map(|ttl| now + ttl)
}

/// A stored permission, as read from the database.
#[derive(Debug, Clone)]
pub struct Stored {
    pub state: State,
    pub reason: Option<Reason>,
    pub expires_at: Option<i64>,
}

/// What the app may do with a scope now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective {
    pub state: State,
    pub reason: Option<Reason>,
}

impl Effective {
    pub fn usable(&self) -> bool {
        self.state == State::Granted
    }
}

/// The state the app sees now: see the module documentation.
pub fn effective(
    stored: &Stored,
    scope: Option<&ScopeInfo>,
    app: &AppFacts,
    user: &UserFacts,
    now: i64,
) -> Effective {
    match stored.state {
        State::Granted | State::Limited => {
            if stored.expires_at.is_some_and(|e| e <= now) {
                return Effective {
                    state: State::Expired,
                    reason: Some(Reason::ExpiredByPolicy),
                };
            }
            // A scope that left the catalogue cannot be used any more.
            let Some(scope) = scope else {
                return Effective {
                    state: State::Limited,
                    reason: Some(Reason::AppNotApproved),
                };
            };
            match unavailable_because(scope, app, user) {
                None => Effective {
                    state: State::Granted,
                    reason: None,
                },
                Some(r) => Effective {
                    state: State::Limited,
                    reason: Some(r),
                },
            }
        }
        state => Effective {
            state,
            reason: stored.reason.or(match state {
                State::Requested => Some(Reason::AwaitingDecision),
                State::Expired => Some(Reason::ExpiredByPolicy),
                _ => None,
            }),
        },
    }
}

/// A permission as partners and users see it: the effective state, its reason and sentence.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    pub scope: String,
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// For a gated scope, the capability it waits for (its state is in the app's
    /// capabilities: the partner API's `/capabilities`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capability: Option<String>,
    pub updated_at: i64,
}

/// The effective view of each stored permission (scope, stored, when last set).
pub fn views<'a>(
    stored: impl IntoIterator<Item = (&'a str, &'a Stored, i64)>,
    app: &AppFacts,
    user: &UserFacts,
    now: i64,
) -> Vec<View> {
    stored
        .into_iter()
        .map(|(scope, st, updated_at)| {
            let e = effective(st, catalogue().get(scope), app, user, now);
            View {
                scope: scope.to_string(),
                state: e.state,
                reason: e.reason,
                description: e.reason.map(Reason::sentence),
                expires_at: st.expires_at,
                capability: (e.reason == Some(Reason::ScopeGated))
                    .then(|| catalogue().get(scope).and_then(|i| i.capability.clone()))
                    .flatten(),
                updated_at,
            }
        })
        .collect()
}

wire_enum! {
    /// Where a whole grant stands for its app, from its permissions as they are now: the partner
    /// API's `state`, the CLI's and the Connected apps page's summary.
    pub enum GrantState as "lowercase" {
        /// Every permission is usable.
        Granted,
        /// Some are usable, some not.
        Limited,
        /// None is usable yet: the consent screen is waiting for an answer.
        Requested,
        /// None is usable, and one has expired.
        Expired,
        /// None is usable (declined, unavailable, removed).
        Denied,
        /// The grant has ended.
        Revoked,
    }
}

impl GrantState {
    /// The state of a grant (`active` unless it ended) whose permissions are `views`.
    pub fn of(active: bool, views: &[View]) -> Self {
        let usable = views.iter().filter(|v| v.state == State::Granted).count();
        let any = |s: State| views.iter().any(|v| v.state == s);
        if !active {
            Self::Revoked
        } else if usable > 0 && usable == views.len() {
            Self::Granted
        } else if usable > 0 {
            Self::Limited
        } else if any(State::Requested) {
            Self::Requested
        } else if any(State::Expired) {
            Self::Expired
        } else {
            Self::Denied
        }
    }

    /// Words for the Connected apps page.
    pub fn label(self) -> &'static str {
        match self {
            Self::Revoked => "Disconnected",
            Self::Granted => "Allowed",
            Self::Limited => "Limited",
            Self::Requested | Self::Expired | Self::Denied => "No access in use",
        }
    }
}

/// Where each requested scope stands before the consent screen.
#[derive(Debug, Default)]
pub struct Classified {
    /// Cannot be granted now, and why (shown, not selectable; never silently dropped).
    pub unavailable: Vec<(&'static ScopeInfo, Reason)>,
    /// Granted before and usable: the screen need not ask again.
    pub granted: Vec<&'static ScopeInfo>,
    /// To be asked on the consent screen.
    pub asked: Vec<&'static ScopeInfo>,
}

/// Sorts `requested` scopes. `stored` is the user's current grant (scope → permission); with
/// `ask_all` (prompt=consent, or the app's consent copy changed) every available scope is asked.
pub fn classify<'a>(
    requested: impl IntoIterator<Item = &'static ScopeInfo>,
    stored: impl Fn(&str) -> Option<&'a Stored>,
    ask_all: bool,
    app: &AppFacts,
    user: &UserFacts,
    now: i64,
) -> Classified {
    let mut out = Classified::default();
    for scope in requested {
        if let Some(r) = unavailable_because(scope, app, user) {
            out.unavailable.push((scope, r));
            continue;
        }
        let usable = stored(&scope.name)
            .is_some_and(|st| effective(st, Some(scope), app, user, now).usable());
        if usable && !ask_all {
            out.granted.push(scope);
        } else {
            out.asked.push(scope);
        }
    }
    out
}

/// The version of an app's consent copy: changes whenever its intended use or its consent text
/// does, and then every user is asked again.
pub fn copy_version(purpose: &str, consent_copy: &str) -> String {
    let hash = crate::crypto::secret_hash(&format!("{purpose}\u{0}{consent_copy}"));
    hash.chars().take(16).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_reasons_read_back_what_they_print_and_serialise_the_same() {
        use strum::IntoEnumIterator;
        for state in State::iter() {
            assert_eq!(State::parse(state.as_str()), Some(state));
            assert_eq!(state.to_string(), state.as_str());
            let json = serde_json::to_value(state).unwrap();
            assert_eq!(json, state.as_str());
        }
        assert_eq!(State::Unavailable.as_str(), "unavailable");
        for reason in Reason::iter() {
            assert_eq!(Reason::parse(reason.as_str()), Some(reason));
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
        assert_eq!(Reason::AppAccessLimited.as_str(), "app_access_limited");
        assert_eq!(Reason::parse("Revoked_By_User"), None);
        assert_eq!(State::parse(""), None);
    }

    fn scope(name: &str) -> &'static ScopeInfo {
        catalogue().get(name).expect(name)
    }

    fn app<'a>(approved: &'a [ScopeName], caps: &'a [String], trust: TrustLevel) -> AppFacts<'a> {
        AppFacts {
            approved,
            pending: &[],
            trust,
            capabilities: caps,
            withdrawn: &[],
            consent_ttl: None,
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn names(v: &[&str]) -> Vec<ScopeName> {
        v.iter().map(|s| ScopeName::stored(s.to_string())).collect()
    }

    const GB_VERIFIED: UserFacts<'static> = UserFacts {
        email_verified: true,
        region: Some("GB"),
        elevated_risk: false,
    };

    #[test]
    fn each_unavailability_reason_in_order() {
        let approved = names(&["messaging:send", "assertions:read", "profile"]);
        let caps = strings(&["expanded_messaging"]);
        let full = app(&approved, &caps, TrustLevel::Verified);
        assert_eq!(
            unavailable_because(scope("messaging:send"), &full, &GB_VERIFIED),
            None
        );
        assert_eq!(
            unavailable_because(scope("email"), &full, &GB_VERIFIED),
            Some(Reason::AppNotApproved)
        );
        let pending = strings(&["email"]);
        let under_review = AppFacts {
            pending: &pending,
            ..full.clone()
        };
        assert_eq!(
            unavailable_because(scope("email"), &under_review, &GB_VERIFIED),
            Some(Reason::ReviewRequired)
        );
        let basic = app(&approved, &caps, TrustLevel::Basic);
        assert_eq!(
            unavailable_because(scope("messaging:send"), &basic, &GB_VERIFIED),
            Some(Reason::AppNotApproved)
        );
        let no_caps = app(&approved, &[], TrustLevel::Verified);
        assert_eq!(
            unavailable_because(scope("messaging:send"), &no_caps, &GB_VERIFIED),
            Some(Reason::ScopeGated)
        );
        let unverified = UserFacts {
            email_verified: false,
            ..GB_VERIFIED
        };
        assert_eq!(
            unavailable_because(scope("assertions:read"), &full, &unverified),
            Some(Reason::AccountNotEligible)
        );
        let elsewhere = UserFacts {
            region: Some("BR"),
            ..GB_VERIFIED
        };
        assert_eq!(
            unavailable_because(scope("messaging:send"), &full, &elsewhere),
            Some(Reason::RegionNotSupported)
        );
        let nowhere = UserFacts {
            region: None,
            ..GB_VERIFIED
        };
        assert_eq!(
            unavailable_because(scope("messaging:send"), &full, &nowhere),
            Some(Reason::RegionNotSupported),
            "an account without a region is not in a listed one"
        );
        assert_eq!(unavailable_because(scope("profile"), &full, &nowhere), None);
    }

    #[test]
    fn expiry_is_the_shortest_limit() {
        let approved = names(&["profile", "messaging:send"]);
        let mut facts = app(&approved, &[], TrustLevel::Trusted);
        assert_eq!(
            expires_at(scope("profile"), &facts, &GB_VERIFIED, 1000),
            None
        );
        assert_eq!(
            expires_at(scope("messaging:send"), &facts, &GB_VERIFIED, 0),
            Some(90 * DAY)
        );
        facts.consent_ttl = Some(3600);
        assert_eq!(
            expires_at(scope("messaging:send"), &facts, &GB_VERIFIED, 10),
            Some(3610)
        );
        facts.consent_ttl = None;
        let risky = UserFacts {
            elevated_risk: true,
            ..GB_VERIFIED
        };
        assert_eq!(
            expires_at(scope("profile"), &facts, &risky, 0),
            Some(7 * DAY)
        );
        let unverified = UserFacts {
            email_verified: false,
            ..GB_VERIFIED
        };
        assert_eq!(
            expires_at(scope("profile"), &facts, &unverified, 0),
            Some(30 * DAY)
        );
        let german = UserFacts {
            region: Some("DE"),
            ..GB_VERIFIED
        };
        assert_eq!(
            expires_at(scope("profile"), &facts, &german, 0),
            Some(365 * DAY)
        );
        assert_eq!(
            expires_at(scope("messaging:send"), &facts, &german, 0),
            Some(90 * DAY)
        );
    }

    #[test]
    fn effective_state_follows_expiry_and_conditions() {
        let approved = names(&["profile", "messaging:send"]);
        let caps = strings(&["expanded_messaging"]);
        let facts = app(&approved, &caps, TrustLevel::Verified);
        let granted = Stored {
            state: State::Granted,
            reason: None,
            expires_at: Some(100),
        };
        let e = effective(
            &granted,
            Some(scope("messaging:send")),
            &facts,
            &GB_VERIFIED,
            99,
        );
        assert!(e.usable());
        let e = effective(
            &granted,
            Some(scope("messaging:send")),
            &facts,
            &GB_VERIFIED,
            100,
        );
        assert_eq!(
            (e.state, e.reason),
            (State::Expired, Some(Reason::ExpiredByPolicy))
        );
        let moved = UserFacts {
            region: Some("BR"),
            ..GB_VERIFIED
        };
        let e = effective(&granted, Some(scope("messaging:send")), &facts, &moved, 50);
        assert_eq!(
            (e.state, e.reason),
            (State::Limited, Some(Reason::RegionNotSupported))
        );
        let revoked = Stored {
            state: State::Revoked,
            reason: Some(Reason::RevokedByUser),
            expires_at: None,
        };
        let e = effective(&revoked, Some(scope("profile")), &facts, &GB_VERIFIED, 0);
        assert_eq!(
            (e.state, e.reason),
            (State::Revoked, Some(Reason::RevokedByUser))
        );
        assert!(!e.usable());
    }

    #[test]
    fn a_grant_is_summed_up_from_its_permissions() {
        let view = |state: State| View {
            scope: "profile".into(),
            state,
            reason: None,
            description: None,
            expires_at: None,
            capability: None,
            updated_at: 0,
        };
        let of = |active, states: &[State]| {
            let views: Vec<View> = states.iter().map(|s| view(*s)).collect();
            GrantState::of(active, &views)
        };
        use State::*;
        assert_eq!(of(true, &[Granted, Granted]), GrantState::Granted);
        assert_eq!(of(true, &[Granted, Denied]), GrantState::Limited);
        assert_eq!(of(true, &[Requested, Denied]), GrantState::Requested);
        assert_eq!(of(true, &[Expired, Denied]), GrantState::Expired);
        assert_eq!(of(true, &[Denied, Unavailable]), GrantState::Denied);
        assert_eq!(of(true, &[]), GrantState::Denied);
        assert_eq!(of(false, &[Granted]), GrantState::Revoked);
        assert_eq!(GrantState::Revoked.as_str(), "revoked");
        assert_eq!(GrantState::Revoked.label(), "Disconnected");
        assert_eq!(GrantState::Expired.label(), "No access in use");
    }

    #[test]
    fn names_round_trip_and_every_reason_has_a_sentence() {
        for s in [
            State::Requested,
            State::Granted,
            State::Limited,
            State::Revoked,
            State::Expired,
            State::Denied,
            State::Unavailable,
        ] {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        for r in [
            Reason::AwaitingDecision,
            Reason::UserDeclined,
            Reason::AppNotApproved,
            Reason::AccountNotEligible,
            Reason::RegionNotSupported,
            Reason::ScopeGated,
            Reason::ReviewRequired,
            Reason::ExpiredByPolicy,
            Reason::RevokedByUser,
            Reason::RevokedByPartner,
            Reason::RevokedByOnyx,
        ] {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
            assert!(r.sentence().ends_with('.'));
        }
        assert_ne!(copy_version("a", "b"), copy_version("a", "c"));
        assert_ne!(copy_version("ab", ""), copy_version("a", "b"));
    }
}
