//! Runs the auditor without the `hibana` binary: `cargo run -p hibana-audit --example audit -- PATH`.

use clap::Parser;
use hibana_audit::cli::{AuditArgs, run};

/// Command line of the example: the same arguments as `hibana audit`.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: AuditArgs,
}

fn main() {
    let cli = Cli::parse();
    match run(&cli.args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
