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
        require_pushed_authorization_requests: Some(false),
        profile: Some(None),
        jwks: Some(None),
        jwks_uri: Some(None),
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

#[test]
fn a_change_reopens_the_done_steps_whose_fields_it_changes_and_no_other() {
    use crate::store::reviews::{Review, StepRecord};
    let draft = AppDraft {
        name: "Ledger".into(),
        redirect_uris: vec!["https://ledger.example/cb".into()],
        ..AppDraft::default()
    };
    let record = |step: Step, state: StepState| StepRecord {
        step,
        state,
        reviewer: None,
        note: None,
        snapshot: snapshot(step, &draft),
        updated_at: 0,
        draft_version: Some(1),
    };
    let review = Review {
        id: "r".into(),
        client_id: "c".into(),
        number: 1,
        state: "open".into(),
        submitted_at: 0,
        closed_at: None,
        findings: vec![],
        steps: vec![
            record(Step::AppIdentity, StepState::Approved),
            record(Step::RedirectUris, StepState::Approved),
            record(Step::Support, StepState::Pending),
            record(Step::Webhooks, StepState::NotApplicable),
        ],
    };
    assert_eq!(reopened_steps(Some(&review), &draft), []);
    let changed = DraftPatch {
        name: Some("Ledger Pro".into()),
        support_url: Some(Some("https://ledger.example/help".into())),
        webhooks: Some(vec!["https://ledger.example/hook".into()]),
        ..DraftPatch::default()
    }
    .apply(draft.clone());
    // Support was not done yet: nothing to reopen there; webhooks now apply.
    assert_eq!(
        reopened_steps(Some(&review), &changed),
        [Step::AppIdentity, Step::Webhooks]
    );
    assert_eq!(reopened_steps(None, &changed), []);
}

#[test]
fn an_approval_recorded_before_a_field_existed_holds_while_the_field_keeps_its_default() {
    use crate::store::reviews::{Review, StepRecord};
    let draft = AppDraft {
        redirect_uris: vec!["https://ledger.example/cb".into()],
        ..AppDraft::default()
    };
    // The redirect URIs' snapshot as approved before the draft had
    // `require_pushed_authorization_requests`.
    let mut old = snapshot(Step::RedirectUris, &draft).unwrap();
    old.as_object_mut()
        .unwrap()
        .remove("require_pushed_authorization_requests");
    let review = Review {
        id: "r".into(),
        client_id: "c".into(),
        number: 1,
        state: "closed".into(),
        submitted_at: 0,
        closed_at: None,
        findings: vec![],
        steps: vec![StepRecord {
            step: Step::RedirectUris,
            state: StepState::Approved,
            reviewer: None,
            note: None,
            snapshot: Some(old.clone()),
            updated_at: 0,
            draft_version: Some(1),
        }],
    };
    assert_eq!(reopened_steps(Some(&review), &draft), []);
    let requiring = DraftPatch {
        require_pushed_authorization_requests: Some(true),
        ..DraftPatch::default()
    }
    .apply(draft.clone());
    assert_eq!(
        reopened_steps(Some(&review), &requiring),
        [Step::RedirectUris]
    );
    assert_eq!(
        recorded_value(&old, "require_pushed_authorization_requests"),
        serde_json::json!(false)
    );
}
