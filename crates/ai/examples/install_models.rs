//! Installs the model catalog (what `hibana models install` does, without its progress bar),
//! for setups and tests.
//!
//! `cargo run -p hibana-ai --example install_models [--json] [NAME...]`

use hibana_ai::catalog;

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
    let dir = catalog::models_dir();
    if !json {
        eprintln!("installing models into {}", dir.display());
    }
    let progress = |stage: &str, done: u64, total: u64| {
        if !json && total > 0 && done == total {
            eprintln!("  {stage}: done");
        }
    };
    let models = match catalog::install(&dir, &names, &progress) {
        Ok(models) => models,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    if json {
        match serde_json::to_string_pretty(&models) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
    } else {
        for m in &models {
            println!("{:<24} {}  {}", m.name, m.content_hash, m.path.display());
        }
    }
}
