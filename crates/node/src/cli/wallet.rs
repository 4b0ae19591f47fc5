//! `hibana wallet …`: create, import, list and show keys (encrypted keystores, or a devnet's
//! plaintext development keyring with `--home`).

use std::{fs, path::PathBuf, process::ExitCode};

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use hibana_types::Address;

use crate::{
    cli::common::{KeySource, keyring},
    keys::{self, Keystore},
    output::print_json,
};

/// `hibana wallet …`.
#[derive(Debug, Subcommand)]
pub(crate) enum WalletCommand {
    /// Create a key from a new 24-word mnemonic.
    New {
        /// Name of the key.
        name: String,
        #[command(flatten)]
        keys: KeySource,
    },
    /// Import a key from its mnemonic (asked on the terminal, or read from --mnemonic-file).
    Import {
        /// Name of the key.
        name: String,
        /// File holding the mnemonic phrase.
        #[arg(long)]
        mnemonic_file: Option<PathBuf>,
        #[command(flatten)]
        keys: KeySource,
    },
    /// List keys.
    List {
        #[command(flatten)]
        keys: KeySource,
    },
    /// Show a key's address and public key.
    Show {
        /// Name of the key.
        name: String,
        #[command(flatten)]
        keys: KeySource,
    },
}

/// Runs a `hibana wallet` command.
pub(crate) fn run(cmd: WalletCommand, json: bool) -> Result<ExitCode> {
    match cmd {
        WalletCommand::New { name, keys: source } => {
            keys::check_name(&name)?;
            let ring = keyring(&source);
            if ring.get(&name).is_ok() {
                bail!(
                    "a key named {name:?} already exists in {}",
                    ring.dir.display()
                );
            }
            let mnemonic = keys::new_mnemonic()?;
            let pass = keys::passphrase(source.password_file.as_deref(), "New passphrase: ", true)?;
            let store = Keystore::seal(&name, &mnemonic, &pass)?;
            let path = ring.add(&store)?;
            if json {
                print_json(&serde_json::json!({
                    "name": name, "address": store.address, "public_key": store.public_key,
                    "mnemonic": mnemonic.to_string(), "keystore": path,
                }))?;
            } else {
                println!("Created key {name:?}");
                println!("  address:  {}", store.address);
                println!("  keystore: {}", path.display());
                println!("Write down this mnemonic; it is the only way to recover the key:");
                println!("  {mnemonic}");
            }
        }
        WalletCommand::Import {
            name,
            mnemonic_file,
            keys: source,
        } => {
            keys::check_name(&name)?;
            let phrase = match &mnemonic_file {
                Some(path) => fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                None => rpassword::prompt_password("Mnemonic: ").map_err(|_| {
                    anyhow!("cannot ask for the mnemonic without a terminal: use --mnemonic-file")
                })?,
            };
            let mnemonic = keys::parse_mnemonic(&phrase)?;
            let pass = keys::passphrase(source.password_file.as_deref(), "New passphrase: ", true)?;
            let store = Keystore::seal(&name, &mnemonic, &pass)?;
            let ring = keyring(&source);
            let path = ring.add(&store)?;
            if json {
                print_json(
                    &serde_json::json!({"name": name, "address": store.address, "keystore": path}),
                )?;
            } else {
                println!("Imported key {name:?}: {}", store.address);
            }
        }
        WalletCommand::List { keys: source } => {
            let mut rows: Vec<(String, Address, &str)> = Vec::new();
            if let Some(home) = &source.home {
                for k in keys::list_dev_keys(home) {
                    rows.push((k.name, k.address, "dev (plaintext)"));
                }
            } else {
                for k in keyring(&source).list()? {
                    rows.push((k.name, k.address, "encrypted"));
                }
            }
            if json {
                let list: Vec<_> = rows
                    .iter()
                    .map(|(n, a, kind)| serde_json::json!({"name": n, "address": a, "kind": kind}))
                    .collect();
                print_json(&list)?;
            } else if rows.is_empty() {
                println!("No keys. Create one with `hibana wallet new NAME`.");
            } else {
                for (name, address, kind) in rows {
                    println!("{name:<16} {address}  {kind}");
                }
            }
        }
        WalletCommand::Show { name, keys: source } => {
            let (address, public_key) = match &source.home {
                Some(home) => {
                    let k = keys::read_dev_key(home, &name)?;
                    (k.address, k.secret()?.public_key())
                }
                None => {
                    let k = keyring(&source).get(&name)?;
                    (k.address, k.public_key)
                }
            };
            if json {
                print_json(
                    &serde_json::json!({"name": name, "address": address, "public_key": public_key}),
                )?;
            } else {
                println!("{name}");
                println!("  address:    {address}");
                println!("  public key: {public_key}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
