//! The data network on the command line: `data bounty create|list|show|close|finalize`,
//! `data stake`, `data submit`, `data review`, `data export` and `data verify`.

use std::{
    io::{BufRead, Write},
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Subcommand, ValueEnum};
use hibana_roles::data::{Hints, ItemChecker, ItemSchema, canonical_item};
use hibana_rpc::RpcClient;
use hibana_types::records::data::{
    Bounty, BountyTerms, DatasetLeaf, GoldAnswer, Item, ItemStatus, gold_commitment,
    review_commitment,
};
use hibana_types::{
    Address, Amount, CloseBounty, CommitReview, CreateBounty, FinalizeDataset, Hash, JoinReviewers,
    MerkleStep, Message, RevealReview, SecretKey, SubmitContribution, merkle_proof,
    verify_merkle_proof,
};
use serde::{Deserialize, Serialize};

use crate::{
    cli::common::{NodeHome, TxFlags, client, send, sign_and_send, signing_key},
    home::data_dir,
    output::print_json,
};

/// `hibana data …`.
#[derive(Debug, Subcommand)]
pub(crate) enum DataCommand {
    /// Bounties: create, list, show, close, finalize.
    #[command(subcommand)]
    Bounty(BountyCommand),
    /// Stake in a bounty to review its items (or add to that stake).
    Stake {
        /// The bounty id.
        bounty: u64,
        /// Tokens to stake, e.g. 2HIB (at least the bounty's review stake when joining).
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// Submit the items of a JSONL file to a bounty, one contribution per line: each line is
    /// checked against the bounty's schema, uploaded to the node's blob store and submitted.
    Submit {
        /// The bounty id.
        bounty: u64,
        /// The items, one JSON value per line.
        file: PathBuf,
        /// Submit lines that fail the schema too (they will be rejected and their stake lost).
        #[arg(long)]
        skip_checks: bool,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// Review the items assigned to you: with no other flag, list them with the checks' hints;
    /// `--item N --accept|--reject` commits a verdict; `--reveal` reveals every committed
    /// verdict whose reveal window is open; `--auto` commits the hints' verdict on every item
    /// and reveals, as a scripted reviewer.
    Review {
        /// The item to commit a verdict on.
        #[arg(long, requires = "verdict")]
        item: Option<u64>,
        /// Accept the item.
        #[arg(long, group = "verdict")]
        accept: bool,
        /// Reject the item.
        #[arg(long, group = "verdict")]
        reject: bool,
        /// Reveal every committed verdict whose reveal window is open.
        #[arg(long, conflicts_with_all = ["item", "auto"])]
        reveal: bool,
        /// Commit the hints' verdict on every assigned item, and reveal.
        #[arg(long, conflicts_with = "item")]
        auto: bool,
        /// With --auto or --reveal: keep going until nothing is assigned, for at most this
        /// many seconds.
        #[arg(long)]
        wait: Option<u64>,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// Export a finalised dataset with each item's Merkle proof against the root on chain.
    Export {
        /// The dataset (bounty) id.
        dataset: u64,
        /// Output format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        node: NodeHome,
    },
    /// Check every item of an exported dataset (JSONL or Parquet) against the root on chain.
    Verify {
        /// The dataset (bounty) id.
        dataset: u64,
        /// The exported file (`.parquet` is read as Parquet, anything else as JSONL).
        file: PathBuf,
        #[command(flatten)]
        node: NodeHome,
    },
}

/// `hibana data bounty …`.
#[derive(Debug, Subcommand)]
pub(crate) enum BountyCommand {
    /// Open a bounty, escrowing `max-items` items' rewards.
    Create(Box<CreateArgs>),
    /// List bounties, open ones first.
    List {
        #[command(flatten)]
        node: NodeHome,
    },
    /// Show a bounty, its reviewers and its items.
    Show {
        /// The bounty id.
        bounty: u64,
        #[command(flatten)]
        node: NodeHome,
    },
    /// Stop a bounty's submissions now (items under review are still settled).
    Close {
        /// The bounty id.
        bounty: u64,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// Settle a bounty whose items are all settled and publish its dataset; the owner's gold
    /// answers saved at creation are revealed.
    Finalize {
        /// The bounty id.
        bounty: u64,
        /// The dataset's licence.
        #[arg(long, default_value = "CC-BY-4.0")]
        licence: String,
        #[command(flatten)]
        tx: TxFlags,
    },
}

/// `hibana data bounty create`.
#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
    /// A short title.
    #[arg(long)]
    title: String,
    /// The item schema: a JSON Schema, inline or as a file path.
    #[arg(long)]
    schema: String,
    /// Reward per accepted item, e.g. 1HIB.
    #[arg(long)]
    reward: String,
    /// Reward per item to each reviewer whose verdict matched the outcome.
    #[arg(long, default_value = "0.1HIB")]
    reviewer_reward: String,
    /// Reviewers assigned per item.
    #[arg(long, default_value_t = 3)]
    reviewers: u8,
    /// Share of the revealed stake (basis points) that must accept an item.
    #[arg(long, default_value_t = 6_000)]
    quorum_bps: u16,
    /// Stake locked per submitted item, lost if it is rejected.
    #[arg(long, default_value = "0.5HIB")]
    contribution_stake: String,
    /// Least stake a reviewer locks.
    #[arg(long, default_value = "2HIB")]
    review_stake: String,
    /// Share of its stake (basis points) a reviewer loses per item it voted against the
    /// outcome on or did not reveal.
    #[arg(long, default_value_t = 2_500)]
    slash_bps: u16,
    /// Blocks from now until submissions end.
    #[arg(long, default_value_t = 600)]
    deadline_in: u64,
    /// Most items the bounty takes.
    #[arg(long, default_value_t = 100)]
    max_items: u32,
    /// Blocks after a submission in which reviewers commit.
    #[arg(long, default_value_t = 20)]
    commit_blocks: u64,
    /// Blocks after that in which they reveal.
    #[arg(long, default_value_t = 20)]
    reveal_blocks: u64,
    /// Gold items, JSONL of `{"item": …, "accept": true|false}`: known answers that measure
    /// the reviewers. Only a commitment goes on chain; the answers are kept in the data
    /// directory and revealed when finalising. Submit the items from another account.
    #[arg(long)]
    gold: Option<PathBuf>,
    /// Least share of gold items (basis points) a reviewer must get right to be paid.
    #[arg(long, default_value_t = 6_000)]
    gold_floor_bps: u16,
    #[command(flatten)]
    tx: TxFlags,
}

/// How `data export` writes a dataset.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum ExportFormat {
    // No doc comments: clap would list them in `--help`.
    Jsonl,
    Parquet,
}

/// The gold answers and salt a bounty's owner keeps until finalising.
#[derive(Debug, Serialize, Deserialize)]
struct GoldFile {
    answers: Vec<GoldAnswer>,
    salt: Hash,
}

/// Where the owner's gold answers for a bounty are kept.
fn gold_path(home: Option<&Path>, chain_id: &str, bounty: u64) -> PathBuf {
    let dir = home.map_or_else(|| data_dir().join("bounties"), |h| h.join("bounties"));
    dir.join(format!("{chain_id}-{bounty}.gold.json"))
}

/// The salt of `key`'s commitment on `item`: derived from the key, so a reviewer needs no
/// local state to reveal later.
fn review_salt(key: &SecretKey, item: u64) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(b"hibana/data/review-salt/v1\0");
    h.update(&key.to_bytes());
    h.update(&item.to_be_bytes());
    Hash(*h.finalize().as_bytes())
}

fn parse_amount(text: &str, flag: &str) -> Result<Amount> {
    text.parse().with_context(|| format!("--{flag}"))
}

/// One exported row: an accepted item, its provenance and its proof.
#[derive(Debug, Serialize, Deserialize)]
struct Row {
    dataset: u64,
    item: u64,
    contributor: Address,
    hash: Hash,
    content: String,
    proof: Vec<MerkleStep>,
    root: Hash,
}

/// `hibana data …`.
pub(crate) async fn data(cmd: DataCommand, rpc: Option<&str>, json: bool) -> Result<ExitCode> {
    match cmd {
        DataCommand::Bounty(cmd) => bounty(cmd, rpc, json).await,
        DataCommand::Stake { bounty, amount, tx } => {
            let message = Message::JoinReviewers(JoinReviewers {
                bounty,
                stake: parse_amount(&amount, "amount")?,
            });
            sign_and_send(rpc, message, &tx, json).await
        }
        DataCommand::Submit {
            bounty,
            file,
            skip_checks,
            tx,
        } => submit(rpc, bounty, &file, skip_checks, &tx, json).await,
        DataCommand::Review {
            item,
            accept,
            reject: _,
            reveal,
            auto,
            wait,
            tx,
        } => {
            let client = client(rpc, tx.keys.home.as_deref())?;
            let key = signing_key(&tx.from, &tx.keys)?;
            if let Some(item) = item {
                let message = Message::CommitReview(CommitReview {
                    item,
                    commitment: review_commitment(
                        item,
                        &key.public_key().address(),
                        accept,
                        &review_salt(&key, item),
                    ),
                });
                return send(&client, &key, message, &tx, json).await;
            }
            if !reveal && !auto {
                return list_assignments(&client, &key, json).await;
            }
            review_loop(&client, &key, &tx, auto, wait, json).await
        }
        DataCommand::Export {
            dataset,
            format,
            out,
            node,
        } => export(rpc, node.home.as_deref(), dataset, format, &out, json).await,
        DataCommand::Verify {
            dataset,
            file,
            node,
        } => verify(rpc, node.home.as_deref(), dataset, &file, json).await,
    }
}

async fn bounty(cmd: BountyCommand, rpc: Option<&str>, json: bool) -> Result<ExitCode> {
    match cmd {
        BountyCommand::Create(args) => create(rpc, *args, json).await,
        BountyCommand::List { node } => {
            let client = client(rpc, node.home.as_deref())?;
            let list = client.data_bounties(100).await?;
            if json {
                print_json(&list)?;
            } else if list.is_empty() {
                println!("No bounties. Open one with `hibana data bounty create`.");
            } else {
                for b in &list {
                    println!(
                        "Bounty {} ({:?}) \"{}\" by {}: {} of {} items submitted, {} accepted, {} per item, deadline {}",
                        b.id,
                        b.status,
                        b.terms.title,
                        b.owner,
                        b.submitted,
                        b.terms.max_items,
                        b.accepted,
                        b.terms.reward_per_item,
                        b.terms.deadline
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        BountyCommand::Show { bounty, node } => {
            let client = client(rpc, node.home.as_deref())?;
            let view = client
                .data_bounty(bounty)
                .await?
                .ok_or_else(|| anyhow!("no bounty {bounty}"))?;
            let items = client.data_items(bounty).await?;
            let dataset = client.data_dataset(bounty).await?.map(|d| d.dataset);
            if json {
                return print_json(&serde_json::json!({
                    "height": view.height,
                    "bounty": view.bounty,
                    "reviewers": view.reviewers,
                    "items": items,
                    "dataset": dataset,
                }))
                .map(|()| ExitCode::SUCCESS);
            }
            print_bounty(&view.bounty);
            for r in &view.reviewers {
                println!(
                    "  reviewer {}: stake {}, earned {}, {} assigned, {} revealed, {} agreed, {} missed, slashed {}, gold {}/{}",
                    r.address,
                    r.stake,
                    r.earned,
                    r.assigned,
                    r.revealed,
                    r.agreed,
                    r.missed,
                    r.slashed,
                    r.gold_right,
                    r.gold_seen
                );
            }
            for i in &items {
                println!(
                    "  item {} by {}: {:?}, {} bytes, hash {}",
                    i.id, i.contributor, i.status, i.size, i.hash
                );
            }
            if let Some(d) = dataset {
                println!(
                    "  dataset: {} items, root {}, licence {}, finalised at {}",
                    d.items.len(),
                    d.root,
                    d.licence,
                    d.finalized_at
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        BountyCommand::Close { bounty, tx } => {
            sign_and_send(rpc, Message::CloseBounty(CloseBounty { bounty }), &tx, json).await
        }
        BountyCommand::Finalize {
            bounty,
            licence,
            tx,
        } => {
            let client = client(rpc, tx.keys.home.as_deref())?;
            let chain_id = client.status().await?.chain_id;
            let view = client
                .data_bounty(bounty)
                .await?
                .ok_or_else(|| anyhow!("no bounty {bounty}"))?;
            let key = signing_key(&tx.from, &tx.keys)?;
            let is_owner = key.public_key().address() == view.bounty.owner;
            let (gold, gold_salt) = match view.bounty.terms.gold_commitment {
                Some(_) if is_owner => {
                    let path = gold_path(tx.keys.home.as_deref(), &chain_id, bounty);
                    let text = std::fs::read_to_string(&path).with_context(|| {
                        format!(
                            "bounty {bounty} committed to gold answers, kept in {}",
                            path.display()
                        )
                    })?;
                    let file: GoldFile = serde_json::from_str(&text)
                        .with_context(|| format!("{} is damaged", path.display()))?;
                    (file.answers, file.salt)
                }
                _ => (Vec::new(), Hash::ZERO),
            };
            let message = Message::FinalizeDataset(FinalizeDataset {
                bounty,
                licence,
                gold,
                gold_salt,
            });
            send(&client, &key, message, &tx, json).await
        }
    }
}

fn print_bounty(b: &Bounty) {
    println!(
        "Bounty {} ({:?}) \"{}\" by {}",
        b.id, b.status, b.terms.title, b.owner
    );
    println!(
        "  {} per accepted item, {} per reviewer; {} reviewers per item, quorum {} bps",
        b.terms.reward_per_item,
        b.terms.reviewer_reward,
        b.terms.reviewers_per_item,
        b.terms.quorum_bps
    );
    println!(
        "  stakes: {} per item, {} per reviewer (slash {} bps); deadline {}, windows {}+{} blocks",
        b.terms.contribution_stake,
        b.terms.review_stake,
        b.terms.slash_bps,
        b.terms.deadline,
        b.terms.commit_blocks,
        b.terms.reveal_blocks
    );
    println!(
        "  {} of {} items submitted: {} accepted, {} rejected, {} unreviewed, {} pending; escrow {}, paid {}, forfeited {}",
        b.submitted,
        b.terms.max_items,
        b.accepted,
        b.rejected,
        b.unreviewed,
        b.pending(),
        b.escrowed,
        b.paid,
        b.forfeited
    );
    println!("  schema: {}", b.terms.schema);
}

async fn create(rpc: Option<&str>, args: CreateArgs, json: bool) -> Result<ExitCode> {
    let tx = &args.tx;
    let client = client(rpc, tx.keys.home.as_deref())?;
    let status = client.status().await?;
    let schema = if Path::new(&args.schema).is_file() {
        std::fs::read_to_string(&args.schema)
            .with_context(|| format!("cannot read the schema {}", args.schema))?
    } else {
        args.schema.clone()
    };
    // A schema no reviewer could apply is refused here, before any token moves.
    ItemSchema::parse(&schema).map_err(|e| anyhow!(e))?;
    let gold = match &args.gold {
        Some(path) => Some(read_gold(path)?),
        None => None,
    };
    let gold_salt = Hash(rand::random());
    let terms = BountyTerms {
        title: args.title.clone(),
        schema,
        reward_per_item: parse_amount(&args.reward, "reward")?,
        reviewer_reward: parse_amount(&args.reviewer_reward, "reviewer-reward")?,
        reviewers_per_item: args.reviewers,
        quorum_bps: args.quorum_bps,
        contribution_stake: parse_amount(&args.contribution_stake, "contribution-stake")?,
        review_stake: parse_amount(&args.review_stake, "review-stake")?,
        slash_bps: args.slash_bps,
        deadline: status
            .height
            .saturating_add(1)
            .saturating_add(args.deadline_in),
        max_items: args.max_items,
        commit_blocks: args.commit_blocks,
        reveal_blocks: args.reveal_blocks,
        gold_commitment: gold.as_ref().map(|g| gold_commitment(g, &gold_salt)),
        gold_floor_bps: args.gold_floor_bps,
    };
    let key = signing_key(&tx.from, &tx.keys)?;
    let receipt = client
        .send(
            &key,
            vec![Message::CreateBounty(CreateBounty { terms })],
            tx.fee.as_deref().map(str::parse).transpose()?,
        )
        .await?;
    if let (Some(answers), true) = (gold, receipt.is_success()) {
        let id: u64 = receipt
            .events
            .iter()
            .find(|e| e.kind == "data.bounty_created")
            .and_then(|e| e.attributes.iter().find(|(k, _)| k == "bounty"))
            .and_then(|(_, v)| v.parse().ok())
            .ok_or_else(|| anyhow!("the receipt names no bounty"))?;
        let path = gold_path(tx.keys.home.as_deref(), &status.chain_id, id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = GoldFile {
            answers,
            salt: gold_salt,
        };
        std::fs::write(&path, serde_json::to_vec_pretty(&file)?)
            .with_context(|| format!("cannot keep the gold answers in {}", path.display()))?;
        eprintln!(
            "Gold answers kept in {} until `data bounty finalize {id}`.",
            path.display()
        );
    }
    crate::output::print_receipt(&receipt, json)?;
    Ok(if receipt.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Reads a gold file: JSONL of `{"item": …, "accept": bool}`.
fn read_gold(path: &Path) -> Result<Vec<GoldAnswer>> {
    #[derive(Deserialize)]
    struct Line {
        item: serde_json::Value,
        accept: bool,
    }
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut answers = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(&line).with_context(|| {
            format!(
                "{} line {}: expected {{\"item\": …, \"accept\": true|false}}",
                path.display(),
                n + 1
            )
        })?;
        let bytes = match parsed.item {
            serde_json::Value::String(raw) => canonical_item(raw.as_bytes()),
            value => serde_json::to_vec(&value)?,
        };
        answers.push(GoldAnswer {
            hash: Hash(*blake3::hash(&bytes).as_bytes()),
            accept: parsed.accept,
        });
    }
    Ok(answers)
}

/// The node's blob store URL for `hash` (or the upload URL without one).
fn blob_url(client: &RpcClient, hash: Option<&Hash>) -> String {
    let base = client.url().trim_end_matches('/');
    match hash {
        Some(h) => format!("{base}/blobs/{h}"),
        None => format!("{base}/blobs"),
    }
}

/// Uploads an item to the node's blob store; returns its hash.
async fn upload(http: &reqwest::Client, client: &RpcClient, bytes: Vec<u8>) -> Result<Hash> {
    let response = http
        .put(blob_url(client, None))
        .body(bytes)
        .send()
        .await
        .context("cannot reach the node's blob store")?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "the blob store refused the item (HTTP {status}): {}",
            body.get("error")
                .and_then(|e| e.as_str())
                .unwrap_or("no reason given")
        );
    }
    body.get("hash")
        .and_then(|h| h.as_str())
        .ok_or_else(|| anyhow!("the blob store answered without a hash"))?
        .parse()
        .map_err(|e| anyhow!("the blob store answered a bad hash: {e}"))
}

/// Fetches an item's bytes from the node's blob store, checking them against its hash.
pub(crate) async fn fetch(
    http: &reqwest::Client,
    client: &RpcClient,
    hash: &Hash,
    max: u64,
) -> Result<Vec<u8>> {
    let response = http
        .get(blob_url(client, Some(hash)))
        .send()
        .await
        .context("cannot reach the node's blob store")?;
    if !response.status().is_success() {
        bail!("the node holds no blob {hash} (HTTP {})", response.status());
    }
    if response.content_length().is_some_and(|n| n > max) {
        bail!("blob {hash} is larger than {max} bytes");
    }
    // Read at most `max` bytes whatever the node claims: a hostile node cannot make us buffer more.
    let mut response = response;
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if (bytes.len() + chunk.len()) as u64 > max {
            bail!("blob {hash} is larger than {max} bytes");
        }
        bytes.extend_from_slice(&chunk);
    }
    if blake3::hash(&bytes).as_bytes() != &hash.0 {
        bail!("the node's blob {hash} does not match its hash");
    }
    Ok(bytes)
}

async fn submit(
    rpc: Option<&str>,
    bounty: u64,
    file: &Path,
    skip_checks: bool,
    tx: &TxFlags,
    json: bool,
) -> Result<ExitCode> {
    let client = client(rpc, tx.keys.home.as_deref())?;
    let view = client
        .data_bounty(bounty)
        .await?
        .ok_or_else(|| anyhow!("no bounty {bounty}"))?;
    let schema = ItemSchema::parse(&view.bounty.terms.schema).map_err(|e| anyhow!(e))?;
    let text = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let lines: Vec<&[u8]> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .collect();
    if lines.is_empty() {
        bail!("{} holds no items", file.display());
    }
    // Every line is checked before anything is uploaded or paid, so a bad file costs nothing.
    let mut items = Vec::with_capacity(lines.len());
    for (n, line) in lines.iter().enumerate() {
        let bytes = canonical_item(line);
        let limit = hibana_types::records::data::MAX_ITEM_BYTES;
        if bytes.len() as u64 > limit {
            bail!(
                "line {} is {} bytes; items are at most {limit}",
                n + 1,
                bytes.len()
            );
        }
        if !skip_checks && let Err(e) = schema.check(&bytes) {
            bail!(
                "line {} does not fit bounty {bounty}'s schema: {e} (nothing was submitted)",
                n + 1
            );
        }
        items.push(bytes);
    }
    let key = signing_key(&tx.from, &tx.keys)?;
    let fee = tx.fee.as_deref().map(str::parse).transpose()?;
    let http = reqwest::Client::new();
    let bar = indicatif::ProgressBar::new(items.len() as u64);
    if json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut submitted = Vec::new();
    let mut failed = Vec::new();
    for (n, bytes) in items.into_iter().enumerate() {
        let size = bytes.len() as u64;
        let hash = upload(&http, &client, bytes).await?;
        let message = Message::SubmitContribution(SubmitContribution { bounty, hash, size });
        match client.send(&key, vec![message], fee).await {
            Ok(receipt) if receipt.is_success() => {
                let item = receipt
                    .events
                    .iter()
                    .find(|e| e.kind == "data.item_submitted")
                    .and_then(|e| e.attributes.iter().find(|(k, _)| k == "item"))
                    .and_then(|(_, v)| v.parse::<u64>().ok());
                submitted.push(serde_json::json!({"line": n + 1, "item": item, "hash": hash}));
            }
            Ok(receipt) => {
                let reason = match receipt.outcome {
                    hibana_types::TxOutcome::Failed(r) => r,
                    hibana_types::TxOutcome::Success => String::new(),
                };
                bar.suspend(|| eprintln!("line {}: refused: {reason}", n + 1));
                failed.push(serde_json::json!({"line": n + 1, "hash": hash, "error": reason}));
            }
            Err(e) => {
                bar.suspend(|| eprintln!("line {}: {e}", n + 1));
                failed
                    .push(serde_json::json!({"line": n + 1, "hash": hash, "error": e.to_string()}));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if json {
        print_json(&serde_json::json!({"submitted": submitted, "failed": failed}))?;
    } else {
        println!(
            "Submitted {} items to bounty {bounty}{}",
            submitted.len(),
            if failed.is_empty() {
                String::new()
            } else {
                format!("; {} refused (see above)", failed.len())
            }
        );
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Loads the embedding model the checks use.
fn load_embedder() -> Result<hibana_ai::embed::Embedder> {
    let info = hibana_ai::catalog::find(&hibana_ai::catalog::models_dir(), "all-minilm-l6-v2")
        .context("the data checks need the MiniLM embeddings: run `hibana models install`")?;
    Ok(hibana_ai::embed::Embedder::load(&info)?)
}

/// One checker per bounty, each keeping the embeddings of the items it has seen.
type Checkers<'e> = std::collections::BTreeMap<u64, ItemChecker<'e>>;

/// The hints for `item`, compared with its bounty's accepted and pending items submitted
/// before it (each fetched and embedded once per run, in `checkers`). An item whose bytes the
/// node cannot produce gets a schema error saying so.
async fn hints_for<'e>(
    http: &reqwest::Client,
    client: &RpcClient,
    embedder: &'e hibana_ai::embed::Embedder,
    checkers: &mut Checkers<'e>,
    item: &Item,
) -> Result<Hints> {
    let max = hibana_types::records::data::MAX_ITEM_BYTES;
    let bytes = match fetch(http, client, &item.hash, max).await {
        Ok(b) if b.len() as u64 == item.size => b,
        Ok(b) => {
            return Ok(unavailable(format!(
                "the item is {} bytes, not the {} its submission claims",
                b.len(),
                item.size
            )));
        }
        Err(e) => return Ok(unavailable(format!("the item cannot be fetched: {e}"))),
    };
    if let std::collections::btree_map::Entry::Vacant(slot) = checkers.entry(item.bounty) {
        let view = client
            .data_bounty(item.bounty)
            .await?
            .ok_or_else(|| anyhow!("no bounty {}", item.bounty))?;
        let schema = ItemSchema::parse(&view.bounty.terms.schema).map_err(|e| anyhow!(e))?;
        let checker = ItemChecker::new(embedder, schema).map_err(|e| anyhow!(e))?;
        slot.insert(checker);
    }
    let Some(checker) = checkers.get_mut(&item.bounty) else {
        bail!("no checker for bounty {}", item.bounty);
    };
    let items = client.data_items(item.bounty).await?;
    let counted: std::collections::BTreeSet<u64> = items
        .iter()
        .filter(|o| matches!(o.status, ItemStatus::Accepted | ItemStatus::Pending))
        .map(|o| o.id)
        .collect();
    for other in &items {
        if other.id < item.id
            && counted.contains(&other.id)
            && !checker.knows(other.id)
            && let Ok(b) = fetch(http, client, &other.hash, max).await
        {
            checker.remember(other.id, &b).map_err(|e| anyhow!(e))?;
        }
    }
    checker
        .check(item.id, &bytes, |id| counted.contains(&id))
        .map_err(|e| anyhow!(e))
}

fn unavailable(reason: String) -> Hints {
    Hints {
        schema_error: Some(reason),
        duplicate_of: None,
        flags: Vec::new(),
        labels: Vec::new(),
    }
}

async fn list_assignments(client: &RpcClient, key: &SecretKey, json: bool) -> Result<ExitCode> {
    let me = key.public_key().address();
    let view = client.data_assignments(me).await?;
    let http = reqwest::Client::new();
    let embedder = if view.items.is_empty() {
        None
    } else {
        Some(load_embedder()?)
    };
    let mut checkers = Checkers::new();
    let mut out = Vec::new();
    for item in &view.items {
        let hints = match &embedder {
            Some(e) => Some(hints_for(&http, client, e, &mut checkers, item).await?),
            None => None,
        };
        let slot = item.reviews.iter().find(|s| s.reviewer == me);
        let stage = match slot.map(|s| (s.commitment.is_some(), s.verdict.is_some())) {
            Some((false, _)) if view.height <= item.commit_until => "to commit",
            Some((true, false)) if item.reveals_open(view.height.saturating_add(1)) => "to reveal",
            Some((true, false)) => "committed",
            _ => "closed",
        };
        out.push(serde_json::json!({"item": item, "stage": stage, "hints": hints}));
        if !json {
            println!(
                "Item {} of bounty {} ({stage}; commit until {}, reveal until {})",
                item.id, item.bounty, item.commit_until, item.reveal_until
            );
            if let Some(h) = &hints {
                let (accept, reasons) = h.verdict();
                println!(
                    "  hints say {}{}",
                    if accept { "accept" } else { "reject" },
                    if reasons.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", reasons.join("; "))
                    }
                );
                for l in &h.labels {
                    println!(
                        "  label {} is \"{}\"; the zero-shot classifier says \"{}\"",
                        l.field, l.given, l.predicted
                    );
                }
            }
        }
    }
    if json {
        print_json(&serde_json::json!({"height": view.height, "assignments": out}))?;
    } else if out.is_empty() {
        println!("Nothing to review.");
    }
    Ok(ExitCode::SUCCESS)
}

/// Commits (with `auto`) and reveals what is due, pass after pass until nothing is assigned
/// or `wait` seconds have passed (one pass without `wait`).
async fn review_loop(
    client: &RpcClient,
    key: &SecretKey,
    tx: &TxFlags,
    auto: bool,
    wait: Option<u64>,
    json: bool,
) -> Result<ExitCode> {
    let me = key.public_key().address();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(wait.unwrap_or(0));
    let fee = tx.fee.as_deref().map(str::parse).transpose()?;
    // The scripted reviewer needs the model for its first commit; loaded once, up front.
    let embedder = if auto { Some(load_embedder()?) } else { None };
    let mut checkers = Checkers::new();
    let mut log = Vec::new();
    loop {
        let view = client.data_assignments(me).await?;
        // The next block is the earliest a transaction sent now lands in.
        let next = view.height.saturating_add(1);
        for item in &view.items {
            let Some(slot) = item.reviews.iter().find(|s| s.reviewer == me) else {
                continue;
            };
            let salt = review_salt(key, item.id);
            let message = match (slot.commitment, slot.verdict) {
                (None, _) if next <= item.commit_until && embedder.is_some() => {
                    let Some(e) = &embedder else { continue };
                    let hints = hints_for(&http, client, e, &mut checkers, item).await?;
                    let (accept, reasons) = hints.verdict();
                    log.push(serde_json::json!({
                        "item": item.id, "action": "commit", "accept": accept, "reasons": reasons
                    }));
                    if !json {
                        println!(
                            "Item {}: committing {}{}",
                            item.id,
                            if accept { "accept" } else { "reject" },
                            if reasons.is_empty() {
                                String::new()
                            } else {
                                format!(" ({})", reasons.join("; "))
                            }
                        );
                    }
                    Message::CommitReview(CommitReview {
                        item: item.id,
                        commitment: review_commitment(item.id, &me, accept, &salt),
                    })
                }
                (Some(commitment), None) if item.reveals_open(next) => {
                    let Some(accept) = [true, false]
                        .into_iter()
                        .find(|v| review_commitment(item.id, &me, *v, &salt) == commitment)
                    else {
                        bail!(
                            "item {}: the commitment on chain was not made with this key's salt; reveal it with the tool that made it",
                            item.id
                        );
                    };
                    log.push(
                        serde_json::json!({"item": item.id, "action": "reveal", "accept": accept}),
                    );
                    if !json {
                        println!(
                            "Item {}: revealing {}",
                            item.id,
                            if accept { "accept" } else { "reject" }
                        );
                    }
                    Message::RevealReview(RevealReview {
                        item: item.id,
                        accept,
                        salt,
                    })
                }
                _ => continue,
            };
            let receipt = client.send(key, vec![message], fee).await?;
            if let hibana_types::TxOutcome::Failed(reason) = &receipt.outcome {
                eprintln!("item {}: refused: {reason}", item.id);
            }
        }
        if view.items.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if json {
        print_json(&log)?;
    } else if log.is_empty() {
        println!("Nothing to commit or reveal now.");
    }
    std::io::stdout().flush()?;
    Ok(ExitCode::SUCCESS)
}

async fn dataset_rows(client: &RpcClient, dataset: u64) -> Result<(Hash, Vec<DatasetLeaf>)> {
    let view = client
        .data_dataset(dataset)
        .await?
        .ok_or_else(|| anyhow!("dataset {dataset} is not finalised (or does not exist)"))?;
    Ok((view.dataset.root, view.leaves))
}

async fn export(
    rpc: Option<&str>,
    home: Option<&Path>,
    dataset: u64,
    format: ExportFormat,
    out: &Path,
    json: bool,
) -> Result<ExitCode> {
    let client = client(rpc, home)?;
    let (root, leaves) = dataset_rows(&client, dataset).await?;
    let digests: Vec<Hash> = leaves.iter().map(DatasetLeaf::digest).collect();
    let http = reqwest::Client::new();
    let max = hibana_types::records::data::MAX_ITEM_BYTES;
    let mut rows = Vec::with_capacity(leaves.len());
    for (i, leaf) in leaves.iter().enumerate() {
        let bytes = fetch(&http, &client, &leaf.hash, max)
            .await
            .with_context(|| format!("item {}", leaf.item))?;
        let content = String::from_utf8(bytes)
            .map_err(|_| anyhow!("item {} is not UTF-8 text", leaf.item))?;
        rows.push(Row {
            dataset,
            item: leaf.item,
            contributor: leaf.contributor,
            hash: leaf.hash,
            content,
            proof: merkle_proof(&digests, i).unwrap_or_default(),
            root,
        });
    }
    match format {
        ExportFormat::Jsonl => {
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(out)
                    .with_context(|| format!("cannot write {}", out.display()))?,
            );
            for row in &rows {
                serde_json::to_writer(&mut file, row)?;
                file.write_all(b"\n")?;
            }
            file.flush()?;
        }
        ExportFormat::Parquet => hibana_roles::data::parquet::write(out, &rows_to_columns(&rows))?,
    }
    if json {
        print_json(
            &serde_json::json!({"dataset": dataset, "rows": rows.len(), "root": root, "out": out}),
        )?;
    } else {
        println!(
            "Exported dataset {dataset}: {} items with proofs against root {root} to {}",
            rows.len(),
            out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Rows as the columns the Parquet file holds.
fn rows_to_columns(rows: &[Row]) -> hibana_roles::data::parquet::Columns {
    hibana_roles::data::parquet::Columns {
        dataset: rows.iter().map(|r| r.dataset).collect(),
        item: rows.iter().map(|r| r.item).collect(),
        contributor: rows.iter().map(|r| r.contributor.to_string()).collect(),
        hash: rows.iter().map(|r| r.hash.to_string()).collect(),
        content: rows.iter().map(|r| r.content.clone()).collect(),
        proof: rows
            .iter()
            .map(|r| serde_json::to_string(&r.proof).unwrap_or_default())
            .collect(),
        root: rows.iter().map(|r| r.root.to_string()).collect(),
    }
}

fn read_rows(file: &Path) -> Result<Vec<Row>> {
    if file.extension().is_some_and(|e| e == "parquet") {
        let c = hibana_roles::data::parquet::read(file)?;
        let mut rows = Vec::with_capacity(c.item.len());
        for i in 0..c.item.len() {
            rows.push(Row {
                dataset: c.dataset[i],
                item: c.item[i],
                contributor: c.contributor[i]
                    .parse()
                    .map_err(|e| anyhow!("row {}: contributor: {e}", i + 1))?,
                hash: c.hash[i]
                    .parse()
                    .map_err(|e| anyhow!("row {}: hash: {e}", i + 1))?,
                content: c.content[i].clone(),
                proof: serde_json::from_str(&c.proof[i])
                    .with_context(|| format!("row {}: proof", i + 1))?,
                root: c.root[i]
                    .parse()
                    .map_err(|e| anyhow!("row {}: root: {e}", i + 1))?,
            });
        }
        return Ok(rows);
    }
    let text =
        std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut rows = Vec::new();
    for (n, line) in std::io::BufReader::new(text).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        rows.push(serde_json::from_str(&line).with_context(|| format!("line {}", n + 1))?);
    }
    Ok(rows)
}

async fn verify(
    rpc: Option<&str>,
    home: Option<&Path>,
    dataset: u64,
    file: &Path,
    json: bool,
) -> Result<ExitCode> {
    let client = client(rpc, home)?;
    let (root, leaves) = dataset_rows(&client, dataset).await?;
    let rows = read_rows(file)?;
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for row in &rows {
        let leaf = DatasetLeaf {
            bounty: dataset,
            item: row.item,
            contributor: row.contributor,
            hash: row.hash,
        };
        if row.dataset != dataset {
            problems.push(format!(
                "item {}: belongs to dataset {}",
                row.item, row.dataset
            ));
        } else if blake3::hash(row.content.as_bytes()).as_bytes() != &row.hash.0 {
            problems.push(format!(
                "item {}: its content does not match its hash",
                row.item
            ));
        } else if !verify_merkle_proof(&leaf.digest(), &row.proof, &root) {
            problems.push(format!(
                "item {}: its proof does not lead to the root on chain {root}",
                row.item
            ));
        } else {
            seen.insert(row.item);
        }
    }
    let missing: Vec<u64> = leaves
        .iter()
        .map(|l| l.item)
        .filter(|i| !seen.contains(i))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("items missing from the file: {missing:?}"));
    }
    if json {
        print_json(&serde_json::json!({
            "dataset": dataset, "root": root, "rows": rows.len(), "verified": seen.len(),
            "problems": problems,
        }))?;
    } else if problems.is_empty() {
        println!(
            "All {} items of dataset {dataset} verified against the root on chain {root}",
            seen.len()
        );
    } else {
        for p in &problems {
            println!("{p}");
        }
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
