//! Shared helpers: find installed models or fail with the command that installs them.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, OnceLock};

use hibana_ai::{
    catalog::{self, ModelInfo},
    text::{LoadOptions, TextModel},
};

/// The installed model `name`; panics with the setup command if it is missing.
pub fn model(name: &str) -> ModelInfo {
    let dir = catalog::models_dir();
    match catalog::find(&dir, name) {
        Ok(info) => info,
        Err(e) => panic!(
            "test model {name} is not available ({e}).\n\
             Install the test models with `scripts/setup.sh` (or \
             `cargo run -p hibana-ai --example install_models`); set HIBANA_MODELS to use another folder."
        ),
    }
}

/// SmolLM2 loaded once per test binary.
pub fn smollm2() -> Arc<TextModel> {
    static MODEL: OnceLock<Arc<TextModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let options = LoadOptions {
                n_ctx: 512,
                ..LoadOptions::default()
            };
            Arc::new(
                TextModel::load(&model("smollm2-135m-instruct"), options).expect("load smollm2"),
            )
        })
        .clone()
}

/// Gemma 3 (completion model) loaded once per test binary.
pub fn gemma3() -> Arc<TextModel> {
    static MODEL: OnceLock<Arc<TextModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let options = LoadOptions {
                n_ctx: 512,
                ..LoadOptions::default()
            };
            Arc::new(TextModel::load(&model("gemma3-270m"), options).expect("load gemma3"))
        })
        .clone()
}
