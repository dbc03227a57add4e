//! A real browser for the tests: headless Chromium driven over WebDriver (chromedriver), with
//! screenshots at a phone (390 px) and a desktop (1280 px) width into `target/test-artifacts/`,
//! and axe-core (vendored in `vendor/axe-core/`, so nothing is fetched) run on each page. Needs
//! /usr/bin/chromium and /usr/bin/chromedriver (Debian's `chromium` and `chromium-driver`): a
//! test is skipped without them unless `ONYX_TEST_REQUIRE_BROWSER` is set.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::Capabilities;
use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// axe-core's browser bundle (MPL-2.0; see `vendor/axe-core/`).
pub const AXE: &str = include_str!("../vendor/axe-core/axe.min.js");
/// The rules checked: WCAG 2.0, 2.1 and 2.2, levels A and AA.
pub const WCAG_AA: [&str; 5] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"];
/// The button of the form that removes all of an app's access (Connected apps).
pub const REMOVE_ALL: &str = r#".//form[@action="/account/apps/revoke"]/button[starts-with(normalize-space(), "Remove all access")]"#;

/// A chromedriver process, stopped with its browsers when dropped (also when the test fails).
pub struct Chromedriver {
    child: Child,
    port: u16,
    url: String,
}

impl Chromedriver {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let driver = Chromedriver { child, port, url };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        driver
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // chromedriver's `/shutdown` quits its sessions' Chromium, then itself (a kill alone
        // would leave the browser of a failed test running); it closes the connection on exit.
        if let Ok(mut conn) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = conn.write_all(b"GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
            let _ = conn.read_to_end(&mut Vec::new());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Chromedriver {
    /// A new headless Chromium session.
    pub async fn browser(&self) -> fantoccini::Client {
        let caps: Capabilities = serde_json::from_value(json!({"goog:chromeOptions": {
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=420,900"],
            "binary": CHROMIUM,
        }}))
        .unwrap();
        // chromedriver speaks plain HTTP on loopback: no TLS connector.
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("connecting to chromedriver")
    }
}

/// Whether the browser is there; if not, the test is skipped, or fails when it must run.
pub fn browser_available() -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "{} missing (apt-get install chromium chromium-driver)",
        missing.join(" and ")
    );
    if std::env::var_os("ONYX_TEST_REQUIRE_BROWSER").is_some() {
        panic!("ONYX_TEST_REQUIRE_BROWSER is set but {why}");
    }
    eprintln!("skipped: the browser test needs Chromium: {why}");
    false
}

/// The element `css` matches, waiting for the page to load it.
pub async fn element(browser: &fantoccini::Client, css: &str) -> Element {
    match browser.wait().for_element(Locator::Css(css)).await {
        Ok(found) => found,
        Err(e) => panic!("no {css} ({e}) in {}", browser.source().await.unwrap()),
    }
}

/// Clicks the element `css` matches. An element found just before the page replaced it (a
/// navigation or a redraw still under way) is stale: it is found again, a few times at most.
pub async fn click(browser: &fantoccini::Client, css: &str) {
    for attempt in 1.. {
        match element(browser, css).await.click().await {
            Ok(()) => return,
            Err(e) if attempt < 5 && is_stale(&e) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            Err(e) => panic!("clicking {css}: {e}"),
        }
    }
}

/// Types into the element `css` matches (found again when stale, as in [`click`]).
pub async fn type_into(browser: &fantoccini::Client, css: &str, text: &str) {
    for attempt in 1.. {
        match element(browser, css).await.send_keys(text).await {
            Ok(()) => return,
            Err(e) if attempt < 5 && is_stale(&e) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            Err(e) => panic!("typing into {css}: {e}"),
        }
    }
}

fn is_stale(e: &fantoccini::error::CmdError) -> bool {
    e.to_string().contains("stale element")
}

/// Screenshots of the page as it is, at a desktop (1280 px) and a phone (390 px) width, into
/// `target/test-artifacts/NAME.png` and `NAME-390.png`; the window goes back to 1280 px.
pub async fn shoot(browser: &fantoccini::Client, name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    for (width, height, file) in [
        (390, 844, format!("{name}-390.png")),
        (1280, 900, format!("{name}.png")),
    ] {
        browser.set_window_size(width, height).await.unwrap();
        let png = browser.screenshot().await.unwrap();
        std::fs::write(dir.join(file), &png).unwrap();
    }
}

/// Runs axe-core on the page as it is; fails with every WCAG 2.2 AA violation's id, impact and
/// nodes.
pub async fn axe(browser: &fantoccini::Client, name: &str) {
    let loaded = browser
        .execute(&format!("{AXE}\n;return typeof window.axe;"), vec![])
        .await
        .unwrap();
    assert_eq!(loaded, "object", "axe-core loaded on {name}");
    let run = r#"
        const [tags, done] = arguments;
        axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] })
          .then(r => done({ passes: r.passes.length, violations: r.violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => ({ target: n.target, html: n.html, why: n.failureSummary })),
          })) }))
          .catch(e => done({ passes: 0, violations: [{ id: "axe-error", impact: "critical", help: String(e), nodes: [] }] }));
    "#;
    let result = browser
        .execute_async(run, vec![json!(WCAG_AA)])
        .await
        .unwrap();
    // Rules that passed: axe did look at the page.
    let passes = result["passes"].as_u64().unwrap_or(0);
    assert!(passes > 0, "axe-core checked nothing on {name}: {result}");
    let violations = result["violations"].as_array().cloned().unwrap_or_default();
    if !violations.is_empty() {
        let mut report = String::new();
        for v in &violations {
            report.push_str(&format!("\n- {} ({}): {}", v["id"], v["impact"], v["help"]));
            for n in v["nodes"].as_array().into_iter().flatten() {
                report.push_str(&format!(
                    "\n    {} {}\n      {}",
                    n["target"], n["html"], n["why"]
                ));
            }
        }
        panic!("axe-core: WCAG 2.2 AA violations on {name}:{report}");
    }
}

/// The page is no wider than the window: nothing makes a phone scroll sideways (a wide table
/// scrolls inside its `.table-scroll` region).
async fn no_sideways_scroll(browser: &fantoccini::Client, name: &str) {
    let script = r##"
        const width = document.documentElement.clientWidth;
        if (document.documentElement.scrollWidth <= width) return [];
        if (!document.querySelector("body *")) return ["?"];
        return [...document.querySelectorAll("body *")]
          .filter(e => e.getBoundingClientRect().right > width + 1)
          .slice(0, 5)
          .map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
               (e.className ? "." + String(e.className).split(" ").join(".") : "") +
               " (" + Math.round(e.getBoundingClientRect().right) + " px)");
    "##;
    let wide = browser.execute(script, vec![]).await.unwrap();
    let wide = wide.as_array().cloned().unwrap_or_default();
    assert!(
        wide.is_empty(),
        "{name}: the page scrolls sideways, past the window's edge: {wide:?}"
    );
}

/// At a phone (390 px) and a desktop (1280 px) width: axe-core finds no violation, and a
/// screenshot of the whole page (the window as tall as the page) goes to
/// `target/test-artifacts/NAME-390.png` and `NAME.png`.
pub async fn shoot_and_check(browser: &fantoccini::Client, name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    for (width, file) in [
        (390, format!("{name}-390.png")),
        (1280, format!("{name}.png")),
    ] {
        browser.set_window_size(width, 900).await.unwrap();
        axe(browser, &format!("{name} at {width} px")).await;
        no_sideways_scroll(browser, &format!("{name} at {width} px")).await;
        let script = "document.activeElement?.blur(); window.scrollTo(0, 0); \
                      return document.documentElement.scrollHeight;";
        let tall = browser.execute(script, vec![]).await.unwrap();
        let tall = tall.as_u64().unwrap_or(900).clamp(600, 10_000) as u32;
        // The outer window is taller than the page by the browser's own frame.
        browser.set_window_size(width, tall + 100).await.unwrap();
        let png = browser.screenshot().await.unwrap();
        std::fs::write(dir.join(file), &png).unwrap();
    }
    browser.set_window_size(1280, 900).await.unwrap();
}

/// A screenshot of the window (1280 and 390 px wide, 900 tall) scrolled to `selector`, for the
/// part of a long page below what [`shoot_and_check`] keeps: `NAME-390.png` and `NAME.png`.
pub async fn shoot_at(browser: &fantoccini::Client, selector: &str, name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    for (width, file) in [
        (390, format!("{name}-390.png")),
        (1280, format!("{name}.png")),
    ] {
        browser.set_window_size(width, 1000).await.unwrap();
        let script = "document.activeElement?.blur(); \
                      document.querySelector(arguments[0]).scrollIntoView(); return true;";
        browser
            .execute(script, vec![json!(selector)])
            .await
            .unwrap();
        let png = browser.screenshot().await.unwrap();
        std::fs::write(dir.join(file), &png).unwrap();
    }
    browser.set_window_size(1280, 900).await.unwrap();
}
