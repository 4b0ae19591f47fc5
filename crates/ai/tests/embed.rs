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
    // One batch (padded to the longest sentence) and one text at a time must agree.
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
        assert!(cosine(&single[0], v) > 0.9999);
    }
    // Related sentences are closer than unrelated ones.
    assert!(cosine(&vectors[0], &vectors[2]) > cosine(&vectors[0], &vectors[1]));
    let (empty, n) = embedder.embed(&[]).expect("empty");
    assert!(empty.is_empty());
    assert_eq!(n, 0);
}
