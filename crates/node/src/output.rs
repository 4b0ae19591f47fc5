//! What the commands print: JSON documents, receipts, events, and the name a printed command
//! should start with.

use std::path::Path;

use anyhow::Result;
use hibana_types::{Event, Hash, Receipt, TxOutcome};
use serde::Serialize;

/// Prints `value` as pretty JSON.
pub(crate) fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints the hash of a transaction submitted without waiting.
pub(crate) fn print_pending(hash: &Hash, json: bool) -> Result<()> {
    if json {
        print_json(&serde_json::json!({"hash": hash, "status": "pending"}))
    } else {
        println!("Submitted {hash}");
        Ok(())
    }
}

/// Prints a transaction's receipt: outcome, fee and events.
pub(crate) fn print_receipt(receipt: &Receipt, json: bool) -> Result<()> {
    if json {
        return print_json(receipt);
    }
    match &receipt.outcome {
        TxOutcome::Success => println!("Committed {} in block {}", receipt.tx_hash, receipt.height),
        TxOutcome::Failed(reason) => {
            println!(
                "FAILED {} in block {}: {reason}",
                receipt.tx_hash, receipt.height
            )
        }
    }
    println!("  fee: {}", receipt.fee);
    print_events(&receipt.events, "  ");
    Ok(())
}

/// Prints events a line each: kind, then key=value attributes.
pub(crate) fn print_events(events: &[Event], indent: &str) {
    for event in events {
        let attrs: Vec<String> = event
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!("{indent}{} {}", event.kind, attrs.join(" "));
    }
}

/// How a command printed for the user to run starts: `cargo hibana` when this binary runs from
/// a checkout (through `cargo`, or built into a cargo target folder), else `hibana`.
pub(crate) fn program() -> &'static str {
    let exe = std::env::current_exe().ok();
    if std::env::var_os("CARGO").is_some() || exe.as_deref().is_some_and(in_cargo_target_dir) {
        "cargo hibana"
    } else {
        "hibana"
    }
}

/// A path as one shell word: as it is when that is safe, else in single quotes.
pub(crate) fn shell_arg(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@,=~".contains(c));
    if plain {
        text
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Whether `exe` was built into a cargo target folder: its folder is a profile's
/// (`<target>/[<triple>/]<profile>`), which holds `deps` and `.fingerprint`.
fn in_cargo_target_dir(exe: &Path) -> bool {
    exe.parent()
        .is_some_and(|dir| dir.join("deps").is_dir() && dir.join(".fingerprint").is_dir())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{in_cargo_target_dir, shell_arg};

    #[test]
    fn paths_are_quoted_only_when_a_shell_would_split_them() {
        assert_eq!(shell_arg(Path::new("/tmp/hibana-dev")), "/tmp/hibana-dev");
        assert_eq!(shell_arg(Path::new("/tmp/my dev")), "'/tmp/my dev'");
        assert_eq!(shell_arg(Path::new("/tmp/it's")), r"'/tmp/it'\''s'");
    }

    #[test]
    fn a_binary_in_a_cargo_target_folder_is_recognised() {
        let dir = tempfile::tempdir().expect("temp dir");
        let profile = dir.path().join("target").join("debug");
        std::fs::create_dir_all(profile.join("deps")).expect("folders");
        assert!(!in_cargo_target_dir(&profile.join("hibana")));
        std::fs::create_dir_all(profile.join(".fingerprint")).expect("folders");
        assert!(in_cargo_target_dir(&profile.join("hibana")));
        assert!(!in_cargo_target_dir(&dir.path().join("hibana")));
    }
}
