//! Solidity auditor: parses Solidity 0.4–0.8 sources and reports vulnerability findings.
//!
//! Self-contained, with no compiler download: a hand-written lexer and recursive-descent parser
//! ([`parser`]) turn source text into a syntax tree with byte spans ([`ast`]), including legacy
//! syntax (`throw`, `suicide`, `var`, `constant` functions, constructors named after the contract,
//! `.call.value(x)()`, `sha3`, `years`). Inline assembly is kept as a balanced block with the
//! words used inside. Parsing recovers at contract-member level, so one broken function does not
//! hide the rest, and nesting is capped so hostile input cannot overflow the stack.
//!
//! A semantic model links each contract to its C3-linearised bases, visible state variables,
//! modifiers and functions. Detectors walk that model per function: ordered paths through
//! modifiers and inlined internal calls for reentrancy, def-use of parameters and block values for
//! arithmetic and randomness, caller checks for access control. Each [`Finding`] is tied to a
//! [`finding::Rule`] with a DASP-10 [`Category`], a [`Severity`] and a [`Confidence`].
//! [`report`] renders findings as text with code snippets, JSON or SARIF 2.1.0; [`evaluate`]
//! scores the detectors against a labelled corpus (`corpus/manifest.json`).
//!
//! Data flow: bytes → [`analyse_bytes`] (binary, empty and oversized input rejected) →
//! [`parser::parse`] → detectors → [`FileReport`] → [`report::render`]. [`files::run_to`] adds file
//! discovery, parallel analysis (rayon) and exit codes, for `hibana audit`.
//!
//! ```
//! let src = "pragma solidity ^0.4.24;
//! contract Bank {
//!     mapping(address => uint) balances;
//!     function withdraw() public {
//!         msg.sender.call.value(balances[msg.sender])();
//!         balances[msg.sender] = 0;
//!     }
//! }";
//! let report = hibana_audit::analyse_source("bank.sol", src);
//! use hibana_audit::Category;
//! let categories: Vec<Category> = report.findings.iter().map(|f| f.rule.category).collect();
//! assert_eq!(categories, [Category::Reentrancy, Category::UncheckedCalls]);
//! assert_eq!(report.position(report.findings[0].span.start), (5, 9));
//! ```
#![forbid(unsafe_code)]

pub mod ast;
pub mod challenge;
mod detectors;
pub mod evaluate;
pub mod files;
pub mod finding;
mod lexer;
mod model;
pub mod parser;
pub mod report;
pub mod span;

pub use finding::{Category, Confidence, Explanation, Finding, Severity};
use span::{LineIndex, Span};

/// Largest file the auditor reads (16 MiB); larger ones are reported, not parsed.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

/// A problem with the input itself (unreadable, not Solidity, syntax error).
#[derive(Debug, Clone)]
pub struct InputError {
    /// What went wrong, for a person.
    pub message: String,
    /// Where, if the text could be read.
    pub span: Option<Span>,
}

/// The result of analysing one file.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// The path as given.
    pub path: String,
    /// The text, if it could be read as UTF-8.
    pub text: Option<String>,
    /// Problems with the input; when present, findings may be partial.
    pub errors: Vec<InputError>,
    /// Findings, sorted by position.
    pub findings: Vec<Finding>,
    /// Number of contracts, interfaces and libraries parsed.
    pub contracts: usize,
    lines: LineIndex,
}

impl FileReport {
    /// The 1-based line and column of a byte offset in this file; the column counts Unicode
    /// code points, as editors and SARIF's `unicodeCodePoints` column kind do.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let (line, byte_column) = self.lines.position(offset);
        let column = self
            .text
            .as_deref()
            .and_then(|t| {
                let start = offset.checked_sub(byte_column - 1)?;
                t.get(start..offset)
                    .map(|prefix| prefix.chars().count() + 1)
            })
            .unwrap_or(byte_column);
        (line, column)
    }

    fn failed(path: &str, message: String) -> Self {
        Self {
            path: path.to_string(),
            text: None,
            errors: vec![InputError {
                message,
                span: None,
            }],
            findings: Vec::new(),
            contracts: 0,
            lines: LineIndex::new(""),
        }
    }
}

const KNOWN_PRAGMAS: &[&str] = &["solidity", "experimental", "abicoder"];

/// Analyses raw file contents: rejects binary, empty and oversized input with a clear error.
pub fn analyse_bytes(path: &str, bytes: &[u8]) -> FileReport {
    analyse_bytes_on(path, bytes, false)
}

/// [`analyse_bytes`]; `deep_stack` says the current thread already has
/// `parser::ANALYSIS_STACK_BYTES` of stack, so no analysis thread needs to be spawned.
pub(crate) fn analyse_bytes_on(path: &str, bytes: &[u8], deep_stack: bool) -> FileReport {
    if bytes.len() > MAX_FILE_BYTES {
        return FileReport::failed(
            path,
            format!(
                "file is {} bytes; the limit is {MAX_FILE_BYTES} bytes",
                bytes.len()
            ),
        );
    }
    if bytes.contains(&0) {
        return FileReport::failed(
            path,
            "not a Solidity source file: it contains binary data (NUL bytes)".into(),
        );
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if deep_stack => analyse_here(path, text),
        Ok(text) => analyse_source(path, text),
        Err(e) => FileReport::failed(
            path,
            format!(
                "not a Solidity source file: invalid UTF-8 at byte {}",
                e.valid_up_to()
            ),
        ),
    }
}

/// The number of Solidity tokens in a text (what an audit is priced by); counting stops at the
/// first lexical error.
pub fn token_count(text: &str) -> usize {
    lexer::tokenize(text)
        .0
        .iter()
        .filter(|t| t.kind != lexer::TokenKind::Eof)
        .count()
}

/// A report of `text` without analysing it, to be filled with findings made elsewhere
/// ([`report::from_json`]).
pub(crate) fn empty_report(path: &str, text: &str) -> FileReport {
    FileReport {
        path: path.to_string(),
        text: Some(text.to_string()),
        errors: Vec::new(),
        findings: Vec::new(),
        contracts: 0,
        lines: LineIndex::new(text),
    }
}

/// Parses and analyses one Solidity source text.
pub fn analyse_source(path: &str, text: &str) -> FileReport {
    parser::with_deep_stack(|| analyse_here(path, text))
}

fn analyse_here(path: &str, text: &str) -> FileReport {
    let lines = LineIndex::new(text);
    let mut errors = Vec::new();
    if text.trim().is_empty() {
        errors.push(InputError {
            message: "file is empty: there is nothing to analyse".into(),
            span: None,
        });
        return FileReport {
            path: path.to_string(),
            text: Some(text.to_string()),
            errors,
            findings: Vec::new(),
            contracts: 0,
            lines,
        };
    }
    let (unit, syntax) = parser::parse_here(text);
    for e in syntax {
        errors.push(InputError {
            message: e.message,
            span: Some(e.span),
        });
    }
    for (pragma, span) in &unit.pragmas {
        let word = pragma.split_whitespace().next().unwrap_or("");
        if !KNOWN_PRAGMAS.contains(&word) {
            errors.push(InputError {
                message: format!("unknown pragma `{word}`"),
                span: Some(*span),
            });
        }
    }
    if unit.contracts.is_empty() && errors.is_empty() {
        errors.push(InputError {
            message: "no contract, interface or library found".into(),
            span: None,
        });
    }
    let findings = detectors::run_all(text, &unit);
    FileReport {
        path: path.to_string(),
        text: Some(text.to_string()),
        errors,
        findings,
        contracts: unit.contracts.len(),
        lines,
    }
}
