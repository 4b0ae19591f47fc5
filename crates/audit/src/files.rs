//! Auditing files and folders, as `hibana audit` does: find the `.sol` files, analyse them in
//! parallel, render the reports, and the exit code that sums them up.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use rayon::prelude::*;

use crate::{FileReport, Severity, analyse_bytes, evaluate, report::Format};

/// What to audit and how to report it.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Solidity files or directories to analyse (directories are searched recursively for `.sol`).
    pub paths: Vec<PathBuf>,
    /// Output format.
    pub format: Format,
    /// Exit with [`EXIT_FINDINGS`] when a finding of this severity or higher is reported.
    pub fail_on: Option<Severity>,
    /// Instead, score the detectors against a labelled corpus (a manifest.json or its folder).
    pub evaluate: Option<PathBuf>,
}

/// Errors of an audit of files.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The analysis could not run.
    #[error("{0}")]
    Failed(String),
    /// A path given on the command line does not exist or cannot be listed.
    #[error("cannot read {path}: {source}")]
    Path {
        /// The path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// Loading or scoring a corpus failed.
    #[error(transparent)]
    Evaluate(#[from] evaluate::EvaluateError),
}

/// Exit code when no finding reaches `--fail-on` and all inputs were analysed.
pub const EXIT_OK: i32 = 0;
/// Exit code when a finding reaches the `--fail-on` severity.
pub const EXIT_FINDINGS: i32 = 1;
/// Exit code when an input could not be (fully) analysed.
pub const EXIT_INPUT_ERROR: i32 = 2;

/// Audits the files of `args` (or scores a corpus), writes the report to `out`, and returns the
/// process exit code.
pub fn run_to(args: &AuditOptions, out: &mut dyn Write) -> Result<i32, AuditError> {
    if let Some(corpus) = &args.evaluate {
        let manifest = evaluate::manifest_path(corpus);
        let eval = evaluate::evaluate(&manifest)?;
        match args.format {
            Format::Text => out.write_all(evaluate::render(&eval).as_bytes())?,
            _ => {
                let json = serde_json::to_string_pretty(&eval)
                    .map_err(|e| AuditError::Failed(e.to_string()))?;
                writeln!(out, "{json}")?;
            }
        }
        return Ok(EXIT_OK);
    }
    let files = collect_files(&args.paths)?;
    if files.is_empty() {
        return Err(AuditError::Failed(
            "no .sol files found in the given paths".into(),
        ));
    }
    let reports = analyse_files(&files);
    out.write_all(crate::report::render(&reports, args.format).as_bytes())?;
    Ok(exit_code(&reports, args.fail_on))
}

/// The exit code for a set of reports: input errors first, then `--fail-on`.
pub fn exit_code(reports: &[FileReport], fail_on: Option<Severity>) -> i32 {
    if reports.iter().any(|r| !r.errors.is_empty()) {
        return EXIT_INPUT_ERROR;
    }
    match fail_on {
        Some(threshold)
            if reports
                .iter()
                .flat_map(|r| &r.findings)
                .any(|f| f.rule.severity >= threshold) =>
        {
            EXIT_FINDINGS
        }
        _ => EXIT_OK,
    }
}

/// Reads and analyses files in parallel; the order of the result follows `files`.
pub fn analyse_files(files: &[PathBuf]) -> Vec<FileReport> {
    // Workers with a deep stack analyse in place instead of spawning a thread per file.
    let pool = rayon::ThreadPoolBuilder::new()
        .stack_size(crate::parser::ANALYSIS_STACK_BYTES)
        .build();
    let deep_stack = pool.is_ok();
    let work = |p: &PathBuf| {
        let shown = p.display().to_string();
        match std::fs::read(p) {
            Ok(bytes) => crate::analyse_bytes_on(&shown, &bytes, deep_stack),
            Err(e) => {
                let mut r = analyse_bytes(&shown, b"");
                r.errors = vec![crate::InputError {
                    message: format!("cannot read file: {e}"),
                    span: None,
                }];
                r
            }
        }
    };
    match pool {
        Ok(pool) => pool.install(|| files.par_iter().map(work).collect()),
        Err(_) => files.par_iter().map(work).collect(),
    }
}

/// Expands directories (recursively, `.sol` files only) and keeps explicit files as given.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, AuditError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|source| AuditError::Path {
            path: p.clone(),
            source,
        })?;
        if meta.is_dir() {
            walk(p, &mut out, 0)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), AuditError> {
    if depth > 64 {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|source| AuditError::Path {
        path: dir.into(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            walk(&p, out, depth + 1)?;
        } else if meta.is_file() && p.extension().is_some_and(|e| e == "sol") {
            out.push(p);
        }
    }
    Ok(())
}
