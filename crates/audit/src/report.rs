//! Rendering of file reports as text (snippets with carets), JSON and SARIF 2.1.0.

use std::collections::BTreeMap;

use codespan_reporting::{
    diagnostic::{Diagnostic, Label},
    files::SimpleFile,
    term,
};
use serde_json::{Value, json};

use crate::{FileReport, Severity, finding::RULES};

/// Output formats of `hibana audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable diagnostics with code snippets.
    Text,
    /// One JSON document.
    Json,
    /// SARIF 2.1.0 for code-scanning tools.
    Sarif,
}

/// Renders reports in the chosen format.
pub fn render(reports: &[FileReport], format: Format) -> String {
    match format {
        Format::Text => text(reports),
        Format::Json => pretty(&json_value(reports)),
        Format::Sarif => pretty(&sarif_value(reports)),
    }
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".to_string());
    s.push('\n');
    s
}

/// Human-readable diagnostics followed by a summary line.
pub fn text(reports: &[FileReport]) -> String {
    let config = term::Config::default();
    let mut out = String::new();
    let mut counts: BTreeMap<Severity, usize> = BTreeMap::new();
    for r in reports {
        let Some(text) = &r.text else {
            for e in &r.errors {
                out.push_str(&format!("error: {}: {}\n\n", r.path, e.message));
            }
            continue;
        };
        let file = SimpleFile::new(r.path.as_str(), text.as_str());
        for e in &r.errors {
            let mut d = Diagnostic::error().with_message(e.message.clone());
            if let Some(span) = e.span {
                let end = span
                    .end
                    .max(span.start + 1)
                    .min(text.len())
                    .max(span.start.min(text.len()));
                d = d.with_labels(vec![Label::primary((), span.start.min(text.len())..end)]);
            } else {
                d = d.with_notes(vec![format!("in {}", r.path)]);
            }
            match term::emit_into_string(&config, &file, &d) {
                Ok(s) => out.push_str(&s),
                Err(_) => out.push_str(&format!("error: {}: {}\n", r.path, e.message)),
            }
        }
        for f in &r.findings {
            *counts.entry(f.rule.severity).or_default() += 1;
            let base = match f.rule.severity {
                Severity::High | Severity::Medium => Diagnostic::warning(),
                Severity::Low => Diagnostic::note(),
                Severity::Info => Diagnostic::help(),
            };
            // Point at the first line of the span only: long spans make unreadable snippets.
            let start = f.span.start.min(text.len());
            let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
            let end = f.span.end.min(line_end).max((start + 1).min(text.len()));
            let d = base
                .with_code(format!("{}:{}", f.rule.severity.as_str(), f.rule.id))
                .with_message(format!("{} [{}]", f.rule.title, f.rule.category.as_str()))
                .with_labels(vec![
                    Label::primary((), start..end).with_message(f.message.clone()),
                ])
                .with_notes(vec![
                    format!(
                        "in {}{}",
                        f.contract,
                        f.function
                            .as_ref()
                            .map(|n| format!(".{n}"))
                            .unwrap_or_default()
                    ),
                    format!(
                        "confidence: {}; fix: {}",
                        format!("{:?}", f.rule.confidence).to_lowercase(),
                        f.rule.help
                    ),
                ]);
            match term::emit_into_string(&config, &file, &d) {
                Ok(s) => out.push_str(&s),
                Err(_) => out.push_str(&format!("{}: {}\n", r.path, f.message)),
            }
        }
    }
    let total: usize = counts.values().sum();
    let errors: usize = reports.iter().map(|r| r.errors.len()).sum();
    let parts: Vec<String> = [
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ]
    .iter()
    .map(|s| format!("{} {}", counts.get(s).copied().unwrap_or(0), s.as_str()))
    .collect();
    out.push_str(&format!(
        "{total} finding{} ({}) in {} file{}, {errors} input error{}\n",
        if total == 1 { "" } else { "s" },
        parts.join(", "),
        reports.len(),
        if reports.len() == 1 { "" } else { "s" },
        if errors == 1 { "" } else { "s" },
    ));
    out
}

/// The JSON document of `--format json`.
pub fn json_value(reports: &[FileReport]) -> Value {
    let files: Vec<Value> = reports
        .iter()
        .map(|r| {
            let errors: Vec<Value> = r
                .errors
                .iter()
                .map(|e| {
                    let (line, column) = e.span.map(|s| r.position(s.start)).unwrap_or((0, 0));
                    json!({"message": e.message, "line": line, "column": column})
                })
                .collect();
            let findings: Vec<Value> = r
                .findings
                .iter()
                .map(|f| {
                    let (line, column) = r.position(f.span.start);
                    let (end_line, end_column) = r.position(f.span.end);
                    json!({
                        "rule": f.rule.id,
                        "category": f.rule.category,
                        "severity": f.rule.severity,
                        "confidence": f.rule.confidence,
                        "title": f.rule.title,
                        "message": f.message,
                        "help": f.rule.help,
                        "contract": f.contract,
                        "function": f.function,
                        "line": line,
                        "column": column,
                        "end_line": end_line,
                        "end_column": end_column,
                    })
                })
                .collect();
            json!({"path": r.path, "contracts": r.contracts, "errors": errors, "findings": findings})
        })
        .collect();
    let count = |s: Severity| {
        reports
            .iter()
            .flat_map(|r| &r.findings)
            .filter(|f| f.rule.severity == s)
            .count()
    };
    json!({
        "tool": "hibana-audit",
        "version": env!("CARGO_PKG_VERSION"),
        "files": files,
        "summary": {
            "files": reports.len(),
            "findings": reports.iter().map(|r| r.findings.len()).sum::<usize>(),
            "high": count(Severity::High),
            "medium": count(Severity::Medium),
            "low": count(Severity::Low),
            "info": count(Severity::Info),
            "errors": reports.iter().map(|r| r.errors.len()).sum::<usize>(),
        }
    })
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// The SARIF 2.1.0 log of `--format sarif`.
pub fn sarif_value(reports: &[FileReport]) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": {"text": r.title},
                "help": {"text": r.help},
                "defaultConfiguration": {"level": sarif_level(r.severity)},
                "properties": {"category": r.category, "severity": r.severity, "confidence": r.confidence},
            })
        })
        .collect();
    let mut results = Vec::new();
    let mut notifications = Vec::new();
    for r in reports {
        let uri = r.path.replace('\\', "/");
        for f in &r.findings {
            let (line, column) = r.position(f.span.start);
            let (end_line, end_column) = r.position(f.span.end);
            let rule_index = RULES.iter().position(|x| x.id == f.rule.id).unwrap_or(0);
            results.push(json!({
                "ruleId": f.rule.id,
                "ruleIndex": rule_index,
                "level": sarif_level(f.rule.severity),
                "message": {"text": f.message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri},
                        "region": {"startLine": line, "startColumn": column, "endLine": end_line, "endColumn": end_column},
                    }
                }],
                "properties": {"category": f.rule.category, "confidence": f.rule.confidence},
            }));
        }
        for e in &r.errors {
            let mut n = json!({"level": "error", "message": {"text": format!("{}: {}", r.path, e.message)}});
            if let Some(span) = e.span {
                let (line, column) = r.position(span.start);
                n["locations"] = json!([{"physicalLocation": {"artifactLocation": {"uri": uri}, "region": {"startLine": line, "startColumn": column}}}]);
            }
            notifications.push(n);
        }
    }
    json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": {"driver": {
                "name": "hibana-audit",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://example.invalid/hibana",
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "invocations": [{"executionSuccessful": true, "toolExecutionNotifications": notifications}],
            "results": results,
        }]
    })
}
