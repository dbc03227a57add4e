use super::*;

#[test]
fn a_draft_patch_names_the_fields_it_changes_as_the_draft_spells_them_in_order() {
    let patch = DraftPatch {
        webhooks: Some(vec![]),
        domain: Some(None),
        name: Some("Ledger".into()),
        capabilities: Some(vec![]),
        ..DraftPatch::default()
    };
    assert_eq!(
        patch.fields(),
        ["capabilities", "domain", "name", "webhooks"]
    );
    let every = DraftPatch {
        name: Some(String::new()),
        description: Some(String::new()),
        use_case: Some(String::new()),
        purpose: Some(String::new()),
        consent_copy: Some(String::new()),
        domain: Some(None),
        redirect_uris: Some(vec![]),
        origins: Some(vec![]),
        post_logout_redirect_uris: Some(vec![]),
        backchannel_logout_uri: Some(None),
        backchannel_logout_session_required: Some(true),
        webhooks: Some(vec![]),
        support_url: Some(None),
        scopes: Some(vec![]),
        optional_scopes: Some(vec![]),
        justifications: Some(Default::default()),
        capabilities: Some(vec![]),
    };
    // Every field of the draft, in the order the history and the audit log list them.
    let draft = serde_json::to_value(AppDraft::default()).unwrap();
    let names: Vec<String> = draft.as_object().unwrap().keys().cloned().collect();
    assert_eq!(every.fields(), names);
}

#[test]
fn a_draft_patch_replaces_only_what_it_names_and_lowercases_the_domain() {
    let before = AppDraft {
        name: "Ledger".into(),
        description: "Books".into(),
        domain: Some("ledger.example".into()),
        ..AppDraft::default()
    };
    let after = DraftPatch {
        domain: Some(Some("  Books.Example ".into())),
        ..DraftPatch::default()
    }
    .apply(before.clone());
    assert_eq!(after.domain.as_deref(), Some("books.example"));
    assert_eq!(
        (after.name, after.description),
        (before.name.clone(), before.description.clone())
    );
    let cleared = DraftPatch {
        domain: Some(Some("  ".into())),
        ..DraftPatch::default()
    }
    .apply(before);
    assert_eq!(cleared.domain, None);
}
