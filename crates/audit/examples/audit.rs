//! Runs the auditor without the `hibana` binary:
//! `cargo run -p hibana-audit --example audit -- [--format text|json|sarif] PATH...`.

use std::path::PathBuf;

use hibana_audit::{
    files::{AuditOptions, EXIT_INPUT_ERROR, run_to},
    report::Format,
};

fn main() {
    let mut options = AuditOptions {
        paths: Vec::new(),
        format: Format::Text,
        fail_on: None,
        evaluate: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--format" {
            options.format = match args.next().as_deref() {
                Some("text") => Format::Text,
                Some("json") => Format::Json,
                Some("sarif") => Format::Sarif,
                other => {
                    eprintln!("error: --format takes text, json or sarif, not {other:?}");
                    std::process::exit(EXIT_INPUT_ERROR);
                }
            };
        } else {
            options.paths.push(PathBuf::from(arg));
        }
    }
    if options.paths.is_empty() {
        eprintln!("usage: audit [--format text|json|sarif] PATH...");
        std::process::exit(EXIT_INPUT_ERROR);
    }
    match run_to(&options, &mut std::io::stdout().lock()) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(EXIT_INPUT_ERROR);
        }
    }
}
