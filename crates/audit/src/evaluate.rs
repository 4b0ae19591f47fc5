//! Scoring the detectors against a labelled corpus: precision and recall per category.
//!
//! A manifest (`manifest.json`) lists, for each file relative to the manifest's folder, the
//! findings it should produce as `(line, category)` pairs; files with no expected findings are
//! the fixed versions and count every reported finding as a false positive.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{Category, FileReport, analyse_bytes};

/// One expected finding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Expected {
    /// 1-based line of the finding.
    pub line: usize,
    /// Category name (kebab-case).
    pub category: String,
}

/// One corpus file and what it should produce.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Path relative to the manifest.
    pub path: String,
    /// Expected findings; empty for fixed versions.
    pub expected: Vec<Expected>,
}

/// A labelled corpus.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The files.
    pub files: Vec<ManifestEntry>,
}

/// Errors while loading a corpus.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    /// The manifest could not be read.
    #[error("cannot read manifest {path}: {source}")]
    Read {
        /// Manifest path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The manifest is not valid JSON of the expected shape.
    #[error("manifest {path} is malformed: {source}")]
    Malformed {
        /// Manifest path.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
    /// A listed file could not be read.
    #[error("cannot read corpus file {path}: {source}")]
    File {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// True/false positive counts of one category.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Score {
    /// Expected and reported.
    pub true_positives: usize,
    /// Reported but not expected.
    pub false_positives: usize,
    /// Expected but not reported.
    pub false_negatives: usize,
}

impl Score {
    /// Reported findings that were expected, in per mille (1000 when nothing was reported).
    pub fn precision_permille(&self) -> usize {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// Expected findings that were reported, in per mille (1000 when nothing was expected).
    pub fn recall_permille(&self) -> usize {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    fn add(&mut self, o: Score) {
        self.true_positives += o.true_positives;
        self.false_positives += o.false_positives;
        self.false_negatives += o.false_negatives;
    }
}

fn ratio(a: usize, b: usize) -> usize {
    (a * 1000).checked_div(b).unwrap_or(1000)
}

/// A difference between expected and reported findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// Corpus file.
    pub path: String,
    /// Line.
    pub line: usize,
    /// Category.
    pub category: String,
    /// `missing` (false negative) or `extra` (false positive).
    pub kind: &'static str,
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// Scores per category.
    pub per_category: BTreeMap<Category, Score>,
    /// All categories together.
    pub overall: Score,
    /// Every missing or extra finding.
    pub mismatches: Vec<Mismatch>,
    /// Files evaluated.
    pub files: usize,
    /// Contracts parsed in those files.
    pub contracts: usize,
}

/// Finds the manifest: `path` itself, or `manifest.json` inside a directory.
pub fn manifest_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("manifest.json")
    } else {
        path.to_path_buf()
    }
}

/// Loads a manifest file.
pub fn load_manifest(path: &Path) -> Result<Manifest, EvaluateError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvaluateError::Read {
        path: path.into(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| EvaluateError::Malformed {
        path: path.into(),
        source,
    })
}

/// Runs the auditor over every file of the manifest and scores the result.
pub fn evaluate(manifest_file: &Path) -> Result<Evaluation, EvaluateError> {
    let manifest = load_manifest(manifest_file)?;
    let root = manifest_file.parent().unwrap_or(Path::new("."));
    let mut eval = Evaluation {
        per_category: Category::ALL
            .iter()
            .map(|c| (*c, Score::default()))
            .collect(),
        overall: Score::default(),
        mismatches: Vec::new(),
        files: 0,
        contracts: 0,
    };
    for entry in &manifest.files {
        let path = root.join(&entry.path);
        let bytes = std::fs::read(&path).map_err(|source| EvaluateError::File {
            path: path.clone(),
            source,
        })?;
        let report = analyse_bytes(&entry.path, &bytes);
        eval.files += 1;
        eval.contracts += report.contracts;
        score_file(&report, entry, &mut eval);
    }
    for s in eval.per_category.values() {
        eval.overall.add(*s);
    }
    Ok(eval)
}

fn score_file(report: &FileReport, entry: &ManifestEntry, eval: &mut Evaluation) {
    let mut expected: Vec<(usize, String)> = entry
        .expected
        .iter()
        .map(|e| (e.line, e.category.clone()))
        .collect();
    let mut reported: Vec<(usize, String)> = report
        .findings
        .iter()
        .map(|f| {
            (
                report.position(f.span.start).0,
                f.rule.category.as_str().to_string(),
            )
        })
        .collect();
    expected.sort();
    reported.sort();
    let mut bump = |cat: &str, f: &dyn Fn(&mut Score)| {
        if let Some(c) = Category::parse(cat)
            && let Some(s) = eval.per_category.get_mut(&c)
        {
            f(s);
        }
    };
    for item in &reported {
        if let Some(i) = expected.iter().position(|e| e == item) {
            expected.remove(i);
            bump(&item.1, &|s| s.true_positives += 1);
        } else {
            bump(&item.1, &|s| s.false_positives += 1);
            eval.mismatches.push(Mismatch {
                path: entry.path.clone(),
                line: item.0,
                category: item.1.clone(),
                kind: "extra",
            });
        }
    }
    for item in expected {
        bump(&item.1, &|s| s.false_negatives += 1);
        eval.mismatches.push(Mismatch {
            path: entry.path.clone(),
            line: item.0,
            category: item.1,
            kind: "missing",
        });
    }
}

fn percent(permille: usize) -> String {
    format!("{}.{}%", permille / 10, permille % 10)
}

/// A table of precision and recall per category, then every mismatch.
pub fn render(eval: &Evaluation) -> String {
    let mut out = format!(
        "evaluated {} files ({} contracts)\n\n{:<20} {:>4} {:>4} {:>4} {:>10} {:>10}\n",
        eval.files, eval.contracts, "category", "tp", "fp", "fn", "precision", "recall"
    );
    let row = |name: &str, s: &Score| {
        format!(
            "{:<20} {:>4} {:>4} {:>4} {:>10} {:>10}\n",
            name,
            s.true_positives,
            s.false_positives,
            s.false_negatives,
            percent(s.precision_permille()),
            percent(s.recall_permille())
        )
    };
    for (c, s) in &eval.per_category {
        out.push_str(&row(c.as_str(), s));
    }
    out.push_str(&row("overall", &eval.overall));
    if !eval.mismatches.is_empty() {
        out.push_str("\nmismatches:\n");
        for m in &eval.mismatches {
            out.push_str(&format!(
                "  {} {}:{} {}\n",
                m.kind, m.path, m.line, m.category
            ));
        }
    }
    out
}
