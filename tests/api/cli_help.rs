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

#[test]
fn a_bad_server_setting_stops_any_command_with_its_one_line_reason() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["keys", "rotate", "--purge-interval", "0"],
            "ONYX_PURGE_INTERVAL must be at least 1 second",
        ),
        (
            &["audit", "--bind", "nowhere"],
            "ONYX_BIND \"nowhere\" is not an address:port",
        ),
        (
            &[
                "grants",
                "show",
                "--user",
                "a@b.example",
                "--domain-verification-resolve",
                "x",
            ],
            "ONYX_DOMAIN_VERIFICATION_RESOLVE \"x\" must be HOST=IP:PORT",
        ),
        (
            &["audit", "--login-failure-window", "90000"],
            "ONYX_LOGIN_FAILURE_WINDOW must be at most 86400 seconds",
        ),
        (
            &["audit", "--code-ttl", "601"],
            "ONYX_CODE_TTL must be at most 600 seconds (RFC 6749 §4.1.2)",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (args, reason) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_onyx-id"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("ONYX_DATABASE_URL")
            .env_remove("ONYX_KEYS_DIR")
            .output()
            .expect("running onyx-id");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr, format!("onyx-id: error: {reason}\n"), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // Nothing was opened: the settings are checked before the database.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_log_format_outside_its_enum_is_refused_with_the_enum_values() {
    let out = Command::new(env!("CARGO_BIN_EXE_onyx-id"))
        .args(["audit", "--log-format", "xml"])
        .output()
        .expect("running onyx-id");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[possible values: text, json]"), "{stderr}");
}
