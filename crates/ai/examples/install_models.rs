//! Installs the model catalog (what `hibana models install` does), for setups and tests.
//!
//! `cargo run -p hibana-ai --example install_models [--json] [NAME...]`

use hibana_ai::cli::{self, ModelsCommand};

fn main() {
    let mut json = false;
    let mut names = Vec::new();
    for arg in std::env::args().skip(1) {
        if arg == "--json" {
            json = true;
        } else {
            names.push(arg);
        }
    }
    if let Err(e) = cli::run(&ModelsCommand::Install { names }, json) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
