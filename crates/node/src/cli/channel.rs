//! Payment channels on the command line: `channel open|top-up|status|close|redeem|voucher`.

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use hibana_rpc::RpcClient;
use hibana_types::records::channels::{Channel, ChannelStatus, SignedVoucher, Voucher};
use hibana_types::{
    Amount, CloseChannel, Message, OpenChannel, PublicKey, RedeemVouchers, TopUpChannel,
};

use crate::{
    cli::common::{NodeHome, TxFlags, client, resolve_account, send, sign_and_send, signing_key},
    output::print_json,
};

/// Blocks a channel stays open by default before its payer may close it at once (about a
/// week at one block a second).
const DEFAULT_CHANNEL_BLOCKS: u64 = 600_000;

/// `hibana channel …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ChannelCommand {
    /// Lock a deposit for a payee, who redeems vouchers against it.
    Open {
        /// Who is paid (address or key name), e.g. a gateway's operator.
        #[arg(long)]
        to: String,
        /// Deposit, e.g. 5HIB.
        #[arg(long)]
        deposit: String,
        /// Blocks until the payer may close at once.
        #[arg(long, default_value_t = DEFAULT_CHANNEL_BLOCKS)]
        expires_in: u64,
        /// A gateway API key whose vouchers the channel honours: the gateway then bills the
        /// key's requests to this channel.
        #[arg(long, conflicts_with = "signer")]
        api_key: Option<String>,
        /// Another public key whose vouchers the channel honours (default: the payer's).
        #[arg(long)]
        signer: Option<PublicKey>,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// Add to a channel's deposit, and/or move its expiry later.
    TopUp {
        /// The channel id.
        channel: u64,
        /// Tokens to add, e.g. 1HIB.
        #[arg(long, default_value = "0")]
        amount: String,
        /// Move the expiry to this many blocks from now.
        #[arg(long)]
        expires_in: Option<u64>,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// Show a channel, or list the open channels an account pays.
    Status {
        /// The channel id (or use --payer).
        channel: Option<u64>,
        /// List the open channels this account (address or key name) pays.
        #[arg(long, conflicts_with = "channel")]
        payer: Option<String>,
        /// With --payer: only those paying this account.
        #[arg(long, requires = "payer")]
        payee: Option<String>,
        #[command(flatten)]
        node: NodeHome,
    },
    /// Close a channel: the payee at once; the payer at once from the expiry, before it by
    /// starting a settle delay (run again after it).
    Close {
        /// The channel id.
        channel: u64,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// As the payee, redeem vouchers (hex, at most one per channel): each pays what it adds to
    /// what its channel paid before.
    Redeem {
        /// Signed vouchers in hex, as `channel voucher` prints them.
        #[arg(required = true)]
        vouchers: Vec<String>,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// As the payer (or its signer key), sign a voucher for the cumulative amount owed on a
    /// channel; prints it in hex for the payee.
    Voucher {
        /// The channel id.
        channel: u64,
        /// Everything owed on the channel so far, e.g. 0.5HIB.
        #[arg(long)]
        cumulative: String,
        /// Higher than any voucher signed on the channel before.
        #[arg(long)]
        nonce: u64,
        /// Name of the signing key.
        #[arg(long)]
        from: String,
        #[command(flatten)]
        keys: crate::cli::common::KeySource,
    },
}

fn status(c: &Channel, height: u64) -> String {
    match (c.status, c.settling_until) {
        (ChannelStatus::Closed, _) => format!("closed at {}", c.closed_at.unwrap_or_default()),
        (ChannelStatus::Open, Some(until)) if height > until => {
            format!("settled at {until}: the payer may close it")
        }
        (ChannelStatus::Open, Some(until)) => format!("closing: redeemable until {until}"),
        (ChannelStatus::Open, None) if height >= c.expires_at => {
            "expired: the payer may close it".into()
        }
        (ChannelStatus::Open, None) => "open".into(),
    }
}

fn print_channel(c: &Channel, height: u64) {
    println!(
        "Channel {} ({}) from {} to {}",
        c.id,
        status(c, height),
        c.payer,
        c.payee
    );
    println!(
        "  deposit {}, redeemed {} (nonce {}), left {}",
        c.deposit,
        c.redeemed,
        c.nonce,
        c.remaining()
    );
    println!(
        "  opened at {}, expires at {}, vouchers signed by {}",
        c.opened_at, c.expires_at, c.signer
    );
}

async fn expiry(client: &RpcClient, blocks: u64) -> Result<u64> {
    // The transaction lands in a later block than the one seen now; count from there.
    Ok(client
        .status()
        .await?
        .height
        .saturating_add(1)
        .saturating_add(blocks.max(1)))
}

/// `hibana channel …`.
pub(crate) async fn channel(
    cmd: ChannelCommand,
    rpc: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    match cmd {
        ChannelCommand::Open {
            to,
            deposit,
            expires_in,
            api_key,
            signer,
            tx,
        } => {
            let client = client(rpc, tx.keys.home.as_deref())?;
            let payee = resolve_account(&to, tx.keys.home.as_deref(), Some(&tx.keys))?;
            let signer = match api_key {
                Some(secret) => Some(hibana_roles::keys::voucher_signer(&secret).public_key()),
                None => signer,
            };
            let message = Message::OpenChannel(OpenChannel {
                payee,
                signer,
                deposit: deposit.parse().context("--deposit")?,
                expires_at: expiry(&client, expires_in).await?,
            });
            let key = signing_key(&tx.from, &tx.keys)?;
            send(&client, &key, message, &tx, json).await
        }
        ChannelCommand::TopUp {
            channel,
            amount,
            expires_in,
            tx,
        } => {
            let client = client(rpc, tx.keys.home.as_deref())?;
            let expires_at = match expires_in {
                Some(blocks) => Some(expiry(&client, blocks).await?),
                None => None,
            };
            let message = Message::TopUpChannel(TopUpChannel {
                channel,
                amount: amount.parse().context("--amount")?,
                expires_at,
            });
            let key = signing_key(&tx.from, &tx.keys)?;
            send(&client, &key, message, &tx, json).await
        }
        ChannelCommand::Status {
            channel,
            payer,
            payee,
            node,
        } => {
            let home = node.home.as_deref();
            let client = client(rpc, home)?;
            let (height, list) = match (channel, payer) {
                (Some(id), _) => {
                    let (height, c) = client.channel(id).await?;
                    let c = c.ok_or_else(|| anyhow!("no channel {id}"))?;
                    (height, vec![c])
                }
                (None, Some(payer)) => {
                    let payer = resolve_account(&payer, home, None)?;
                    let payee = payee.map(|p| resolve_account(&p, home, None)).transpose()?;
                    let view = client.channels(payer, payee).await?;
                    (view.height, view.channels)
                }
                (None, None) => bail!("name a channel id, or --payer ACCOUNT to list"),
            };
            if json {
                print_json(&serde_json::json!({"height": height, "channels": list}))?;
            } else if list.is_empty() {
                println!("No open channels. Open one with `hibana channel open`.");
            } else {
                for c in &list {
                    print_channel(c, height);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ChannelCommand::Close { channel, tx } => {
            sign_and_send(
                rpc,
                Message::CloseChannel(CloseChannel { channel }),
                &tx,
                json,
            )
            .await
        }
        ChannelCommand::Redeem { vouchers, tx } => {
            let vouchers = vouchers
                .iter()
                .map(|v| SignedVoucher::from_hex(v).map_err(|e| anyhow!(e)))
                .collect::<Result<Vec<_>>>()?;
            let message = Message::RedeemVouchers(RedeemVouchers { vouchers });
            sign_and_send(rpc, message, &tx, json).await
        }
        ChannelCommand::Voucher {
            channel,
            cumulative,
            nonce,
            from,
            keys,
        } => {
            let client = client(rpc, keys.home.as_deref())?;
            let chain_id = client.status().await?.chain_id;
            let cumulative: Amount = cumulative.parse().context("--cumulative")?;
            let key = signing_key(&from, &keys)?;
            let voucher = Voucher {
                chain_id,
                channel,
                cumulative,
                nonce,
            }
            .sign(&key);
            if json {
                print_json(&serde_json::json!({"voucher": voucher.to_hex(), "signed": voucher}))?;
            } else {
                println!("{}", voucher.to_hex());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
