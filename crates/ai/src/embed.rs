//! Sentence embeddings with candle: a BERT encoder, mean pooling over real tokens, then L2
//! normalisation (the sentence-transformers recipe of all-MiniLM-L6-v2).

use std::path::Path;

use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationParams};

use crate::{
    AiError,
    bert::{Bert, Config},
    catalog::{ModelInfo, ModelKind},
};

/// Texts encoded in one forward pass; bounds memory for long request batches.
const CHUNK: usize = 32;

/// A loaded sentence-embedding model; `Send + Sync`, share it in an `Arc`.
pub struct Embedder {
    name: String,
    model: Bert,
    tokenizer: Tokenizer,
    dimensions: usize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("name", &self.name)
            .field("dimensions", &self.dimensions)
            .finish()
    }
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: usize,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
}

fn load_err(name: &str) -> impl Fn(String) -> AiError + '_ {
    move |reason| AiError::Load {
        name: name.to_string(),
        reason,
    }
}

fn read_json<T: serde::de::DeserializeOwned>(
    dir: &Path,
    file: &str,
    name: &str,
) -> Result<T, AiError> {
    let path = dir.join(file);
    let bytes = std::fs::read(&path).map_err(|e| AiError::Damaged {
        name: name.to_string(),
        reason: format!("cannot read {}: {e}", path.display()),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| load_err(name)(format!("{file}: {e}")))
}

impl Embedder {
    /// Loads an embedding model folder from the catalog.
    pub fn load(info: &ModelInfo) -> Result<Self, AiError> {
        if info.kind != ModelKind::Embedding {
            return Err(AiError::WrongKind {
                name: info.name.clone(),
                expected: "embedding".into(),
                actual: info.kind.to_string(),
            });
        }
        let name = info.name.as_str();
        let dir = info.path.as_path();
        let config: Config = read_json(dir, "config.json", name)?;
        let pooling: PoolingConfig = read_json(dir, "1_Pooling/config.json", name)?;
        if !pooling.pooling_mode_mean_tokens {
            return Err(load_err(name)("only mean pooling is supported".into()));
        }
        let max_len = read_json::<SentenceBertConfig>(dir, "sentence_bert_config.json", name)
            .map(|c| c.max_seq_length)
            .unwrap_or(256)
            .min(config.max_position_embeddings);

        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| load_err(name)(format!("tokenizer.json: {e}")))?;
        // tokenizer.json pads to a fixed 128; the encoder takes unpadded batches, and texts are
        // truncated at the sentence-transformers limit (at most the model's positions).
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                ..Default::default()
            }))
            .map_err(|e| load_err(name)(format!("truncation: {e}")))?;

        let weights_path = dir.join("model.safetensors");
        let weights = std::fs::read(&weights_path).map_err(|e| AiError::Damaged {
            name: name.to_string(),
            reason: format!("cannot read {}: {e}", weights_path.display()),
        })?;
        let model = Bert::load(&config, &weights).map_err(load_err(name))?;
        Ok(Embedder {
            name: name.to_string(),
            model,
            tokenizer,
            dimensions: config.hidden_size,
        })
    }

    /// Length of each embedding vector.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// Embeds each text into a unit vector; also returns the number of tokens processed.
    pub fn embed(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, u32), AiError> {
        self.embed_at_most(texts, u64::MAX)
    }

    /// Counts the tokens of `texts` without embedding them, or says why they are refused (they
    /// do not tokenise, or hold more than `max_tokens`): the check [`Embedder::embed_at_most`]
    /// makes first.
    pub fn count_tokens(&self, texts: &[String], max_tokens: u64) -> Result<u64, AiError> {
        self.encode_at_most(texts, max_tokens)
            .map(|e| e.iter().map(|e| e.len() as u64).sum())
    }

    fn encode_at_most(
        &self,
        texts: &[String],
        max_tokens: u64,
    ) -> Result<Vec<tokenizers::Encoding>, AiError> {
        let encodings = texts
            .iter()
            .map(|t| self.tokenizer.encode(t.as_str(), true))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AiError::InvalidRequest(format!("cannot tokenise input: {e}")))?;
        let total: u64 = encodings.iter().map(|e| e.len() as u64).sum();
        if total > max_tokens {
            return Err(AiError::InvalidRequest(format!(
                "the inputs have {total} tokens; at most {max_tokens} per request: split them \
                 over several requests"
            )));
        }
        Ok(encodings)
    }

    /// [`Embedder::embed`], refused before any model work when the texts hold more than
    /// `max_tokens` tokens (each text truncated to the model's length first).
    pub fn embed_at_most(
        &self,
        texts: &[String],
        max_tokens: u64,
    ) -> Result<(Vec<Vec<f32>>, u32), AiError> {
        let encodings = self.encode_at_most(texts, max_tokens)?;
        let mut vectors = Vec::with_capacity(texts.len());
        let mut tokens = 0u32;
        for chunk in encodings.chunks(CHUNK) {
            let (v, t) = self.embed_chunk(chunk)?;
            vectors.extend(v);
            tokens = tokens.saturating_add(t);
        }
        Ok((vectors, tokens))
    }

    fn embed_chunk(
        &self,
        encodings: &[tokenizers::Encoding],
    ) -> Result<(Vec<Vec<f32>>, u32), AiError> {
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        let tokens = ids.iter().fold(0u32, |n, s| {
            n.saturating_add(u32::try_from(s.len()).unwrap_or(u32::MAX))
        });
        let vectors = self.model.embed(&ids).map_err(AiError::Inference)?;
        Ok((vectors, tokens))
    }
}
