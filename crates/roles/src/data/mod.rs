//! The data network's checks before review: hints for reviewers, never the verdict. An item is
//! checked against its bounty's JSON Schema; its text is compared by MiniLM embedding with the
//! bounty's accepted and pending items (near-duplicates above [`DUPLICATE_COSINE`]); it is
//! screened by length, script, repetition and spam heuristics; and where the schema names a
//! label set, a zero-shot embedding classifier says which label the text is closest to.
//!
//! A scripted reviewer (`hibana data review --auto`) rejects an item that fails the schema, is
//! a near-duplicate, or trips a spam heuristic, and accepts the rest: label disagreement is only
//! shown, since a zero-shot classifier on a small model is too weak to convict anyone.
//! [`paraphrase_pairs`] generates the paraphrase set the duplicate threshold is measured on;
//! [`parquet`] writes and reads a dataset export.

pub mod parquet;

use std::collections::BTreeMap;

use hibana_ai::embed::Embedder;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde::Serialize;
use serde_json::Value;

/// Cosine similarity of MiniLM embeddings above which two items are near-duplicates. Measured
/// on [`paraphrase_pairs`] (`cargo run --release -p hibana-node --example data_bench`): see the
/// README's benchmark table for recall and false positives at this threshold.
pub const DUPLICATE_COSINE: f32 = 0.80;

/// Fewest characters of text an item carries.
pub const MIN_TEXT_CHARS: usize = 3;

/// A bounty's item schema, compiled, with the label sets it names.
pub struct ItemSchema {
    validator: jsonschema::Validator,
    /// Properties whose values come from a fixed set (`enum` of strings): the labels.
    labels: Vec<(String, Vec<String>)>,
}

impl std::fmt::Debug for ItemSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemSchema")
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

impl ItemSchema {
    /// Compiles a JSON Schema (`{}` takes any JSON value).
    pub fn parse(text: &str) -> Result<ItemSchema, String> {
        let schema: Value = serde_json::from_str(text)
            .map_err(|e| format!("the bounty's schema is not JSON: {e}"))?;
        let validator = jsonschema::validator_for(&schema)
            .map_err(|e| format!("the bounty's schema is not a valid JSON Schema: {e}"))?;
        let mut labels = Vec::new();
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (name, prop) in props {
                let set: Vec<String> = prop
                    .get("enum")
                    .and_then(Value::as_array)
                    .map(|v| {
                        v.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                if !set.is_empty() {
                    labels.push((name.clone(), set));
                }
            }
        }
        Ok(ItemSchema { validator, labels })
    }

    /// Parses an item and checks it against the schema; the error names the first violation.
    pub fn check(&self, bytes: &[u8]) -> Result<Value, String> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("the item is not JSON: {e}"))?;
        if let Some(error) = self.validator.iter_errors(&value).next() {
            let at = error.instance_path().to_string();
            let at = if at.is_empty() { "the item".into() } else { at };
            return Err(format!("{at}: {error}"));
        }
        Ok(value)
    }

    /// The label properties and their sets.
    pub fn labels(&self) -> &[(String, Vec<String>)] {
        &self.labels
    }

    /// The item's free text: its string values outside the label properties, in key order.
    pub fn text_of(&self, value: &Value) -> String {
        match value {
            Value::Object(map) => map
                .iter()
                .filter(|(k, _)| !self.labels.iter().any(|(name, _)| name == *k))
                .filter_map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// The bytes an item is stored, hashed and paid as: valid JSON re-encoded compactly with its
/// object keys sorted (so the same item always has the same hash), anything else as given,
/// trimmed of surrounding whitespace.
pub fn canonical_item(raw: &[u8]) -> Vec<u8> {
    let trimmed = raw.trim_ascii();
    match serde_json::from_slice::<Value>(trimmed) {
        Ok(value) => serde_json::to_vec(&value).unwrap_or_else(|_| trimmed.to_vec()),
        Err(_) => trimmed.to_vec(),
    }
}

/// Spam and quality heuristics over an item's text: each flag says what tripped.
pub fn heuristics(text: &str) -> Vec<String> {
    let mut flags = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let letters = chars.iter().filter(|c| c.is_alphabetic()).count();
    if chars.iter().filter(|c| !c.is_whitespace()).count() < MIN_TEXT_CHARS {
        flags.push(format!("too short (under {MIN_TEXT_CHARS} characters)"));
        return flags;
    }
    let lower = text.to_lowercase();
    if ["http://", "https://", "www."]
        .iter()
        .any(|p| lower.contains(p))
    {
        flags.push("contains a link".into());
    }
    const SPAM: &[&str] = &[
        "buy now",
        "click here",
        "free money",
        "cheap pills",
        "limited offer",
        "act now",
        "casino",
        "giveaway",
        "100% free",
        "earn $",
    ];
    if let Some(word) = SPAM.iter().find(|w| lower.contains(**w)) {
        flags.push(format!("spam phrase \"{word}\""));
    }
    let mut run = 1;
    for pair in chars.windows(2) {
        run = if pair[0] == pair[1] && !pair[0].is_whitespace() {
            run + 1
        } else {
            1
        };
        if run >= 6 {
            flags.push("a character repeated 6 times or more".into());
            break;
        }
    }
    let words: Vec<&str> = lower.split_whitespace().collect();
    if words.len() >= 4 {
        let mut counts = std::collections::BTreeMap::new();
        for w in &words {
            *counts.entry(*w).or_insert(0usize) += 1;
        }
        if counts.values().any(|n| n * 2 > words.len()) {
            flags.push("one word is most of the text".into());
        }
    }
    let symbols = chars
        .iter()
        .filter(|c| !c.is_alphanumeric() && !c.is_whitespace())
        .count();
    if symbols * 10 > chars.len() * 3 {
        flags.push("mostly symbols".into());
    }
    if letters >= 8 {
        let upper = chars.iter().filter(|c| c.is_uppercase()).count();
        if upper * 10 > letters * 6 {
            flags.push("mostly capitals".into());
        }
        let latin = chars.iter().filter(|c| c.is_ascii_alphabetic()).count();
        if latin * 2 < letters {
            flags.push("mostly outside the Latin script (the bounties here are in English)".into());
        }
    }
    flags
}

/// What the zero-shot classifier says about an item's label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelHint {
    /// The label property.
    pub field: String,
    /// The label the item gives.
    pub given: String,
    /// The label whose embedding is closest to the item's text.
    pub predicted: String,
    /// Whether they agree.
    pub agrees: bool,
}

/// Everything the checks found about one item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hints {
    /// The schema violation, if any.
    pub schema_error: Option<String>,
    /// The most similar earlier item and its cosine similarity, if above the threshold.
    pub duplicate_of: Option<(u64, f32)>,
    /// Spam and quality heuristics that tripped.
    pub flags: Vec<String>,
    /// The zero-shot classifier's view of each label.
    pub labels: Vec<LabelHint>,
}

impl Hints {
    /// The scripted reviewer's verdict and its reasons: reject on a schema violation, a
    /// near-duplicate or a spam flag; accept otherwise.
    pub fn verdict(&self) -> (bool, Vec<String>) {
        let mut reasons = Vec::new();
        if let Some(e) = &self.schema_error {
            reasons.push(format!("schema: {e}"));
        }
        if let Some((item, cos)) = self.duplicate_of {
            reasons.push(format!("near-duplicate of item {item} (cosine {cos:.3})"));
        }
        reasons.extend(self.flags.iter().map(|f| format!("heuristic: {f}")));
        (reasons.is_empty(), reasons)
    }
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Each label of a label set with its embedding.
type LabelVectors = Vec<(String, Vec<f32>)>;

/// Checks items of one bounty against its schema and against the bounty's earlier items. Each
/// item's text is embedded once and kept by item id, so checking many items compares vectors
/// rather than embedding the same items again.
pub struct ItemChecker<'a> {
    embedder: &'a Embedder,
    schema: ItemSchema,
    /// Items embedded so far, by id.
    seen: BTreeMap<u64, Vec<f32>>,
    /// Per label property: each label's embedding.
    label_vectors: Vec<(String, LabelVectors)>,
}

impl std::fmt::Debug for ItemChecker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemChecker")
            .field("schema", &self.schema)
            .field("seen", &self.seen.len())
            .finish_non_exhaustive()
    }
}

impl<'a> ItemChecker<'a> {
    /// A checker for a bounty with this schema.
    pub fn new(embedder: &'a Embedder, schema: ItemSchema) -> Result<ItemChecker<'a>, String> {
        let mut label_vectors = Vec::new();
        for (field, set) in schema.labels() {
            let (vectors, _) = embedder.embed(set).map_err(|e| e.to_string())?;
            label_vectors.push((field.clone(), set.iter().cloned().zip(vectors).collect()));
        }
        Ok(ItemChecker {
            embedder,
            schema,
            seen: BTreeMap::new(),
            label_vectors,
        })
    }

    /// Whether item `id` has been embedded already.
    pub fn knows(&self, id: u64) -> bool {
        self.seen.contains_key(&id)
    }

    /// Embeds item `id` (once) so later items are compared with it. Items that fail the schema
    /// are embedded by their raw text.
    pub fn remember(&mut self, id: u64, bytes: &[u8]) -> Result<(), String> {
        self.vector(id, bytes).map(|_| ())
    }

    fn vector(&mut self, id: u64, bytes: &[u8]) -> Result<Vec<f32>, String> {
        if let Some(v) = self.seen.get(&id) {
            return Ok(v.clone());
        }
        let text = self.text(bytes);
        let (mut v, _) = self.embedder.embed(&[text]).map_err(|e| e.to_string())?;
        let vector = v.pop().unwrap_or_default();
        self.seen.insert(id, vector.clone());
        Ok(vector)
    }

    fn text(&self, bytes: &[u8]) -> String {
        match self.schema.check(bytes) {
            Ok(value) => self.schema.text_of(&value),
            Err(_) => String::from_utf8_lossy(bytes).into_owned(),
        }
    }

    /// The hints about item `id`: compared with the remembered items of lower id for which
    /// `counts` holds (the bounty's accepted and pending items).
    pub fn check(
        &mut self,
        id: u64,
        bytes: &[u8],
        counts: impl Fn(u64) -> bool,
    ) -> Result<Hints, String> {
        let parsed = self.schema.check(bytes);
        let text = self.text(bytes);
        let vector = self.vector(id, bytes)?;
        let duplicate_of = self
            .seen
            .range(..id)
            .filter(|(other, _)| counts(**other))
            .map(|(other, v)| (*other, cosine(&vector, v)))
            .filter(|(_, c)| *c >= DUPLICATE_COSINE)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let mut labels = Vec::new();
        if let Ok(value) = &parsed {
            for (field, vectors) in &self.label_vectors {
                let Some(given) = value.get(field).and_then(Value::as_str) else {
                    continue;
                };
                let predicted = vectors
                    .iter()
                    .max_by(|a, b| cosine(&vector, &a.1).total_cmp(&cosine(&vector, &b.1)))
                    .map(|(label, _)| label.clone())
                    .unwrap_or_default();
                labels.push(LabelHint {
                    field: field.clone(),
                    given: given.to_string(),
                    agrees: predicted == given,
                    predicted,
                });
            }
        }
        Ok(Hints {
            schema_error: parsed.err(),
            duplicate_of,
            flags: heuristics(&text),
            labels,
        })
    }
}

/// A generated paraphrase set: `(a, b, paraphrase)` pairs, half paraphrases of each other (the
/// same review reworded: synonyms, word order, filler words, punctuation and case) and half
/// different reviews on the same topics, from `seed`.
pub fn paraphrase_pairs(n: usize, seed: u64) -> Vec<(String, String, bool)> {
    const SUBJECTS: &[&str] = &[
        "the film",
        "this phone",
        "the hotel",
        "the restaurant",
        "this book",
        "the laptop",
        "the concert",
        "this game",
        "the airline",
        "the course",
    ];
    const PRAISE: &[(&str, &str)] = &[
        ("was wonderful", "was fantastic"),
        ("exceeded my expectations", "was better than I expected"),
        ("is worth every penny", "is great value for the money"),
        ("made me very happy", "left me really pleased"),
        ("works perfectly", "runs flawlessly"),
    ];
    const BLAME: &[(&str, &str)] = &[
        ("was a total disappointment", "was really disappointing"),
        (
            "broke after two days",
            "stopped working after a couple of days",
        ),
        ("is far too expensive", "costs way too much"),
        ("left me angry", "made me furious"),
        ("was slow and unhelpful", "was sluggish and of no help"),
    ];
    const REASONS: &[(&str, &str)] = &[
        (
            "the staff were friendly",
            "the people working there were kind",
        ),
        (
            "the battery lasts all day",
            "the battery holds up the whole day",
        ),
        ("the story kept me hooked", "the plot held my attention"),
        ("the price went up twice", "they raised the price two times"),
        ("nobody answered my emails", "my emails went unanswered"),
    ];
    let mut rng = StdRng::seed_from_u64(seed);
    let review = |rng: &mut StdRng| {
        let subject = SUBJECTS[rng.gen_range(0..SUBJECTS.len())];
        let verdicts = if rng.gen_bool(0.5) { PRAISE } else { BLAME };
        let verdict = verdicts[rng.gen_range(0..verdicts.len())];
        let reason = REASONS[rng.gen_range(0..REASONS.len())];
        (subject, verdict, reason)
    };
    let mut pairs = Vec::with_capacity(n);
    for i in 0..n {
        let (subject, verdict, reason) = review(&mut rng);
        let a = format!("{} {} because {}.", capital(subject), verdict.0, reason.0);
        if i % 2 == 0 {
            // A reworded copy: swap in the synonyms, then reorder, pad or re-punctuate.
            let mut b = match rng.gen_range(0..3) {
                0 => format!("Because {}, {} {}.", reason.1, subject, verdict.1),
                1 => format!("Honestly, {} {} since {}!", subject, verdict.1, reason.1),
                _ => format!("{} {}, because {}.", capital(subject), verdict.1, reason.1),
            };
            if rng.gen_bool(0.3) {
                b = b.to_lowercase();
            }
            pairs.push((a, b, true));
        } else {
            // Another review: a different subject, verdict or reason.
            let mut other = review(&mut rng);
            while other == (subject, verdict, reason) {
                other = review(&mut rng);
            }
            let b = format!("{} {} because {}.", capital(other.0), other.1.0, other.2.0);
            pairs.push((a, b, false));
        }
    }
    pairs.shuffle(&mut rng);
    pairs
}

fn capital(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{"type":"object","required":["text","label"],"additionalProperties":false,
        "properties":{"text":{"type":"string","minLength":1,"maxLength":500},
        "label":{"enum":["positive","negative"]}}}"#;

    #[test]
    fn the_schema_names_the_violation_and_finds_the_labels() {
        let schema = ItemSchema::parse(SCHEMA).unwrap();
        assert_eq!(
            schema.labels(),
            &[(
                "label".to_string(),
                vec!["positive".to_string(), "negative".to_string()]
            )]
        );
        let ok = schema
            .check(br#"{"text":"I loved it","label":"positive"}"#)
            .unwrap();
        assert_eq!(schema.text_of(&ok), "I loved it");
        let bad_label = schema
            .check(br#"{"text":"I loved it","label":"great"}"#)
            .unwrap_err();
        assert!(bad_label.contains("/label"), "{bad_label}");
        assert!(schema.check(b"not json").unwrap_err().contains("not JSON"));
        assert!(
            schema
                .check(br#"{"text":"x"}"#)
                .unwrap_err()
                .contains("label")
        );
        assert!(ItemSchema::parse("{").is_err());
        assert!(ItemSchema::parse(r#"{"type": 5}"#).is_err());
    }

    #[test]
    fn canonical_items_sort_keys_and_keep_junk_as_given() {
        assert_eq!(
            canonical_item(b" {\"label\": \"x\", \"text\": \"a\"}\n"),
            br#"{"label":"x","text":"a"}"#
        );
        assert_eq!(canonical_item(b"  not json \n"), b"not json");
    }

    #[test]
    fn heuristics_flag_spam_and_pass_ordinary_text() {
        assert!(heuristics("The service was slow but the food was good.").is_empty());
        assert!(!heuristics("BUY NOW!!! cheap pills at www.example.com").is_empty());
        assert!(!heuristics("aaaaaaaaaaaa").is_empty());
        assert!(!heuristics("ok").is_empty());
        assert!(!heuristics("spam spam spam spam eggs").is_empty());
        assert!(!heuristics("это очень хороший фильм").is_empty());
    }

    #[test]
    fn the_paraphrase_set_is_balanced_and_fixed_by_its_seed() {
        let pairs = paraphrase_pairs(200, 7);
        assert_eq!(pairs, paraphrase_pairs(200, 7));
        assert_eq!(pairs.iter().filter(|p| p.2).count(), 100);
        assert!(pairs.iter().all(|(a, b, _)| a != b));
    }
}
