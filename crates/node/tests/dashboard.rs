//! The web dashboard end to end: a devnet with its AI side and demo network, its page driven
//! in headless Chromium (playwright-core, installed by `scripts/setup.sh --tests`) the way a person
//! uses it: every view at desktop and phone width without a console error or warning, a CLI
//! transfer arriving live, an account proof checked in the browser, a streamed chat with a
//! verified receipt, an audit, SQL and ask. Screenshots are kept in
//! `$CARGO_TARGET_TMPDIR/dashboard-screenshots/` (`target/tmp/…`, or `HIBANA_SCREENSHOTS`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{BIN, ok_json, start_command};

fn dashboard_tests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard")
}

#[test]
fn the_browser_checks_proofs_and_receipts_with_verify_js() {
    let out = Command::new("node")
        .arg("--test")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard/verify.test.mjs"))
        .output()
        .expect("run node (scripts/setup.sh --tests installs it)");
    assert!(
        out.status.success(),
        "verify.js tests failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_view_works_in_headless_chromium_against_a_living_devnet() {
    assert!(
        dashboard_tests()
            .join("node_modules/playwright-core")
            .is_dir(),
        "playwright-core is missing: run scripts/setup.sh --tests"
    );
    let dir = tempfile::tempdir().unwrap();
    let home_path = dir.path().join("devnet");
    let home = home_path.to_str().unwrap();
    let (_devnet, info) = start_command(&mut support::devnet_command(home, 500));
    let url = info["dashboard"].as_str().unwrap().to_string();
    assert_eq!(info["subnets"], serde_json::json!(["chat", "embeddings"]));

    // The demo network pays on its own: the provider, mining both subnets, earns within a
    // minute of the start without a command typed.
    let provider = info["provider_account"].as_str().unwrap().to_string();
    let start = Instant::now();
    loop {
        let epochs = ok_json(&["--json", "subnet", "emissions", "chat", "--home", home]);
        // Each epoch lists what it paid as [uid, account, amount].
        let paid = epochs.as_array().into_iter().flatten().any(|e| {
            e["paid"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p[1] == provider.as_str() && p[2].as_str().unwrap_or("0") != "0")
        });
        if paid {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "no epoch paid the provider: {epochs}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }

    let shots = std::env::var_os("HIBANA_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots"));
    let out = Command::new("node")
        .current_dir(dashboard_tests())
        .args(["e2e.mjs", "--url", &url, "--bin", BIN, "--home", home])
        .arg("--shots")
        .arg(&shots)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "the driver printed no report ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let failed: Vec<String> = report["checks"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| **v != Value::Bool(true))
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    assert!(failed.is_empty(), "failed checks:\n{}", failed.join("\n"));
    assert_eq!(
        report["console"],
        serde_json::json!([]),
        "the page logged errors or warnings"
    );
    assert!(out.status.success(), "{stdout}");
    // Six views at two widths, each a real picture.
    let pictures = report["shots"].as_array().unwrap();
    assert_eq!(pictures.len(), 12, "{pictures:?}");
    for p in pictures {
        let bytes = std::fs::metadata(p.as_str().unwrap()).unwrap().len();
        assert!(bytes > 5_000, "{p} is only {bytes} bytes");
    }
    assert!(report["load"]["kb"].as_f64().unwrap() > 0.0);
}
