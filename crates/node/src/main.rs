//! `hibana`: runs a node of the Hibana network and the commands around it (devnet, wallet,
//! transactions, queries, subnets, zk proofs, models, provider, gateway, auditor).
//!
//! Layout: `main.rs` parses the command line, sets up logging and hands the command to
//! [`cli::run`], the one dispatch. `cli/` holds the command groups, a module each (`network`:
//! init, node, testnet; `wallet`, `tx`, `query`, `subnet`, `zk`, `provider` with the gateway,
//! `models`, `audit`), over `cli/common.rs`, the arguments and helpers they share (node home,
//! keys, transaction flags, signing and sending). `devnet.rs` is the devnet command and its AI
//! wiring; `run.rs` runs the services (node, provider, gateway) until a signal stops them;
//! `output.rs` prints JSON, receipts and events; `home.rs` is a node home's files; `keys.rs`
//! the keystores and the development keyring. Modules import downward only: no two import each
//! other.
#![forbid(unsafe_code)]

mod cli;
mod dashboard;
mod devnet;
mod home;
mod keys;
mod market_provider;
mod output;
mod run;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, LogFormat};

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HIBANA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,llama-cpp-2=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Whether a panic message is std's for a write to stdout after its reader went away.
fn is_broken_stdout(message: &str) -> bool {
    message.starts_with("failed printing to stdout") && message.contains("Broken pipe")
}

/// Output piped into a program that stops reading early (`hibana status | head -1`) ends the
/// process quietly with the shell's status for SIGPIPE, as a shell tool would, instead of a
/// panic. SIGPIPE itself stays ignored, so servers survive peers that hang up.
fn quiet_on_broken_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if is_broken_stdout(message) {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_stdout();
    let cli = Cli::parse();
    if cli.command.is_service() {
        init_logging(cli.log_format);
    }
    cli::run(cli)
}

#[cfg(test)]
mod tests {
    use super::is_broken_stdout;

    #[test]
    fn only_a_broken_stdout_is_quiet() {
        assert!(is_broken_stdout(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(!is_broken_stdout(
            "failed printing to stdout: No space left on device (os error 28)"
        ));
        assert!(!is_broken_stdout("index out of bounds"));
    }
}
