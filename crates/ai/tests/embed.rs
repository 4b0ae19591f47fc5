//! Sentence embeddings against reference vectors computed independently of candle.

mod common;

use hibana_ai::embed::Embedder;
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    sentences: Vec<Sentence>,
}

#[derive(Deserialize)]
struct Sentence {
    text: String,
    tokens: u32,
    embedding: Vec<f32>,
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[test]
fn minilm_matches_the_reference_vectors() {
    let embedder = Embedder::load(&common::model("all-minilm-l6-v2")).expect("load");
    assert_eq!(embedder.dimensions(), 384);
    let reference: Reference =
        serde_json::from_str(include_str!("data/minilm_reference.json")).expect("reference");
    let texts: Vec<String> = reference.sentences.iter().map(|s| s.text.clone()).collect();
    // One batch and one text at a time give the same vector: a batch is not padded, so a
    // sentence's vector does not depend on the sentences beside it.
    let (vectors, tokens) = embedder.embed(&texts).expect("embed");
    assert_eq!(vectors.len(), texts.len());
    assert_eq!(
        tokens,
        reference.sentences.iter().map(|s| s.tokens).sum::<u32>()
    );
    for (v, s) in vectors.iter().zip(&reference.sentences) {
        assert_eq!(v.len(), 384);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
        let c = cosine(v, &s.embedding);
        eprintln!("cosine {c:.6} for {:?}", s.text);
        assert!(c >= 0.999, "cosine {c} for {:?}", s.text);
        let (single, _) = embedder
            .embed(std::slice::from_ref(&s.text))
            .expect("single");
        assert_eq!(&single[0], v, "{:?} alone and in a batch", s.text);
    }
    // Related sentences are closer than unrelated ones.
    assert!(cosine(&vectors[0], &vectors[2]) > cosine(&vectors[0], &vectors[1]));
    let (empty, n) = embedder.embed(&[]).expect("empty");
    assert!(empty.is_empty());
    assert_eq!(n, 0);

    // A text past the model's 256 tokens is truncated, and beside short ones in any order it
    // keeps its vector, as they keep theirs.
    let long = "payment channels settle off chain ".repeat(100);
    let mixed = vec![texts[0].clone(), long.clone(), texts[1].clone()];
    let (forward, tokens) = embedder.embed(&mixed).expect("mixed");
    assert_eq!(
        tokens,
        256 + reference.sentences[0].tokens + reference.sentences[1].tokens
    );
    let reversed: Vec<String> = mixed.iter().rev().cloned().collect();
    let (backward, _) = embedder.embed(&reversed).expect("reversed");
    for (k, v) in forward.iter().enumerate() {
        assert_eq!(v, &backward[2 - k], "text {k} moved in the batch");
    }
    assert_eq!(forward[0], vectors[0]);
    assert_eq!(forward[2], vectors[1]);
}
