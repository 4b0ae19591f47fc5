//! Challenges against signed inference receipts on the command line: `challenge submit`, `list`,
//! `show` and `vote`.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand, ValueEnum};
use hibana_rpc::{ChallengeView, ChallengeVote, RpcClient};
use hibana_types::records::verify::{Challenge, ChallengeFilter, ChallengeStatus};
use hibana_types::{ChallengeReceipt, InferenceReceipt, Message, VoteChallenge};

use crate::{
    cli::common::{NodeHome, TxFlags, client, resolve_account, send, signing_key},
    output::print_json,
};

/// `hibana challenge …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ChallengeCommand {
    /// Challenge a provider's signed answer as wrong, locking a deposit.
    ///
    /// The deposit (at least 1 HIB) stays locked until the subnet's validators decide. The
    /// receipt is the hex of the `x-hibana-receipt` header; the files hold the exact request
    /// and response bytes it covers (for a stream, each data payload followed by a newline).
    Submit(Box<SubmitArgs>),
    /// List challenges, newest first.
    List(ListArgs),
    /// Show a challenge: its receipt, votes, outcome, and the request and response to re-check.
    Show {
        /// The challenge id.
        id: u64,
        /// Write the request bytes to this file (to re-run it).
        #[arg(long)]
        request_out: Option<PathBuf>,
        /// Write the response bytes to this file.
        #[arg(long)]
        response_out: Option<PathBuf>,
        #[command(flatten)]
        node: NodeHome,
    },
    /// Vote on an open challenge as a validator of its subnet (one vote, weighted by stake).
    Vote(VoteArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    /// The subnet whose validators judge (id or name): one the provider serves as a miner.
    #[arg(long)]
    subnet: String,
    /// The signed receipt, hex (the `x-hibana-receipt` header).
    #[arg(long)]
    receipt: String,
    /// File with the exact request bytes.
    #[arg(long)]
    request: PathBuf,
    /// File with the exact response bytes.
    #[arg(long)]
    response: PathBuf,
    /// Deposit, e.g. 1HIB: lost if the validators find the answer right.
    #[arg(long)]
    deposit: String,
    #[command(flatten)]
    tx: TxFlags,
}

/// A challenge's status, as `--status` takes it.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum StatusArg {
    Open,
    Upheld,
    Rejected,
    NoQuorum,
}

impl From<StatusArg> for ChallengeStatus {
    fn from(s: StatusArg) -> ChallengeStatus {
        match s {
            StatusArg::Open => ChallengeStatus::Open,
            StatusArg::Upheld => ChallengeStatus::Upheld,
            StatusArg::Rejected => ChallengeStatus::Rejected,
            StatusArg::NoQuorum => ChallengeStatus::NoQuorum,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only challenges in this status.
    #[arg(long, value_enum)]
    status: Option<StatusArg>,
    /// Only challenges judged by this subnet (id or name).
    #[arg(long)]
    subnet: Option<String>,
    /// Only challenges against this provider (address or key name).
    #[arg(long)]
    provider: Option<String>,
    /// Only challenges with a smaller id (to page back).
    #[arg(long)]
    before: Option<u64>,
    /// At most this many (at most 100).
    #[arg(long, default_value_t = 20)]
    limit: u32,
    #[command(flatten)]
    node: NodeHome,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("verdict").required(true).args(["wrong", "right"]))]
pub(crate) struct VoteArgs {
    /// The challenge id.
    id: u64,
    /// The provider's answer is wrong: uphold the challenge.
    #[arg(long)]
    wrong: bool,
    /// The provider's answer is right: reject the challenge.
    #[arg(long)]
    right: bool,
    #[command(flatten)]
    tx: TxFlags,
}

/// A subnet id from an id or a name.
async fn subnet_id(client: &RpcClient, key: &str) -> Result<u32> {
    if let Ok(id) = key.trim().parse::<u32>() {
        return Ok(id);
    }
    let view = client
        .subnet(key)
        .await?
        .ok_or_else(|| anyhow!("no subnet named {key:?}; see `hibana subnet list`"))?;
    Ok(view.subnet.id)
}

fn read(path: &PathBuf, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read the {what} file {}", path.display()))
}

/// `hibana challenge …`.
pub(crate) async fn challenge(
    cmd: ChallengeCommand,
    rpc: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    match cmd {
        ChallengeCommand::Submit(a) => {
            let client = client(rpc, a.tx.keys.home.as_deref())?;
            let receipt = InferenceReceipt::from_hex(&a.receipt).context("--receipt")?;
            let message = Message::ChallengeReceipt(ChallengeReceipt {
                subnet: subnet_id(&client, &a.subnet).await?,
                receipt,
                request: read(&a.request, "request")?,
                response: read(&a.response, "response")?,
                deposit: a.deposit.parse().context("--deposit")?,
            });
            let key = signing_key(&a.tx.from, &a.tx.keys)?;
            send(&client, &key, message, &a.tx, json).await
        }
        ChallengeCommand::List(a) => {
            let client = client(rpc, a.node.home.as_deref())?;
            let subnet = match &a.subnet {
                Some(key) => Some(subnet_id(&client, key).await?),
                None => None,
            };
            let provider = a
                .provider
                .as_deref()
                .map(|p| resolve_account(p, a.node.home.as_deref(), None))
                .transpose()?;
            let filter = ChallengeFilter {
                status: a.status.map(Into::into),
                subnet,
                provider,
                before: a.before,
                limit: Some(a.limit),
            };
            let list = client.challenges(filter).await?;
            if json {
                print_json(&list)?;
            } else if list.is_empty() {
                println!("No challenges match.");
            } else {
                for c in &list {
                    print_summary(c);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ChallengeCommand::Show {
            id,
            request_out,
            response_out,
            node,
        } => {
            let client = client(rpc, node.home.as_deref())?;
            let view = client
                .challenge(id)
                .await?
                .ok_or_else(|| anyhow!("no challenge {id}; see `hibana challenge list`"))?;
            if let Some(path) = &request_out {
                std::fs::write(path, &view.request)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            if let Some(path) = &response_out {
                std::fs::write(path, &view.response)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            if json {
                print_json(&view)?;
            } else {
                print_view(&view);
            }
            Ok(ExitCode::SUCCESS)
        }
        ChallengeCommand::Vote(a) => {
            let client = client(rpc, a.tx.keys.home.as_deref())?;
            let key = signing_key(&a.tx.from, &a.tx.keys)?;
            let message = Message::VoteChallenge(VoteChallenge {
                id: a.id,
                wrong: a.wrong,
            });
            send(&client, &key, message, &a.tx, json).await
        }
    }
}

fn print_summary(c: &Challenge) {
    let judges = if c.subnet == hibana_types::records::verify::CHAIN_JUDGED {
        "a batch line, judged by the chain's validators".to_string()
    } else {
        format!("in subnet {}", c.subnet)
    };
    println!(
        "Challenge {} ({}) {judges}: provider {}, by {}",
        c.id,
        c.status.name(),
        c.provider,
        c.challenger
    );
    println!(
        "  deposit {}, bond held {}, opened at {}, votes until {}; wrong {} / right {} of {} stake ({} vote(s))",
        c.deposit,
        c.held,
        c.opened_at,
        c.deadline,
        c.wrong_stake,
        c.right_stake,
        c.electorate_stake,
        c.votes
    );
}

/// Bytes as text if they are UTF-8 (cut at 2000 characters), else their size.
fn preview(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.chars().count() > 2000 => {
            format!(
                "{}… ({} bytes)",
                text.chars().take(2000).collect::<String>(),
                bytes.len()
            )
        }
        Ok(text) => text.to_string(),
        Err(_) => format!(
            "({} bytes, not UTF-8: save them with --request-out/--response-out)",
            bytes.len()
        ),
    }
}

fn print_view(v: &ChallengeView) {
    let c = &v.challenge;
    print_summary(c);
    let r = &c.receipt.body;
    println!(
        "  receipt {}: model {}, {} prompt + {} completion tokens, price {}, signed at {} ms",
        c.receipt_id, r.model_hash, r.prompt_tokens, r.completion_tokens, r.price, r.timestamp_ms
    );
    for e in &v.electorate {
        let vote = match e.vote {
            Some(ChallengeVote::Wrong) => "wrong",
            Some(ChallengeVote::Right) => "right",
            None => "not voted",
        };
        println!("  elector {} (stake {}): {vote}", e.account, e.stake);
    }
    if let Some(s) = &c.settlement {
        println!(
            "  resolved at {}: slashed {}, bond returned {}, deposit returned {}, refund {}, reward {}, burned {}",
            s.height,
            s.slashed,
            s.bond_returned,
            s.deposit_returned,
            s.refund,
            s.challenger_reward,
            s.burned
        );
        for (voter, share) in &s.voters {
            println!("  paid {share} to voter {voter}");
        }
    }
    println!("  request: {}", preview(&v.request));
    println!("  response: {}", preview(&v.response));
}
