//! `hibana tx …`: transfer, stake, unstake, and report a validator's equivocation.

use std::{fs, path::PathBuf, process::ExitCode};

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use hibana_types::{Bond, Message, Transfer, Unbond};

use crate::cli::common::{TxFlags, client, resolve_account, send, signing_key};

/// `hibana tx …`.
#[derive(Debug, Subcommand)]
pub(crate) enum TxCommand {
    /// Transfer tokens.
    Transfer {
        /// Recipient: an address or a key name.
        #[arg(long)]
        to: String,
        /// Amount, e.g. 1.5HIB or 1500000000 (base units).
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// Bond tokens to a validator (yourself, to become one).
    Stake {
        /// Amount to bond.
        #[arg(long)]
        amount: String,
        /// Validator address (default: the largest validator; `self` to become a validator).
        #[arg(long)]
        validator: Option<String>,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// Report a validator's equivocation (two conflicting signed votes, as JSON): it is
    /// slashed and jailed.
    Evidence {
        /// JSON file: {"public_key", "first": {"vote", "signature"}, "second": {…}}.
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// Return your jailed validator to the validator set, once the unbonding period has
    /// passed since it was jailed (sign with the validator's key: `--from validator --home DIR`).
    Unjail {
        #[command(flatten)]
        tx: TxFlags,
    },
    /// Unbond tokens; they return after the unbonding period.
    Unstake {
        /// Amount to unbond.
        #[arg(long)]
        amount: String,
        /// Validator address (default: the one you are bonded to, if only one).
        #[arg(long)]
        validator: Option<String>,
        #[command(flatten)]
        tx: TxFlags,
    },
}

/// Signs and sends the transaction of a `hibana tx` command.
pub(crate) async fn run(cmd: TxCommand, rpc: Option<&str>, json: bool) -> Result<ExitCode> {
    let flags = match &cmd {
        TxCommand::Transfer { tx, .. }
        | TxCommand::Stake { tx, .. }
        | TxCommand::Evidence { tx, .. }
        | TxCommand::Unjail { tx }
        | TxCommand::Unstake { tx, .. } => tx,
    };
    let home = flags.keys.home.clone();
    let client = client(rpc, home.as_deref())?;
    let key = signing_key(&flags.from, &flags.keys)?;
    let sender = key.public_key().address();
    let message = match &cmd {
        TxCommand::Transfer { to, amount, tx } => {
            let to = resolve_account(to, home.as_deref(), Some(&tx.keys))?;
            Message::Transfer(Transfer {
                to,
                amount: amount.parse()?,
            })
        }
        TxCommand::Stake {
            amount, validator, ..
        } => {
            let validator = match validator.as_deref() {
                Some("self") => sender,
                Some(v) => v.parse()?,
                None => {
                    let status = client.status().await?;
                    status
                        .validators
                        .first()
                        .map(|v| v.address)
                        .ok_or_else(|| anyhow!("the chain has no validators"))?
                }
            };
            Message::Bond(Bond {
                validator,
                amount: amount.parse()?,
            })
        }
        TxCommand::Evidence { file, .. } => {
            let text = fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let equivocation: hibana_types::Equivocation = serde_json::from_str(&text)
                .with_context(|| format!("{} is not equivocation evidence", file.display()))?;
            Message::SubmitEvidence(hibana_types::SubmitEvidence { equivocation })
        }
        TxCommand::Unjail { .. } => Message::Unjail(hibana_types::Unjail {}),
        TxCommand::Unstake {
            amount, validator, ..
        } => {
            let validator = match validator.as_deref() {
                Some("self") => sender,
                Some(v) => v.parse()?,
                None => {
                    let account = client.account_verified(&sender).await?;
                    match account.delegations.as_slice() {
                        [one] => one.validator,
                        [] => bail!("{sender} has nothing bonded"),
                        _ => bail!(
                            "{sender} is bonded to several validators: choose one with --validator"
                        ),
                    }
                }
            };
            Message::Unbond(Unbond {
                validator,
                amount: amount.parse()?,
            })
        }
    };
    send(&client, &key, message, flags, json).await
}
