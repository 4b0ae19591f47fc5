//! The labelled corpus: every expected finding is reported and nothing else is.

use std::path::PathBuf;

use hibana_audit::evaluate::{evaluate, load_manifest};

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/manifest.json")
}

#[test]
fn corpus_findings_match_the_manifest_exactly() {
    let eval = evaluate(&manifest()).expect("corpus loads");
    assert!(eval.files >= 60, "corpus has only {} files", eval.files);
    assert!(
        eval.mismatches.is_empty(),
        "findings differ from corpus/manifest.json:\n{}",
        hibana_audit::evaluate::render(&eval)
    );
}

#[test]
fn manifest_agrees_with_the_expect_markers_in_the_sources() {
    let manifest = load_manifest(&manifest()).expect("manifest loads");
    let root = manifest_root();
    for entry in &manifest.files {
        let text = std::fs::read_to_string(root.join(&entry.path)).expect("corpus file");
        let marked: Vec<(usize, String)> = text
            .lines()
            .enumerate()
            .filter_map(|(i, l)| {
                l.split("// expect: ")
                    .nth(1)
                    .map(|c| (i + 1, c.trim().to_string()))
            })
            .collect();
        let listed: Vec<(usize, String)> = entry
            .expected
            .iter()
            .map(|e| (e.line, e.category.clone()))
            .collect();
        assert_eq!(marked, listed, "{}", entry.path);
    }
}

#[test]
fn every_category_has_vulnerable_and_fixed_examples_across_versions() {
    let manifest = load_manifest(&manifest()).expect("manifest loads");
    for category in hibana_audit::Category::ALL {
        let vulnerable = manifest
            .files
            .iter()
            .filter(|f| f.expected.iter().any(|e| e.category == category.as_str()))
            .count();
        assert!(
            vulnerable >= 2,
            "{} has {vulnerable} vulnerable examples",
            category.as_str()
        );
    }
    let fixed = manifest
        .files
        .iter()
        .filter(|f| f.expected.is_empty())
        .count();
    assert!(fixed >= 30, "only {fixed} fixed examples");
    let root = manifest_root();
    for version in ["0.4.", "0.5.", "0.6.", "0.7.", "0.8."] {
        let present = manifest.files.iter().any(|f| {
            std::fs::read_to_string(root.join(&f.path))
                .is_ok_and(|t| t.contains(&format!("pragma solidity ^{version}")))
        });
        assert!(present, "no corpus file for {version}");
    }
}

fn manifest_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

#[test]
fn held_out_sets_stay_above_eighty_percent_precision_and_recall() {
    for set in ["holdout", "holdout2", "holdout3"] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(set)
            .join("manifest.json");
        let eval = evaluate(&path).expect("held-out set loads");
        let (p, r) = (
            eval.overall.precision_permille(),
            eval.overall.recall_permille(),
        );
        assert!(
            p >= 800 && r >= 800,
            "{set}: {}",
            hibana_audit::evaluate::render(&eval)
        );
    }
}
