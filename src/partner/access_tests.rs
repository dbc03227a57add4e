use super::*;

#[test]
fn stored_capabilities_parse_and_unreadable_ones_enable_nothing() {
    let caps = Capabilities::parse(
        r#"{"expanded_messaging":{"state":"enabled","reason":"enabled_by_onyx","at":5},
            "community_execution":{"state":"gated","reason":"market_not_launched","at":6}}"#,
    );
    assert_eq!(caps.enabled(), vec!["expanded_messaging".to_string()]);
    assert_eq!(
        caps.get("community_execution").state,
        CapabilityState::Gated
    );
    assert_eq!(
        caps.get("advanced_event_subscriptions").reason,
        "not_requested"
    );
    assert!(
        Capabilities::parse("[\"expanded_messaging\"]")
            .enabled()
            .is_empty()
    );
    assert!(Capabilities::parse("not json").enabled().is_empty());
    assert_eq!(caps.all().len(), super::super::CAPABILITIES.len());
}

fn cause(
    source: CauseSource,
    reason: AccessReason,
    state: AccessState,
    w: &[&str],
    at: i64,
) -> AccessCause {
    AccessCause {
        source,
        reason,
        state,
        note: None,
        withdrawn_scopes: w.iter().map(|s| s.to_string()).collect(),
        actor: "test".into(),
        at,
    }
}

#[test]
fn causes_stack_the_strongest_wins_and_withdrawn_scopes_add_up() {
    assert_eq!(effective(&[]).state, AccessState::Active);
    assert_eq!(effective(&[]).reason, AccessReason::Restored);
    let lapsed = cause(
        CauseSource::Automatic,
        AccessReason::VerificationLapsed,
        AccessState::Limited,
        &["assertions:read"],
        5,
    );
    let region = cause(
        CauseSource::Operator,
        AccessReason::RegionWithdrawn,
        AccessState::Limited,
        &["messaging:send", "assertions:read"],
        7,
    );
    let e = effective(&[lapsed.clone(), region.clone()]);
    assert_eq!(
        (e.state, e.reason, e.withdrawn.clone()),
        (
            AccessState::Limited,
            AccessReason::RegionWithdrawn,
            vec!["assertions:read".to_string(), "messaging:send".to_string()]
        )
    );
    let abuse = cause(
        CauseSource::Operator,
        AccessReason::AbuseReview,
        AccessState::Suspended,
        &[],
        1,
    );
    let e = effective(&[lapsed, abuse, region]);
    assert_eq!(
        (e.state, e.reason),
        (AccessState::Suspended, AccessReason::AbuseReview)
    );
}

#[test]
fn every_reason_round_trips_and_has_words() {
    for r in AccessReason::all() {
        assert_eq!(AccessReason::parse(r.as_str()), Some(r));
        assert!(r.sentence().ends_with('.'));
    }
    for s in ["draft", "preview", "production"] {
        assert_eq!(Stage::parse(s).map(Stage::as_str), Some(s));
    }
    for s in ["active", "limited", "suspended"] {
        assert_eq!(AccessState::parse(s).map(AccessState::as_str), Some(s));
    }
}

/// The names strum derives (parsing, `as_str`, the CLI's value lists) are the names serde
/// writes in the API and the database.
fn strum_and_serde_agree<T>()
where
    T: strum::IntoEnumIterator + serde::Serialize + Copy + Into<&'static str> + std::str::FromStr,
    T: PartialEq + std::fmt::Debug,
    <T as std::str::FromStr>::Err: std::fmt::Debug,
{
    for v in T::iter() {
        let name: &'static str = v.into();
        assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(name));
        assert_eq!(name.parse::<T>().unwrap(), v);
    }
}

#[test]
fn every_partner_enum_has_one_spelling_for_serde_parsing_and_the_cli() {
    strum_and_serde_agree::<Stage>();
    strum_and_serde_agree::<AccessState>();
    strum_and_serde_agree::<AccessReason>();
    strum_and_serde_agree::<CauseSource>();
    strum_and_serde_agree::<CapabilityState>();
    strum_and_serde_agree::<crate::partner::Step>();
    strum_and_serde_agree::<crate::partner::StepState>();
    strum_and_serde_agree::<crate::partner::partners::Role>();
    assert_eq!(
        crate::partner::StepState::decisions().collect::<Vec<_>>(),
        [
            "approved",
            "changes_requested",
            "rejected",
            "not_applicable"
        ]
    );
    assert!(Stage::parse("Draft").is_none());
}
