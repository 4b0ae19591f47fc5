//! Auditing files and folders through the entry point `hibana audit` uses, in-process.

use std::path::PathBuf;

use hibana_audit::{
    Severity,
    files::{AuditOptions, EXIT_FINDINGS, EXIT_INPUT_ERROR, EXIT_OK, run_to},
    report::Format,
};

fn corpus(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(path)
}

fn args(paths: Vec<PathBuf>, format: Format, fail_on: Option<Severity>) -> AuditOptions {
    AuditOptions {
        paths,
        format,
        fail_on,
        evaluate: None,
    }
}

fn run(a: &AuditOptions) -> (i32, String) {
    let mut out = Vec::new();
    let code = run_to(a, &mut out).expect("audit runs");
    (code, String::from_utf8_lossy(&out).into_owned())
}

#[test]
fn fail_on_thresholds_follow_severity_order() {
    // One low finding (short-address) and nothing else.
    let low = corpus("short-address/token_04.sol");
    assert_eq!(
        run(&args(
            vec![low.clone()],
            Format::Text,
            Some(Severity::Medium)
        ))
        .0,
        EXIT_OK
    );
    assert_eq!(
        run(&args(vec![low.clone()], Format::Text, Some(Severity::Low))).0,
        EXIT_FINDINGS
    );
    assert_eq!(run(&args(vec![low], Format::Text, None)).0, EXIT_OK);
}

#[test]
fn deep_nesting_through_the_parallel_pool_is_an_error_not_a_crash() {
    let dir = std::env::temp_dir().join(format!("hibana-audit-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let deep = dir.join("deep.sol");
    let depth = 50_000;
    std::fs::write(
        &deep,
        format!(
            "contract A {{ function f() public {{ uint x = {}1{}; }} }}",
            "(".repeat(depth),
            ")".repeat(depth)
        ),
    )
    .expect("write");
    let legal = dir.join("legal.sol");
    std::fs::write(
        &legal,
        format!(
            "contract B {{ function f() public {{ uint x = {}1{}; }} }}",
            "(".repeat(60),
            ")".repeat(60)
        ),
    )
    .expect("write");
    let (code, text) = run(&args(vec![dir.clone()], Format::Json, None));
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(code, EXIT_INPUT_ERROR, "{text}");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    let files = doc["files"].as_array().expect("files");
    assert_eq!(files.len(), 2);
    let errors = |name: &str| {
        files
            .iter()
            .find(|f| f["path"].as_str().is_some_and(|p| p.ends_with(name)))
            .map(|f| f["errors"].as_array().map_or(0, Vec::len))
    };
    assert_eq!(errors("deep.sol"), Some(1));
    assert_eq!(errors("legal.sol"), Some(0));
}

#[test]
fn missing_paths_are_an_error() {
    let a = args(
        vec![PathBuf::from("/definitely/not/here.sol")],
        Format::Text,
        None,
    );
    let mut out = Vec::new();
    let err = run_to(&a, &mut out).expect_err("missing path");
    assert!(err.to_string().contains("/definitely/not/here.sol"));
}
