//! The tables: their names, columns and types, and how rows become Arrow record batches.
//!
//! Every table is declared once in [`TABLES`]. A column of kind [`Kind::Amount`] named `x`
//! becomes two Arrow columns: `x` in base units (`Decimal128(38, 0)`) and `x_hib` in HIB
//! (`Decimal128(38, 9)`, the same integer read with 9 decimals), so nobody has to remember the
//! decimals.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Decimal128Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::AnalyticsError;

/// Decimals of one HIB: 1 HIB = 10^9 base units.
pub const HIB_DECIMALS: i8 = 9;
/// Precision of the amount columns (the widest `Decimal128`).
pub const AMOUNT_PRECISION: u8 = 38;
/// Largest base-unit amount a `Decimal128(38, _)` column holds.
const MAX_AMOUNT: u128 = 10u128.pow(38) - 1;

/// The type of a declared column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Unsigned 64-bit integer (heights, ids, nonces).
    U64,
    /// Signed 64-bit integer.
    I64,
    /// UTF-8 text (addresses, hashes, names).
    Str,
    /// True or false.
    Bool,
    /// A token amount: two columns, base units and HIB.
    Amount,
    /// A time in milliseconds since the Unix epoch, as a UTC timestamp.
    Time,
}

/// One value of a row; `None` is SQL NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// For [`Kind::U64`].
    U64(Option<u64>),
    /// For [`Kind::I64`].
    I64(Option<i64>),
    /// For [`Kind::Str`].
    Str(Option<String>),
    /// For [`Kind::Bool`].
    Bool(Option<bool>),
    /// For [`Kind::Amount`], in base units.
    Amount(Option<u128>),
    /// For [`Kind::Time`], in milliseconds since the Unix epoch.
    Time(Option<u64>),
}

/// A row: one cell per declared column, in order.
pub type Row = Vec<Cell>;

/// How a table is kept up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// Rows derived from blocks; heights are appended in part files and never change.
    Append,
    /// The current state read from the node, rewritten whole at each refresh.
    Snapshot,
}

/// A declared table.
#[derive(Debug)]
pub struct TableDef {
    /// Its SQL name (lowercase snake case).
    pub name: &'static str,
    /// How it is refreshed.
    pub refresh: Refresh,
    /// What a row is, for the schema listing.
    pub about: &'static str,
    /// Declared columns, in order.
    pub columns: &'static [(&'static str, Kind)],
}

use Kind::{Amount as A, Bool as B, Str as S, Time as T, U64};

/// Every table the indexer writes.
pub const TABLES: &[TableDef] = &[
    TableDef {
        name: "blocks",
        refresh: Refresh::Append,
        about: "one row per block",
        columns: &[
            ("height", U64),
            ("time", T),
            ("hash", S),
            ("parent_hash", S),
            ("proposer", S),
            ("state_root", S),
            ("tx_count", U64),
            ("fees", A),
        ],
    },
    TableDef {
        name: "transactions",
        refresh: Refresh::Append,
        about: "one row per included transaction (failed ones too: they paid their fee)",
        columns: &[
            ("height", U64),
            ("time", T),
            ("tx_hash", S),
            ("tx_index", U64),
            ("sender", S),
            ("nonce", U64),
            ("fee", A),
            ("success", B),
            ("error", S),
            ("message_count", U64),
            ("message_types", S),
        ],
    },
    TableDef {
        name: "events",
        refresh: Refresh::Append,
        about: "every event a block or transaction emitted, attributes as a JSON object",
        columns: &[
            ("height", U64),
            ("time", T),
            ("tx_hash", S),
            ("tx_index", U64),
            ("event_index", U64),
            ("kind", S),
            ("attributes", S),
            ("amount", A),
        ],
    },
    TableDef {
        name: "transfers",
        refresh: Refresh::Append,
        about: "bank transfers between accounts",
        columns: &[
            ("height", U64),
            ("time", T),
            ("tx_hash", S),
            ("event_index", U64),
            ("from", S),
            ("to", S),
            ("amount", A),
        ],
    },
    TableDef {
        name: "fees",
        refresh: Refresh::Append,
        about: "transaction fees, paid by the sender to the block's proposer",
        columns: &[
            ("height", U64),
            ("time", T),
            ("tx_hash", S),
            ("payer", S),
            ("proposer", S),
            ("amount", A),
        ],
    },
    TableDef {
        name: "stakes",
        refresh: Refresh::Append,
        about: "staking: kind is bond, unbond, unbonded (tokens returned), slash, jail, unjail or equivocation",
        columns: &[
            ("height", U64),
            ("time", T),
            ("tx_hash", S),
            ("event_index", U64),
            ("kind", S),
            ("delegator", S),
            ("validator", S),
            ("amount", A),
            ("release_height", U64),
            ("reason", S),
        ],
    },
    TableDef {
        name: "zk_inferences",
        refresh: Refresh::Append,
        about: "zero-knowledge proved inferences verified on chain",
        columns: &[
            ("height", U64),
            ("time", T),
            ("tx_hash", S),
            ("id", S),
            ("model", S),
            ("input_commitment", S),
            ("output", S),
            ("class", U64),
            ("submitter", S),
        ],
    },
    TableDef {
        name: "market_events",
        refresh: Refresh::Append,
        about: "compute market: providers, orders, bids, leases and their settlements",
        columns: &[
            ("height", U64),
            ("time", T),
            ("tx_hash", S),
            ("event_index", U64),
            ("kind", S),
            ("provider", S),
            ("owner", S),
            ("order_id", U64),
            ("lease_id", U64),
            ("amount", A),
            ("price_per_block", A),
        ],
    },
    TableDef {
        name: "channel_events",
        refresh: Refresh::Append,
        about: "payment channels: opened, topped_up, redeemed, settling, closed",
        columns: &[
            ("height", U64),
            ("time", T),
            ("tx_hash", S),
            ("event_index", U64),
            ("kind", S),
            ("channel_id", U64),
            ("payer", S),
            ("payee", S),
            ("amount", A),
        ],
    },
    TableDef {
        name: "data_events",
        refresh: Refresh::Append,
        about: "data network: bounty_created, reviewer_staked, item_submitted, review_committed, review_revealed, item_settled, reviewer_slashed, earnings_withheld, bounty_closed, dataset_finalized",
        columns: &[
            ("height", U64),
            ("time", T),
            ("tx_hash", S),
            ("event_index", U64),
            ("kind", S),
            ("bounty_id", U64),
            ("item_id", U64),
            ("account", S),
            ("outcome", S),
            ("amount", A),
        ],
    },
    TableDef {
        name: "accounts",
        refresh: Refresh::Snapshot,
        about: "every account the indexer has seen, with its balance and bonded stake now",
        columns: &[
            ("address", S),
            ("balance", A),
            ("stake", A),
            ("nonce", U64),
            ("height", U64),
        ],
    },
    TableDef {
        name: "validators",
        refresh: Refresh::Snapshot,
        about: "the validator set now",
        columns: &[
            ("address", S),
            ("public_key", S),
            ("power", A),
            ("height", U64),
        ],
    },
    TableDef {
        name: "subnets",
        refresh: Refresh::Snapshot,
        about: "the model network's subnets",
        columns: &[
            ("subnet_id", U64),
            ("name", S),
            ("task", S),
            ("owner", S),
            ("deposit", A),
            ("created_at", U64),
            ("epochs", U64),
            ("epoch_emission", A),
        ],
    },
    TableDef {
        name: "neurons",
        refresh: Refresh::Snapshot,
        about: "neurons (miners and validators) of every subnet, with their last epoch's scores (parts per billion)",
        columns: &[
            ("subnet_id", U64),
            ("uid", U64),
            ("account", S),
            ("role", S),
            ("endpoint", S),
            ("model", S),
            ("registered_at", U64),
            ("stake", A),
            ("active", B),
            ("incentive", U64),
            ("dividends", U64),
            ("trust", U64),
            ("consensus", U64),
            ("last_emission", A),
            ("total_emission", A),
        ],
    },
    TableDef {
        name: "weights",
        refresh: Refresh::Snapshot,
        about: "the last revealed weight of each validator on each miner",
        columns: &[
            ("subnet_id", U64),
            ("validator_uid", U64),
            ("miner_uid", U64),
            ("weight", U64),
            ("revealed_at", U64),
        ],
    },
    TableDef {
        name: "emissions",
        refresh: Refresh::Snapshot,
        about: "what each neuron was paid at each recent subnet epoch",
        columns: &[
            ("subnet_id", U64),
            ("epoch", U64),
            ("height", U64),
            ("uid", U64),
            ("account", S),
            ("amount", A),
        ],
    },
    TableDef {
        name: "providers",
        refresh: Refresh::Snapshot,
        about: "compute market providers registered now",
        columns: &[
            ("address", S),
            ("endpoint", S),
            ("cores", U64),
            ("memory_mib", U64),
            ("gpu_model", S),
            ("gpu_count", U64),
            ("region", S),
            ("price_per_block", A),
            ("price_per_token", A),
            ("bond", A),
            ("registered_at", U64),
            ("active_leases", U64),
        ],
    },
    TableDef {
        name: "labels",
        refresh: Refresh::Snapshot,
        about: "human names of addresses; source is keyring, validator, provider or user",
        columns: &[("address", S), ("name", S), ("source", S)],
    },
];

/// The declared table called `name`.
pub fn table(name: &str) -> Option<&'static TableDef> {
    TABLES.iter().find(|t| t.name == name)
}

impl TableDef {
    /// The Arrow schema (amount columns doubled into base units and HIB).
    pub fn schema(&self) -> SchemaRef {
        let mut fields = Vec::new();
        for (name, kind) in self.columns {
            match kind {
                Kind::U64 => fields.push(Field::new(*name, DataType::UInt64, true)),
                Kind::I64 => fields.push(Field::new(*name, DataType::Int64, true)),
                Kind::Str => fields.push(Field::new(*name, DataType::Utf8, true)),
                Kind::Bool => fields.push(Field::new(*name, DataType::Boolean, true)),
                Kind::Time => fields.push(Field::new(
                    *name,
                    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                    true,
                )),
                Kind::Amount => {
                    fields.push(Field::new(
                        *name,
                        DataType::Decimal128(AMOUNT_PRECISION, 0),
                        true,
                    ));
                    fields.push(Field::new(
                        format!("{name}_hib"),
                        DataType::Decimal128(AMOUNT_PRECISION, HIB_DECIMALS),
                        true,
                    ));
                }
            }
        }
        Arc::new(Schema::new(fields))
    }

    /// Builds a record batch from rows; a row of the wrong shape is an error.
    pub fn batch(&self, rows: &[Row]) -> Result<RecordBatch, AnalyticsError> {
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for (i, (name, kind)) in self.columns.iter().enumerate() {
            let cells = rows.iter().map(|r| r.get(i));
            let mismatch = || AnalyticsError::Row {
                table: self.name,
                column: name,
            };
            match kind {
                Kind::U64 => {
                    let mut b = UInt64Builder::with_capacity(rows.len());
                    for c in cells {
                        match c {
                            Some(Cell::U64(v)) => b.append_option(*v),
                            _ => return Err(mismatch()),
                        }
                    }
                    arrays.push(Arc::new(b.finish()));
                }
                Kind::I64 => {
                    let mut b = Int64Builder::with_capacity(rows.len());
                    for c in cells {
                        match c {
                            Some(Cell::I64(v)) => b.append_option(*v),
                            _ => return Err(mismatch()),
                        }
                    }
                    arrays.push(Arc::new(b.finish()));
                }
                Kind::Str => {
                    let mut b = StringBuilder::new();
                    for c in cells {
                        match c {
                            Some(Cell::Str(v)) => b.append_option(v.as_deref()),
                            _ => return Err(mismatch()),
                        }
                    }
                    arrays.push(Arc::new(b.finish()));
                }
                Kind::Bool => {
                    let mut b = BooleanBuilder::with_capacity(rows.len());
                    for c in cells {
                        match c {
                            Some(Cell::Bool(v)) => b.append_option(*v),
                            _ => return Err(mismatch()),
                        }
                    }
                    arrays.push(Arc::new(b.finish()));
                }
                Kind::Time => {
                    let mut b =
                        TimestampMillisecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
                    for c in cells {
                        match c {
                            Some(Cell::Time(v)) => {
                                b.append_option(v.and_then(|ms| i64::try_from(ms).ok()))
                            }
                            _ => return Err(mismatch()),
                        }
                    }
                    arrays.push(Arc::new(b.finish()));
                }
                Kind::Amount => {
                    let mut values = Vec::with_capacity(rows.len());
                    for c in cells {
                        match c {
                            Some(Cell::Amount(v)) => values.push(match v {
                                Some(v) if *v > MAX_AMOUNT => {
                                    return Err(AnalyticsError::AmountTooLarge(*v));
                                }
                                // Cannot fail: at most 10^38 - 1 < i128::MAX.
                                Some(v) => Some(i128::try_from(*v).unwrap_or(i128::MAX)),
                                None => None,
                            }),
                            _ => return Err(mismatch()),
                        }
                    }
                    for scale in [0, HIB_DECIMALS] {
                        let mut b = Decimal128Builder::with_capacity(values.len())
                            .with_precision_and_scale(AMOUNT_PRECISION, scale)
                            .map_err(AnalyticsError::Arrow)?;
                        for v in &values {
                            b.append_option(*v);
                        }
                        arrays.push(Arc::new(b.finish()));
                    }
                }
            }
        }
        if rows.iter().any(|r| r.len() != self.columns.len()) {
            return Err(AnalyticsError::Row {
                table: self.name,
                column: "(row length)",
            });
        }
        RecordBatch::try_new(self.schema(), arrays).map_err(AnalyticsError::Arrow)
    }
}

/// Shorthands for building rows.
pub mod cell {
    use super::Cell;

    /// A present unsigned integer.
    pub fn u64(v: u64) -> Cell {
        Cell::U64(Some(v))
    }
    /// An unsigned integer parsed from an event attribute; NULL if absent or not a number.
    pub fn u64_of(v: Option<&str>) -> Cell {
        Cell::U64(v.and_then(|s| s.parse().ok()))
    }
    /// A present text.
    pub fn str(v: impl Into<String>) -> Cell {
        Cell::Str(Some(v.into()))
    }
    /// An optional text.
    pub fn opt_str(v: Option<&str>) -> Cell {
        Cell::Str(v.map(str::to_string))
    }
    /// A present amount in base units.
    pub fn amount(v: u128) -> Cell {
        Cell::Amount(Some(v))
    }
    /// An amount parsed from an event attribute; NULL if absent or not a number.
    pub fn amount_of(v: Option<&str>) -> Cell {
        Cell::Amount(v.and_then(|s| s.parse().ok()))
    }
    /// A present time.
    pub fn time(ms: u64) -> Cell {
        Cell::Time(Some(ms))
    }
    /// A present boolean.
    pub fn bool(v: bool) -> Cell {
        Cell::Bool(Some(v))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arrow::array::Decimal128Array;

    #[test]
    fn amounts_become_base_units_and_hib_side_by_side() {
        let def = table("transfers").unwrap();
        let row = vec![
            cell::u64(7),
            cell::time(1_700_000_000_000),
            cell::str("ab"),
            cell::u64(0),
            cell::str("hib1from"),
            cell::str("hib1to"),
            cell::amount(1_500_000_000),
        ];
        let batch = def.batch(&[row]).unwrap();
        let names: Vec<_> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            names,
            [
                "height",
                "time",
                "tx_hash",
                "event_index",
                "from",
                "to",
                "amount",
                "amount_hib"
            ]
        );
        let base = batch
            .column(6)
            .as_any()
            .downcast_ref::<Decimal128Array>()
            .unwrap();
        let hib = batch
            .column(7)
            .as_any()
            .downcast_ref::<Decimal128Array>()
            .unwrap();
        assert_eq!(base.value_as_string(0), "1500000000");
        assert_eq!(hib.value_as_string(0), "1.500000000");
    }

    #[test]
    fn a_row_of_the_wrong_shape_is_refused() {
        let def = table("labels").unwrap();
        let err = def.batch(&[vec![cell::u64(1)]]).unwrap_err();
        assert!(err.to_string().contains("labels"), "{err}");
        let short = def.batch(&[vec![cell::str("a"), cell::str("b")]]);
        assert!(short.is_err());
    }

    #[test]
    fn an_amount_too_large_for_decimal128_is_an_error_not_a_wrong_number() {
        let def = table("fees").unwrap();
        let row = vec![
            cell::u64(1),
            cell::time(1),
            cell::str("h"),
            cell::str("p"),
            cell::str("q"),
            cell::amount(u128::MAX),
        ];
        assert!(matches!(
            def.batch(&[row]),
            Err(AnalyticsError::AmountTooLarge(_))
        ));
    }

    #[test]
    fn table_names_are_unique_lowercase_snake_case() {
        let mut names: Vec<_> = TABLES.iter().map(|t| t.name).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
        names.sort();
        names.dedup();
        assert_eq!(names.len(), TABLES.len());
        assert!(
            TABLES
                .iter()
                .all(|t| t.schema().fields().len() >= t.columns.len())
        );
    }
}
