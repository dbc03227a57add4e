//! The `onyx-id` binary as the tests run it: a command against a test app's database and keys
//! folder, its JSON output, and `serve` refusing a bad setting.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::helpers::*;

pub async fn onyx(app: &TestApp, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_onyx-id"));
    cmd.args(args)
        .env("ONYX_DATABASE_URL", &app.database_url)
        .env("ONYX_KEYS_DIR", &app.keys_dir)
        .env("ONYX_ISSUER", &app.issuer)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("running onyx-id");
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).await.unwrap();
        }
    }
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `onyx-id serve` with `var=value` on top of the app's settings: it exits non-zero with a
/// one-line reason that names the setting.
pub async fn assert_serve_refuses(app: &TestApp, var: &str, value: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_onyx-id"))
        .args(["serve"])
        .env("ONYX_DATABASE_URL", &app.database_url)
        .env("ONYX_KEYS_DIR", &app.keys_dir)
        .env(var, value)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success(), "{var}={value}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(var), "the reason names the setting: {err}");
}

pub fn one_json_object(stdout: &str) -> serde_json::Value {
    assert_eq!(
        stdout.trim().lines().count(),
        1,
        "exactly one line on stdout: {stdout}"
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("stdout is JSON");
    assert!(v.is_object());
    v
}
