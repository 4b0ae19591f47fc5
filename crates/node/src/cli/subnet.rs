//! The model network on the command line: `subnet`, `neuron`, `weights` and `validator run`.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use hibana_roles::{
    endpoints::EndpointPolicy,
    validator::{Validator, ValidatorConfig},
};
use hibana_rpc::RpcClient;
use hibana_types::records::subnets::{Neuron, ONE};
use hibana_types::{CreateSubnet, Hash, Message, NeuronRole, RegisterNeuron, SubnetParams};

use crate::{
    cli::common::{KeySource, NodeHome, TxFlags, client, send, signing_key},
    home::data_dir,
    output::print_json,
};

/// `hibana subnet …`.
#[derive(Debug, Subcommand)]
pub(crate) enum SubnetCommand {
    /// Create a subnet (locks a deposit of 100 HIB).
    Create(Box<CreateArgs>),
    /// List the subnets.
    List(NodeHome),
    /// Show a subnet's parameters and neurons with their scores.
    Show {
        /// Subnet id or name.
        subnet: String,
        #[command(flatten)]
        node: NodeHome,
    },
    /// What the last epochs minted and paid to whom.
    Emissions {
        /// Subnet id or name.
        subnet: String,
        /// How many epochs, newest first.
        #[arg(long, default_value_t = 5)]
        limit: u32,
        #[command(flatten)]
        node: NodeHome,
    },
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// Unique name (a-z, 0-9, -); clients ask the gateway for it as the model.
    #[arg(long)]
    name: String,
    /// chat, text-generation, embeddings, audit or zk-inference.
    #[arg(long)]
    task: String,
    /// Blocks per epoch.
    #[arg(long, default_value_t = 100)]
    tempo: u64,
    /// Share of stake that decides consensus, e.g. 0.5.
    #[arg(long, default_value = "0.5")]
    kappa: String,
    /// Most neurons.
    #[arg(long, default_value_t = 256)]
    max_neurons: u16,
    /// Most validators with a permit.
    #[arg(long, default_value_t = 64)]
    max_validators: u16,
    /// Blocks a new neuron cannot be replaced.
    #[arg(long, default_value_t = 500)]
    immunity_period: u64,
    /// Blocks a validator stays active after revealing weights.
    #[arg(long, default_value_t = 5000)]
    activity_cutoff: u64,
    /// Weight of the old bonds in their moving average, e.g. 0.9.
    #[arg(long, default_value = "0.9")]
    bonds_moving_average: String,
    /// Share of the network's subnet emission, e.g. 0.1.
    #[arg(long, default_value = "0.1")]
    emission_share: String,
    /// Owner's share of each epoch's emission, e.g. 0.18.
    #[arg(long, default_value = "0.18")]
    owner_cut: String,
    /// Blocks between committing and revealing weights.
    #[arg(long, default_value_t = 10)]
    reveal_interval: u64,
    /// Fee burned per registration.
    #[arg(long, default_value = "1HIB")]
    registration_fee: String,
    #[command(flatten)]
    tx: TxFlags,
}

/// `hibana neuron …`.
#[derive(Debug, Subcommand)]
pub(crate) enum NeuronCommand {
    /// Register as a miner (serving the provider API at --endpoint) or a validator.
    Register {
        /// Subnet id or name.
        #[arg(long)]
        subnet: String,
        /// miner or validator.
        #[arg(long, value_parser = ["miner", "validator"])]
        role: String,
        /// The neuron's URL (a miner's provider URL).
        #[arg(long)]
        endpoint: String,
        /// Content hash of the served model (default for miners: the endpoint's model for the
        /// subnet's task, from its /health).
        #[arg(long)]
        model: Option<String>,
        #[command(flatten)]
        tx: TxFlags,
    },
    /// List a subnet's neurons.
    List {
        /// Subnet id or name.
        #[arg(long)]
        subnet: String,
        #[command(flatten)]
        node: NodeHome,
    },
}

/// `hibana weights …`.
#[derive(Debug, Subcommand)]
pub(crate) enum WeightsCommand {
    /// Every validator's revealed weights and pending commitments.
    Show {
        /// Subnet id or name.
        #[arg(long)]
        subnet: String,
        #[command(flatten)]
        node: NodeHome,
    },
}

/// `hibana validator …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ValidatorCommand {
    /// Score the subnet's miners every round and set weights by commit-reveal.
    Run {
        /// Subnet id or name.
        #[arg(long)]
        subnet: String,
        /// Name of the validator's key.
        #[arg(long)]
        from: String,
        /// Challenges per miner per round.
        #[arg(long, default_value_t = 6)]
        challenges: usize,
        /// Seconds allowed for one answer.
        #[arg(long, default_value_t = 30)]
        timeout_secs: u64,
        /// Stop after this many rounds.
        #[arg(long)]
        rounds: Option<u64>,
        /// JSON-lines file of every round's scores (default:
        /// <data dir>/hibana/validator/<subnet>-<validator address>.jsonl).
        #[arg(long)]
        history: Option<PathBuf>,
        /// Also score miners at loopback, private and link-local addresses (a devnet or a
        /// private network; such miners score 0 by default, since anyone can register one).
        #[arg(long, env = "HIBANA_ALLOW_PRIVATE_ENDPOINTS")]
        allow_private_endpoints: bool,
        /// Share of the text answers it scores that it also re-checks by teacher forcing (0 to
        /// 1); a wrong one is challenged on chain.
        #[arg(long, default_value_t = 1.0)]
        recheck_share: f64,
        /// Deposit of each challenge it opens.
        #[arg(long, default_value = "1HIB")]
        challenge_deposit: String,
        #[command(flatten)]
        keys: KeySource,
    },
}

/// Parses a fraction (`0.25`, `25%`) into parts per million.
fn ppm(text: &str, what: &str) -> Result<u32> {
    let t = text.trim();
    let value: f64 = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| anyhow!("{what} must be a fraction like 0.5 or 50%, got {text:?}"))?;
    if !(0.0..=1.0).contains(&value) {
        bail!("{what} must be between 0 and 1, got {text:?}");
    }
    Ok((value * 1e6).round() as u32)
}

fn fraction(x: u64) -> String {
    format!("{:.4}", x as f64 / ONE as f64)
}

async fn subnet_view(client: &RpcClient, key: &str) -> Result<hibana_rpc::SubnetView> {
    client
        .subnet(key)
        .await?
        .ok_or_else(|| anyhow!("no subnet with id or name {key:?}; see `hibana subnet list`"))
}

fn print_neurons(neurons: &[Neuron]) {
    println!(
        "  {:>4} {:<9} {:<44} {:>14} {:>9} {:>9} {:>9} {:>9} {:>14}  endpoint",
        "uid", "role", "account", "stake", "incent.", "consens.", "v-trust", "divid.", "last paid"
    );
    for n in neurons {
        println!(
            "  {:>4} {:<9} {:<44} {:>14} {:>9} {:>9} {:>9} {:>9} {:>14}  {}",
            n.uid,
            format!("{:?}", n.role).to_lowercase(),
            n.account.to_string(),
            n.stake.to_string(),
            fraction(n.incentive),
            fraction(n.consensus),
            fraction(n.validator_trust),
            fraction(n.dividends),
            n.last_emission.to_string(),
            n.endpoint
        );
    }
}

/// `hibana subnet …`.
pub(crate) async fn subnet(cmd: SubnetCommand, rpc: Option<&str>, json: bool) -> Result<ExitCode> {
    match cmd {
        SubnetCommand::Create(a) => {
            let params = SubnetParams {
                tempo: a.tempo,
                kappa_ppm: ppm(&a.kappa, "--kappa")?,
                max_neurons: a.max_neurons,
                max_validators: a.max_validators,
                immunity_period: a.immunity_period,
                activity_cutoff: a.activity_cutoff,
                bonds_moving_average_ppm: ppm(&a.bonds_moving_average, "--bonds-moving-average")?,
                emission_share_ppm: ppm(&a.emission_share, "--emission-share")?,
                owner_cut_ppm: ppm(&a.owner_cut, "--owner-cut")?,
                commit_reveal_interval: a.reveal_interval,
                registration_fee: a.registration_fee.parse()?,
            };
            let message = Message::CreateSubnet(CreateSubnet {
                name: a.name,
                task: a.task,
                params,
            });
            let client = client(rpc, a.tx.keys.home.as_deref())?;
            let key = signing_key(&a.tx.from, &a.tx.keys)?;
            send(&client, &key, message, &a.tx, json).await
        }
        SubnetCommand::List(node) => {
            let client = client(rpc, node.home.as_deref())?;
            let subnets = client.subnets().await?;
            if json {
                print_json(&subnets)?;
            } else if subnets.is_empty() {
                println!(
                    "No subnets yet. Create one with `hibana subnet create --name NAME --task chat --from KEY`."
                );
            } else {
                println!(
                    "{:>4} {:<20} {:<16} {:>6} {:>7} owner",
                    "id", "name", "task", "tempo", "epochs"
                );
                for s in subnets {
                    println!(
                        "{:>4} {:<20} {:<16} {:>6} {:>7} {}",
                        s.id, s.name, s.task, s.params.tempo, s.epochs, s.owner
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        SubnetCommand::Show { subnet, node } => {
            let client = client(rpc, node.home.as_deref())?;
            let view = subnet_view(&client, &subnet).await?;
            if json {
                return print_json(&view).map(|()| ExitCode::SUCCESS);
            }
            let s = &view.subnet;
            println!(
                "Subnet {} `{}` (task {}), owner {}",
                s.id, s.name, s.task, s.owner
            );
            println!(
                "  tempo {} blocks, epochs run {}, next epoch at height {} (now {})",
                s.params.tempo, s.epochs, view.next_epoch, view.height
            );
            println!(
                "  kappa {:.2}, max neurons {}, max validators {}, immunity {} blocks, reveal interval {} blocks",
                s.params.kappa_ppm as f64 / 1e6,
                s.params.max_neurons,
                s.params.max_validators,
                s.params.immunity_period,
                s.params.commit_reveal_interval
            );
            println!(
                "  emission {} per epoch, owner cut {:.1}%, registration fee {}",
                view.epoch_emission,
                s.params.owner_cut_ppm as f64 / 1e4,
                s.params.registration_fee
            );
            print_neurons(&view.neurons);
            Ok(ExitCode::SUCCESS)
        }
        SubnetCommand::Emissions {
            subnet,
            limit,
            node,
        } => {
            let client = client(rpc, node.home.as_deref())?;
            let list = client.subnet_emissions(&subnet, Some(limit)).await?;
            if json {
                return print_json(&list).map(|()| ExitCode::SUCCESS);
            }
            if list.is_empty() {
                println!("No epoch has run yet.");
            }
            for e in list {
                println!(
                    "epoch {} at height {}: minted {} (owner {})",
                    e.epoch, e.height, e.minted, e.owner
                );
                for (uid, account, amount) in e.paid {
                    println!("  uid {uid:>4} {account} {amount}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The hash of the model a miner's endpoint serves for `task`, from its /health.
pub(crate) async fn endpoint_model(endpoint: &str, task: &str) -> Result<Hash> {
    let kind = match task {
        "chat" => "chat",
        "text-generation" => "completion",
        "embeddings" => "embedding",
        "audit" => "audit",
        other => bail!("pass --model: cannot tell which model serves the task {other:?}"),
    };
    let url = format!("{}/health", endpoint.trim_end_matches('/'));
    let health: serde_json::Value = reqwest::Client::new()
        .get(&url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .with_context(|| format!("cannot reach {url} to read the served model; pass --model"))?
        .json()
        .await
        .with_context(|| format!("{url} did not answer like a provider; pass --model"))?;
    health
        .get("models")
        .and_then(|m| m.as_array())
        .and_then(|models| {
            models
                .iter()
                .find(|m| m.get("kind").and_then(|k| k.as_str()) == Some(kind))
        })
        .and_then(|m| m.get("hash"))
        .and_then(|h| h.as_str())
        .ok_or_else(|| anyhow!("{url} serves no {kind} model; pass --model"))?
        .parse()
        .map_err(|e| anyhow!("{url} reports a bad model hash: {e}"))
}

/// `hibana neuron …`.
pub(crate) async fn neuron(cmd: NeuronCommand, rpc: Option<&str>, json: bool) -> Result<ExitCode> {
    match cmd {
        NeuronCommand::Register {
            subnet,
            role,
            endpoint,
            model,
            tx,
        } => {
            let client = client(rpc, tx.keys.home.as_deref())?;
            let view = subnet_view(&client, &subnet).await?;
            let role = if role == "miner" {
                NeuronRole::Miner
            } else {
                NeuronRole::Validator
            };
            let model = match (model, role) {
                (Some(m), _) => m
                    .parse()
                    .map_err(|e| anyhow!("--model must be a content hash: {e}"))?,
                (None, NeuronRole::Miner) => endpoint_model(&endpoint, &view.subnet.task).await?,
                (None, NeuronRole::Validator) => Hash::ZERO,
            };
            let key = signing_key(&tx.from, &tx.keys)?;
            let message = Message::RegisterNeuron(RegisterNeuron {
                subnet: view.subnet.id,
                role,
                endpoint,
                model,
            });
            send(&client, &key, message, &tx, json).await
        }
        NeuronCommand::List { subnet, node } => {
            let client = client(rpc, node.home.as_deref())?;
            let view = subnet_view(&client, &subnet).await?;
            if json {
                print_json(&view.neurons)?;
            } else {
                print_neurons(&view.neurons);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `hibana weights …`.
pub(crate) async fn weights(
    cmd: WeightsCommand,
    rpc: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    let WeightsCommand::Show { subnet, node } = cmd;
    let client = client(rpc, node.home.as_deref())?;
    let list = client.subnet_weights(&subnet).await?;
    if json {
        return print_json(&list).map(|()| ExitCode::SUCCESS);
    }
    if list.is_empty() {
        println!("The subnet has no validators.");
    }
    for v in list {
        match &v.revealed {
            Some(r) => {
                let parts: Vec<String> = r
                    .weights
                    .iter()
                    .map(|(uid, w)| format!("{uid}:{:.3}", *w as f64 / 1e6))
                    .collect();
                println!(
                    "validator uid {}: revealed at height {} (committed {}): {}",
                    v.uid,
                    r.revealed_at,
                    r.committed_at,
                    parts.join(" ")
                );
            }
            None => println!("validator uid {}: no weights revealed", v.uid),
        }
        for c in &v.pending {
            println!(
                "  pending commitment {} from height {}",
                c.commitment, c.height
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `hibana validator run`.
pub(crate) async fn validator(cmd: ValidatorCommand, rpc: Option<&str>) -> Result<ExitCode> {
    let ValidatorCommand::Run {
        subnet,
        from,
        challenges,
        timeout_secs,
        rounds,
        history,
        allow_private_endpoints,
        recheck_share,
        challenge_deposit,
        keys,
    } = cmd;
    if challenges == 0 {
        bail!("--challenges must be at least 1");
    }
    if !(0.0..=1.0).contains(&recheck_share) {
        bail!("--recheck-share must be between 0 and 1, got {recheck_share}");
    }
    let client = client(rpc, keys.home.as_deref())?;
    let key = signing_key(&from, &keys)?;
    let history = history.unwrap_or_else(|| {
        data_dir().join("validator").join(format!(
            "{}-{}.jsonl",
            subnet,
            key.public_key().address()
        ))
    });
    let config = ValidatorConfig {
        rpc: client.url().to_string(),
        subnet,
        challenges,
        timeout: Duration::from_secs(timeout_secs.max(1)),
        history: history.clone(),
        models_dir: None,
        rounds,
        miner_endpoints: EndpointPolicy::allowing_private(allow_private_endpoints),
        recheck_share,
        challenge_deposit: challenge_deposit.parse().context("--challenge-deposit")?,
    };
    eprintln!(
        "Validator {} scoring; history in {}",
        key.public_key().address(),
        history.display()
    );
    Validator::new(config, key)?.run().await?;
    Ok(ExitCode::SUCCESS)
}
