//! Rows from one block: its header, its transactions with their receipts, and the events the
//! block itself emitted. Pure: the same block always gives the same rows, which is what makes
//! re-indexing a height change nothing.

use std::collections::BTreeMap;

use hibana_types::{Block, Event, Hash, Receipt, SignedTransaction, TxOutcome};

use crate::tables::{Cell, Row, cell};

/// Everything the indexer reads about one block.
#[derive(Debug, Clone)]
pub struct BlockData {
    /// The block hash.
    pub hash: Hash,
    /// The block.
    pub block: Block,
    /// Its transactions, in block order, each with its hash and receipt.
    pub txs: Vec<(Hash, SignedTransaction, Receipt)>,
    /// Events of the block that no transaction emitted (begin and end of block).
    pub block_events: Vec<Event>,
}

/// Rows per table name.
pub type Rows = BTreeMap<&'static str, Vec<Row>>;

/// The rows of every append-only table that one block contributes.
pub fn block_rows(data: &BlockData, rows: &mut Rows) {
    let header = &data.block.header;
    let (height, time) = (header.height, header.time_ms);
    let fees: u128 = data.txs.iter().map(|(_, _, r)| r.fee.0).sum();
    rows.entry("blocks").or_default().push(vec![
        cell::u64(height),
        cell::time(time),
        cell::str(data.hash.to_string()),
        cell::str(header.parent_hash.to_string()),
        cell::str(header.proposer.to_string()),
        cell::str(header.state_root.to_string()),
        cell::u64(data.txs.len() as u64),
        cell::amount(fees),
    ]);
    for (i, event) in data.block_events.iter().enumerate() {
        event_rows(height, time, None, i as u64, event, rows);
    }
    for (index, (hash, tx, receipt)) in data.txs.iter().enumerate() {
        let tx_hash = hash.to_string();
        let sender = tx.tx.signer.address().to_string();
        let types: Vec<String> = tx.tx.messages.iter().map(message_type).collect();
        let error = match &receipt.outcome {
            TxOutcome::Success => None,
            TxOutcome::Failed(reason) => Some(reason.as_str()),
        };
        rows.entry("transactions").or_default().push(vec![
            cell::u64(height),
            cell::time(time),
            cell::str(&tx_hash),
            cell::u64(index as u64),
            cell::str(&sender),
            cell::u64(tx.tx.nonce),
            cell::amount(receipt.fee.0),
            cell::bool(receipt.is_success()),
            cell::opt_str(error),
            cell::u64(tx.tx.messages.len() as u64),
            cell::str(types.join(",")),
        ]);
        for (i, event) in receipt.events.iter().enumerate() {
            event_rows(
                height,
                time,
                Some((&tx_hash, index as u64)),
                i as u64,
                event,
                rows,
            );
            if event.kind == "bank.fee" {
                rows.entry("fees").or_default().push(vec![
                    cell::u64(height),
                    cell::time(time),
                    cell::str(&tx_hash),
                    cell::opt_str(event.attribute("payer")),
                    cell::str(header.proposer.to_string()),
                    cell::amount_of(event.attribute("amount")),
                ]);
            }
        }
    }
}

/// The name a message has in JSON (`transfer`, `bond`, …).
fn message_type(message: &hibana_types::Message) -> String {
    serde_json::to_value(message)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}

/// The rows one event gives: always one in `events`, and one in the table of its concept.
fn event_rows(
    height: u64,
    time: u64,
    tx: Option<(&str, u64)>,
    index: u64,
    event: &Event,
    rows: &mut Rows,
) {
    let at = |k: &str| event.attribute(k);
    let tx_hash = tx.map(|(hash, _)| hash);
    let attributes: serde_json::Map<String, serde_json::Value> = event
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let head = || {
        vec![
            cell::u64(height),
            cell::time(time),
            cell::opt_str(tx_hash),
            cell::u64(index),
        ]
    };
    let mut row = vec![
        cell::u64(height),
        cell::time(time),
        cell::opt_str(tx_hash),
        crate::tables::Cell::U64(tx.map(|(_, i)| i)),
        cell::u64(index),
    ];
    row.extend([
        cell::str(&event.kind),
        cell::str(serde_json::Value::Object(attributes).to_string()),
        cell::amount_of(
            at("amount")
                .or(at("burned"))
                .or(at("paid"))
                .or(at("deposit"))
                .or(at("minted")),
        ),
    ]);
    rows.entry("events").or_default().push(row);

    let (component, name) = event.kind.split_once('.').unwrap_or(("", &event.kind));
    match (component, name) {
        ("bank", "transfer") => {
            let mut row = head();
            row.extend([
                cell::opt_str(at("from")),
                cell::opt_str(at("to")),
                cell::amount_of(at("amount")),
            ]);
            rows.entry("transfers").or_default().push(row);
        }
        ("staking", kind) => {
            let mut row = head();
            row.extend([
                cell::str(kind),
                cell::opt_str(at("delegator")),
                cell::opt_str(at("validator")),
                cell::amount_of(at("amount").or(at("burned"))),
                cell::u64_of(at("release_height")),
                cell::opt_str(at("reason")),
            ]);
            rows.entry("stakes").or_default().push(row);
        }
        ("verify", "inference") => {
            rows.entry("zk_inferences").or_default().push(vec![
                cell::u64(height),
                cell::time(time),
                cell::opt_str(tx_hash),
                cell::opt_str(at("id")),
                cell::opt_str(at("model")),
                cell::opt_str(at("input_commitment")),
                cell::opt_str(at("output")),
                cell::u64_of(at("class")),
                cell::opt_str(at("submitter")),
            ]);
        }
        ("market", kind) => {
            let mut row = head();
            row.extend([
                cell::str(kind),
                cell::opt_str(at("provider")),
                cell::opt_str(at("owner")),
                cell::u64_of(at("order")),
                cell::u64_of(at("lease")),
                cell::amount_of(
                    at("amount")
                        .or(at("paid"))
                        .or(at("escrow"))
                        .or(at("deposit"))
                        .or(at("refund"))
                        .or(at("bond")),
                ),
                cell::amount_of(at("price_per_block")),
            ]);
            rows.entry("market_events").or_default().push(row);
        }
        ("channels", kind) => {
            let mut row = head();
            row.extend([
                cell::str(kind),
                cell::u64_of(at("channel")),
                cell::opt_str(at("payer")),
                cell::opt_str(at("payee")),
                cell::amount_of(at("amount").or(at("deposit")).or(at("refund"))),
            ]);
            rows.entry("channel_events").or_default().push(row);
        }
        ("data", kind) => {
            let mut row = head();
            row.extend([
                cell::str(kind),
                cell::u64_of(at("bounty")),
                cell::u64_of(at("item")),
                cell::opt_str(at("contributor").or(at("reviewer")).or(at("owner"))),
                cell::opt_str(at("outcome").or(at("accept"))),
                cell::amount_of(
                    at("amount")
                        .or(at("escrow"))
                        .or(at("stake"))
                        .or(at("refund")),
                ),
            ]);
            rows.entry("data_events").or_default().push(row);
        }
        _ => {}
    }
}

/// Every address named in a block (senders, proposers and event attributes that parse as
/// addresses): the accounts whose balances may have changed.
pub fn addresses(data: &BlockData) -> Vec<String> {
    let mut out = vec![data.block.header.proposer.to_string()];
    let events = data
        .block_events
        .iter()
        .chain(data.txs.iter().flat_map(|(_, _, r)| r.events.iter()));
    for (_, tx, _) in &data.txs {
        out.push(tx.tx.signer.address().to_string());
    }
    for event in events {
        for (_, value) in &event.attributes {
            if value.parse::<hibana_types::Address>().is_ok() {
                out.push(value.clone());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A row's cell as text, for tests and keys.
pub fn text(cell: &Cell) -> Option<&str> {
    match cell {
        Cell::Str(s) => s.as_deref(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::tables::table;
    use hibana_types::{
        Amount, BlockHeader, Bond, Message, SecretKey, Transaction, Transfer, TxOutcome,
    };

    fn signed(key: &SecretKey, nonce: u64, messages: Vec<Message>) -> SignedTransaction {
        Transaction {
            chain_id: "test".into(),
            signer: key.public_key(),
            nonce,
            fee: Amount(1_000),
            messages,
        }
        .sign(key)
    }

    fn sample() -> (BlockData, String, String, String) {
        let alice = SecretKey::generate();
        let bob = SecretKey::generate().public_key().address();
        let validator = SecretKey::generate().public_key().address();
        let a = alice.public_key().address();
        let transfer = signed(
            &alice,
            0,
            vec![Message::Transfer(Transfer {
                to: bob,
                amount: Amount(2_500_000_000),
            })],
        );
        let bond = signed(
            &alice,
            1,
            vec![Message::Bond(Bond {
                validator,
                amount: Amount(7),
            })],
        );
        let receipt = |tx: &SignedTransaction, index, outcome, events| Receipt {
            tx_hash: tx.hash(),
            height: 5,
            index,
            outcome,
            fee: Amount(1_000),
            events,
        };
        let fee = Event::new(
            "bank.fee",
            [("payer", a.to_string()), ("amount", "1000".into())],
        );
        let r1 = receipt(
            &transfer,
            0,
            TxOutcome::Success,
            vec![
                fee.clone(),
                Event::new(
                    "bank.transfer",
                    [
                        ("from", a.to_string()),
                        ("to", bob.to_string()),
                        ("amount", "2500000000".into()),
                    ],
                ),
            ],
        );
        let r2 = receipt(
            &bond,
            1,
            TxOutcome::Failed("insufficient funds".into()),
            vec![fee],
        );
        let block = Block {
            header: BlockHeader {
                chain_id: "test".into(),
                height: 5,
                parent_hash: Hash::ZERO,
                time_ms: 1_700_000_000_000,
                proposer: validator,
                tx_root: Hash::ZERO,
                state_root: Hash::ZERO,
                app_hash: Hash::ZERO,
            },
            txs: vec![transfer.clone(), bond.clone()],
        };
        let data = BlockData {
            hash: block.hash(),
            txs: vec![(transfer.hash(), transfer, r1), (bond.hash(), bond, r2)],
            block,
            block_events: vec![Event::new(
                "staking.unbonded",
                [("delegator", a.to_string()), ("amount", "42".into())],
            )],
        };
        (data, a.to_string(), bob.to_string(), validator.to_string())
    }

    #[test]
    fn a_block_gives_rows_in_each_concepts_table() {
        let (data, alice, bob, validator) = sample();
        let mut rows = Rows::new();
        block_rows(&data, &mut rows);
        assert_eq!(rows["blocks"].len(), 1);
        assert_eq!(rows["blocks"][0][7], cell::amount(2_000));
        assert_eq!(rows["transactions"].len(), 2);
        assert_eq!(rows["transactions"][0][10], cell::str("transfer"));
        assert_eq!(rows["transactions"][1][7], cell::bool(false));
        assert_eq!(rows["transactions"][1][8], cell::str("insufficient funds"));
        let t = &rows["transfers"];
        assert_eq!(t.len(), 1, "the failed bond moved nothing");
        assert_eq!(text(&t[0][4]), Some(alice.as_str()));
        assert_eq!(text(&t[0][5]), Some(bob.as_str()));
        assert_eq!(t[0][6], cell::amount(2_500_000_000));
        assert_eq!(rows["fees"].len(), 2);
        assert_eq!(text(&rows["fees"][0][4]), Some(validator.as_str()));
        let s = &rows["stakes"];
        assert_eq!(s.len(), 1);
        assert_eq!(s[0][2], Cell::Str(None), "a block event has no transaction");
        assert_eq!(s[0][4], cell::str("unbonded"));
        assert_eq!(s[0][7], cell::amount(42));
        // 1 block event + 2 + 1 transaction events.
        assert_eq!(rows["events"].len(), 4);
        for (name, rows) in &rows {
            table(name).unwrap().batch(rows).unwrap();
        }
        let seen = addresses(&data);
        assert!(seen.contains(&alice) && seen.contains(&bob) && seen.contains(&validator));
    }

    #[test]
    fn the_same_block_always_gives_the_same_rows() {
        let (data, ..) = sample();
        let (mut a, mut b) = (Rows::new(), Rows::new());
        block_rows(&data, &mut a);
        block_rows(&data.clone(), &mut b);
        assert_eq!(a, b);
    }
}
