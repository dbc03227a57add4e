//! The scope catalogue (`scopes.toml`): labels, descriptions, categories and rules of every scope
//! onyx-id knows. Parsed once; every page and check reads it from here.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::wire::{str_newtype, try_from_string, wire_enum};

/// One scope token (RFC 6749 §3.3): `%x21 / %x23-5B / %x5D-7E`, and known to the catalogue.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Scope(String);

impl Scope {
    /// A scope known to the catalogue.
    pub fn parse(raw: &str) -> Result<Self, ScopeError> {
        if raw.is_empty()
            || !raw
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        {
            return Err(ScopeError::Malformed(raw.chars().take(64).collect()));
        }
        if catalogue().get(raw).is_none() {
            return Err(ScopeError::Unknown(raw.to_string()));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_app_scope(&self) -> bool {
        self.info().subject == Subject::App
    }

    pub fn info(&self) -> &'static ScopeInfo {
        catalogue()
            .get(&self.0)
            .expect("a parsed Scope is always in the catalogue")
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A scope name as an app's row lists it (a scope-token, RFC 6749 §3.3), kept as written.
/// Unlike [`Scope`] it is not checked against the catalogue when read back: what Onyx approved
/// for an app stays on its list, and a name the catalogue does not know is never granted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeName(String);

impl ScopeName {
    /// A name read back from storage.
    pub fn stored(name: String) -> Self {
        Self(name)
    }
}

str_newtype!(ScopeName);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeError {
    Malformed(String),
    Unknown(String),
    Duplicate(String),
    Empty,
}

impl std::fmt::Display for ScopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(s) => write!(f, "scope {s:?} is not a valid scope token"),
            Self::Unknown(s) => write!(f, "scope {s:?} is not supported"),
            Self::Duplicate(s) => write!(f, "scope {s:?} is requested more than once"),
            Self::Empty => f.write_str("scope is required"),
        }
    }
}

/// A space-separated scope list (RFC 6749 §3.3), parsed: every token known, none twice.
pub fn parse_scope_list(raw: &str) -> Result<Vec<Scope>, ScopeError> {
    let mut out: Vec<Scope> = Vec::new();
    for token in raw.split(' ').filter(|t| !t.is_empty()) {
        let scope = Scope::parse(token)?;
        if out.contains(&scope) {
            return Err(ScopeError::Duplicate(token.to_string()));
        }
        out.push(scope);
    }
    if out.is_empty() {
        return Err(ScopeError::Empty);
    }
    Ok(out)
}

pub fn join(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(Scope::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeInfo {
    pub name: String,
    pub category: String,
    pub label: String,
    pub description: String,
    #[serde(default)]
    pub claims: Vec<String>,
    #[serde(default)]
    pub review: bool,
    #[serde(default)]
    pub subject: Subject,
    /// The app trust level needed to hold the scope.
    #[serde(default)]
    pub min_trust: TrustLevel,
    /// Which accounts may grant it.
    #[serde(default)]
    pub eligibility: Option<Eligibility>,
    /// Account regions where it is offered (empty: everywhere).
    #[serde(default)]
    pub regions: Vec<String>,
    /// A gated capability Onyx must enable for the app first.
    #[serde(default)]
    pub capability: Option<String>,
    /// Consent for it lasts at most this many days.
    #[serde(default)]
    pub max_consent_days: Option<i64>,
}

wire_enum! {
    /// How far Onyx trusts an app (set by review); scopes name the level they need.
    /// Its string form (stored, in the catalogue, on the CLI, in the APIs) is derived once.
    #[derive(Default, PartialOrd, Ord)]
    #[serde(try_from = "String")]
    pub enum TrustLevel as "lowercase" {
        #[default]
        Basic,
        Verified,
        Trusted,
    }
}

try_from_string!(TrustLevel, "trust level");
try_from_string!(Eligibility, "eligibility rule");
try_from_string!(Subject, "scope subject");

wire_enum! {
    /// Which accounts may grant a scope.
    #[serde(try_from = "String")]
    pub enum Eligibility as "snake_case" {
        /// Accounts whose email address is verified.
        VerifiedAccount,
    }
}

/// The rules that shorten how long consent lasts, by account.
#[derive(Debug, Default, Deserialize)]
pub struct ExpiryRules {
    pub unverified_account_max_days: Option<i64>,
    pub elevated_risk_max_days: Option<i64>,
    #[serde(default)]
    pub region_max_days: BTreeMap<String, i64>,
}

wire_enum! {
    /// Who a scope is about: a person (granted on the consent screen) or the app itself
    /// (`client_credentials`).
    #[derive(Default)]
    #[serde(try_from = "String")]
    pub enum Subject as "lowercase" {
        #[default]
        User,
        App,
    }
}

#[derive(Debug, Deserialize)]
struct CatalogueFile {
    categories: BTreeMap<String, String>,
    #[serde(default)]
    expiry: ExpiryRules,
    #[serde(default)]
    use_cases: BTreeMap<String, UseCase>,
    scope: Vec<ScopeInfo>,
}

/// A kind of partner app (partner-program-access.txt, "Who Can Apply") and the scopes such an
/// app may need: asking for more is an excessive request that blocks review.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UseCase {
    pub label: String,
    pub scopes: Vec<String>,
}

#[derive(Debug)]
pub struct Catalogue {
    categories: BTreeMap<String, String>,
    pub expiry: ExpiryRules,
    /// Use cases by key (`fintech`, `travel`…).
    pub use_cases: BTreeMap<String, UseCase>,
    scopes: Vec<ScopeInfo>,
}

impl Catalogue {
    fn from_toml(text: &str) -> Result<Self, String> {
        let file: CatalogueFile = toml::from_str(text).map_err(|e| e.to_string())?;
        for s in &file.scope {
            if !file.categories.contains_key(&s.category) {
                return Err(format!(
                    "scope {} names unknown category {}",
                    s.name, s.category
                ));
            }
        }
        for s in &file.scope {
            if s.max_consent_days.is_some_and(|d| d < 1) {
                return Err(format!(
                    "scope {}: max_consent_days must be at least 1",
                    s.name
                ));
            }
            if let Some(r) = s.regions.iter().find(|r| !is_region_code(r)) {
                return Err(format!("scope {}: {r:?} is not a region code", s.name));
            }
        }
        for (key, case) in &file.use_cases {
            if let Some(s) = case
                .scopes
                .iter()
                .find(|s| !file.scope.iter().any(|x| &x.name == *s))
            {
                return Err(format!("use case {key} names unknown scope {s}"));
            }
        }
        Ok(Self {
            categories: file.categories,
            expiry: file.expiry,
            use_cases: file.use_cases,
            scopes: file.scope,
        })
    }

    pub fn get(&self, name: &str) -> Option<&ScopeInfo> {
        self.scopes.iter().find(|s| s.name == name)
    }

    pub fn all(&self) -> &[ScopeInfo] {
        &self.scopes
    }

    pub fn category_label<'a>(&'a self, key: &'a str) -> &'a str {
        self.categories.get(key).map(String::as_str).unwrap_or(key)
    }

    /// Every claim name some scope releases, for discovery's `claims_supported`.
    pub fn claims(&self) -> Vec<&str> {
        let mut claims: Vec<&str> = self
            .scopes
            .iter()
            .flat_map(|s| s.claims.iter().map(String::as_str))
            .collect();
        claims.extend(["iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash"]);
        claims.sort_unstable();
        claims.dedup();
        claims
    }
}

/// An ISO 3166-1 alpha-2 code's shape: two capital letters.
pub fn is_region_code(raw: &str) -> bool {
    raw.len() == 2 && raw.bytes().all(|b| b.is_ascii_uppercase())
}

/// The catalogue compiled into the binary.
pub fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        Catalogue::from_toml(include_str!("scopes.toml"))
            .expect("src/scopes.toml is checked by the unit tests")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_levels_have_one_spelling_for_parse_print_and_serde() {
        use strum::{IntoEnumIterator, VariantNames};
        assert_eq!(TrustLevel::VARIANTS, ["basic", "verified", "trusted"]);
        for level in TrustLevel::iter() {
            assert_eq!(TrustLevel::parse(level.as_str()), Some(level));
            let json = serde_json::to_value(level).unwrap();
            assert_eq!(json, level.as_str());
            assert_eq!(serde_json::from_value::<TrustLevel>(json).unwrap(), level);
        }
        let err = serde_json::from_value::<TrustLevel>("Trusted".into()).unwrap_err();
        assert!(
            err.to_string().contains("basic, verified, trusted"),
            "{err}"
        );
        assert_eq!(
            serde_json::from_value::<Eligibility>("verified_account".into()).unwrap(),
            Eligibility::VerifiedAccount
        );
        assert_eq!(
            serde_json::from_value::<Subject>("app".into()).unwrap(),
            Subject::App
        );
    }

    #[test]
    fn the_catalogue_parses_and_every_scope_has_words_for_people() {
        let c = catalogue();
        for s in c.all() {
            assert!(
                !s.label.is_empty() && !s.description.is_empty(),
                "{}",
                s.name
            );
        }
        for name in ["openid", "profile", "email", "offline_access"] {
            assert!(c.get(name).is_some(), "{name}");
        }
    }

    #[test]
    fn scope_lists_refuse_unknown_duplicated_and_malformed_tokens() {
        assert_eq!(parse_scope_list("openid  email").unwrap().len(), 2);
        assert_eq!(
            parse_scope_list("openid openid"),
            Err(ScopeError::Duplicate("openid".into()))
        );
        assert_eq!(
            parse_scope_list("openid admin"),
            Err(ScopeError::Unknown("admin".into()))
        );
        assert!(matches!(
            parse_scope_list("open\"id"),
            Err(ScopeError::Malformed(_))
        ));
        assert_eq!(parse_scope_list(" "), Err(ScopeError::Empty));
    }
}
