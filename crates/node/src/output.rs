//! What the commands print: JSON documents, receipts, events.

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
