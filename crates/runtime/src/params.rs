//! Chain parameters and the genesis file.

use borsh::{BorshDeserialize, BorshSerialize};
use hibana_types::{Address, Amount, PublicKey};
use serde::{Deserialize, Serialize};

/// Chain-wide parameters, fixed at genesis.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Params {
    /// Smallest fee a transaction may pay.
    pub min_fee: Amount,
    /// Blocks between an unbond and the return of the tokens.
    pub unbonding_period: u64,
    /// Largest validator set.
    pub max_validators: u32,
    /// Most messages in one transaction.
    pub max_messages_per_tx: u32,
    /// Largest encoded transaction, in bytes.
    pub max_tx_bytes: u32,
    /// Most transactions in one block.
    pub max_block_txs: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            min_fee: Amount(1_000),
            unbonding_period: 20,
            max_validators: 100,
            max_messages_per_tx: 32,
            // A STARK inference proof is 150-200 KB and travels with its model's .zkm.
            max_tx_bytes: 512 * 1024,
            max_block_txs: 10_000,
        }
    }
}

/// An account funded at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// The account.
    pub address: Address,
    /// Its starting balance.
    pub balance: Amount,
}

/// A validator bonded at genesis; its stake is minted as bonded to itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    /// The validator's consensus and account key.
    pub public_key: PublicKey,
    /// Self-bonded stake.
    pub stake: Amount,
}

/// The genesis file: the chain's starting state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// The chain id every transaction must name.
    pub chain_id: String,
    /// Genesis time in milliseconds since the Unix epoch.
    pub genesis_time_ms: u64,
    /// Parameters.
    #[serde(default)]
    pub params: Params,
    /// Funded accounts.
    pub accounts: Vec<GenesisAccount>,
    /// Initial validators.
    pub validators: Vec<GenesisValidator>,
    /// The compute market's parameters.
    #[serde(default)]
    pub market: hibana_types::records::market::MarketParams,
}

/// A genesis file that cannot start a chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// The JSON does not parse.
    #[error("genesis file is not valid: {0}")]
    Parse(String),
    /// The content is inconsistent.
    #[error("genesis is invalid: {0}")]
    Invalid(String),
    /// Storage failed while writing it.
    #[error(transparent)]
    State(#[from] crate::StateError),
}

impl Genesis {
    /// Parses and validates a genesis JSON document.
    pub fn from_json(json: &str) -> Result<Genesis, GenesisError> {
        let genesis: Genesis =
            serde_json::from_str(json).map_err(|e| GenesisError::Parse(e.to_string()))?;
        genesis.validate()?;
        Ok(genesis)
    }

    /// Checks the genesis for consistency.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let bad = |m: String| Err(GenesisError::Invalid(m));
        if self.chain_id.is_empty()
            || self.chain_id.len() > 64
            || !self
                .chain_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return bad(format!(
                "chain id {:?} must be 1-64 characters of letters, digits, '-' or '_'",
                self.chain_id
            ));
        }
        if self.validators.is_empty() {
            return bad("at least one validator is required".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut total: u128 = 0;
        for account in &self.accounts {
            if !seen.insert(account.address) {
                return bad(format!("account {} is listed twice", account.address));
            }
            total = match total.checked_add(account.balance.0) {
                Some(t) => t,
                None => return bad("total supply overflows".into()),
            };
        }
        let mut keys = std::collections::BTreeSet::new();
        for v in &self.validators {
            if !keys.insert(v.public_key) {
                return bad(format!("validator {} is listed twice", v.public_key));
            }
            if v.public_key.verification_key().is_err() {
                return bad(format!(
                    "validator key {} is not a valid ed25519 key",
                    v.public_key
                ));
            }
            if v.stake.0 == 0 {
                return bad(format!(
                    "validator {} has zero stake",
                    v.public_key.address()
                ));
            }
            total = match total.checked_add(v.stake.0) {
                Some(t) => t,
                None => return bad("total supply overflows".into()),
            };
        }
        let p = &self.params;
        if p.max_validators == 0 || p.max_messages_per_tx == 0 || p.max_block_txs == 0 {
            return bad(
                "max_validators, max_messages_per_tx and max_block_txs must be positive".into(),
            );
        }
        if p.max_tx_bytes < 256 {
            return bad("max_tx_bytes must be at least 256".into());
        }
        Ok(())
    }
}
