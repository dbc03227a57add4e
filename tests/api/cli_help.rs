//! `--help` of each command: its own options first, the server settings after them under their
//! own heading, so an operator finds the two or three options of a command at once.

use std::process::Command;

const HEADING: &str = "Server settings:";

/// A few of the server settings every command takes.
const SERVER_FLAGS: [&str; 5] = [
    "--bind <BIND>",
    "--database-url <DATABASE_URL>",
    "--keys-dir <KEYS_DIR>",
    "--log-format <LOG_FORMAT>",
    "--max-pending-requests-per-app <MAX_PENDING_REQUESTS_PER_APP>",
];

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_onyx-id"))
        .args(args)
        .arg("--help")
        .env_remove("ONYX_DATABASE_URL")
        .env_remove("ONYX_KEYS_DIR")
        .output()
        .expect("running onyx-id --help");
    assert!(out.status.success(), "{args:?} --help: {out:?}");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// Checks that `own` are listed before the heading and the server flags after it.
fn assert_own_options_first(args: &[&str], own: &[&str]) {
    let text = help(args);
    let heading = text
        .find(HEADING)
        .unwrap_or_else(|| panic!("{args:?} --help has no {HEADING:?} heading:\n{text}"));
    for option in own {
        let at = text
            .find(option)
            .unwrap_or_else(|| panic!("{args:?} --help does not list {option}:\n{text}"));
        assert!(
            at < heading,
            "{args:?} --help lists {option} under the server settings:\n{text}"
        );
    }
    let (before, after) = text.split_at(heading);
    for flag in SERVER_FLAGS {
        assert!(
            after.contains(flag),
            "{args:?} --help does not list {flag} under {HEADING:?}:\n{text}"
        );
        assert!(
            !before.contains(flag),
            "{args:?} --help lists {flag} before {HEADING:?}:\n{text}"
        );
    }
}

#[test]
fn apps_create_help_lists_its_own_options_before_the_server_settings() {
    assert_own_options_first(
        &["apps", "create"],
        &[
            "--name <NAME>",
            "--redirect-uri <REDIRECT_URIS>",
            "--trust-level <TRUST_LEVEL>",
            "--id-token-alg <ID_TOKEN_ALG>",
        ],
    );
}

#[test]
fn keys_rotate_help_lists_its_own_options_before_the_server_settings() {
    assert_own_options_first(&["keys", "rotate"], &["--now", "--revoke-old"]);
}

#[test]
fn users_create_help_lists_its_own_options_before_the_server_settings() {
    assert_own_options_first(
        &["users", "create"],
        &["--email <EMAIL>", "--password-stdin", "--region <REGION>"],
    );
}

#[test]
fn grants_revoke_help_lists_its_own_options_before_the_server_settings() {
    assert_own_options_first(
        &["grants", "revoke"],
        &["--user <USER>", "--app <APP>", "--scope <SCOPE>"],
    );
}

#[test]
fn audit_help_lists_its_own_options_before_the_server_settings() {
    assert_own_options_first(
        &["audit"],
        &["--app <APP>", "--partner <PARTNER>", "--limit <LIMIT>"],
    );
}

#[test]
fn serve_help_lists_the_server_settings_under_their_heading() {
    assert_own_options_first(&["serve"], &["--help"]);
}

#[test]
fn the_value_lists_of_enum_flags_come_from_their_enums() {
    let text = help(&["apps", "create"]);
    assert!(
        text.contains("[possible values: basic, verified, trusted]"),
        "{text}"
    );
    assert!(text.contains("[possible values: ES256, RS256]"), "{text}");
    let text = help(&["serve"]);
    assert!(text.contains("[possible values: text, json]"), "{text}");
}
