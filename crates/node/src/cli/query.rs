//! `hibana query …` and `hibana status`: read chain state, accounts verified against the
//! block's state root.

use std::{path::Path, process::ExitCode};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use hibana_rpc::BlockId;
use hibana_types::Hash;

use crate::{
    cli::common::{
        KeySource, NodeHome, client, light_client, resolve_account, save_trust, trust_path,
    },
    output::{print_events, print_json, print_receipt},
};

/// `hibana query …`.
#[derive(Debug, Subcommand)]
pub(crate) enum QueryCommand {
    /// An account's balance, nonce and stake, verified against the block's state root.
    Account {
        /// Address or key name.
        account: String,
        #[command(flatten)]
        keys: KeySource,
    },
    /// A block by height or hash (default: the latest).
    Block {
        /// Height or block hash.
        id: Option<String>,
        #[command(flatten)]
        node: NodeHome,
    },
    /// A transaction and its receipt.
    Tx {
        /// Transaction hash.
        hash: String,
        #[command(flatten)]
        node: NodeHome,
    },
    /// Events of a block outside its transactions (returned stake, subnet epochs).
    Events {
        /// Height.
        height: u64,
        #[command(flatten)]
        node: NodeHome,
    },
}

/// Runs a `hibana query` command.
pub(crate) async fn run(cmd: QueryCommand, rpc: Option<&str>, json: bool) -> Result<ExitCode> {
    match cmd {
        QueryCommand::Account {
            account,
            keys: source,
        } => {
            let home = source.home.clone();
            let client = light_client(rpc, home.as_deref())?;
            let address = resolve_account(&account, home.as_deref(), Some(&source))?;
            let first_use = client.trusted().is_none();
            let view = match &home {
                Some(home) => {
                    let view = client.account_verified(&address).await.with_context(|| {
                        format!(
                            "the validator set trusted for this home is kept in {}",
                            trust_path(home).display()
                        )
                    })?;
                    save_trust(&client, home)?;
                    view
                }
                None => client.account_verified(&address).await?,
            };
            if json {
                print_json(&view)?;
            } else {
                println!("{}", view.address);
                println!("  balance: {}", view.balance);
                println!("  nonce:   {}", view.nonce);
                println!("  staked:  {}", view.stake);
                for d in &view.delegations {
                    println!("    {} to {}", d.tokens, d.validator);
                }
                match client.trusted() {
                    Some(t) => println!(
                        "  (verified: proven under the state root of block {}, whose commit \
                         more than 2/3 of its {} validators' power signed{})",
                        t.height,
                        t.validators.len(),
                        match (&home, first_use) {
                            (None, _) => "; pass --home to keep trusting this validator set",
                            (Some(_), true) => "; first use: this set is trusted from now on",
                            (Some(_), false) => "",
                        }
                    ),
                    None => println!("  (verified against the genesis state)"),
                }
            }
        }
        QueryCommand::Block { id, node } => {
            let client = client(rpc, node.home.as_deref())?;
            let id = match id {
                None => None,
                Some(s) => Some(match s.parse::<u64>() {
                    Ok(h) => BlockId::Height(h),
                    Err(_) => BlockId::Hash(s.parse::<Hash>()?),
                }),
            };
            let Some(view) = client.block(id).await? else {
                bail!("no such block");
            };
            if json {
                print_json(&view)?;
            } else {
                let h = &view.block.header;
                println!("block {} {}", h.height, view.hash);
                println!("  time:       {} ms", h.time_ms);
                println!("  proposer:   {}", h.proposer);
                println!("  parent:     {}", h.parent_hash);
                println!("  state root: {}", h.state_root);
                println!("  txs:        {}", view.block.txs.len());
                for tx in &view.block.txs {
                    println!("    {}", tx.hash());
                }
            }
        }
        QueryCommand::Events { height, node } => {
            let client = client(rpc, node.home.as_deref())?;
            let events = client.block_events(height).await?;
            if json {
                print_json(&events)?;
            } else if events.is_empty() {
                println!("Block {height} has no events outside its transactions.");
            } else {
                print_events(&events, "");
            }
        }
        QueryCommand::Tx { hash, node } => {
            let client = client(rpc, node.home.as_deref())?;
            let hash: Hash = hash.parse()?;
            let Some(view) = client.tx(&hash).await? else {
                let status = client.tx_status(&hash).await?;
                bail!(
                    "transaction {hash} is not committed (status: {})",
                    serde_json::to_string(&status)?
                );
            };
            if json {
                print_json(&view)?;
            } else {
                println!(
                    "tx {} from {} (nonce {})",
                    view.hash,
                    view.tx.sender(),
                    view.tx.tx.nonce
                );
                print_receipt(&view.receipt, false)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `hibana status`: the chain id, height, mempool and validators of the node.
pub(crate) async fn status(rpc: Option<&str>, home: Option<&Path>, json: bool) -> Result<ExitCode> {
    let client = client(rpc, home)?;
    let status = client.status().await?;
    if json {
        print_json(&status)?;
    } else {
        println!("chain:      {}", status.chain_id);
        println!("height:     {}", status.height);
        if let Some(hash) = status.latest_block_hash {
            println!("latest:     {hash}");
        }
        println!("state root: {}", status.state_root);
        println!("mempool:    {} txs", status.mempool_size);
        println!("validators:");
        for v in &status.validators {
            println!("  {} power {}", v.address, v.power);
        }
    }
    Ok(ExitCode::SUCCESS)
}
