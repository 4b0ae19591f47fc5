//! End to end: `hibana audit` run as a real process over the auditor's labelled corpus.

use std::{
    path::PathBuf,
    process::{Command, Output},
};

fn corpus(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../audit/corpus")
        .join(path)
}

fn hibana(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hibana"))
        .arg("audit")
        .args(args)
        .output()
        .expect("the hibana binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

#[test]
fn text_output_shows_the_finding_with_a_snippet_and_caret() {
    let file = corpus("reentrancy/dao_04.sol");
    let out = hibana(&[file.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "no --fail-on means success: {text}"
    );
    assert!(text.contains("reentrancy-eth"), "{text}");
    assert!(text.contains("dao_04.sol:14:"), "{text}");
    assert!(
        text.contains("if (!msg.sender.call.value(amount)()) throw;"),
        "{text}"
    );
    assert!(text.contains("^^^^"), "{text}");
    assert!(
        text.contains("1 finding (1 high, 0 medium, 0 low, 0 info) in 1 file"),
        "{text}"
    );
}

#[test]
fn json_output_names_the_expected_finding() {
    let file = corpus("access-control/kill_04.sol");
    let out = hibana(&["--format", "json", file.to_str().unwrap()]);
    let doc = json(&out);
    let findings = doc["files"][0]["findings"]
        .as_array()
        .expect("findings array");
    assert_eq!(findings.len(), 1, "{doc}");
    assert_eq!(findings[0]["rule"], "unprotected-selfdestruct");
    assert_eq!(findings[0]["category"], "access-control");
    assert_eq!(findings[0]["severity"], "high");
    assert_eq!(findings[0]["line"], 14);
    assert_eq!(findings[0]["function"], "destroy");
}

#[test]
fn sarif_output_is_version_2_1_0_with_rules_and_locations() {
    let file = corpus("unchecked-calls/lotto_04.sol");
    let out = hibana(&["--format", "sarif", file.to_str().unwrap()]);
    let doc = json(&out);
    assert_eq!(doc["version"], "2.1.0");
    assert!(doc["$schema"].as_str().is_some_and(|s| s.contains("sarif")));
    let run = &doc["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    assert!(rules.iter().any(|r| r["id"] == "unchecked-low-level-call"));
    let result = &run["results"][0];
    assert_eq!(result["ruleId"], "unchecked-low-level-call");
    assert_eq!(result["level"], "warning");
    let location = &result["locations"][0]["physicalLocation"];
    assert!(
        location["artifactLocation"]["uri"]
            .as_str()
            .is_some_and(|u| u.ends_with("lotto_04.sol"))
    );
    assert_eq!(location["region"]["startLine"], 16);
    assert_eq!(location["region"]["startColumn"], 9);
}

#[test]
fn fail_on_high_fails_on_the_vulnerable_file_and_passes_the_fixed_one() {
    let vulnerable = corpus("reentrancy/vault_08.sol");
    let fixed = corpus("reentrancy/vault_08_fixed.sol");
    let bad = hibana(&["--fail-on", "high", vulnerable.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1), "{}", stdout(&bad));
    let good = hibana(&["--fail-on", "high", fixed.to_str().unwrap()]);
    assert_eq!(good.status.code(), Some(0), "{}", stdout(&good));
    assert!(stdout(&good).contains("0 findings"));
}

#[test]
fn directories_are_searched_recursively() {
    let out = hibana(&["--format", "json", corpus("").to_str().unwrap()]);
    let doc = json(&out);
    let files = doc["files"].as_array().expect("files");
    assert!(files.len() >= 100, "{} files", files.len());
    assert!(files.iter().any(|f| {
        f["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("other/locked_08.sol"))
    }));
}

#[test]
fn garbage_input_gives_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = dir.path().join("garbage.sol");
    std::fs::write(
        &garbage,
        [0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0xff, 0xfe],
    )
    .expect("write");
    let out = hibana(&[garbage.to_str().unwrap()]);
    let all = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("not a Solidity source file"), "{all}");
    assert!(!all.contains("panicked"), "{all}");

    let text = dir.path().join("noise.sol");
    std::fs::write(&text, "}}}} contract ((( /* never closed").expect("write");
    let out = hibana(&["--format", "json", text.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let doc = json(&out);
    assert!(
        !doc["files"][0]["errors"]
            .as_array()
            .expect("errors")
            .is_empty()
    );
}

#[test]
fn evaluate_prints_precision_and_recall_per_category() {
    let out = hibana(&["--evaluate", corpus("").to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for category in [
        "reentrancy",
        "access-control",
        "arithmetic",
        "short-address",
        "overall",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(category) && l.contains('%')),
            "{text}"
        );
    }
}
