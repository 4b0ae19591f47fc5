//! The compute market on the command line: `market provider|order|bid|accept` and `lease`.

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand};
use hibana_rpc::{LeaseView, RpcClient};
use hibana_types::records::market::{
    Lease, LeaseStatus, Order, OrderStatus, Provider, ProviderAttributes, Resources,
};
use hibana_types::{
    AcceptBid, Amount, CloseLease, CloseOrder, CreateOrder, Hash, Message, PlaceBid,
    RegisterProvider, TopUpLease, UpdateProvider, WithdrawLease,
};

use crate::{
    cli::common::{NodeHome, TxFlags, client, resolve_account, send, sign_and_send, signing_key},
    output::{print_json, print_receipt},
};

/// `hibana market …`.
#[derive(Debug, Subcommand)]
pub(crate) enum MarketCommand {
    /// Register, update and list compute providers.
    #[command(subcommand)]
    Provider(ProviderCommand),
    /// Create, list, show and close orders for compute.
    #[command(subcommand)]
    Order(OrderCommand),
    /// Bid on an order as a registered provider (locks a bid deposit of 1 HIB).
    Bid {
        /// The order id.
        order: u64,
        /// Price per block, e.g. 0.001HIB or 1000000 (base units).
        #[arg(long)]
        price: String,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// Accept a provider's bid on your order: the order becomes a lease.
    Accept {
        /// The order id.
        order: u64,
        /// The provider whose bid to accept (address or key name).
        #[arg(long)]
        provider: String,
        #[command(flatten)]
        tx: TxFlags,
    },
}

/// A provider's attributes, as it declares them or a validator attests them.
#[derive(Debug, Args)]
pub(crate) struct AttributeArgs {
    /// CPU cores.
    #[arg(long)]
    cores: u32,
    /// Memory in MiB.
    #[arg(long)]
    memory_mib: u64,
    /// GPU model, if any (e.g. A100).
    #[arg(long)]
    gpu_model: Option<String>,
    /// Number of GPUs (with --gpu-model).
    #[arg(long, default_value_t = 0)]
    gpu_count: u32,
    /// Region (a-z, 0-9, -), e.g. eu-west.
    #[arg(long)]
    region: String,
    /// Content hash of a served model (repeat for several).
    #[arg(long = "model")]
    models: Vec<String>,
}

impl AttributeArgs {
    fn attributes(&self) -> Result<ProviderAttributes> {
        Ok(ProviderAttributes {
            cores: self.cores,
            memory_mib: self.memory_mib,
            gpu_model: self.gpu_model.clone().unwrap_or_default(),
            gpu_count: self.gpu_count,
            region: self.region.clone(),
            models: self
                .models
                .iter()
                .map(|m| m.parse::<Hash>())
                .collect::<Result<_, _>>()?,
        })
    }
}

/// What a provider declares.
#[derive(Debug, Args)]
pub(crate) struct OfferArgs {
    #[command(flatten)]
    attributes: AttributeArgs,
    /// Asking price per block, e.g. 0.001HIB.
    #[arg(long)]
    price: String,
    /// Price per token of an inference request, in base units or e.g. 0.000001HIB (0: free).
    #[arg(long, default_value = "0")]
    price_per_token: String,
    /// Where the provider answers (http:// or https:// URL).
    #[arg(long)]
    endpoint: String,
}

impl OfferArgs {
    fn attributes(&self) -> Result<ProviderAttributes> {
        self.attributes.attributes()
    }

    fn price(&self) -> Result<Amount> {
        self.price.parse().context("--price")
    }

    fn price_per_token(&self) -> Result<Amount> {
        self.price_per_token.parse().context("--price-per-token")
    }
}

/// `hibana market provider …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ProviderCommand {
    /// Register the signer as a provider, bonding stake (at least 10 HIB).
    Register {
        #[command(flatten)]
        offer: OfferArgs,
        /// Stake bond moved into the market's escrow.
        #[arg(long, default_value = "10HIB")]
        bond: String,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// Replace the signer's declared attributes, price and endpoint.
    Update {
        #[command(flatten)]
        offer: OfferArgs,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// List the registered providers.
    List(NodeHome),
    /// Show a provider, with its liveness and the validators' attestations.
    Show {
        /// Address or key name.
        provider: String,
        #[command(flatten)]
        node: NodeHome,
    },
    /// As a validator, attest the attributes you audited on a provider (auto-accept rules can
    /// require an attestation).
    Attest {
        /// The provider (address or key name).
        provider: String,
        #[command(flatten)]
        attributes: AttributeArgs,
        #[command(flatten)]
        tx: TxFlags,
    },
}

/// `hibana market order …`.
#[derive(Debug, Subcommand)]
pub(crate) enum OrderCommand {
    /// Ask for compute, locking a deposit in escrow.
    Create(Box<OrderArgs>),
    /// List the open orders.
    List(NodeHome),
    /// Show an order and its bids.
    Show {
        /// The order id.
        order: u64,
        #[command(flatten)]
        node: NodeHome,
    },
    /// Close your unmatched order, releasing its deposit and every bid's.
    Close {
        /// The order id.
        order: u64,
        #[command(flatten)]
        tx: TxFlags,
    },
}

#[derive(Debug, Args)]
pub(crate) struct OrderArgs {
    /// Fewest CPU cores.
    #[arg(long, default_value_t = 1)]
    min_cores: u32,
    /// Least memory in MiB.
    #[arg(long, default_value_t = 0)]
    min_memory_mib: u64,
    /// A GPU model the provider must have.
    #[arg(long)]
    gpu_model: Option<String>,
    /// Fewest GPUs.
    #[arg(long, default_value_t = 0)]
    gpu_count: u32,
    /// A region the provider must be in.
    #[arg(long)]
    region: Option<String>,
    /// Content hash of a model the provider must serve.
    #[arg(long)]
    model: Option<String>,
    /// Lease length in blocks.
    #[arg(long)]
    duration: u64,
    /// Highest price per block, e.g. 0.001HIB.
    #[arg(long)]
    max_price: String,
    /// Deposit locked in escrow (at least 10 blocks at the maximum price).
    #[arg(long)]
    deposit: String,
    /// Blocks from now until the order expires unmatched.
    #[arg(long, default_value_t = 100)]
    expires_in: u64,
    /// Let the chain accept the cheapest bid from a reputable provider this many blocks after
    /// the order (a second transaction, `SetAutoAccept`).
    #[arg(long, conflicts_with = "no_wait")]
    auto_accept_in: Option<u64>,
    /// With --auto-accept-in: the least reputation (0 to 1000) of a provider whose bid is taken.
    #[arg(long, default_value_t = 500, requires = "auto_accept_in")]
    min_reputation: u32,
    /// With --auto-accept-in: take only providers a validator attested to meet the order.
    #[arg(long, requires = "auto_accept_in")]
    attested_only: bool,
    #[command(flatten)]
    tx: TxFlags,
}

/// `hibana lease …`.
#[derive(Debug, Subcommand)]
pub(crate) enum LeaseCommand {
    /// The active leases an account owns or serves.
    List {
        /// Address or key name.
        #[arg(long)]
        account: String,
        #[command(flatten)]
        node: NodeHome,
    },
    /// Show a lease and what it would pay now.
    Show {
        /// The lease id.
        lease: u64,
        #[command(flatten)]
        node: NodeHome,
    },
    /// As the lease's provider, collect what it has earned so far.
    Withdraw {
        /// The lease id.
        lease: u64,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// As the lease's client, add to its escrow so it runs longer (what is owed is paid first).
    TopUp {
        /// The lease id.
        lease: u64,
        /// Tokens to add, e.g. 0.5HIB.
        amount: String,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// Close a lease (either side): the provider is paid to now, the rest goes back.
    Close {
        /// The lease id.
        lease: u64,
        #[command(flatten)]
        tx: TxFlags,
    },
}

fn print_provider(p: &Provider) {
    let a = &p.attributes;
    let gpu = if a.gpu_model.is_empty() {
        "no GPU".to_string()
    } else {
        format!("{} x {}", a.gpu_count, a.gpu_model)
    };
    println!("Provider {}", p.address);
    println!(
        "  {} cores, {} MiB, {gpu}, region {}",
        a.cores, a.memory_mib, a.region
    );
    println!(
        "  price {} per block, {} per token, bond {}, endpoint {}",
        p.price_per_block, p.price_per_token, p.bond, p.endpoint
    );
    println!(
        "  registered at {}, {} open bid(s), {} active lease(s)",
        p.registered_at, p.open_bids, p.active_leases
    );
    for m in &a.models {
        println!("  model {m}");
    }
}

fn order_status(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::Open => "open",
        OrderStatus::Matched => "matched",
        OrderStatus::Closed => "closed",
        OrderStatus::Expired => "expired",
    }
}

fn lease_status(s: LeaseStatus) -> &'static str {
    match s {
        LeaseStatus::Active => "active",
        LeaseStatus::Closed => "closed",
        LeaseStatus::Overdrawn => "overdrawn",
    }
}

fn print_order(o: &Order) {
    let r = &o.resources;
    println!("Order {} ({}) by {}", o.id, order_status(o.status), o.owner);
    println!(
        "  needs {} cores, {} MiB, GPU {} x {}, region {}, model {}",
        r.min_cores,
        r.min_memory_mib,
        r.gpu_count,
        r.gpu_model.as_deref().unwrap_or("any"),
        r.region.as_deref().unwrap_or("any"),
        r.model.map_or("any".to_string(), |m| m.to_string())
    );
    println!(
        "  {} blocks at most {} per block, deposit {}, expires at {}",
        o.duration_blocks, o.max_price_per_block, o.deposit, o.expires_at
    );
    if let Some(lease) = o.lease {
        println!("  became lease {lease}");
    }
}

fn print_lease(v: &LeaseView) {
    let l: &Lease = &v.lease;
    println!(
        "Lease {} ({}) from order {}: client {}, provider {}",
        l.id,
        lease_status(l.status),
        l.order,
        l.owner,
        l.provider
    );
    println!(
        "  {} per block, blocks {}..{}, settled to {}, paid {}, escrow left {}",
        l.price_per_block, l.started_at, l.ends_at, l.settled_at, l.paid, l.escrow
    );
    if l.status == LeaseStatus::Active {
        println!(
            "  withdrawable now (height {}): {}{}",
            v.height,
            v.withdrawable,
            if v.overdrawn {
                " (escrow exhausted: the lease closes as overdrawn when settled)"
            } else {
                ""
            }
        );
        println!(
            "  runs out at height {} (the chain closes it then; `hibana lease top-up` adds escrow)",
            l.due_at()
        );
        if let Some(until) = v.paid_until {
            println!(
                "  STALLED: the provider has not proved it is up since; the lease pays no block \
                 after {until} (close it, or move its job with `hibana job submit --reorder`)"
            );
        }
    }
}

async fn lease_view(client: &RpcClient, id: u64) -> Result<LeaseView> {
    client
        .market_lease(id)
        .await?
        .ok_or_else(|| anyhow!("no lease {id}; see `hibana lease list --account ADDRESS`"))
}

/// `hibana market …`.
pub(crate) async fn market(cmd: MarketCommand, rpc: Option<&str>, json: bool) -> Result<ExitCode> {
    match cmd {
        MarketCommand::Provider(cmd) => provider(cmd, rpc, json).await,
        MarketCommand::Order(cmd) => order(cmd, rpc, json).await,
        MarketCommand::Bid { order, price, tx } => {
            let message = Message::PlaceBid(PlaceBid {
                order,
                price_per_block: price.parse().context("--price")?,
            });
            sign_and_send(rpc, message, &tx, json).await
        }
        MarketCommand::Accept {
            order,
            provider,
            tx,
        } => {
            let provider = resolve_account(&provider, tx.keys.home.as_deref(), Some(&tx.keys))?;
            let message = Message::AcceptBid(AcceptBid { order, provider });
            sign_and_send(rpc, message, &tx, json).await
        }
    }
}

async fn provider(cmd: ProviderCommand, rpc: Option<&str>, json: bool) -> Result<ExitCode> {
    match cmd {
        ProviderCommand::Register { offer, bond, tx } => {
            let message = Message::RegisterProvider(RegisterProvider {
                attributes: offer.attributes()?,
                price_per_block: offer.price()?,
                price_per_token: offer.price_per_token()?,
                endpoint: offer.endpoint.clone(),
                bond: bond.parse().context("--bond")?,
            });
            sign_and_send(rpc, message, &tx, json).await
        }
        ProviderCommand::Update { offer, tx } => {
            let message = Message::UpdateProvider(UpdateProvider {
                attributes: offer.attributes()?,
                price_per_block: offer.price()?,
                price_per_token: offer.price_per_token()?,
                endpoint: offer.endpoint.clone(),
            });
            sign_and_send(rpc, message, &tx, json).await
        }
        ProviderCommand::List(node) => {
            let client = client(rpc, node.home.as_deref())?;
            let list = client.market_providers().await?;
            if json {
                print_json(&list)?;
            } else if list.is_empty() {
                println!("No providers yet. Register with `hibana market provider register`.");
            } else {
                for p in &list {
                    print_provider(p);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ProviderCommand::Attest {
            provider,
            attributes,
            tx,
        } => {
            let provider = resolve_account(&provider, tx.keys.home.as_deref(), None)?;
            let message = Message::AttestProvider(hibana_types::AttestProvider {
                provider,
                attributes: attributes.attributes()?,
            });
            sign_and_send(rpc, message, &tx, json).await
        }
        ProviderCommand::Show { provider, node } => {
            let address = resolve_account(&provider, node.home.as_deref(), None)?;
            let client = client(rpc, node.home.as_deref())?;
            let p = client
                .market_provider(address)
                .await?
                .ok_or_else(|| anyhow!("{address} is not a registered provider"))?;
            let live = client.market_liveness(address).await?;
            let attested = client.market_attestations(address).await?;
            if json {
                let mut v = serde_json::to_value(&p)?;
                v["liveness"] = serde_json::to_value(&live.liveness)?;
                v["attestations"] = serde_json::to_value(&attested)?;
                print_json(&v)?;
            } else {
                print_provider(&p);
                if let Some(l) = &live.liveness {
                    println!(
                        "  last heartbeat at {} (live until {}), {} missed check(s) in a row, \
                         reputation {}/1000{}",
                        l.last_seen,
                        l.last_seen + live.liveness_blocks,
                        l.missed,
                        l.reputation,
                        if l.listed {
                            ""
                        } else {
                            ", UNLISTED: it cannot bid until its next heartbeat"
                        }
                    );
                }
                for a in &attested {
                    println!(
                        "  attested by validator {} at height {}: {} cores, {} MiB, region {}",
                        a.attester,
                        a.height,
                        a.attributes.cores,
                        a.attributes.memory_mib,
                        a.attributes.region
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn order(cmd: OrderCommand, rpc: Option<&str>, json: bool) -> Result<ExitCode> {
    match cmd {
        OrderCommand::Create(a) => {
            let client = client(rpc, a.tx.keys.home.as_deref())?;
            let height = client.status().await?.height;
            // The order is included in a later block than the one we see now; count from there.
            let expires_at = height.saturating_add(1).saturating_add(a.expires_in.max(1));
            let message = Message::CreateOrder(CreateOrder {
                resources: Resources {
                    min_cores: a.min_cores,
                    min_memory_mib: a.min_memory_mib,
                    gpu_model: a.gpu_model.clone(),
                    gpu_count: a.gpu_count,
                    region: a.region.clone(),
                    model: a.model.as_deref().map(str::parse).transpose()?,
                },
                duration_blocks: a.duration,
                max_price_per_block: a.max_price.parse().context("--max-price")?,
                deposit: a.deposit.parse().context("--deposit")?,
                expires_at,
            });
            let key = signing_key(&a.tx.from, &a.tx.keys)?;
            let Some(blocks) = a.auto_accept_in else {
                return send(&client, &key, message, &a.tx, json).await;
            };
            let receipt = client.send(&key, vec![message], None).await?;
            let order = receipt
                .attribute("market.order_created", "order")
                .and_then(|v| v.parse::<u64>().ok());
            let Some(order) = order else {
                print_receipt(&receipt, json)?;
                return Ok(ExitCode::FAILURE);
            };
            let rule = Message::SetAutoAccept(hibana_types::SetAutoAccept {
                order,
                min_reputation: a.min_reputation,
                at: receipt.height.saturating_add(blocks.max(1)),
                attested_only: a.attested_only,
            });
            let second = client.send(&key, vec![rule], None).await?;
            if json {
                print_json(
                    &serde_json::json!({"order": order, "order_receipt": receipt, "auto_accept_receipt": second}),
                )?;
            } else {
                print_receipt(&receipt, false)?;
                print_receipt(&second, false)?;
            }
            Ok(if second.is_success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        OrderCommand::List(node) => {
            let client = client(rpc, node.home.as_deref())?;
            let list = client.market_orders().await?;
            if json {
                print_json(&list)?;
            } else if list.is_empty() {
                println!("No open orders. Create one with `hibana market order create`.");
            } else {
                for o in &list {
                    print_order(o);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        OrderCommand::Show { order, node } => {
            let client = client(rpc, node.home.as_deref())?;
            let view = client
                .market_order(order)
                .await?
                .ok_or_else(|| anyhow!("no order {order}; see `hibana market order list`"))?;
            if json {
                return print_json(&view).map(|()| ExitCode::SUCCESS);
            }
            print_order(&view.order);
            if view.bids.is_empty() {
                println!("  no open bids");
            }
            for b in &view.bids {
                println!(
                    "  bid by {} at {} per block (deposit {}, height {})",
                    b.provider, b.price_per_block, b.deposit, b.placed_at
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        OrderCommand::Close { order, tx } => {
            sign_and_send(rpc, Message::CloseOrder(CloseOrder { order }), &tx, json).await
        }
    }
}

/// `hibana lease …`.
pub(crate) async fn lease(cmd: LeaseCommand, rpc: Option<&str>, json: bool) -> Result<ExitCode> {
    match cmd {
        LeaseCommand::List { account, node } => {
            let address = resolve_account(&account, node.home.as_deref(), None)?;
            let client = client(rpc, node.home.as_deref())?;
            let list = client.market_leases(address).await?;
            if json {
                print_json(&list)?;
            } else if list.is_empty() {
                println!("{address} has no active lease.");
            } else {
                for v in &list {
                    print_lease(v);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        LeaseCommand::Show { lease, node } => {
            let client = client(rpc, node.home.as_deref())?;
            let view = lease_view(&client, lease).await?;
            if json {
                print_json(&view)?;
            } else {
                print_lease(&view);
            }
            Ok(ExitCode::SUCCESS)
        }
        LeaseCommand::Withdraw { lease, tx } => {
            let message = Message::WithdrawLease(WithdrawLease { lease });
            sign_and_send(rpc, message, &tx, json).await
        }
        LeaseCommand::TopUp { lease, amount, tx } => {
            let amount: Amount = amount.parse().context("the amount")?;
            let message = Message::TopUpLease(TopUpLease { lease, amount });
            sign_and_send(rpc, message, &tx, json).await
        }
        LeaseCommand::Close { lease, tx } => {
            sign_and_send(rpc, Message::CloseLease(CloseLease { lease }), &tx, json).await
        }
    }
}
