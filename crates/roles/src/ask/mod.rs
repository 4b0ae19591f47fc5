//! `hibana ask`: a question in plain language, answered by SQL that a small CPU model writes
//! over the analytics tables, always shown with the rows it returned.
//!
//! The route, in order:
//! 1. **Retrieve**: the MiniLM embedding of the question picks the most similar worked
//!    examples (question, SQL) from the library the project ships ([`LIBRARY`]).
//! 2. **Prompt**: the live schema of the tables those examples and the question name (columns,
//!    types, a few sample values of the columns with few values), the names of the `labels`
//!    table, then the examples, then the question.
//! 3. **Decode under a grammar** generated from the live schema ([`grammar::sql_grammar`]):
//!    only a single `SELECT` over real tables, columns and functions can come out.
//! 4. **Execute** every distinct candidate (greedy, plus sampled ones when voting); when none
//!    runs, decode again with the error in the prompt.
//! 5. **Vote** on the results (execution consistency): the result most candidates agree on,
//!    preferring non-empty results, then the greedy candidate's.
//!
//! Nothing in the route knows any particular question's answer: the model writes the SQL and
//! the tables answer it. A question that looks like none of the library's (retrieval
//! similarity under [`MIN_SIMILARITY`]), or whose every candidate fails, is answered with what
//! was tried and no number.

mod compose;
pub mod grammar;

use std::collections::BTreeMap;

use hibana_ai::{
    AiError,
    embed::Embedder,
    text::{GenerateParams, TextModel},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use compose::{
    accounts_who, balances, counterparties, mentioned_names, net_flow, net_stake, one_row, ranked,
    time_span, two_compared, validator_power,
};

/// One worked example of the library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// The question.
    pub q: String,
    /// SQL that answers it over the analytics tables.
    pub sql: String,
}

/// The worked examples the project ships, one JSON object per line.
pub const LIBRARY: &str = include_str!("library.jsonl");

/// Parses the shipped library.
pub fn library() -> Result<Vec<Example>, String> {
    LIBRARY
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("library line {}: {e}", i + 1)))
        .collect()
}

/// A column of the live schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its Arrow type, as DataFusion prints it.
    pub data_type: String,
    /// A few of its values (for columns with few distinct values), shown in the prompt.
    #[serde(default)]
    pub samples: Vec<String>,
}

/// A table of the live schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// Its name.
    pub name: String,
    /// What a row is.
    pub about: String,
    /// Its columns in order.
    pub columns: Vec<Column>,
}

/// The live schema a question is answered over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    /// Every table.
    pub tables: Vec<Table>,
    /// The names of the `labels` table (people, validators, providers).
    pub names: Vec<String>,
}

/// Runs SQL for the asker (the analytics endpoint, or tables read in process).
pub trait SqlRunner {
    /// The rows of `sql` as JSON objects, or the engine's error message.
    fn run(&mut self, sql: &str) -> Result<Vec<Value>, String>;
}

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AskOptions {
    /// Candidates decoded (1: greedy only; more: greedy plus sampled ones, voted on; 0: no
    /// model, the closest worked example's SQL as it is, a baseline).
    pub candidates: usize,
    /// Worked examples in the prompt.
    pub examples: usize,
    /// Decodings again with the error in the prompt when no candidate runs.
    pub retries: usize,
    /// Longest SQL, in tokens.
    pub max_tokens: u32,
    /// Decode under the grammar of the live schema (off: free decoding, to measure what the
    /// grammar adds).
    pub grammar: bool,
}

impl Default for AskOptions {
    fn default() -> Self {
        AskOptions {
            candidates: 3,
            examples: 4,
            retries: 1,
            max_tokens: 160,
            grammar: true,
        }
    }
}

/// One SQL candidate and what running it gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// The SQL.
    pub sql: String,
    /// How it was produced: `adapted` (the closest example with the question's names and
    /// numbers), `greedy`, `sampled`, `retry`, or `retrieval`.
    pub source: String,
    /// Rows it returned, when it ran.
    pub rows: Option<usize>,
    /// The engine's error, when it did not.
    pub error: Option<String>,
    /// Candidates whose result was the same as this one's.
    pub votes: usize,
}

/// The answer to a question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The question asked.
    pub question: String,
    /// Whether the rows answer it (false: nothing ran, or the question looks unanswerable).
    pub answered: bool,
    /// The SQL whose rows are the answer (or, unanswered, the best SQL tried).
    pub sql: Option<String>,
    /// The rows of that SQL.
    pub rows: Vec<Value>,
    /// The answer in words, made from the rows (never from the model alone).
    pub text: String,
    /// The worked examples the prompt held, with their similarity to the question.
    pub examples: Vec<(String, f32)>,
    /// Every candidate tried.
    pub attempts: Vec<Attempt>,
    /// Time spent, in milliseconds.
    pub elapsed_ms: u64,
}

/// Retrieval similarity under which a question is taken to be about something the tables do
/// not hold (the team's question set scores 0.60 at the lowest; "Who won the football
/// match?" 0.31, the weather in Paris 0.21).
pub const MIN_SIMILARITY: f32 = 0.45;

/// Longest question, in bytes.
pub const MAX_QUESTION: usize = 500;

/// Sampling temperature of the candidates after the greedy one.
const SAMPLED_TEMPERATURE: f32 = 0.6;

/// The question answerer: a text model, the embedder, and the library with its embeddings.
pub struct Asker<'m> {
    model: &'m TextModel,
    embedder: &'m Embedder,
    library: Vec<Example>,
    vectors: Vec<Vec<f32>>,
}

impl std::fmt::Debug for Asker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Asker")
            .field("model", &self.model.name())
            .field("examples", &self.library.len())
            .finish()
    }
}

impl<'m> Asker<'m> {
    /// An asker over `library`, embedding its questions once.
    pub fn new(
        model: &'m TextModel,
        embedder: &'m Embedder,
        library: Vec<Example>,
    ) -> Result<Asker<'m>, AiError> {
        // The names the examples use are the ones their SQL quotes (`name = 'bob'`).
        let names: Vec<String> = library
            .iter()
            .flat_map(|e| quoted_names(&e.sql))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let questions: Vec<String> = library.iter().map(|e| masked(&e.q, &names)).collect();
        let (vectors, _) = embedder.embed(&questions)?;
        Ok(Asker {
            model,
            embedder,
            library,
            vectors,
        })
    }

    /// The `k` library examples most similar to `question` (names from `names` and numbers
    /// masked on both sides, so that the shape of the question decides), best first, with
    /// their cosine.
    pub fn retrieve(
        &self,
        question: &str,
        names: &[String],
        k: usize,
    ) -> Result<Vec<(&Example, f32)>, AiError> {
        let (v, _) = self.embedder.embed(&[masked(question, names)])?;
        let q = v.into_iter().next().unwrap_or_default();
        let words = content_words(question);
        let mut scored: Vec<(&Example, f32)> = self
            .library
            .iter()
            .zip(&self.vectors)
            .map(|(e, v)| {
                (
                    e,
                    dot(&q, v) + LEXICAL_WEIGHT * overlap(&words, &content_words(&e.q)),
                )
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        scored.truncate(k);
        Ok(scored)
    }

    /// Answers `question` over `schema`, running SQL with `runner`.
    pub fn ask(
        &self,
        question: &str,
        schema: &Schema,
        runner: &mut dyn SqlRunner,
        options: AskOptions,
    ) -> Result<Answer, AiError> {
        let started = std::time::Instant::now();
        let question = question.trim();
        if question.is_empty() {
            return Err(AiError::InvalidRequest("the question is empty".into()));
        }
        if question.len() > MAX_QUESTION {
            return Err(AiError::InvalidRequest(format!(
                "the question is {} bytes long; at most {MAX_QUESTION}",
                question.len()
            )));
        }
        let nearest = self.retrieve(question, &schema.names, options.examples.max(8))?;
        let examples = &nearest[..options.examples.max(1).min(nearest.len())];
        let best_similarity = examples.first().map(|e| e.1).unwrap_or(0.0);
        let prompt_schema = relevant_schema(schema, question, examples);
        let grammar = options
            .grammar
            .then(|| grammar::sql_grammar(&prompt_schema));
        let first_prompt = prompt(&prompt_schema, &schema.names, examples, question, None);
        tracing::debug!(prompt = %first_prompt, "ask");

        let mut attempts: Vec<Attempt> = Vec::new();
        let mut results: Vec<Option<Vec<Value>>> = Vec::new();
        let candidates = match (options.candidates, examples.first()) {
            // The retrieval-only route (a baseline): the closest example's SQL as it is.
            (0, Some((example, _))) => vec![(example.sql.clone(), "retrieval")],
            (_, closest) => {
                // The closest example with the question's names and numbers put in its
                // place, then what the model writes.
                // A question that singles out one transfer is answered with that transfer's
                // row, composed from its words, first: it wins a tie.
                let mut out: Vec<(String, &'static str)> = one_row(question, &schema.names)
                    .or_else(|| net_flow(question, &schema.names))
                    .or_else(|| two_compared(question, &schema.names))
                    .or_else(|| ranked(question, &schema.names))
                    .or_else(|| counterparties(question, &schema.names))
                    .or_else(|| net_stake(question, &schema.names))
                    .or_else(|| time_span(question, &schema.names))
                    .or_else(|| accounts_who(question, &schema.names))
                    .or_else(|| validator_power(question, &schema.names))
                    .or_else(|| balances(question, &schema.names))
                    .map(|sql| (sql, "composed"))
                    .into_iter()
                    .collect();
                out.extend(
                    closest
                        .and_then(|_| adaptable(&nearest, question, schema))
                        .map(|sql| (sql, "adapted")),
                );
                out.extend(self.decode(&first_prompt, grammar.as_deref(), options)?);
                out
            }
        };
        // Each candidate that contradicts what the question's words fix (who sent, who
        // received, success or failure, a count) is followed by its repair; the vote weighs
        // both by those cues.
        let candidates: Vec<(String, &'static str)> = candidates
            .into_iter()
            .flat_map(|(sql, source)| {
                // A composed query already follows the words.
                let repaired = (source != "composed")
                    .then(|| repair(question, &sql, &schema.names))
                    .flatten()
                    .map(|r| (r, "repaired"));
                std::iter::once((sql, source)).chain(repaired)
            })
            .collect();
        // A question unlike any worked example is not answered: its SQL is shown, not run.
        let refused = best_similarity < MIN_SIMILARITY;
        for (sql, source) in candidates {
            if refused {
                attempts.push(Attempt {
                    sql,
                    source: source.to_string(),
                    rows: None,
                    error: None,
                    votes: 0,
                });
                results.push(None);
            } else {
                run_attempt(runner, sql, source, &mut attempts, &mut results);
            }
        }
        for _ in 0..options.retries {
            if refused || options.candidates == 0 || results.iter().any(Option::is_some) {
                break;
            }
            let Some(failed) = attempts.iter().rev().find(|a| a.error.is_some()) else {
                break;
            };
            let feedback = (failed.sql.clone(), failed.error.clone().unwrap_or_default());
            let retry_prompt = prompt(
                &prompt_schema,
                &schema.names,
                examples,
                question,
                Some(&feedback),
            );
            let retry = self.decode(
                &retry_prompt,
                grammar.as_deref(),
                AskOptions {
                    candidates: 1,
                    ..options
                },
            )?;
            for (sql, _) in retry {
                run_attempt(runner, sql, "retry", &mut attempts, &mut results);
            }
        }

        // When nothing answered, even after the retries, the other retrieved examples whose
        // slots fit are adapted and run too (each followed by its repair): a model that loops
        // on a column still leaves the closest worked shapes. Only then, since beside a running
        // candidate they cost more questions than they won (measured over the read sets).
        if !refused
            && options.candidates > 0
            && !results
                .iter()
                .any(|r| r.as_deref().is_some_and(|rows| !is_empty_result(rows)))
        {
            for sql in adaptations(&nearest, question, schema) {
                if attempts.iter().any(|a| a.sql == sql) {
                    continue;
                }
                let repaired = repair(question, &sql, &schema.names);
                run_attempt(runner, sql, "adapted", &mut attempts, &mut results);
                if let Some(r) = repaired {
                    run_attempt(runner, r, "repaired", &mut attempts, &mut results);
                }
            }
        }
        let chosen = vote(question, &schema.names, &mut attempts, &results);
        let examples_out: Vec<(String, f32)> =
            examples.iter().map(|(e, s)| (e.q.clone(), *s)).collect();
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut answer = Answer {
            question: question.to_string(),
            answered: false,
            sql: None,
            rows: Vec::new(),
            text: String::new(),
            examples: examples_out,
            attempts,
            elapsed_ms,
        };
        if refused {
            answer.sql = answer.attempts.first().map(|a| a.sql.clone());
            answer.text = format!(
                "This question does not look like one the chain's tables can answer (it is \
                 {best_similarity:.2} similar to the closest worked example; at least \
                 {MIN_SIMILARITY:.2} is needed), so no number is given."
            );
            return Ok(answer);
        }
        match chosen {
            Some(i) => {
                let rows = results[i].clone().unwrap_or_default();
                answer.answered = true;
                answer.sql = Some(answer.attempts[i].sql.clone());
                answer.text = describe(&rows);
                answer.rows = rows;
            }
            None => {
                let last = answer.attempts.last();
                answer.sql = last.map(|a| a.sql.clone());
                answer.text = format!(
                    "No SQL the model wrote for this question ran ({}), so no number is given.",
                    last.and_then(|a| a.error.clone())
                        .unwrap_or_else(|| "nothing was decoded".into())
                );
            }
        }
        Ok(answer)
    }

    /// Decodes the candidates: greedy first, then sampled ones with distinct seeds, all at
    /// once (the engine batches them).
    fn decode(
        &self,
        prompt: &str,
        grammar: Option<&str>,
        options: AskOptions,
    ) -> Result<Vec<(String, &'static str)>, AiError> {
        let n = options.candidates.max(1);
        let outputs: Vec<Result<String, AiError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let params = GenerateParams {
                        max_tokens: options.max_tokens,
                        temperature: if i == 0 { 0.0 } else { SAMPLED_TEMPERATURE },
                        top_p: 0.95,
                        seed: i as u64,
                        stop: vec!["\n".into()],
                    };
                    scope.spawn(move || {
                        match grammar {
                            Some(grammar) => {
                                self.model.generate_constrained(prompt, &params, grammar)
                            }
                            None => self.model.generate(prompt, &params, &mut |_| true),
                        }
                        .map(|g| g.text)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(AiError::Inference("a decoding thread panicked".into()))
                    })
                })
                .collect()
        });
        let mut out = Vec::new();
        for (i, text) in outputs.into_iter().enumerate() {
            let sql = text?.trim().to_string();
            if !sql.is_empty() {
                out.push((sql, if i == 0 { "greedy" } else { "sampled" }));
            }
        }
        Ok(out)
    }
}

/// The names an example's SQL compares `name` with (`name = 'bob'`).
fn quoted_names(sql: &str) -> Vec<String> {
    sql.split("name = '")
        .skip(1)
        .filter_map(|rest| rest.split('\'').next())
        .map(str::to_lowercase)
        .collect()
}

/// `text` with each of `names` replaced by "someone" and each number by "N".
fn masked(text: &str, names: &[String]) -> String {
    text.split(' ')
        .map(|word| {
            let core = word.trim_matches(|c: char| !c.is_alphanumeric());
            let stem = core.strip_suffix("'s").unwrap_or(core);
            let stem = stem.strip_suffix("’s").unwrap_or(stem);
            if stem.is_empty() {
                word.to_string()
            } else if names.iter().any(|n| n.eq_ignore_ascii_case(stem)) {
                word.replacen(stem, "someone", 1)
            } else if stem.chars().all(|c| c.is_ascii_digit() || c == '.') {
                word.replacen(stem, "N", 1)
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The slots of a question: the names (from `labels`), the category values (`bond`,
/// `miner`…, from the columns' samples) and the numbers it mentions, in order, each number
/// with what it counts (`5 HIB`, `20 blocks`, `block 12`).
#[derive(Debug, PartialEq, Eq)]
struct Slots {
    names: Vec<String>,
    values: Vec<String>,
    numbers: Vec<String>,
    units: Vec<String>,
}

/// Words that stand between a number and what it counts (`5 and 15`, `10 to 20`).
const NUMBER_LINKS: &[&str] = &[
    "and", "or", "to", "of", "in", "the", "than", "between", "from", "through", "until", "till",
];

/// What the number at `words[i]` counts: the word after it (`20 blocks`), or the one before
/// when the next is a link or missing (`block 12`), singular and lowercase.
fn number_unit(words: &[&str], i: usize) -> String {
    let usable = |w: &&&str| !NUMBER_LINKS.contains(*w) && w.chars().all(char::is_alphabetic);
    let unit = words
        .get(i + 1)
        .filter(usable)
        .or_else(|| i.checked_sub(1).and_then(|j| words.get(j)).filter(usable))
        .copied()
        .unwrap_or("");
    unit.strip_suffix('s').unwrap_or(unit).to_string()
}

impl Slots {
    fn of(text: &str, names: &[String], values: &[String]) -> Slots {
        let mut slots = Slots {
            names: Vec::new(),
            values: Vec::new(),
            numbers: Vec::new(),
            units: Vec::new(),
        };
        let lower = text.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !(c.is_alphanumeric() || c == '.' || c == '_'))
            .map(|word| word.trim_end_matches('.'))
            .filter(|word| !word.is_empty())
            .collect();
        for (i, &word) in words.iter().enumerate() {
            if word.chars().all(|c| c.is_ascii_digit() || c == '.') && word.parse::<f64>().is_ok() {
                slots.numbers.push(word.to_string());
                slots.units.push(number_unit(&words, i));
            } else if names.iter().any(|n| n.eq_ignore_ascii_case(word)) {
                slots.names.push(word.to_string());
            } else if let Some(v) = values.iter().find(|v| {
                word == v.as_str()
                    || word
                        .strip_prefix(v.as_str())
                        .is_some_and(|rest| ["s", "ed", "d", "ing"].contains(&rest))
            }) {
                slots.values.push(v.clone());
            }
        }
        // A number with no unit of its own counts what its neighbour counts (`block 10 and
        // 15`, `between 5 and 10 HIB`).
        for i in 0..slots.units.len() {
            if slots.units[i].is_empty() {
                let left = slots.units[..i].iter().rev().find(|u| !u.is_empty());
                let right = slots.units[i + 1..].iter().find(|u| !u.is_empty());
                if let Some(unit) = left.or(right).cloned() {
                    slots.units[i] = unit;
                }
            }
        }
        slots
    }

    /// Whether `other` has as many names, values and numbers, its numbers counting the same
    /// things (`2 HIB` is not `the last 18 blocks`).
    fn fits(&self, other: &Slots) -> bool {
        self.names.len() == other.names.len()
            && self.values.len() == other.values.len()
            && self.numbers.len() == other.numbers.len()
            && self.units == other.units
    }
}

/// Category values of the schema that a question may name (single lowercase words among the
/// samples of the `kind` and `role` columns that are not names).
fn category_values(schema: &Schema) -> Vec<String> {
    let mut values: Vec<String> = schema
        .tables
        .iter()
        .flat_map(|t| t.columns.iter())
        // Kinds and roles only: other columns' values (`transfer` in `message_types`) are
        // everyday words of questions.
        .filter(|c| c.name == "kind" || c.name == "role")
        .flat_map(|c| c.samples.iter())
        .filter(|v| v.len() >= 3 && v.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .filter(|v| !schema.names.iter().any(|n| n == *v))
        .cloned()
        .collect();
    values.sort();
    values.dedup();
    // Longest first, so that `unbond` is not read as `bond`.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values
}

/// The example's SQL adapted to `question`: each name, category value and number the
/// example's question mentions is replaced, in order, by the one the question mentions in the
/// same place. None when the two mention different counts of them (the shapes differ: the
/// model decides).
pub fn adapt(example: &Example, question: &str, schema: &Schema) -> Option<String> {
    let values = category_values(schema);
    let mut from = Slots::of(&example.q, &schema.names, &values);
    // A value the example's SQL never quotes is no slot of it (`staked` read from balances).
    from.values
        .retain(|v| example.sql.contains(&format!("'{v}'")));
    let to = Slots::of(question, &schema.names, &values);
    if !from.fits(&to) {
        return None;
    }
    let mut sql = example.sql.clone();
    // Through placeholders, so that swapping two names does not replace a replacement.
    let quoted = from.names.iter().chain(&from.values).enumerate();
    for (i, word) in quoted {
        sql = sql.replace(&format!("'{word}'"), &format!("'\u{1}{i}\u{1}'"));
    }
    for (i, word) in to.names.iter().chain(&to.values).enumerate() {
        sql = sql.replace(&format!("\u{1}{i}\u{1}"), &word.replace('\'', "''"));
    }
    // Numbers too: `between 10 and 20` adapted to `20 and 30` must not read `30 and 30`.
    // The placeholders hold no digit, so that a later number cannot match inside one.
    let placeholder = |i: usize| format!("\u{2}{}\u{2}", "#".repeat(i + 1));
    for (i, a) in from.numbers.iter().enumerate() {
        sql = replace_number(&sql, a, &placeholder(i));
    }
    for (i, b) in to.numbers.iter().enumerate().rev() {
        sql = sql.replace(&placeholder(i), b);
    }
    Some(sql)
}

/// The example to adapt: of those in `examples` nearly as similar as the best whose slots fit
/// the question's, the most similar one whose adapted SQL (or its repair) contradicts the
/// question's words least ([`cue_fit`], [`party_fit`]). Similarity alone follows the shape of
/// a sentence (`the largest spendable balance` lies nearest `the largest stake`).
fn adaptable(examples: &[(&Example, f32)], question: &str, schema: &Schema) -> Option<String> {
    let best = examples.first()?.1;
    let contradictions =
        |sql: &str| cues(question, sql).1 + party_cues(question, sql, &schema.names).1;
    examples
        .iter()
        .take_while(|(_, similarity)| *similarity >= best - ADAPT_MARGIN)
        .filter_map(|(e, _)| adapt(e, question, schema))
        .enumerate()
        .min_by_key(|(i, sql)| {
            let repaired = repair(question, sql, &schema.names);
            let fewest =
                contradictions(sql).min(repaired.as_deref().map_or(i32::MAX, contradictions));
            (fewest, *i)
        })
        .map(|(_, sql)| sql)
}

/// Every example of `examples` whose slots fit the question's, adapted to it, best first.
fn adaptations(examples: &[(&Example, f32)], question: &str, schema: &Schema) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for sql in examples
        .iter()
        .filter_map(|(e, _)| adapt(e, question, schema))
    {
        if !out.contains(&sql) {
            out.push(sql);
        }
    }
    out
}

/// How much less similar than the best an example may be and still be adapted.
const ADAPT_MARGIN: f32 = 0.08;

/// Replaces the number `from` where it stands alone in `sql` (not inside a longer number or a
/// name).
fn replace_number(sql: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < sql.len() {
        let rest = &sql[i..];
        let before_ok = i == 0
            || !(bytes[i - 1].is_ascii_alphanumeric()
                || bytes[i - 1] == b'.'
                || bytes[i - 1] == b'_');
        let after = i + from.len();
        let after_ok = after >= sql.len()
            || !(bytes[after].is_ascii_alphanumeric()
                || bytes[after] == b'.'
                || bytes[after] == b'_');
        if before_ok && rest.starts_with(from) && after_ok {
            out.push_str(to);
            i = after;
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Runs one candidate, unless the same SQL already ran (then it shares that result).
fn run_attempt(
    runner: &mut dyn SqlRunner,
    sql: String,
    source: &str,
    attempts: &mut Vec<Attempt>,
    results: &mut Vec<Option<Vec<Value>>>,
) {
    let earlier = attempts.iter().position(|a| a.sql == sql);
    let (rows, error) = match earlier {
        Some(i) => (results[i].clone(), attempts[i].error.clone()),
        None => match runner.run(&sql) {
            Ok(rows) => (Some(rows), None),
            Err(e) => (None, Some(e)),
        },
    };
    attempts.push(Attempt {
        sql,
        source: source.to_string(),
        rows: rows.as_ref().map(Vec::len),
        error,
        votes: 0,
    });
    results.push(rows);
}

/// Execution-consistency vote: groups candidates by result; the largest group wins, a
/// non-empty result before an empty one, then the group of the earliest candidate. Returns the
/// winning candidate's index and records every candidate's votes.
fn vote(
    question: &str,
    names: &[String],
    attempts: &mut [Attempt],
    results: &[Option<Vec<Value>>],
) -> Option<usize> {
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in results.iter().enumerate() {
        if let Some(rows) = r {
            groups.entry(canonical(rows)).or_default().push(i);
        }
    }
    // A repair agrees with the candidate it repaired by construction more often than by
    // being right (two accounts with the same nonces): the two count as one vote. A repair is
    // always the attempt right after the one it repaired.
    let independent = |members: &[usize]| {
        members
            .iter()
            .filter(|&&i| {
                !(attempts[i].source == "repaired" && i > 0 && members.contains(&(i - 1)))
            })
            .count()
    };
    let votes: Vec<(usize, usize)> = groups
        .values()
        .flat_map(|members| {
            let n = independent(members);
            members.iter().map(move |&i| (i, n))
        })
        .collect();
    for (i, n) in votes {
        attempts[i].votes = n;
    }
    // A question of absence (`never`, `nobody`) may be answered by no rows: a composed query
    // that finds none is an answer, not a miss.
    let q = spaced(question);
    let absence = [" never ", " nobody ", " no one ", " noone "]
        .iter()
        .any(|w| q.contains(w));
    groups
        .values()
        .max_by_key(|members| {
            let first = members[0];
            let composed = members.iter().any(|&i| attempts[i].source == "composed");
            let non_empty = !is_empty_result(results[first].as_deref().unwrap_or_default())
                || (absence && composed);
            let fit = members
                .iter()
                .map(|&i| {
                    cue_fit(question, &attempts[i].sql)
                        + party_fit(question, &attempts[i].sql, names)
                })
                .max()
                .unwrap_or(0);
            // A query composed from the words wins over what merely agrees.
            (
                non_empty,
                composed,
                fit,
                attempts[first].votes,
                std::cmp::Reverse(first),
            )
        })
        .map(|members| members[0])
}

/// The part a name plays in a transfer the question describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Party {
    Sender,
    Recipient,
}

impl Party {
    /// The transfers column this party is read from, and the other one.
    fn columns(self) -> (&'static str, &'static str) {
        match self {
            Party::Sender => ("\"from\"", "\"to\""),
            Party::Recipient => ("\"to\"", "\"from\""),
        }
    }
}

/// Verbs whose subject sends (`alice sent`, `bob paid`) and whose object receives (`paid bob`).
const SENDING: &[&str] = &[
    "sent",
    "send",
    "sends",
    "sending",
    "paid",
    "pay",
    "pays",
    "paying",
    "made",
    "make",
    "makes",
    "transferred",
    "spent",
    "spend",
    "spends",
    "moved",
    "gave",
    "give",
    "gives",
];
/// Verbs whose subject receives.
const RECEIVING: &[&str] = &[
    "received",
    "receive",
    "receives",
    "receiving",
    "got",
    "get",
    "gets",
    "earned",
    "earn",
    "earns",
];
/// Words that may stand between a subject and its verb (`alice has sent`, `bob ever paid`).
const AUXILIARIES: &[&str] = &[
    "has", "have", "had", "did", "does", "do", "ever", "already", "just", "actually", "been",
    "really",
];

/// Nouns of sending that follow their sender (`alice's transfers`, `bob payments`) or take
/// it after `by` (`transfers by carol`).
const SENDING_NOUNS: &[&str] = &["transfer", "transfers", "payment", "payments"];

fn verb_party(word: &str) -> Option<Party> {
    if SENDING.contains(&word) || SENDING_NOUNS.contains(&word) {
        Some(Party::Sender)
    } else if RECEIVING.contains(&word) {
        Some(Party::Recipient)
    } else {
        None
    }
}

/// The names of `names` that the question makes a sender or a recipient: `from X`, `X sent`,
/// `sent by X` and `X paid` send; `to X`, `X received`, `received by X` and `paid X` receive. A
/// name given both parts is left out.
fn parties(question: &str, names: &[String]) -> Vec<(String, Party)> {
    let words: Vec<String> = question
        .to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’' || c == '_'))
        .map(|w| {
            let w = w.trim_matches(|c| c == '\'' || c == '’');
            let w = w.strip_suffix("'s").unwrap_or(w);
            w.strip_suffix("’s").unwrap_or(w).to_string()
        })
        .filter(|w| !w.is_empty())
        .collect();
    let mut found: Vec<(String, Party)> = Vec::new();
    for (i, word) in words.iter().enumerate() {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(word)) {
            continue;
        }
        let before = |k: usize| i.checked_sub(k).map(|j| words[j].as_str());
        let party = match before(1) {
            Some("from") => Some(Party::Sender),
            Some("to") => Some(Party::Recipient),
            Some("by") => before(2).and_then(verb_party),
            Some(verb) if SENDING.contains(&verb) => Some(Party::Recipient),
            _ => None,
        }
        .or_else(|| {
            words[i + 1..]
                .iter()
                .find(|w| !AUXILIARIES.contains(&w.as_str()))
                .and_then(|w| verb_party(w))
        });
        if let Some(party) = party {
            found.push((word.clone(), party));
        }
    }
    let conflicted = |name: &str| {
        let mut roles = found.iter().filter(|(n, _)| n == name).map(|(_, p)| *p);
        let first = roles.next();
        roles.any(|p| Some(p) != first)
    };
    let mut out: Vec<(String, Party)> = found
        .iter()
        .filter(|(n, _)| !conflicted(n))
        .cloned()
        .collect();
    out.dedup();
    out
}

/// `sql` without its first filter on the account named `name` (`"to" IN (SELECT address FROM
/// labels WHERE name = 'bob')`), when that filter is one term of the `WHERE` conjunction.
fn drop_name_filter(sql: &str, name: &str) -> Option<String> {
    let tail = format!(" IN (SELECT address FROM labels WHERE name = '{name}')");
    let at = find_ignoring_case(sql, &tail)?;
    let start = sql[..at].rfind(' ').map_or(0, |k| k + 1);
    let (before, after) = (&sql[..start], &sql[at + tail.len()..]);
    if let Some(kept) = before.strip_suffix(" AND ") {
        Some(format!("{kept}{after}"))
    } else if let Some(kept) = before.strip_suffix(" WHERE ") {
        match after.strip_prefix(" AND ") {
            Some(rest) => Some(format!("{before}{rest}")),
            None => Some(format!("{kept}{after}")),
        }
    } else {
        None
    }
}

/// The first term of `sql` that asks for a count column to be zero (`tx_count = 0`,
/// `b.tx_count = 0`), if any.
fn zero_count_term(sql: &str) -> Option<String> {
    sql.match_indices("_count = 0").find_map(|(at, m)| {
        let end = at + m.len();
        if sql[end..].starts_with(|c: char| c.is_ascii_digit() || c == '.') {
            return None;
        }
        let start = sql[..at]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '.'))
            .map_or(0, |(k, c)| k + c.len_utf8());
        Some(sql[start..end].to_string())
    })
}

/// `text` after `prefix`, ignoring ASCII case.
fn strip_prefix_ignoring_case<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    text.get(..prefix.len())
        .filter(|head| head.eq_ignore_ascii_case(prefix))
        .map(|_| &text[prefix.len()..])
}

/// Words that put a question in time (`yesterday`, `in the past week`): only these make a
/// filter on `now()` right.
const TIME_WORDS: &[&str] = &[
    "yesterday",
    "today",
    "hour",
    "hours",
    "day",
    "days",
    "week",
    "weeks",
    "month",
    "since",
    "ago",
    "recent",
    "recently",
    "past",
];

/// Number words a question may spell out, as digits.
const NUMBER_WORDS: &[(&str, &str)] = &[
    ("one", "1"),
    ("two", "2"),
    ("three", "3"),
    ("four", "4"),
    ("five", "5"),
    ("six", "6"),
    ("seven", "7"),
    ("eight", "8"),
    ("nine", "9"),
    ("ten", "10"),
];

/// The outer `WHERE` conjunction of `sql`: where it starts and ends, and its terms, split at
/// `AND` outside parentheses and quotes (the `AND` of a `BETWEEN` stays in its term).
fn where_terms(sql: &str) -> Option<(usize, usize, Vec<String>)> {
    let lower = sql.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    // Positions at depth 0, outside quotes.
    let mut outer = vec![false; bytes.len()];
    let (mut depth, mut quoted) = (0i32, false);
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\'' => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted => depth -= 1,
            _ => {}
        }
        outer[i] = depth == 0 && !quoted;
    }
    let at_outer = |word: &str, from: usize| {
        lower[from..]
            .match_indices(word)
            .map(|(k, _)| from + k)
            .find(|&k| outer[k])
    };
    let start = at_outer(" where ", 0)? + " where ".len();
    let end = [" group by ", " order by ", " limit ", " having "]
        .iter()
        .filter_map(|w| at_outer(w, start))
        .min()
        .unwrap_or(sql.len());
    let mut terms: Vec<String> = Vec::new();
    let mut from = start;
    let mut between = false;
    while let Some(k) = at_outer(" and ", from).filter(|&k| k + " and ".len() <= end) {
        let piece = &sql[from..k];
        match terms.last_mut() {
            Some(last) if between => {
                last.push_str(" AND ");
                last.push_str(piece);
                between = false;
            }
            _ => {
                between = piece.to_ascii_lowercase().contains(" between ");
                terms.push(piece.to_string());
            }
        }
        from = k + " and ".len();
    }
    let piece = &sql[from..end];
    match terms.last_mut() {
        Some(last) if between => {
            last.push_str(" AND ");
            last.push_str(piece);
        }
        _ => terms.push(piece.to_string()),
    }
    Some((start, end, terms))
}

/// `sql` without the outer `WHERE` terms `drop` picks (the `WHERE` goes with its last term),
/// or None when it picks none.
fn drop_where_terms(sql: &str, drop: impl Fn(&str) -> bool) -> Option<String> {
    let (start, end, terms) = where_terms(sql)?;
    let kept: Vec<&String> = terms.iter().filter(|t| !drop(t)).collect();
    if kept.len() == terms.len() {
        return None;
    }
    let rest = &sql[end..];
    if kept.is_empty() {
        let head = &sql[..start - " WHERE ".len()];
        return Some(format!("{head}{rest}"));
    }
    let kept: Vec<&str> = kept.iter().map(|t| t.as_str()).collect();
    Some(format!("{}{}{rest}", &sql[..start], kept.join(" AND ")))
}

/// The numbers a question states, digits or words (`three` is `3`).
fn stated_numbers(question: &str) -> Vec<String> {
    question
        .to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '.'))
        .map(|w| w.trim_matches('.'))
        .map(|w| {
            NUMBER_WORDS
                .iter()
                .find(|(word, _)| *word == w)
                .map_or(w, |(_, digits)| *digits)
                .to_string()
        })
        .collect()
}

/// Whether `term` compares a column with a number (`amount_hib > 4`, `s.delegator = 1`) that
/// the question never states (0 and 1, which a question says in words such as `first` or
/// `none`, excepted).
fn stranger_bound(term: &str, question_numbers: &[String]) -> bool {
    let Some(number) = COMPARISON_OPS.iter().find_map(|op| {
        let (left, right) = term.split_once(op)?;
        let simple = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '"')
        };
        (simple(left) && right.parse::<f64>().is_ok()).then_some(right)
    }) else {
        return false;
    };
    !["0", "1"].contains(&number) && !question_numbers.iter().any(|n| n == number)
}

/// The filter that puts `name` in a transfer's `column` (`"from"` or `"to"`), as the library's
/// examples write it.
fn party_clause(column: &str, name: &str) -> String {
    let name = name.replace('\'', "''");
    format!("{column} IN (SELECT address FROM labels WHERE name = '{name}')")
}

/// Where `needle` occurs in `haystack`, ignoring ASCII case.
fn find_ignoring_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .to_ascii_lowercase()
        .find(&needle.to_ascii_lowercase())
}

/// The question lowercased, its `?`, `,` and `.` made spaces, padded with a space at each end,
/// so that a word is found as ` word `.
fn spaced(question: &str) -> String {
    format!(
        " {} ",
        question.to_lowercase().replace(['?', ',', '.'], " ")
    )
}

/// Whether the question asks about successful transactions (`Some(true)`), failed ones
/// (`Some(false)`), or neither.
fn asks_success(question: &str) -> Option<bool> {
    let q = spaced(question);
    let has = |words: &[&str]| words.iter().any(|w| q.contains(&format!(" {w} ")));
    let succeeded = has(&[
        "succeeded",
        "succeed",
        "succeeds",
        "successful",
        "successfully",
        "success",
    ]);
    let failed = has(&[
        "failed",
        "fail",
        "fails",
        "failure",
        "failures",
        "unsuccessful",
    ]);
    (succeeded != failed).then_some(succeeded)
}

/// Whether the question asks for the largest of something (`biggest`, `most`, `top`) and
/// whether for the smallest (`lowest`, `least`, `fewest`); a bound (`at least 5`, `at most
/// 5`) is neither.
fn sizes(question: &str) -> (bool, bool) {
    let q = spaced(question)
        .replace(" at least ", " ")
        .replace(" at most ", " ");
    let has = |words: &[&str]| words.iter().any(|w| q.contains(&format!(" {w} ")));
    (
        has(&[
            "biggest", "largest", "highest", "maximum", "greatest", "most", "top",
        ]),
        has(&[
            "smallest", "lowest", "least", "minimum", "fewest", "tiniest",
        ]),
    )
}

/// The bound on a block's transactions the question states (`at least one transaction`:
/// `tx_count >= 1`; `blocks that had transactions`: `tx_count > 0`), unless it asks for none
/// or for the block with the most or fewest.
fn transactions_bound(question: &str) -> Option<String> {
    let q = spaced(question);
    let has = |words: &[&str]| words.iter().any(|w| q.contains(&format!(" {w} ")));
    // `the most transactions` ranks blocks by their count; `the most recent block with a
    // transaction` still filters.
    let unbounded = q.replace(" at least ", " ").replace(" at most ", " ");
    let words: Vec<&str> = unbounded.split_whitespace().collect();
    let ranked = words.iter().enumerate().any(|(i, w)| {
        [
            "most", "fewest", "least", "highest", "lowest", "largest", "smallest",
        ]
        .contains(w)
            && words[i + 1..]
                .iter()
                .take(3)
                .any(|next| next.starts_with("transaction"))
    });
    if asks_none(question) || ranked || !has(&["transaction", "transactions"]) {
        return None;
    }
    bounds(question)
        .into_iter()
        .find(|(_, _, unit)| unit.starts_with("transaction"))
        .map(|(op, number, _)| format!("tx_count{op}{number}"))
        .or_else(|| {
            has(&[
                "with",
                "had",
                "have",
                "has",
                "contain",
                "contains",
                "containing",
                "contained",
                "include",
                "included",
            ])
            .then(|| "tx_count > 0".to_string())
        })
}

/// Words of an unbond's release.
const RELEASE_WORDS: &[&str] = &["release", "released", "releases", "unlock", "unlocked"];

/// The words a question counts: the one after each `how many` and `number of`.
fn counted_words(question: &str) -> Vec<String> {
    let q = spaced(question);
    [" how many ", " number of "]
        .iter()
        .flat_map(|phrase| q.split(phrase).skip(1))
        .filter_map(|rest| rest.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Whether the question asks for a number of things (`how many transfers`, `number of`) rather
/// than an amount (`how many HIB`).
fn asks_count(question: &str) -> bool {
    counted_words(question)
        .iter()
        .any(|w| !AMOUNT_WORDS.contains(&w.as_str()))
}

/// A single `SELECT`'s selected columns and what follows its first `FROM`.
fn select_parts(sql: &str) -> Option<(&str, &str)> {
    strip_prefix_ignoring_case(sql, "SELECT ")?.split_once(" FROM ")
}

/// Words that name an amount of the token rather than things to count (`how many coins`,
/// `the number of HIB`).
const AMOUNT_WORDS: &[&str] = &["hib", "tokens", "token", "coins", "coin", "funds"];

/// Whether the question asks for an amount of HIB (`how much`, `total HIB`, `how many HIB`,
/// `volume`) rather than a number of things.
fn asks_amount(question: &str) -> bool {
    let q = spaced(question);
    let has = |words: &[&str]| words.iter().any(|w| q.contains(&format!(" {w} ")));
    let amount = q.contains(" how much ")
        || [" how many hib ", " how many coins ", " how many tokens "]
            .iter()
            .any(|p| q.contains(p))
        || has(&["volume"])
        || (has(&["total", "sum", "most", "least", "fewest"])
            && (has(&["amount", "amounts", "value"]) || has(AMOUNT_WORDS)));
    amount && !asks_count(question)
}

/// Whether the question asks at which height or in which block something happened.
fn asks_height(question: &str) -> bool {
    let q = spaced(question);
    [
        " which block ",
        " what block ",
        " which height ",
        " what height ",
        " what block height ",
        " the height of ",
        " which blocks ",
        " what blocks ",
        " which heights ",
    ]
    .iter()
    .any(|p| q.contains(p))
}

/// Whether the question asks about things with none of something (`no transactions`, `zero
/// transfers`, `empty blocks`, `without`).
fn asks_none(question: &str) -> bool {
    let q = spaced(question);
    ["no", "zero", "empty", "without", "none", "0"]
        .iter()
        .any(|w| q.contains(&format!(" {w} ")))
}

/// One point for each name the question makes a sender or recipient that `sql` reads in that
/// column, minus one for each it reads in the other, and minus one for each name `sql` filters
/// on that the question never mentions (copied from an example).
fn party_fit(question: &str, sql: &str, names: &[String]) -> i32 {
    let (placed, misplaced) = party_cues(question, sql, names);
    placed - misplaced
}

/// How many named parties `sql` puts in their column, and how many names it puts in the wrong
/// column or never should name ([`party_fit`]).
fn party_cues(question: &str, sql: &str, names: &[String]) -> (i32, i32) {
    let (placed, wrong): (i32, i32) = parties(question, names)
        .iter()
        .map(|(name, party)| {
            let (want, other) = party.columns();
            (
                i32::from(find_ignoring_case(sql, &party_clause(want, name)).is_some()),
                i32::from(find_ignoring_case(sql, &party_clause(other, name)).is_some()),
            )
        })
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
    let q = format!(
        " {} ",
        question
            .to_lowercase()
            .replace(['?', ',', '.', '\'', '’'], " ")
    );
    let mut quoted = quoted_names(sql);
    quoted.sort();
    quoted.dedup();
    let strangers = quoted
        .iter()
        .filter(|n| names.iter().any(|k| k.eq_ignore_ascii_case(n)))
        .filter(|n| !q.contains(&format!(" {n} ")))
        .count();
    // The one account the question names, read nowhere where it could be (`total fees bob
    // has paid` summing everyone's fees); `the validator` names no one.
    let ignored = match mentioned_names(question, names).as_slice() {
        [only] => i32::from(account_filter(sql, only).is_some()),
        _ => 0,
    };
    (
        placed,
        (wrong + ignored).saturating_add(i32::try_from(strangers).unwrap_or(i32::MAX)),
    )
}

/// `sql` with what contradicts the question's words put right, or None when nothing does:
/// - a name the question makes a sender read as the recipient (or the other way) is moved to
///   the other column, and one missing from a plain filter over `transfers` is added;
/// - `success = FALSE` for a question about successful transactions, and the other way;
/// - a `sum(…)` where the question counts (and nothing is counted) becomes `count(*)`;
/// - and the rules commented where they stand: names copied from examples, the first and the
///   last, amounts, zero counts, heights, aggregates, distinct parties, time windows and
///   bounds the question never states.
///
/// These are rules of the language, not of any question: the model's SQL stays, with the
/// part the words fix made to follow them.
pub fn repair(question: &str, sql: &str, names: &[String]) -> Option<String> {
    if !sql.is_ascii() {
        return None;
    }
    let mut out = sql.to_string();
    let q = format!(
        " {} ",
        question.to_lowercase().replace(['?', ',', '.', '\''], " ")
    );
    let has = |words: &[&str]| words.iter().any(|w| q.contains(&format!(" {w} ")));
    let named = parties(question, names);
    let mentioned = |name: &str| q.contains(&format!(" {name} "));
    for (name, party) in &named {
        let (want, other) = party.columns();
        let wanted = party_clause(want, name);
        if find_ignoring_case(&out, &wanted).is_some() {
            continue;
        }
        let wrong = party_clause(other, name);
        if let Some(at) = find_ignoring_case(&out, &wrong) {
            out.replace_range(at..at + wrong.len(), &wanted);
            continue;
        }
        // The right column holds someone the question never names (a name copied from an
        // example): it becomes this one.
        let stranger = names
            .iter()
            .filter(|n| !mentioned(n))
            .map(|n| party_clause(want, n))
            .find_map(|clause| find_ignoring_case(&out, &clause).map(|at| (at, clause.len())));
        if let Some((at, len)) = stranger {
            out.replace_range(at..at + len, &wanted);
            continue;
        }
        let lower = out.to_ascii_lowercase();
        let plain_filter = lower.contains(" from transfers where ")
            && !["group by", "order by", " limit ", " join ", " union "]
                .iter()
                .any(|k| lower.contains(k));
        if plain_filter && !lower.contains(&format!("'{name}'")) {
            out.push_str(" AND ");
            out.push_str(&wanted);
        }
    }
    // A name copied from an example that the question never names: with one name in the
    // question, it becomes that name, whatever column it filters; with none, its filter goes.
    let in_question: Vec<&String> = names.iter().filter(|n| mentioned(n)).collect();
    let in_sql = quoted_names(&out);
    match in_question.as_slice() {
        [] => {
            for name in names {
                while let Some(dropped) = drop_name_filter(&out, name) {
                    out = dropped;
                }
            }
        }
        [only] => {
            let strangers: std::collections::BTreeSet<&String> =
                in_sql.iter().filter(|n| !mentioned(n)).collect();
            if !in_sql.iter().any(|n| n.eq_ignore_ascii_case(only))
                && let [stranger] = strangers.into_iter().collect::<Vec<_>>().as_slice()
            {
                let wrong = format!("name = '{stranger}'");
                while let Some(at) = find_ignoring_case(&out, &wrong) {
                    out.replace_range(at..at + wrong.len(), &format!("name = '{only}'"));
                }
            }
        }
        _ => {}
    }
    // Any other name the question never mentions, beside the ones it does: its filter goes.
    if !in_question.is_empty() {
        for stranger in quoted_names(&out).iter().filter(|n| !mentioned(n)) {
            if let Some(name) = names.iter().find(|n| n.eq_ignore_ascii_case(stranger))
                && let Some(dropped) = drop_name_filter(&out, name)
            {
                out = dropped;
            }
        }
    }
    // Labels joined on the very column the named party filters can only name that party:
    // the join reads the other side (`who sent to dave` names the senders).
    let degenerate = [("\"to\"", "\"from\""), ("\"from\"", "\"to\"")]
        .into_iter()
        .flat_map(|sides| ["t.", ""].map(move |alias| (alias, sides)))
        .find_map(|(alias, (column, other))| {
            let join = format!("l.address = {alias}{column}");
            let filter = format!("{alias}{column} IN (SELECT address FROM labels WHERE name = ");
            find_ignoring_case(&out, &filter)?;
            let at = find_ignoring_case(&out, &join)?;
            Some((at, join.len(), format!("l.address = {alias}{other}")))
        });
    if let Some((at, len, join)) = degenerate {
        out.replace_range(at..at + len, &join);
    }
    // With no name to place, a question about who sent reads the sender, and one about who
    // received the recipient.
    let sending = has(SENDING);
    let receiving = has(RECEIVING);
    if named.is_empty() && sending != receiving {
        let (want, other) = if sending {
            ("\"from\"", "\"to\"")
        } else {
            ("\"to\"", "\"from\"")
        };
        if out.contains(other) && !out.contains(want) {
            out = out.replace(other, want);
        }
    }
    // The smallest is not the largest, and with no word of size, the first is not the last.
    let (largest, smallest) = sizes(question);
    let last = has(&["last", "latest", "newest", "recent"]);
    let first = has(&["first", "earliest", "oldest"]);
    // A ranking by size orders by the size, not by name.
    if largest != smallest
        && let Some(ranked) = order_by_aggregate(&out)
    {
        out = ranked;
    }
    if largest != smallest {
        direct_extreme(&mut out, largest);
    } else if !largest && first != last {
        direct_extreme(&mut out, last);
    }
    // A time window (`now()`) the question never asks for, and a bound on a number it never
    // states (copied from an example), are dropped.
    // So is a zero count (`tx_count = 0`) where the question says none of nothing.
    let timed = has(TIME_WORDS);
    let numbers = stated_numbers(question);
    let none = asks_none(question);
    // `between 2 and 6` bounds both ends, on the column a bound copied from an example read.
    if let Some((low, high)) = range(question)
        && let Some(ranged) = bound_range(&out, &low, &high, &numbers)
    {
        out = ranged;
    }
    if let Some(dropped) = drop_where_terms(&out, |term| {
        (!timed && term.to_ascii_lowercase().contains("now()"))
            || stranger_bound(term, &numbers)
            || (!none && zero_count_term(term).is_some())
    }) {
        out = dropped;
    }
    // A bound the question states (`under 2`, `more than 4`, `at least 5`) compares its number
    // the way the words do.
    for (op, number) in comparisons(question) {
        if comparison_at(&out, op, &number).is_some() {
            continue;
        }
        let wrong = COMPARISON_OPS
            .iter()
            .filter(|o| **o != op)
            .find_map(|o| comparison_at(&out, o, &number).map(|at| (at, o.len())));
        if let Some((at, len)) = wrong {
            out.replace_range(at..at + len, op);
        }
    }
    // `between 2 and 6` bounds both ends: a comparison with the first number alone becomes
    // the range.
    // A ranking (`rank the senders`, `each`) lists every row, not the top one.
    if ranks(question) && !largest && !smallest && !first && !last {
        let lower = out.to_ascii_lowercase();
        if lower.ends_with(" limit 1") {
            out.truncate(out.len() - " limit 1".len());
        }
    }
    // `top 3`, `the three largest`: as many rows as the question asks for.
    if let Some(n) = stated_limit(question)
        && let Some(limited) = with_limit(&out, &n)
    {
        out = limited;
    }
    if let Some(succeeded) = asks_success(question) {
        let (wrong, right) = if succeeded {
            ("success = false", "success = TRUE")
        } else {
            ("success = true", "success = FALSE")
        };
        if let Some(at) = find_ignoring_case(&out, wrong) {
            out.replace_range(at..at + wrong.len(), right);
        }
    }
    // An amount (`total HIB`, `how much`) asked of a query that counts transfers or stakes:
    // their amounts summed.
    if asks_amount(question) {
        let lower = out.to_ascii_lowercase();
        if !lower.contains("sum(")
            && (lower.contains(" from transfers") || lower.contains(" from stakes"))
            && let Some(at) = lower.find("count(*)")
        {
            out.replace_range(at..at + "count(*)".len(), "sum(amount_hib)");
        }
    }
    // Blocks with nothing counted where the question says none (`no`, `zero`, `empty`,
    // `without`) and the query lacks it; blocks with transactions (`had transactions`, `at
    // least one transaction`, `more than 2 transactions`) where the query reads all blocks.
    let blocks_term = if none {
        zero_count_term(&out)
            .is_none()
            .then(|| "tx_count = 0".to_string())
    } else {
        // Not where the query reads the count itself (`how many transactions did block 15
        // contain` selects it).
        let selects_count = out
            .to_ascii_lowercase()
            .split_once(" from ")
            .is_some_and(|(selected, _)| selected.contains("tx_count") && !selected.contains(','));
        transactions_bound(question).filter(|_| {
            !selects_count
                && !where_terms(&out).is_some_and(|(_, _, terms)| {
                    terms
                        .iter()
                        .any(|t| t.to_ascii_lowercase().contains("tx_count"))
                })
        })
    };
    if let Some(term) = blocks_term {
        let lower = out.to_ascii_lowercase();
        // Straight from `blocks`: no grouping, join or subquery; an order and a limit may
        // follow, and the term goes before them.
        let simple = !["group by", " join ", " union ", "("].iter().any(|k| {
            lower
                .split_once(" from ")
                .is_some_and(|(_, rest)| rest.contains(k))
        });
        if simple
            && has(&["transaction", "transactions", "empty"])
            && let Some((head, rest)) = lower.split_once(" from blocks")
        {
            let at = head.len() + " from blocks".len();
            let tail = [" order by ", " limit "]
                .iter()
                .filter_map(|k| rest.find(k))
                .min()
                .unwrap_or(rest.len());
            let clause = &rest[..tail];
            if clause.is_empty() {
                out.insert_str(at, &format!(" WHERE {term}"));
            } else if clause.starts_with(" where ") {
                out.insert_str(at + tail, &format!(" AND {term}"));
            }
        }
    }
    // `In which block`, `at what height`: the height, not a count, a time or an amount.
    if asks_height(question)
        && let Some((selected, tail)) = select_parts(&out)
        && !selected.to_ascii_lowercase().contains("height")
        && !selected.contains(',')
        && ["transfers", "transactions", "stakes", "blocks"]
            .iter()
            .any(|t| strip_prefix_ignoring_case(tail, t).is_some())
    {
        let lower = selected.to_ascii_lowercase();
        let height = if lower.starts_with("max(") {
            "max(height)"
        } else if lower.starts_with("min(") {
            "min(height)"
        } else {
            "height"
        };
        out = format!("SELECT {height} FROM {tail}");
    }
    // `When did …`: the height and the time, either of which a person may mean.
    if asks_when(question)
        && let Some(both) = when_columns(&out)
    {
        out = both;
    }
    // Who holds an extreme: the name on that row, not the extreme alone.
    if asks_who(question)
        && let Some(named) = who_extreme(question, &out)
    {
        out = named;
    }
    // `How many transactions …`: rows of transactions, not of blocks.
    if let Some(table) = counted_table(question)
        && let Some(counted) = count_of_table(&out, table)
    {
        out = counted;
    }
    // A release (`when will the unbond be released`) is read at its release height.
    if has(RELEASE_WORDS)
        && let Some((selected, tail)) = select_parts(&out)
        && strip_prefix_ignoring_case(tail, "stakes").is_some()
        && !selected.to_ascii_lowercase().contains("release_height")
    {
        let lower = selected.to_ascii_lowercase();
        let column = ["s.height", "height"]
            .into_iter()
            .find_map(|c| lower.find(c).map(|at| (at, c.len())));
        if let Some((at, len)) = column {
            let mut selected = selected.to_string();
            selected.replace_range(at..at + len, "release_height");
            out = format!("SELECT {selected} FROM {tail}");
        }
    }
    // The aggregate the words name: `average` averages, `total` sums (a median, a minimum or a
    // maximum of the same column is replaced).
    let wanted = if has(&["average", "mean"]) {
        Some("avg(")
    } else if has(&["total", "sum"]) && !largest && !smallest && !asks_count(question) {
        Some("sum(")
    } else {
        None
    };
    if let Some(wanted) = wanted {
        let lower = out.to_ascii_lowercase();
        let others = ["approx_median(", "median(", "min(", "max(", "avg(", "sum("];
        let found: Vec<(usize, &str)> = others
            .iter()
            .filter_map(|a| lower.find(a).map(|at| (at, *a)))
            .collect();
        if !lower.contains(wanted)
            && let Some(&(at, agg)) = found.iter().min_by_key(|(at, _)| *at)
            && (agg != "median(" || !lower[..at].ends_with("approx_"))
            && !lower[at..].starts_with("max(height)")
            && !lower[at..].starts_with("min(height)")
        {
            out.replace_range(at..at + agg.len(), wanted);
        }
    }
    // Distinct recipients are counted in `"to"`, distinct senders in `"from"`.
    let recipients = has(&["recipients", "receivers", "payees"]);
    let senders = has(&["senders", "payers"]);
    if recipients != senders {
        let (wrong, right) = if recipients {
            ("DISTINCT \"from\"", "DISTINCT \"to\"")
        } else {
            ("DISTINCT \"to\"", "DISTINCT \"from\"")
        };
        if let Some(at) = find_ignoring_case(&out, wrong) {
            out.replace_range(at..at + wrong.len(), right);
        }
    }
    if asks_count(question) {
        let lower = out.to_ascii_lowercase();
        if let (Some(at), false) = (lower.find("sum("), lower.contains("count(")) {
            let mut depth = 0usize;
            let end = lower[at + 3..].char_indices().find_map(|(k, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(at + 3 + k + 1);
                        }
                    }
                    _ => {}
                }
                None
            });
            if let Some(end) = end {
                out.replace_range(at..end, "count(*)");
            }
        }
        // A count asked of a query that lists rows: count them. A single column of one named
        // account may already hold the number (its nonce counts its transactions); rows of
        // events never do.
        let lower = out.to_ascii_lowercase();
        let aggregates = [
            "count(", "sum(", "avg(", "min(", "max(", "median(", "group by",
        ];
        let columns = lower
            .strip_prefix("select ")
            .and_then(|rest| rest.split(" from ").next())
            .unwrap_or("");
        // A column that is itself a count (`tx_count`, `message_count`) already answers.
        let counted = !columns.contains(',') && columns.trim().ends_with("_count");
        let listed = !counted
            && (columns.contains(',')
                || !lower.contains(" name = '")
                || !lower.contains(" from accounts"));
        if listed && !aggregates.iter().any(|a| lower.contains(a)) && !lower.contains(" limit ") {
            out = format!("SELECT count(*) FROM ({out})");
        }
    }
    // A count of distinct people (`how many different people did alice pay`) counts the
    // other side of the named party.
    if asks_count(question)
        && has(&["different", "distinct", "unique"])
        && let [(_, party)] = named.as_slice()
        && !out.to_ascii_lowercase().contains("distinct")
        && let Some(at) = find_ignoring_case(&out, "count(*)")
    {
        let (_, other) = party.columns();
        out.replace_range(
            at..at + "count(*)".len(),
            &format!("count(DISTINCT {other})"),
        );
    }
    // Two things asked at once: `how many …, and how much` reads the count and the sum, `who
    // …, and how much` the names and their amounts, `at what block …, and when released` both
    // heights.
    if asks_count_and_amount(question)
        && let Some(both) = count_and_sum(&out)
    {
        out = both;
    }
    if asks_who(question)
        && second_ask_is_amount(question)
        && let Some(amounts) = names_with_amounts(&out)
    {
        out = amounts;
    }
    if asks_height_and_release(question)
        && let Some(both) = with_height(&out)
    {
        out = both;
    }
    // `The latest block`, `the first transfer`: one row, the last or the first by height.
    if let Some(latest) = asks_one_end(question)
        && let Some(one) = one_end(&out, latest)
    {
        out = one;
    }
    // `What percentage of all transferred HIB was sent by alice`: the share of the whole.
    if asks_share(question)
        && let Some(share) = share_of_all(&out)
    {
        out = share;
    }
    // `For each sender, how many transfers`: one row per sender's name.
    if let Some(party) = grouped_party(question)
        && let Some(grouped) = per_party(&out, party)
    {
        out = grouped;
    }
    // `Using people's names`: groups of accounts by name, not address.
    if asks_names(question)
        && let Some(named) = named_groups(&out)
    {
        out = named;
    }
    // `In blocks 10 through 15`: the range bounds the height.
    if let Some(on_height) = range_on_height(question, &out) {
        out = on_height;
    }
    // `Which account has the most HIB`: the account's name beside its address.
    if asks_who(question)
        && let Some(named) = named_accounts(&out)
    {
        out = named;
    }
    // `Total fees bob has paid`: the one account named, where no account is read (`the
    // validator's fees` names no one).
    if let [only] = mentioned_names(question, names).as_slice()
        && let Some(filtered) = account_filter(&out, only)
    {
        out = filtered;
    }
    // `In base units`: the columns in base units, not HIB.
    if asks_base_units(question)
        && let Some(units) = base_units(&out)
    {
        out = units;
    }
    (out != sql).then_some(out)
}

/// The account column of each table whose rows belong to one account: a fee's payer, a
/// transaction's sender, a stake's delegator, an account itself.
const ACCOUNT_OF: &[(&str, &str)] = &[
    ("fees", "payer"),
    ("transactions", "sender"),
    ("stakes", "delegator"),
    ("accounts", "address"),
];

/// `SELECT … FROM fees [f] [WHERE …] …` that reads no account, filtered on the account
/// `name` (`total fees bob has paid`): that account's rows of the table. None for any other
/// shape (a join, a subquery, a name already read, another table).
fn account_filter(sql: &str, name: &str) -> Option<String> {
    let (selected, tail) = select_parts(sql)?;
    let table = tail.split_whitespace().next()?;
    let (_, column) = ACCOUNT_OF
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(table))?;
    let lower = sql.to_ascii_lowercase();
    if !tail.starts_with(table)
        || lower.contains(" join ")
        || lower.contains("labels")
        || lower.matches("select").count() > 1
        || selected.contains('\'')
    {
        return None;
    }
    let rest = &tail[table.len()..];
    const KEYWORDS: &[&str] = &["where", "group", "order", "limit"];
    // A table alias (`fees f`, `fees AS f`) prefixes the column.
    let mut tokens = rest.split_whitespace();
    let alias = match tokens.next() {
        Some(t) if t.eq_ignore_ascii_case("as") => tokens.next(),
        Some(t) if !KEYWORDS.iter().any(|k| t.eq_ignore_ascii_case(k)) => Some(t),
        _ => None,
    };
    let clause = party_clause(
        &alias.map_or_else(|| (*column).to_string(), |a| format!("{a}.{column}")),
        name,
    );
    let rest_lower = rest.to_ascii_lowercase();
    let head = sql.len() - rest.len();
    if let Some(at) = rest_lower.find(" where ") {
        let at = head + at + " where ".len();
        return Some(format!("{}{clause} AND {}", &sql[..at], &sql[at..]));
    }
    let at = [" group by ", " order by ", " limit "]
        .iter()
        .filter_map(|k| rest_lower.find(k))
        .min()
        .map_or(sql.len(), |k| head + k);
    Some(format!("{} WHERE {clause}{}", &sql[..at], &sql[at..]))
}

/// Whether the question asks for amounts in base units (`in base units`, `raw units`).
fn asks_base_units(question: &str) -> bool {
    let q = spaced(question);
    [" base unit", " raw unit", " smallest unit", " in units "]
        .iter()
        .any(|p| q.contains(p))
}

/// `sql` reading each amount in base units where it reads it in HIB (`amount_hib` becomes
/// `amount`, `balance_hib` `balance`); None where it reads none in HIB.
fn base_units(sql: &str) -> Option<String> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    let mut changed = false;
    while let Some(at) = find_ignoring_case(rest, "_hib") {
        let end = at + "_hib".len();
        let word_end = !rest[end..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        let word_start = at > 0
            && rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        out.push_str(&rest[..at]);
        if word_end && word_start {
            changed = true;
        } else {
            out.push_str(&rest[at..end]);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// Labels with one name per address (an address may carry several: `validator`, `validator 0`).
const ONE_NAME_PER_ADDRESS: &str =
    "(SELECT address, min(name) AS name FROM labels GROUP BY address)";

/// Whether the question asks for a share (`what percentage of all transferred HIB`).
fn asks_share(question: &str) -> bool {
    let q = spaced(question);
    [
        "percentage",
        "percent",
        "share",
        "proportion",
        "fraction",
        "%",
    ]
    .iter()
    .any(|w| q.contains(&format!(" {w} ")) || (*w == "%" && q.contains('%')))
}

/// `SELECT sum(amount_hib) FROM transfers WHERE …` (or a count) as a percentage of the same
/// aggregate over the whole table. None for any other shape.
fn share_of_all(sql: &str) -> Option<String> {
    let (selected, tail) = select_parts(sql)?;
    let table = tail.split_whitespace().next()?;
    if !["transfers", "stakes", "transactions", "fees", "blocks"]
        .contains(&table.to_ascii_lowercase().as_str())
    {
        return None;
    }
    let rest = &tail[table.len()..];
    let lower = rest.to_ascii_lowercase();
    if !lower.starts_with(" where ")
        || [" group by ", " order by ", " limit ", " join "]
            .iter()
            .any(|k| lower.contains(k))
    {
        return None;
    }
    let chosen = selected.trim().to_ascii_lowercase();
    let aggregate = chosen.split(" as ").next()?.trim();
    let known = aggregate == "count(*)"
        || (aggregate.starts_with("sum(")
            && aggregate.ends_with(')')
            && !aggregate[4..].contains('('));
    if !known || selected.contains(',') {
        return None;
    }
    Some(format!(
        "SELECT 100.0 * CAST((SELECT {aggregate} FROM {tail}) AS DOUBLE) / CAST((SELECT {aggregate} FROM {table}) AS DOUBLE) AS percent"
    ))
}

/// The party a question groups transfers by (`for each sender`, `per recipient`).
fn grouped_party(question: &str) -> Option<Party> {
    let q = spaced(question);
    let each = |nouns: &[&str]| {
        ["each", "every", "per"]
            .iter()
            .any(|e| nouns.iter().any(|n| q.contains(&format!(" {e} {n} "))))
    };
    match (
        each(&["sender", "payer", "spender"]),
        each(&["recipient", "receiver", "payee"]),
    ) {
        (true, false) => Some(Party::Sender),
        (false, true) => Some(Party::Recipient),
        _ => None,
    }
}

/// `SELECT count(…) FROM transfers [WHERE …]` (or a sum of its amounts) grouped by the name of
/// `party`, largest first: `for each sender, how many transfers`. A count of distinct senders
/// becomes a count of transfers. None for any other shape.
fn per_party(sql: &str, party: Party) -> Option<String> {
    let (selected, tail) = select_parts(sql)?;
    let rest = strip_prefix_ignoring_case(tail, "transfers")?;
    let lower = rest.to_ascii_lowercase();
    if !(rest.is_empty() || lower.starts_with(" where "))
        || [" group by ", " order by ", " limit ", " join "]
            .iter()
            .any(|k| lower.contains(k))
        || selected.contains(',')
    {
        return None;
    }
    let chosen = selected.trim().to_ascii_lowercase();
    let aggregate = chosen.split(" as ").next()?.trim();
    let (measure, alias) = if aggregate.starts_with("count(") {
        ("count(*)", "transfers")
    } else if aggregate == "sum(amount_hib)" {
        ("sum(t.amount_hib)", "total_hib")
    } else {
        return None;
    };
    let column = party.columns().0;
    Some(format!(
        "SELECT l.name, {measure} AS {alias} FROM transfers t JOIN labels l ON l.address = t.{column}{rest} GROUP BY l.name ORDER BY {alias} DESC"
    ))
}

/// Whether the question wants people by name (`using people's names`, `by name`, `who`).
fn asks_names(question: &str) -> bool {
    let q = spaced(question).replace('\'', " ");
    asks_who(question)
        || [
            "name", "names", "people", "person", "persons", "everyone", "whom",
        ]
        .iter()
        .any(|w| q.contains(&format!(" {w} ")))
}

/// Columns of the event tables that hold an account.
const ACCOUNT_COLUMNS: &[&str] = &[
    "sender",
    "delegator",
    "payer",
    "\"from\"",
    "\"to\"",
    "proposer",
    "account",
];

/// `SELECT sender, count(*) AS txs FROM transactions … GROUP BY sender …` grouped by the
/// account's name (one per labelled account) instead of its address: the rows a person asks
/// for `using people's names`.
/// None for any other shape (a join, a subquery, a group by anything else).
fn named_groups(sql: &str) -> Option<String> {
    let (selected, tail) = select_parts(sql)?;
    let table = tail.split_whitespace().next()?;
    if !["transfers", "transactions", "stakes", "fees", "blocks"]
        .contains(&table.to_ascii_lowercase().as_str())
        || !tail.starts_with(table)
    {
        return None;
    }
    let rest = &tail[table.len()..];
    let lower = rest.to_ascii_lowercase();
    let group_at = lower.find(" group by ")?;
    if lower.contains(" join ")
        || lower.contains('(')
        || selected.to_ascii_lowercase().contains("select")
    {
        return None;
    }
    let after = &rest[group_at + " group by ".len()..];
    let column = after.split_whitespace().next()?;
    if !ACCOUNT_COLUMNS
        .iter()
        .any(|c| c.eq_ignore_ascii_case(column))
        || !after.starts_with(column)
    {
        return None;
    }
    // The selected account column becomes the name; the aggregates stay.
    let columns: Vec<&str> = selected.split(',').map(str::trim).collect();
    if !columns.iter().any(|c| c.eq_ignore_ascii_case(column)) {
        return None;
    }
    let renamed: Vec<String> = columns
        .iter()
        .map(|c| {
            if c.eq_ignore_ascii_case(column) {
                "l.name".to_string()
            } else {
                (*c).to_string()
            }
        })
        .collect();
    let grouped_tail = &after[column.len()..];
    Some(format!(
        "SELECT {} FROM {table} t JOIN {ONE_NAME_PER_ADDRESS} l ON l.address = t.{column}{} GROUP BY l.name{grouped_tail}",
        renamed.join(", "),
        &rest[..group_at],
    ))
}

/// `sql` with the range the question states over blocks (`in blocks 10 through 15`) read on
/// the height where it reads another column (`amount_hib BETWEEN 10 AND 15`). None otherwise.
fn range_on_height(question: &str, sql: &str) -> Option<String> {
    let (low, high) = range(question)?;
    let q = spaced(question);
    let words: Vec<&str> = q.split_whitespace().collect();
    let at = words.iter().position(|w| *w == low || *w == high)?;
    if !words[at.saturating_sub(2)..at]
        .iter()
        .any(|w| ["block", "blocks", "height", "heights"].contains(w))
    {
        return None;
    }
    let clause = format!(" BETWEEN {low} AND {high}");
    let at = find_ignoring_case(sql, &clause)?;
    let head = &sql[..at];
    let column_at = head.rfind(' ').map_or(0, |k| k + 1);
    let column = &head[column_at..];
    let (prefix, name) = column.rsplit_once('.').unwrap_or(("", column));
    if name.eq_ignore_ascii_case("height") || name.is_empty() {
        return None;
    }
    let height = if prefix.is_empty() {
        "height".to_string()
    } else {
        format!("{prefix}.height")
    };
    Some(format!("{}{height}{}", &sql[..column_at], &sql[at..]))
}

/// The part of a question after its first ` and `, if the part before asks something of its
/// own (`how many`, `who`, `what`, `which`, `at what`).
fn second_ask(question: &str) -> Option<String> {
    let q = spaced(question);
    let (first, second) = q.split_once(" and ")?;
    [
        " how many ",
        " number of ",
        " who ",
        " what ",
        " which ",
        " when ",
    ]
    .iter()
    .any(|w| first.contains(w))
    .then(|| format!(" {second} "))
}

/// Whether the second ask of a question is an amount (`…, and how much did they add up to`).
fn second_ask_is_amount(question: &str) -> bool {
    second_ask(question).is_some_and(|second| {
        [
            " how much ",
            " add up ",
            " adds up ",
            " added up ",
            " in total ",
            " total ",
            " worth ",
            " what amount ",
        ]
        .iter()
        .any(|p| second.contains(p))
    })
}

/// Whether the question asks for a number of things and, after an ` and `, for their amount
/// (`how many transfers did dave get, and how much did they add up to`).
fn asks_count_and_amount(question: &str) -> bool {
    let q = spaced(question);
    let count_first = q.split_once(" and ").is_some_and(|(first, _)| {
        [" how many ", " number of "]
            .iter()
            .any(|w| first.contains(w))
    });
    count_first && asks_count(question) && second_ask_is_amount(question)
}

/// Event tables with an `amount_hib` column.
const AMOUNT_TABLES: &[&str] = &["transfers", "stakes", "fees", "emissions"];

/// A single table of [`AMOUNT_TABLES`] that `tail` (what follows `FROM`) reads, with its alias
/// if it has one, and the clauses after it; None for a join, a group or an order.
fn amount_table(tail: &str) -> Option<(&str, Option<&str>, &str)> {
    let table = tail.split_whitespace().next()?;
    if !AMOUNT_TABLES.contains(&table.to_ascii_lowercase().as_str()) {
        return None;
    }
    let mut rest = &tail[table.len()..];
    let mut alias = None;
    if let Some(word) = rest.split_whitespace().next()
        && !["where", "join", "group", "order", "limit"]
            .contains(&word.to_ascii_lowercase().as_str())
    {
        if !word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        alias = Some(word);
        rest = &rest[rest.find(word).map_or(0, |at| at + word.len())..];
    }
    Some((table, alias, rest))
}

/// `SELECT count(*) … FROM transfers WHERE …` with the sum of the amounts beside it, or a sum
/// with the count beside it. None for any other shape.
fn count_and_sum(sql: &str) -> Option<String> {
    let (selected, tail) = select_parts(sql)?;
    let (table, alias, rest) = amount_table(tail)?;
    let lower = rest.to_ascii_lowercase();
    if alias.is_some() || !(rest.is_empty() || lower.starts_with(" where ")) {
        return None;
    }
    if [" group by ", " order by ", " limit ", " join "]
        .iter()
        .any(|k| lower.contains(k))
        || selected.contains(',')
    {
        return None;
    }
    let chosen = selected.trim().to_ascii_lowercase();
    if chosen.starts_with("count(*)") {
        Some(format!(
            "SELECT {}, sum(amount_hib) AS total_hib FROM {tail}",
            selected.trim()
        ))
    } else if chosen.starts_with("sum(amount_hib)") {
        Some(format!(
            "SELECT count(*) AS {}, {} FROM {tail}",
            table.to_ascii_lowercase(),
            selected.trim()
        ))
    } else {
        None
    }
}

/// `SELECT DISTINCT l.name FROM stakes s JOIN labels l ON … [WHERE …]` asked `who …, and how
/// much` becomes each name with the sum of its amounts. None for any other shape.
fn names_with_amounts(sql: &str) -> Option<String> {
    let (selected, tail) = select_parts(sql)?;
    let chosen = selected.trim().to_ascii_lowercase();
    if !["distinct l.name", "l.name", "distinct(l.name)"].contains(&chosen.as_str()) {
        return None;
    }
    let (_, alias, rest) = amount_table(tail)?;
    let alias = alias?;
    let lower = rest.to_ascii_lowercase();
    if !lower.trim_start().starts_with("join labels l on ")
        || [" group by ", " order by ", " limit "]
            .iter()
            .any(|k| lower.contains(k))
    {
        return None;
    }
    Some(format!(
        "SELECT l.name, sum({alias}.amount_hib) AS amount_hib FROM {tail} GROUP BY l.name ORDER BY amount_hib DESC"
    ))
}

/// Whether one part of the question asks at which height something happened and the part
/// after its ` and ` when it is released (`at what block did bob unbond, and at which height
/// does that stake get released`).
fn asks_height_and_release(question: &str) -> bool {
    let q = spaced(question);
    let released = |part: &str| {
        RELEASE_WORDS
            .iter()
            .any(|w| part.contains(&format!(" {w} ")))
    };
    q.split_once(" and ").is_some_and(|(first, second)| {
        let second = format!(" {second} ");
        asks_height(first) && !released(first) && released(&second)
    })
}

/// `SELECT release_height FROM stakes …` asked both when something happened and when it is
/// released reads the height too. None when the height is already read.
fn with_height(sql: &str) -> Option<String> {
    let (selected, tail) = select_parts(sql)?;
    strip_prefix_ignoring_case(tail, "stakes")?;
    let lower = selected.to_ascii_lowercase();
    let heights: Vec<&str> = lower.split(',').map(str::trim).collect();
    if !heights.contains(&"release_height")
        || heights
            .iter()
            .any(|c| *c == "height" || c.ends_with(".height"))
    {
        return None;
    }
    Some(format!("SELECT height, {} FROM {tail}", selected.trim()))
}

/// `Some(true)` where the question asks for the latest one of something (`the latest block`,
/// `the most recent transfer`), `Some(false)` for the first one, with no number of them.
fn asks_one_end(question: &str) -> Option<bool> {
    let q = spaced(question).replace(" most recent ", " latest ");
    let words: Vec<&str> = q.split_whitespace().collect();
    const NOUNS: &[&str] = &[
        "block",
        "transfer",
        "transaction",
        "tx",
        "payment",
        "stake",
        "bond",
        "unbond",
        "delegation",
    ];
    let end_of = |word: &str| match word {
        "latest" | "last" | "newest" => Some(true),
        "first" | "earliest" | "oldest" => Some(false),
        _ => None,
    };
    // Both ends named (`the first and the last block`): neither one row.
    let ends: Vec<bool> = words.iter().filter_map(|w| end_of(w)).collect();
    if ends.iter().any(|&e| e != ends[0]) {
        return None;
    }
    words
        .windows(3)
        .find(|w| w[0] == "the" && end_of(w[1]).is_some() && NOUNS.contains(&w[2]))
        .and_then(|w| end_of(w[1]))
}

/// `sql` listing rows of an event table with no order, limit, group or aggregate, narrowed to
/// the latest (`latest`) or the first row by height. None for any other shape.
fn one_end(sql: &str, latest: bool) -> Option<String> {
    let (selected, tail) = select_parts(sql)?;
    let table = tail.split_whitespace().next()?.to_ascii_lowercase();
    let order = match table.as_str() {
        "blocks" => "height",
        "transfers" | "stakes" => "height, event_index",
        "transactions" => "height, tx_index",
        _ => return None,
    };
    let rest = tail[table.len()..].to_ascii_lowercase();
    let chosen = selected.to_ascii_lowercase();
    if !(rest.is_empty() || rest.starts_with(" where "))
        || [" group by ", " order by ", " limit ", " join "]
            .iter()
            .any(|k| rest.contains(k))
        || ["count(", "sum(", "avg(", "min(", "max(", "distinct"]
            .iter()
            .any(|a| chosen.contains(a))
    {
        return None;
    }
    let dir = if latest { "DESC" } else { "ASC" };
    let keys: Vec<String> = order.split(", ").map(|k| format!("{k} {dir}")).collect();
    Some(format!("{sql} ORDER BY {} LIMIT 1", keys.join(", ")))
}

/// `SELECT address, balance_hib FROM accounts …` with each account's name beside its address
/// (one name per address; an account without one keeps a null). None for any other shape.
fn named_accounts(sql: &str) -> Option<String> {
    let (selected, tail) = select_parts(sql)?;
    let rest = strip_prefix_ignoring_case(tail, "accounts")?;
    let lower = rest.to_ascii_lowercase();
    let columns: Vec<&str> = selected.split(',').map(str::trim).collect();
    if !(rest.is_empty() || lower.starts_with(" where ") || lower.starts_with(" order by "))
        || lower.contains(" join ")
        || lower.contains('(')
        || !columns.iter().any(|c| c.eq_ignore_ascii_case("address"))
        || columns
            .iter()
            .any(|c| !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'))
    {
        return None;
    }
    // Every column of `accounts` but `address` is its own; `labels` shares only `address`.
    let qualified: Vec<String> = columns.iter().map(|c| format!("a.{c}")).collect();
    let rest = rest
        .split_whitespace()
        .map(|w| {
            if w.eq_ignore_ascii_case("address") {
                "a.address"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let named = format!(
        "SELECT l.name, {} FROM accounts a LEFT JOIN {ONE_NAME_PER_ADDRESS} l ON l.address = a.address {rest}",
        qualified.join(", ")
    );
    Some(named.trim_end().to_string())
}

/// Whether the question asks who: `who`, `whom`, `whose`, or `which` of accounts or people.
fn asks_who(question: &str) -> bool {
    let q = spaced(question);
    let words: Vec<&str> = q.split_whitespace().collect();
    const NOUNS: &[&str] = &["account", "person", "sender", "recipient", "address"];
    [" who ", " whom ", " whose "].iter().any(|w| q.contains(w))
        // `which account`, `which named account`.
        || words.iter().enumerate().any(|(i, w)| {
            *w == "which" && words[i + 1..].iter().take(2).any(|n| NOUNS.contains(n))
        })
}

/// `sql` answering who holds an extreme: `SELECT max(amount_hib) FROM transfers WHERE …`
/// becomes the name on that row of the party the question asks about (the recipient where it
/// says received or got, else the sender; a stake's delegator, a transaction's sender, an
/// account), ordered by the same column. None for any other shape.
fn who_extreme(question: &str, sql: &str) -> Option<String> {
    let (selected, tail) = select_parts(sql)?;
    let lower = selected.trim().to_ascii_lowercase();
    let (dir, inner) = if let Some(inner) = lower.strip_prefix("max(") {
        ("DESC", inner)
    } else {
        ("ASC", lower.strip_prefix("min(")?)
    };
    let column = inner.split(')').next()?.trim().to_string();
    if column.is_empty() || column.contains(['(', '.', ' ', '*']) {
        return None;
    }
    let (table, filter) = match tail.split_once(' ') {
        Some((table, filter)) => (table, format!(" {filter}")),
        None => (tail, String::new()),
    };
    let lower_filter = filter.to_ascii_lowercase();
    if !(filter.is_empty() || lower_filter.starts_with(" where "))
        || [" group by ", " order by ", " limit ", " join "]
            .iter()
            .any(|k| lower_filter.contains(k))
    {
        return None;
    }
    let q = spaced(question);
    let receiving =
        RECEIVING.iter().any(|w| q.contains(&format!(" {w} "))) || q.contains(" recipient ");
    let party = match table.to_ascii_lowercase().as_str() {
        "transfers" if receiving => "\"to\"",
        "transfers" => "\"from\"",
        "stakes" => "delegator",
        "transactions" => "sender",
        "accounts" => "address",
        _ => return None,
    };
    Some(format!(
        "SELECT l.name, {table}.{column} FROM {table} JOIN labels l ON l.address = {table}.{party}{filter} ORDER BY {table}.{column} {dir} LIMIT 1"
    ))
}

/// The table a count is asked of (`how many transactions`: `transactions`), by the noun that
/// follows `how many` or `number of`.
fn counted_table(question: &str) -> Option<&'static str> {
    let q = spaced(question);
    const NOUNS: &[(&str, &str)] = &[
        ("transactions", "transactions"),
        ("txs", "transactions"),
        ("transfers", "transfers"),
        ("payments", "transfers"),
        ("blocks", "blocks"),
        ("bonds", "stakes"),
        ("unbonds", "stakes"),
        ("stakes", "stakes"),
        ("delegations", "stakes"),
    ];
    let table_of = |word: &str| {
        NOUNS
            .iter()
            .find(|(n, _)| *n == word || n.strip_suffix('s') == Some(word))
            .map(|(_, t)| *t)
    };
    let counted = counted_words(question)
        .iter()
        .find_map(|word| table_of(word))?;
    // Not where the question names things of another table (`transactions that carried a
    // transfer`); `block 12` and `blocks 10 to 20` only say where.
    let words: Vec<&str> = q.split_whitespace().collect();
    let other = words.iter().enumerate().any(|(i, w)| {
        let place = ["block", "blocks"].contains(w)
            && words
                .get(i + 1)
                .is_some_and(|next| next.starts_with(|c: char| c.is_ascii_digit()));
        !place && table_of(w).is_some_and(|t| t != counted)
    });
    (!other).then_some(counted)
}

/// `sql` counting rows of `table` where it counts another event table filtered only by height
/// or time, the columns every one of them has (`SELECT count(*) FROM blocks WHERE height
/// BETWEEN 20 AND 30` asked of transactions).
fn count_of_table(sql: &str, table: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    let rest = lower.strip_prefix("select count(*)")?;
    let (_, tail) = rest.split_once(" from ")?;
    let from = tail.split_whitespace().next()?;
    if from == table || !["transfers", "transactions", "blocks", "stakes"].contains(&from) {
        return None;
    }
    let filter = &tail[from.len()..];
    if !(filter.is_empty() || filter.starts_with(" where ")) || filter.contains('(') {
        return None;
    }
    let (_, _, terms) = where_terms(sql).unwrap_or((0, 0, Vec::new()));
    if !terms.iter().all(|t| {
        let t = t.trim().to_ascii_lowercase();
        t.starts_with("height ") || t.starts_with("time ")
    }) {
        return None;
    }
    let at = lower.len() - tail.len();
    // A count named after the table it read (`AS blocks`) is named after the new one.
    let head = sql[..at].replace(&format!(" AS {from} "), &format!(" AS {table} "));
    Some(format!("{head}{table}{}", &sql[at + from.len()..]))
}

/// `sql` ranking groups by their aggregate where it orders them by name: `SELECT l.name,
/// sum(t.amount_hib) AS received_hib … GROUP BY l.name ORDER BY l.name DESC LIMIT 2` asked for
/// the top recipients orders by `received_hib`. None for any other shape.
fn order_by_aggregate(sql: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    let (selected, _) = lower.strip_prefix("select ")?.split_once(" from ")?;
    let group = lower.find(" group by ")?;
    let order = lower.rfind(" order by ")?;
    if order < group {
        return None;
    }
    let key_at = order + " order by ".len();
    let key_end = [" asc", " desc", " limit "]
        .iter()
        .filter_map(|k| lower[key_at..].find(k))
        .min()
        .map_or(lower.len(), |k| key_at + k);
    if !["name", "l.name"].contains(&lower[key_at..key_end].trim()) {
        return None;
    }
    // The first aggregate the query selects, by its alias.
    let alias = selected.split(',').find_map(|column| {
        let (expr, alias) = column.split_once(" as ")?;
        ["count(", "sum(", "avg(", "min(", "max("]
            .iter()
            .any(|a| expr.trim().starts_with(a))
            .then(|| alias.trim().to_string())
    })?;
    if alias.is_empty() || !alias.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some(format!("{}{alias}{}", &sql[..key_at], &sql[key_end..]))
}

/// Makes `sql` take the highest (`high`) or the lowest: a `min(` becomes `max(` (or the other
/// way) when the right one is missing, else an order's direction turns; for the highest, an
/// order with no direction before a `LIMIT` gets `DESC` (with none, an order is ascending).
fn direct_extreme(sql: &mut String, high: bool) {
    let lower = sql.to_ascii_lowercase();
    let (wrong_agg, right_agg, wrong_order, right_order) = if high {
        ("min(", "max(", " asc", " DESC")
    } else {
        ("max(", "min(", " desc", " ASC")
    };
    if lower.contains(wrong_agg) && !lower.contains(right_agg) {
        let at = lower.find(wrong_agg).unwrap_or(0);
        sql.replace_range(at..at + wrong_agg.len(), right_agg);
    } else if let Some(at) = lower.find(wrong_order)
        && !lower.contains(right_agg)
    {
        sql.replace_range(at..at + wrong_order.len(), right_order);
    } else if high
        && !lower.contains(right_agg)
        && let Some(start) = lower.rfind(" order by ")
        && let Some(end) = lower[start..].find(" limit ").map(|k| start + k)
        && !lower[start..end].contains(" asc")
        && !lower[start..end].contains(" desc")
        && !lower[start..end].contains('(')
    {
        // Every key turns (`ORDER BY height, event_index` is the first transfer).
        let keys_at = start + " order by ".len();
        let keys: Vec<String> = sql[keys_at..end]
            .split(',')
            .map(|key| format!("{} DESC", key.trim()))
            .collect();
        sql.replace_range(keys_at..end, &keys.join(", "));
    }
}

/// SQL's comparison operators as the grammar spaces them, the two-character ones first.
const COMPARISON_OPS: [&str; 6] = [" >= ", " <= ", " <> ", " > ", " < ", " = "];

/// Where `sql` compares with `number` by `op` (` > 5`, not ` > 50`), if it does.
fn comparison_at(sql: &str, op: &str, number: &str) -> Option<usize> {
    let pattern = format!("{op}{number}");
    sql.match_indices(&pattern).map(|(at, _)| at).find(|&at| {
        !sql[at + pattern.len()..].starts_with(|c: char| c.is_ascii_digit() || c == '.')
    })
}

/// `sql` with its outer `WHERE` bounding one column to `low..=high`: the terms that compare
/// it with either number, with a number the question never states (`stated`), or hold another
/// `BETWEEN` (numbers copied from an example) become one `BETWEEN`, where the first stood.
/// None when the range is already there (`BETWEEN`, or `>`/`>=` the low and `<`/`<=` the
/// high) or no term names its column.
fn bound_range(sql: &str, low: &str, high: &str, stated: &[String]) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    let proper = lower.contains(&format!(" between {low} and {high}"))
        || ([" > ", " >= "]
            .iter()
            .any(|op| comparison_at(&lower, op, low).is_some())
            && [" < ", " <= "]
                .iter()
                .any(|op| comparison_at(&lower, op, high).is_some()));
    if proper {
        return None;
    }
    let (start, end, terms) = where_terms(sql)?;
    let ranged = |term: &str| {
        term.to_ascii_lowercase().contains(" between ")
            || comparison_at_any(term, low).is_some()
            || comparison_at_any(term, high).is_some()
            || stranger_bound(term, stated)
    };
    let first = terms.iter().position(|t| ranged(t))?;
    let column = terms[first].trim().split(' ').next().unwrap_or("");
    if column.is_empty() || column.contains('(') {
        return None;
    }
    let mut kept: Vec<String> = Vec::new();
    for (i, term) in terms.iter().enumerate() {
        if i == first {
            kept.push(format!("{column} BETWEEN {low} AND {high}"));
        } else if !(ranged(term) && term.trim().starts_with(column)) {
            kept.push(term.clone());
        }
    }
    Some(format!(
        "{}{}{}",
        &sql[..start],
        kept.join(" AND "),
        &sql[end..]
    ))
}

/// Where `sql` compares something with `number` by any operator, and the length of the
/// operator and number (` > 2`).
fn comparison_at_any(sql: &str, number: &str) -> Option<(usize, usize)> {
    COMPARISON_OPS
        .iter()
        .find_map(|op| comparison_at(sql, op, number).map(|at| (at, op.len() + number.len())))
}

/// The two numbers of a range the question states (`between 2 and 6 HIB`, `between block 10
/// and block 20`), low first.
fn range(question: &str) -> Option<(String, String)> {
    let q = spaced(question).replace('-', " - ");
    let words: Vec<&str> = q.split_whitespace().collect();
    let is_number = |w: &str| w.parse::<f64>().is_ok();
    const OPENERS: &[&str] = &["between", "from", "block", "blocks", "height", "heights"];
    const LINKS: &[&str] = &["and", "to", "through", "thru", "until", "till", "-"];
    // A number a few words after an opener, a link right after it (or after its unit), and
    // a number right after the link (or after a repeated unit).
    let (first, second) = (0..words.len()).find_map(|i| {
        if !is_number(words[i])
            || !words[i.saturating_sub(3)..i]
                .iter()
                .any(|w| OPENERS.contains(w))
        {
            return None;
        }
        let link = (i + 1..(i + 3).min(words.len())).find(|&k| LINKS.contains(&words[k]))?;
        let second = (link + 1..(link + 3).min(words.len())).find(|&k| is_number(words[k]))?;
        Some((i, second))
    })?;
    let (a, b) = (words[first], words[second]);
    let ordered = a.parse::<f64>().ok()? <= b.parse::<f64>().ok()?;
    Some(if ordered { (a, b) } else { (b, a) }).map(|(a, b)| (a.to_string(), b.to_string()))
}

/// Whether the question asks for a ranking of every row (`rank`, `sorted`, `each`, `per`)
/// rather than one.
fn ranks(question: &str) -> bool {
    let q = spaced(question);
    // `which blocks`, `what accounts`: every one of them.
    let plural = ["which", "what"].iter().any(|w| {
        q.split(&format!(" {w} ")).skip(1).any(|rest| {
            rest.split_whitespace().next().is_some_and(|noun| {
                [
                    "blocks",
                    "accounts",
                    "transfers",
                    "transactions",
                    "names",
                    "senders",
                    "recipients",
                    "heights",
                    "labels",
                    "validators",
                ]
                .contains(&noun)
            })
        })
    });
    if plural {
        return true;
    }
    [
        "rank",
        "ranked",
        "ranking",
        "sort",
        "sorted",
        "order",
        "ordered",
        "each",
        "every",
        "per",
        "leaderboard",
    ]
    .iter()
    .any(|w| q.contains(&format!(" {w} ")))
}

/// Words that make the number beside them a count of rows to show (`top 3`, `the 3 largest`,
/// `the largest 3`).
const LIMIT_WORDS: &[&str] = &[
    "top", "first", "last", "latest", "earliest", "newest", "oldest", "biggest", "largest",
    "highest", "richest", "greatest", "most", "smallest", "lowest", "least", "fewest", "poorest",
];

/// How many rows the question asks for, two or more: a number beside a word of rank or size
/// (`top 3`, `the three largest`, `the last 5 transfers`) or naming things ranked by size (`the
/// 2 accounts with the most HIB`); not a bound (`more than 3`, `at least 2`), an amount (`the
/// largest 5 HIB`) or a window (`in the last 10 blocks`).
fn stated_limit(question: &str) -> Option<String> {
    let q = spaced(question);
    let words: Vec<&str> = q.split_whitespace().collect();
    let (largest, smallest) = sizes(question);
    let number = |w: &str| {
        let digits = NUMBER_WORDS
            .iter()
            .find(|(word, _)| *word == w)
            .map_or(w, |(_, digits)| *digits);
        digits
            .parse::<u32>()
            .ok()
            .filter(|n| (2..=1000).contains(n))
            .map(|n| n.to_string())
    };
    const WINDOWS: &[&str] = &["in", "over", "during", "within", "from", "since", "past"];
    (0..words.len()).find_map(|i| {
        let n = number(words[i])?;
        let before = |k: usize| i.checked_sub(k).map_or("", |j| words[j]);
        let after = words.get(i + 1).copied().unwrap_or("");
        if (["than", "least", "most"].contains(&before(1)) && before(2) != "the")
            || AMOUNT_WORDS.contains(&after)
            || WINDOWS.contains(&before(2))
            || (WINDOWS.contains(&before(3)) && before(2) == "the")
        {
            return None;
        }
        let ranked = LIMIT_WORDS.contains(&before(1))
            || LIMIT_WORDS.contains(&after)
            || ((largest || smallest) && after.len() > 3 && after.ends_with('s'));
        ranked.then_some(n)
    })
}

/// Whether the question asks when something happened (`when did`, `at what time`), apart
/// from a release (read at its release height).
fn asks_when(question: &str) -> bool {
    let q = spaced(question);
    let has = |words: &[&str]| words.iter().any(|w| q.contains(&format!(" {w} ")));
    (q.starts_with(" when ")
        || [
            " when did ",
            " when was ",
            " when were ",
            " when exactly ",
            " what time ",
            " at what time ",
        ]
        .iter()
        .any(|p| q.contains(p))
        // `give height and time`, `the block height and timestamp`.
        || (has(&["height"]) && has(&["time", "timestamp"])))
        && !RELEASE_WORDS.iter().any(|w| q.contains(&format!(" {w} ")))
}

/// `sql` reading both the height and the time of what it selects where a question asks when:
/// a single column that is neither (`amount_hib` of the first transfer) becomes both, and a
/// height or a time alone (`min(height)`) gains the other, so that either sense of `when` is
/// answered. None when nothing changes.
fn when_columns(sql: &str) -> Option<String> {
    let (selected, tail) = select_parts(sql)?;
    let table = tail.split_whitespace().next()?.to_ascii_lowercase();
    if !["transfers", "transactions", "stakes", "blocks"].contains(&table.as_str())
        || selected.contains(',')
        || selected.to_ascii_lowercase().starts_with("distinct")
    {
        return None;
    }
    let lower = selected.trim().to_ascii_lowercase();
    // A lone column's alias (`min(time) AS first_seen`) names what is no longer alone.
    let lower = lower.split(" as ").next().unwrap_or("").trim().to_string();
    let (aggregate, column) = match lower.split_once('(') {
        Some((agg, inner)) if ["min", "max"].contains(&agg) => {
            (Some(agg), inner.strip_suffix(')')?.to_string())
        }
        Some(_) => return None,
        None => (None, lower.split_whitespace().next()?.to_string()),
    };
    let (alias, name) = column
        .rsplit_once('.')
        .map_or(("", column.as_str()), |(a, n)| (a, n));
    let prefix = if alias.is_empty() {
        String::new()
    } else {
        format!("{alias}.")
    };
    let wrap = |c: &str| match aggregate {
        Some(agg) => format!("{agg}({prefix}{c})"),
        None => format!("{prefix}{c}"),
    };
    let both = format!("{}, {}", wrap("height"), wrap("time"));
    match (name, aggregate) {
        ("height" | "time", _) | (_, None) => Some(format!("SELECT {both} FROM {tail}")),
        _ => None,
    }
}

/// `sql` showing `n` rows of its outer order: its `LIMIT` set to `n`, or added. None when the
/// outer query has no order, or already shows `n`.
fn with_limit(sql: &str, n: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    let order = lower.rfind(" order by ")?;
    let tail = &lower[order..];
    // The order is the outer query's: no parenthesis it sits in closes after it.
    let mut depth = 0i32;
    for c in tail.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return None;
        }
    }
    match tail.rfind(" limit ") {
        Some(k) => {
            let at = order + k + " limit ".len();
            let current = sql[at..].trim();
            (current != n && !current.is_empty() && current.chars().all(|c| c.is_ascii_digit()))
                .then(|| format!("{}{n}", &sql[..at]))
        }
        None => Some(format!("{} LIMIT {n}", sql.trim_end())),
    }
}

/// The bounds a question states on a number, as SQL comparisons: `under 2` and `less than 2`
/// give `(" < ", "2")`, `more than 4` and `over 4` give `(" > ", "4")`, `at least 5` gives
/// `(" >= ", "5")`, `at most 5` `(" <= ", "5")`.
fn comparisons(question: &str) -> Vec<(&'static str, String)> {
    bounds(question)
        .into_iter()
        .map(|(op, number, _)| (op, number))
        .collect()
}

/// The bounds a question states, as [`comparisons`] gives them, each with the word after its
/// number (`at least one transaction`: `(" >= ", "1", "transaction")`); a number may be a
/// word up to ten.
fn bounds(question: &str) -> Vec<(&'static str, String, String)> {
    let q = format!(
        " {} ",
        question.to_lowercase().replace(['?', ',', '\''], " ")
    );
    const BOUNDS: &[(&str, &str)] = &[
        (" at least ", " >= "),
        (" at most ", " <= "),
        (" no more than ", " <= "),
        (" no less than ", " >= "),
        (" more than ", " > "),
        (" greater than ", " > "),
        (" larger than ", " > "),
        (" bigger than ", " > "),
        (" higher than ", " > "),
        (" above ", " > "),
        (" over ", " > "),
        (" less than ", " < "),
        (" fewer than ", " < "),
        (" smaller than ", " < "),
        (" lower than ", " < "),
        (" below ", " < "),
        (" under ", " < "),
        (" after ", " > "),
        (" before ", " < "),
    ];
    let mut out = Vec::new();
    let mut taken: Vec<usize> = Vec::new();
    for (words, op) in BOUNDS {
        for (at, _) in q.match_indices(words) {
            let rest = &q[at + words.len()..];
            // `after block 15`, `before height 9`: the height is the number.
            let rest = ["block ", "height ", "blocks "]
                .iter()
                .find_map(|unit| rest.strip_prefix(unit))
                .unwrap_or(rest);
            let digits: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let first = rest.split_whitespace().next().unwrap_or("");
            let number = match NUMBER_WORDS.iter().find(|(word, _)| *word == first) {
                Some((_, number)) if digits.is_empty() => number.to_string(),
                _ => digits.trim_end_matches('.').to_string(),
            };
            let unit = rest.split_whitespace().nth(1).unwrap_or("").to_string();
            // `no more than` also holds `more than`: the longer phrase decides.
            let end = at + words.len();
            if number.is_empty() || taken.contains(&end) {
                continue;
            }
            taken.push(end);
            out.push((*op, number, unit));
        }
    }
    out
}

/// How well a query does what the question's words ask for: one point for each cue the SQL
/// follows, minus one for each it contradicts. The cues are the question's aggregate (`how
/// many` counts, `total` sums, `average` averages, `biggest` takes the largest…), its direction
/// (`sent` reads the sender, `received` the recipient), whether it names a time, and the
/// tables it names. Candidates that agree on nothing else are ranked by it.
pub fn cue_fit(question: &str, sql: &str) -> i32 {
    let (followed, contradicted) = cues(question, sql);
    followed - contradicted
}

/// How many of the question's cues `sql` follows and how many it contradicts ([`cue_fit`]).
fn cues(question: &str, sql: &str) -> (i32, i32) {
    let q = spaced(question);
    let original = sql;
    let sql = sql.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| q.contains(&format!(" {w} ")));
    let uses = |parts: &[&str]| parts.iter().any(|p| sql.contains(p));
    let (mut followed_cues, mut contradicted_cues) = (0, 0);
    let mut cue = |asked: bool, followed: bool, contradicted: bool| {
        if asked {
            followed_cues += i32::from(followed);
            contradicted_cues += i32::from(contradicted);
        }
    };
    let (largest, smallest) = sizes(question);
    let largest = largest || has(&["last", "latest"]);
    let smallest = smallest || has(&["first", "earliest"]);
    cue(
        largest && !smallest,
        uses(&["max(", " desc"]),
        uses(&["min(", " order by "]) && !uses(&[" desc", "max("]),
    );
    // An order with no direction is ascending.
    let ascending = uses(&["min(", " asc"]) || (uses(&[" order by "]) && !uses(&[" desc"]));
    cue(smallest && !largest, ascending, uses(&["max(", " desc"]));
    cue(
        has(&["average", "mean"]),
        uses(&["avg("]),
        uses(&["median("]),
    );
    cue(has(&["median"]), uses(&["median("]), uses(&["avg("]));
    let counting = asks_count(question) || has(&["count"]);
    cue(counting, uses(&["count("]), !uses(&["count("]));
    let summing = !counting && (q.contains(" how much ") || has(&["total", "sum", "volume"]));
    // An amount asked for is read from an amount, not from heights or counts.
    let selected = selected_of(&sql);
    let amounts = [
        "amount", "balance", "fee", "power", "hib", "stake", "value", "*",
    ];
    cue(
        !counting && (q.contains(" how much ") || has(&["amount"])),
        false,
        !amounts.iter().any(|a| selected.contains(a)),
    );
    cue(
        summing,
        uses(&["sum("]),
        !uses(&["sum("])
            && (uses(&["count("]) || has(&["total", "sum", "altogether", "combined", "overall"])),
    );
    let sending = has(&[
        "sent", "send", "sends", "paid", "pay", "pays", "spent", "spend",
    ]);
    let receiving = has(&["received", "receive", "receives", "got", "earned", "earn"]);
    let reads_from = uses(&["\"from\""]);
    let reads_to = uses(&["\"to\""]);
    // Who received reads the recipient, who sent a sender (a transfer's, a transaction's, a
    // fee's payer); with no one asked for (`how many were sent`), only the other side
    // contradicts.
    let who = has(&["who", "whom", "whose", "which"]);
    let reads_sender = reads_from || uses(&["sender", "payer"]);
    cue(
        sending && !receiving,
        reads_from,
        if who {
            !reads_sender
        } else {
            reads_to && !reads_from
        },
    );
    cue(
        receiving && !sending,
        reads_to,
        if who {
            !reads_to
        } else {
            reads_from && !reads_to
        },
    );
    let timed = has(TIME_WORDS);
    cue(!timed, false, uses(&["now()"]));
    // A bound on a number the question never states (copied from an example).
    let numbers = stated_numbers(question);
    let stranger = where_terms(&sql)
        .is_some_and(|(_, _, terms)| terms.iter().any(|t| stranger_bound(t, &numbers)));
    cue(true, false, stranger);
    if let Some(succeeded) = asks_success(question) {
        let (right, wrong) = if succeeded {
            ("success = true", "success = false")
        } else {
            ("success = false", "success = true")
        };
        cue(true, uses(&[right]), uses(&[wrong]));
    }
    cue(
        has(&["transfer", "transfers"]),
        uses(&[" transfers"]),
        !uses(&[" transfers"]),
    );
    // A stated bound (`bigger than 5`) is compared the way the words say.
    for (op, number) in comparisons(question) {
        let other = COMPARISON_OPS
            .iter()
            .any(|o| *o != op && comparison_at(&sql, o, &number).is_some());
        cue(true, comparison_at(&sql, op, &number).is_some(), other);
    }
    // `list` and `show` ask for rows, not their number; so does `which`, though its answer
    // may be ranked by one.
    let listing = has(&["list", "show", "display"]) && !counting;
    let counted_all = uses(&["count("]) && !uses(&["group by"]);
    cue(listing, !uses(&["count(", "sum(", "avg("]), counted_all);
    cue(has(&["which"]) && !listing && !counting, false, counted_all);
    // Who sent or received the most or least HIB: amounts summed, not transfers counted.
    let by_amount = has(&["who", "which", "whom"])
        && (has(&["amount", "amounts"]) || has(AMOUNT_WORDS))
        && has(&["most", "least", "fewest"])
        && !counting;
    cue(
        by_amount,
        uses(&["sum("]),
        uses(&["count("]) && !uses(&["sum("]),
    );
    cue(
        has(&["transaction", "transactions"]),
        uses(&[" transactions"]),
        !uses(&[" transactions"]),
    );
    // What the question names is read: a balance, a stake, fees, a nonce, a power.
    const CONCEPTS: &[(&[&str], &str)] = &[
        (&["balance", "balances", "richest", "poorest"], "balance"),
        (
            &[
                "stake", "staked", "stakes", "staking", "bonded", "bond", "bonds",
            ],
            "stake",
        ),
        (&["fee", "fees"], "fee"),
        (&["nonce"], "nonce"),
        (&["hash"], "hash"),
        (RELEASE_WORDS, "release_height"),
        (&["power"], "power"),
    ];
    for (words, column) in CONCEPTS {
        cue(has(words), sql.contains(column), !sql.contains(column));
    }
    // A stated range bounds both ends.
    if let Some((low, high)) = range(question) {
        let both = sql.contains(&format!(" between {low} and {high}"))
            || (comparison_at_any(&sql, &low).is_some()
                && comparison_at_any(&sql, &high).is_some());
        cue(true, both, !both);
    }
    // Blocks with transactions are filtered on their count.
    if let Some(term) = transactions_bound(question).filter(|_| uses(&[" from blocks"])) {
        let at_least_one = term == "tx_count > 0" && uses(&["tx_count >= 1"]);
        cue(
            true,
            uses(&[term.as_str()]) || at_least_one,
            !uses(&["tx_count"]),
        );
    }
    // Who: a name is read.
    cue(has(&["who", "whom"]), uses(&["name"]), !uses(&["name"]));
    // A name alone answers only a question about someone.
    let about_someone = has(&[
        "who",
        "whom",
        "whose",
        "which",
        "name",
        "names",
        "named",
        "account",
        "accounts",
        "person",
        "people",
        "sender",
        "senders",
        "recipient",
        "recipients",
        "label",
        "labels",
        "labelled",
        "validator",
        "validators",
    ]);
    cue(
        !about_someone,
        false,
        ["l.name", "name"].contains(&selected.trim()),
    );
    // A ranking lists every row.
    cue(
        ranks(question) && !largest && !smallest,
        false,
        sql.ends_with(" limit 1"),
    );
    // `top 3` shows three rows.
    if let Some(n) = stated_limit(question) {
        let limited = sql.ends_with(&format!(" limit {n}"));
        cue(true, limited, !limited);
    }
    // `How many …, and how much`: both are read.
    let both = uses(&["count("]) && uses(&["sum("]);
    cue(asks_count_and_amount(question), both, !both);
    // A query that a repair of these words would still change contradicts them: `who …, and
    // how much` listing names alone, the block and the release with one height, `the latest
    // block` with every block, `which account` without its name, `each sender` with one total,
    // a range over blocks on another column.
    let changed_by = |rule: Option<String>| rule.is_some_and(|r| r != original);
    cue(
        asks_who(question) && second_ask_is_amount(question),
        false,
        changed_by(names_with_amounts(original)),
    );
    cue(
        asks_height_and_release(question),
        false,
        changed_by(with_height(original)),
    );
    if let Some(latest) = asks_one_end(question) {
        cue(true, false, changed_by(one_end(original, latest)));
    }
    cue(
        asks_who(question),
        false,
        changed_by(named_accounts(original)),
    );
    cue(
        asks_names(question),
        false,
        changed_by(named_groups(original)),
    );
    if let Some(party) = grouped_party(question) {
        let grouped = uses(&[" group by "]);
        cue(
            true,
            grouped,
            !grouped || changed_by(per_party(original, party)),
        );
    }
    cue(true, false, changed_by(range_on_height(question, original)));
    cue(
        asks_base_units(question),
        false,
        changed_by(base_units(original)),
    );
    // A share divides.
    let divides = uses(&[" / "]);
    cue(asks_share(question), divides, !divides);
    // `Give height and time`: both are read.
    if has(&["height"]) && has(&["time", "timestamp"]) {
        let dated_both = selected.contains("height") && selected.contains("time");
        cue(true, dated_both, !dated_both);
    }
    // `When`: a height or a time is read.
    let dated = selected.contains("height") || selected.contains("time");
    cue(asks_when(question), dated, !dated);
    // At which height: the height is read.
    cue(
        asks_height(question),
        selected.contains("height"),
        !selected.contains("height"),
    );
    // Things with none of something, and only those, are filtered on a zero count.
    let zero = zero_count_term(&sql).is_some();
    let none = asks_none(question);
    cue(none, zero, !zero);
    cue(!none, false, zero);
    // Different people are counted once each.
    cue(
        counting && has(&["different", "distinct", "unique"]),
        uses(&["distinct"]),
        !uses(&["distinct"]),
    );
    // Distinct recipients are read from `"to"`, distinct senders from `"from"`.
    let recipients = has(&["recipients", "receivers", "payees"]);
    let senders = has(&["senders", "payers"]);
    cue(
        recipients && !senders,
        uses(&["distinct \"to\""]),
        uses(&["distinct \"from\""]),
    );
    cue(
        senders && !recipients,
        uses(&["distinct \"from\""]),
        uses(&["distinct \"to\""]),
    );
    (followed_cues, contradicted_cues)
}

/// The selected columns of a lowercase `sql`.
fn selected_of(sql: &str) -> &str {
    sql.strip_prefix("select ")
        .and_then(|rest| rest.split(" from ").next())
        .unwrap_or("")
}

/// Whether a result says nothing: no rows, or one row of nulls.
fn is_empty_result(rows: &[Value]) -> bool {
    match rows {
        [] => true,
        [row] => row
            .as_object()
            .is_some_and(|o| o.values().all(Value::is_null)),
        _ => false,
    }
}

/// A result as a key that ignores column names and row order (two queries that agree on the
/// values agree, whatever they called the columns).
pub fn canonical(rows: &[Value]) -> String {
    let mut lines: Vec<String> = rows
        .iter()
        .map(|row| match row {
            Value::Object(o) => o
                .values()
                .map(canonical_value)
                .collect::<Vec<_>>()
                .join("\u{1f}"),
            other => canonical_value(other),
        })
        .collect();
    lines.sort();
    lines.join("\u{1e}")
}

/// A value as text, numbers without trailing zeros (`3.000000000` and `3` agree).
pub fn canonical_value(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Null => return "null".into(),
        other => other.to_string(),
    };
    match text.parse::<f64>() {
        Ok(x) if text.contains('.') || text.contains('e') => {
            let rounded = (x * 1e6).round() / 1e6;
            format!("{rounded}")
        }
        _ => text,
    }
}

/// Execution accuracy's test: `rows` answer the question that `gold` answers when they have
/// as many rows and every column of `gold` appears among the columns of `rows` with the same
/// values (as a multiset, whatever the names and order; extra columns are allowed, as a person
/// asking "who sent the most" is well served by the name and the amount).
pub fn matches(gold: &[Value], rows: &[Value]) -> bool {
    if gold.len() != rows.len() {
        return false;
    }
    if gold.is_empty() {
        return true;
    }
    let columns = |rows: &[Value]| -> Vec<Vec<String>> {
        let width = rows[0].as_object().map_or(0, serde_json::Map::len);
        (0..width)
            .map(|i| {
                let mut values: Vec<String> = rows
                    .iter()
                    .map(|r| {
                        r.as_object()
                            .and_then(|o| o.values().nth(i))
                            .map(canonical_value)
                            .unwrap_or_else(|| "null".into())
                    })
                    .collect();
                values.sort();
                values
            })
            .collect()
    };
    let theirs = columns(rows);
    columns(gold).iter().all(|g| theirs.contains(g))
}

/// The answer in words: the value of a single cell, else the row count.
fn describe(rows: &[Value]) -> String {
    match rows {
        [] => "No rows match.".into(),
        [Value::Object(row)] if row.len() == 1 => row
            .iter()
            .next()
            .map(|(name, value)| format!("{name}: {}", plain(value)))
            .unwrap_or_default(),
        _ => format!("{} rows.", rows.len()),
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        other => other.to_string(),
    }
}

/// Weight of the shared words in retrieval's score, beside the embeddings' cosine (which
/// puts antonyms such as "largest" and "smallest" close together).
const LEXICAL_WEIGHT: f32 = 0.15;

/// Words that say nothing about a question's shape.
const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "of", "in", "on", "to", "is", "are", "was", "were", "be", "been", "has",
    "have", "had", "do", "does", "did", "what", "which", "who", "how", "many", "much", "by", "for",
    "at", "so", "far", "there", "it", "its", "and", "or", "all", "any", "me", "i",
];

/// The lowercase content words of `text`.
fn content_words(text: &str) -> std::collections::BTreeSet<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| {
            w.len() > 1 && !STOP_WORDS.contains(w) && !w.chars().all(|c| c.is_ascii_digit())
        })
        .map(str::to_string)
        .collect()
}

/// Jaccard overlap of two word sets.
fn overlap(a: &std::collections::BTreeSet<String>, b: &std::collections::BTreeSet<String>) -> f32 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f32 / union as f32
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The tables the prompt shows: those the retrieved examples use, those the question names,
/// and `labels`.
fn relevant_schema(schema: &Schema, question: &str, examples: &[(&Example, f32)]) -> Schema {
    let q = question.to_lowercase();
    let tables = schema
        .tables
        .iter()
        .filter(|t| {
            let singular = t.name.trim_end_matches('s');
            t.name == "labels"
                || q.contains(singular)
                || examples
                    .iter()
                    .any(|(e, _)| mentions_table(&e.sql, &t.name))
        })
        .cloned()
        .collect();
    Schema {
        tables,
        names: schema.names.clone(),
    }
}

/// Whether `sql` reads `table` (after FROM or JOIN).
fn mentions_table(sql: &str, table: &str) -> bool {
    let words: Vec<&str> = sql.split_whitespace().collect();
    words.windows(2).any(|w| {
        (w[0].eq_ignore_ascii_case("FROM") || w[0].eq_ignore_ascii_case("JOIN"))
            && w[1].trim_matches(|c| c == '(' || c == ')') == table
    })
}

/// The prompt: schema, names, worked examples, then the question.
fn prompt(
    schema: &Schema,
    names: &[String],
    examples: &[(&Example, f32)],
    question: &str,
    feedback: Option<&(String, String)>,
) -> String {
    let mut p = String::from(
        "-- Hibana chain analytics. DataFusion SQL over these tables (amount columns are base \
         units; *_hib columns are HIB; time is a UTC timestamp; names are in labels).\n",
    );
    for t in &schema.tables {
        let cols: Vec<String> = t
            .columns
            .iter()
            .map(|c| {
                let mut s = format!(
                    "{} {}",
                    grammar::sql_ident(&c.name),
                    short_type(&c.data_type)
                );
                if !c.samples.is_empty() {
                    s.push_str(&format!(" e.g. {}", c.samples.join("|")));
                }
                s
            })
            .collect();
        p.push_str(&format!(
            "-- {}({}): {}\n",
            t.name,
            cols.join(", "),
            t.about
        ));
    }
    if !names.is_empty() {
        p.push_str(&format!("-- labels.name values: {}\n", names.join(", ")));
    }
    p.push('\n');
    // Least similar first, so the closest example sits next to the question.
    for (e, _) in examples.iter().rev() {
        p.push_str(&format!("Question: {}\nSQL: {}\n\n", e.q, e.sql));
    }
    if let Some((sql, error)) = feedback {
        p.push_str(&format!(
            "Question: {question}\nSQL: {sql}\n-- that failed: {}\n",
            error.lines().next().unwrap_or_default()
        ));
    }
    // No space after the colon: the model writes " SELECT" as one token, as in the examples.
    p.push_str(&format!("Question: {question}\nSQL:"));
    p
}

/// Arrow type names as a reader expects them.
fn short_type(t: &str) -> &str {
    if t.starts_with("Decimal128(38, 9)") {
        "hib"
    } else if t.starts_with("Decimal128") {
        "int"
    } else if t.starts_with("Timestamp") {
        "timestamp"
    } else if t.starts_with("UInt") || t.starts_with("Int") {
        "int"
    } else if t == "Utf8" {
        "text"
    } else if t == "Boolean" {
        "bool"
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_shipped_library_parses_and_every_example_is_a_select() {
        let lib = library().unwrap();
        assert!(lib.len() >= 60, "{}", lib.len());
        for e in &lib {
            assert!(e.sql.starts_with("SELECT "), "{}", e.sql);
            assert!(!e.sql.contains('\n'), "{}", e.sql);
        }
    }

    #[test]
    fn results_agree_whatever_the_column_names_row_order_and_trailing_zeros() {
        let a = vec![json!({"n": "3.000000000"}), json!({"n": "1"})];
        let b = vec![json!({"total": 1}), json!({"total": 3})];
        assert_eq!(canonical(&a), canonical(&b));
        assert_ne!(canonical(&a), canonical(&[json!({"n": 2})]));
    }

    #[test]
    fn an_answer_matches_when_it_holds_every_gold_column_and_no_other_row() {
        let gold = vec![json!({"name": "bob"})];
        assert!(matches(&gold, &[json!({"name": "bob", "sent": "12.5"})]));
        assert!(!matches(&gold, &[json!({"name": "alice", "sent": "12.5"})]));
        assert!(!matches(
            &gold,
            &[json!({"name": "bob"}), json!({"name": "carol"})]
        ));
        let sums = vec![json!({"s": "1.500000000"}), json!({"s": "2"})];
        assert!(matches(&sums, &[json!({"x": 2}), json!({"x": 1.5})]));
        assert!(matches(&[], &[]));
    }

    #[test]
    fn an_example_is_adapted_to_the_question_s_names_and_numbers() {
        let schema = Schema {
            tables: vec![Table {
                name: "stakes".into(),
                about: String::new(),
                columns: vec![Column {
                    name: "kind".into(),
                    data_type: "Utf8".into(),
                    samples: vec!["bond".into(), "unbond".into()],
                }],
            }],
            names: ["alice", "bob", "carol"].map(String::from).to_vec(),
        };
        let e = Example {
            q: "How much did bob send to alice in the last 50 blocks?".into(),
            sql: "SELECT sum(amount_hib) FROM transfers WHERE \"from\" IN (SELECT address FROM labels WHERE name = 'bob') AND \"to\" IN (SELECT address FROM labels WHERE name = 'alice') AND height > (SELECT max(height) FROM blocks) - 50".into(),
        };
        let sql = adapt(
            &e,
            "how much did Alice send to bob over the last 250 blocks",
            &schema,
        )
        .unwrap();
        assert!(
            sql.contains("\"from\" IN (SELECT address FROM labels WHERE name = 'alice')"),
            "{sql}"
        );
        assert!(sql.contains("name = 'bob') AND height"), "{sql}");
        assert!(sql.ends_with("- 250"), "{sql}");
        assert_eq!(adapt(&e, "How much did carol send?", &schema), None);
        // A number is put in the example's place only where both count the same thing.
        let cases = [
            (
                "How many transfers were under 2 HIB?",
                "SELECT count(*) FROM transfers WHERE amount_hib < 2",
                "How much HIB moved in the last 18 blocks?",
                None,
            ),
            (
                "How many transfers were under 2 HIB?",
                "SELECT count(*) FROM transfers WHERE amount_hib < 2",
                "How many transfers were below 7.5 HIB?",
                Some("SELECT count(*) FROM transfers WHERE amount_hib < 7.5"),
            ),
            (
                "How many transfers happened between block 10 and block 20?",
                "SELECT count(*) FROM transfers WHERE height BETWEEN 10 AND 20",
                "transfers between block 3 and 9",
                Some("SELECT count(*) FROM transfers WHERE height BETWEEN 3 AND 9"),
            ),
            (
                "How many blocks were produced between heights 10 and 20?",
                "SELECT count(*) FROM blocks WHERE height BETWEEN 10 AND 20",
                "How many blocks were there between heights 20 and 30?",
                Some("SELECT count(*) FROM blocks WHERE height BETWEEN 20 AND 30"),
            ),
            (
                "How many transfers happened between block 10 and block 20?",
                "SELECT count(*) FROM transfers WHERE height BETWEEN 10 AND 20",
                "How many transfers happened in blocks 10 through 15?",
                Some("SELECT count(*) FROM transfers WHERE height BETWEEN 10 AND 15"),
            ),
            (
                "How many transfers were in block 12?",
                "SELECT count(*) FROM transfers WHERE height = 12",
                "how many transfers happened in block 20",
                Some("SELECT count(*) FROM transfers WHERE height = 20"),
            ),
        ];
        for (q, sql, question, adapted) in cases {
            let example = Example {
                q: q.into(),
                sql: sql.into(),
            };
            assert_eq!(
                adapt(&example, question, &schema).as_deref(),
                adapted,
                "{question}"
            );
        }
        let bonds = Example {
            q: "How much has carol bonded?".into(),
            sql: "SELECT sum(amount_hib) FROM stakes WHERE kind = 'bond' AND delegator IN (SELECT address FROM labels WHERE name = 'carol')".into(),
        };
        let sql = adapt(&bonds, "how much did bob unbond", &schema).unwrap();
        assert!(sql.contains("kind = 'unbond' AND"), "{sql}");
        assert!(sql.contains("name = 'bob'"), "{sql}");
        // A word of a kind that the example's SQL does not quote is no slot of it.
        let balance = Example {
            q: "How much of carol's balance was bonded?".into(),
            sql: "SELECT stake_hib FROM accounts WHERE address IN (SELECT address FROM labels WHERE name = 'carol')".into(),
        };
        let sql = adapt(&balance, "What is bob's stake?", &schema).unwrap();
        assert!(sql.contains("name = 'bob'"), "{sql}");
        // Every fitting example is adapted, best first, each once.
        let transfers = Example {
            q: "How much did carol send?".into(),
            sql: "SELECT sum(amount_hib) FROM transfers WHERE \"from\" IN (SELECT address FROM labels WHERE name = 'carol')".into(),
        };
        let found = adaptations(
            &[
                (&transfers, 0.9),
                (&e, 0.8),
                (&bonds, 0.7),
                (&transfers, 0.6),
            ],
            "how much had bob bonded",
            &schema,
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("kind = 'bond'"), "{found:?}");
        assert_eq!(
            replace_number("LIMIT 5 OFFSET 15", "5", "7"),
            "LIMIT 7 OFFSET 15"
        );
    }

    #[test]
    fn names_and_numbers_are_masked_before_retrieval() {
        let names: Vec<String> = ["alice", "bob"].map(String::from).to_vec();
        assert_eq!(
            masked("What is Bob's balance after the last 50 blocks?", &names),
            "What is someone's balance after the last N blocks?"
        );
        assert_eq!(
            quoted_names("SELECT 1 FROM labels WHERE name = 'carol' OR name = 'Dave'"),
            ["carol", "dave"]
        );
    }

    #[test]
    fn the_vote_prefers_the_largest_non_empty_group_then_the_earliest() {
        let mut attempts = vec![attempt("a"), attempt("b"), attempt("c"), attempt("d")];
        let results = vec![
            Some(vec![]),
            Some(vec![json!({"n": 2})]),
            None,
            Some(vec![json!({"x": 2})]),
        ];
        assert_eq!(vote("which", &[], &mut attempts, &results), Some(1));
        assert_eq!(attempts[1].votes, 2);
        assert_eq!(attempts[3].votes, 2);
        let mut two = vec![attempt("a"), attempt("b")];
        let empty_only = vec![Some(vec![json!({"n": null})]), None];
        assert_eq!(vote("which", &[], &mut two, &empty_only), Some(0));
        assert_eq!(vote("which", &[], &mut two, &[None, None]), None);
        // A question of absence: the composed query finding no one is the answer.
        let mut composed = vec![attempt("a"), attempt("b")];
        composed[0].source = "composed".into();
        let none_found = vec![Some(vec![]), Some(vec![json!({"name": "alice"})])];
        let q = "which accounts received transfers but never sent any?";
        assert_eq!(vote(q, &[], &mut composed, &none_found), Some(0));
        assert_eq!(
            vote(
                "which accounts sent transfers?",
                &[],
                &mut composed,
                &none_found
            ),
            Some(1)
        );
    }

    /// A greedy candidate that has not run yet.
    fn attempt(sql: &str) -> Attempt {
        Attempt {
            sql: sql.into(),
            source: "greedy".into(),
            rows: None,
            error: None,
            votes: 0,
        }
    }

    #[test]
    fn the_question_words_rank_candidates_that_follow_them() {
        let q = "Who sent the most HIB?";
        let by_sender = r#"SELECT l.name FROM transfers t JOIN labels l ON l.address = t."from" GROUP BY l.name ORDER BY sum(t.amount_hib) DESC LIMIT 1"#;
        let by_recipient = by_sender.replace(r#"t."from""#, r#"t."to""#);
        assert!(cue_fit(q, by_sender) > cue_fit(q, &by_recipient));
        let q = "What is the total amount of HIB moved by transfers?";
        assert!(
            cue_fit(q, "SELECT sum(amount_hib) FROM transfers")
                > cue_fit(q, "SELECT min(amount_hib) FROM transfers")
        );
        let q = "How many blocks have been produced so far?";
        assert!(
            cue_fit(q, "SELECT count(*) FROM blocks")
                > cue_fit(q, "SELECT count(*) FROM blocks WHERE time >= now()")
        );
        // A stated bound, rows asked for, and amounts by person.
        let q = "Show all transfers bigger than 5 HIB";
        let list = "SELECT height, amount_hib FROM transfers WHERE amount_hib > 5";
        assert!(
            cue_fit(q, list) > cue_fit(q, "SELECT count(*) FROM transfers WHERE amount_hib > 5")
        );
        assert!(
            cue_fit(q, "SELECT count(*) FROM transfers WHERE amount_hib > 5")
                > cue_fit(q, "SELECT count(*) FROM transfers WHERE amount_hib < 5")
        );
        let q = "Who sent the most HIB?";
        assert!(
            cue_fit(
                q,
                "SELECT l.name, sum(t.amount_hib) AS s FROM transfers t JOIN labels l ON l.address = t.\"from\" GROUP BY l.name ORDER BY s DESC LIMIT 1"
            ) > cue_fit(
                q,
                "SELECT l.name, count(*) AS n FROM transfers t JOIN labels l ON l.address = t.\"from\" GROUP BY l.name ORDER BY n DESC LIMIT 1"
            )
        );
        let q = "What was the smallest transfer?";
        assert!(
            cue_fit(q, "SELECT min(amount_hib) FROM transfers")
                > cue_fit(
                    q,
                    "SELECT amount_hib FROM transfers ORDER BY amount DESC LIMIT 1"
                )
        );
        // Two candidates that agree on nothing: the one that follows the words wins the vote.
        let mut attempts = vec![
            attempt("SELECT count(*) FROM transfers"),
            attempt("SELECT sum(amount_hib) FROM transfers"),
        ];
        let results = vec![
            Some(vec![json!({"n": 10})]),
            Some(vec![json!({"s": 46.25})]),
        ];
        assert_eq!(
            vote(
                "What is the total of all transfers in HIB?",
                &[],
                &mut attempts,
                &results
            ),
            Some(1)
        );
    }

    fn people() -> Vec<String> {
        ["alice", "bob", "carol"].map(String::from).to_vec()
    }

    #[test]
    fn names_are_senders_or_recipients_as_the_words_say() {
        let names = people();
        let of = |q: &str| parties(q, &names);
        assert_eq!(
            of("How many transfers went from bob to alice?"),
            vec![
                ("bob".into(), Party::Sender),
                ("alice".into(), Party::Recipient)
            ]
        );
        assert_eq!(
            of("How much did carol pay bob?"),
            vec![
                ("carol".into(), Party::Sender),
                ("bob".into(), Party::Recipient)
            ]
        );
        assert_eq!(
            of("Total HIB that alice has received"),
            vec![("alice".into(), Party::Recipient)]
        );
        assert_eq!(
            of("What was the largest transfer bob made?"),
            vec![("bob".into(), Party::Sender)]
        );
        assert_eq!(
            of("Total HIB received by carol"),
            vec![("carol".into(), Party::Recipient)]
        );
        assert_eq!(
            of("Average size of alice's transfers to carol"),
            vec![
                ("alice".into(), Party::Sender),
                ("carol".into(), Party::Recipient)
            ]
        );
        assert_eq!(of("What is bob's balance?"), vec![]);
        // Both parts for one name: no cue.
        assert_eq!(of("Did alice send anything to alice?"), vec![]);
    }

    #[test]
    fn repairs_follow_the_words_and_leave_agreeing_sql_alone() {
        let names = people();
        let from = |n: &str| party_clause("\"from\"", n);
        let to = |n: &str| party_clause("\"to\"", n);
        // Reversed parties are swapped.
        let sql = format!(
            "SELECT sum(amount_hib) FROM transfers WHERE {} AND {}",
            to("carol"),
            from("alice")
        );
        assert_eq!(
            repair("How much HIB went from carol to alice?", &sql, &names),
            Some(format!(
                "SELECT sum(amount_hib) FROM transfers WHERE {} AND {}",
                from("carol"),
                to("alice")
            ))
        );
        // A party the filter forgot is added.
        let sql = format!("SELECT count(*) FROM transfers WHERE {}", to("bob"));
        assert_eq!(
            repair("How many transfers went from bob to alice?", &sql, &names),
            Some(format!(
                "SELECT count(*) FROM transfers WHERE {} AND {}",
                from("bob"),
                to("alice")
            ))
        );
        // Success and failure.
        assert_eq!(
            repair(
                "How many transactions succeeded?",
                "SELECT count(*) FROM transactions WHERE success = FALSE",
                &names
            ),
            Some("SELECT count(*) FROM transactions WHERE success = TRUE".into())
        );
        // A count, not an amount; "how many HIB" stays a sum.
        assert_eq!(
            repair(
                "How many fee payments are recorded?",
                "SELECT sum(amount_hib) AS fees FROM fees",
                &names
            ),
            Some("SELECT count(*) AS fees FROM fees".into())
        );
        assert_eq!(
            repair(
                "How many HIB did alice send?",
                &format!(
                    "SELECT sum(amount_hib) FROM transfers WHERE {}",
                    from("alice")
                ),
                &names
            ),
            None
        );
        // Someone the question never names is replaced by the one it does.
        let sql = format!(
            "SELECT sum(amount_hib) FROM transfers WHERE {} AND {}",
            from("carol"),
            to("alice")
        );
        assert_eq!(
            repair("How much did carol pay bob?", &sql, &names),
            Some(format!(
                "SELECT sum(amount_hib) FROM transfers WHERE {} AND {}",
                from("carol"),
                to("bob")
            ))
        );
        // Who sent, without names: the sender's column.
        assert_eq!(
            repair(
                "Who has paid out the most HIB?",
                "SELECT l.name FROM transfers t JOIN labels l ON l.address = t.\"to\" GROUP BY l.name ORDER BY sum(t.amount_hib) DESC LIMIT 1",
                &names
            ),
            Some("SELECT l.name FROM transfers t JOIN labels l ON l.address = t.\"from\" GROUP BY l.name ORDER BY sum(t.amount_hib) DESC LIMIT 1".into())
        );
        // The smallest, not the largest.
        assert_eq!(
            repair(
                "What was the smallest transfer?",
                "SELECT amount_hib FROM transfers ORDER BY amount DESC LIMIT 1",
                &names
            ),
            Some("SELECT amount_hib FROM transfers ORDER BY amount ASC LIMIT 1".into())
        );
        assert_eq!(
            repair(
                "What is the largest transfer?",
                "SELECT min(amount_hib) FROM transfers",
                &names
            ),
            Some("SELECT max(amount_hib) FROM transfers".into())
        );
        assert_eq!(
            repair(
                "Which named account has the highest balance?",
                "SELECT address, balance_hib FROM accounts ORDER BY balance LIMIT 1",
                &names
            ),
            // The direction turned, and the account named.
            Some("SELECT l.name, a.address, a.balance_hib FROM accounts a LEFT JOIN (SELECT address, min(name) AS name FROM labels GROUP BY address) l ON l.address = a.address ORDER BY balance DESC LIMIT 1".into())
        );
        // A name the question never names: replaced by the one it names, or dropped.
        assert_eq!(
            repair(
                "How many unbondings has bob done?",
                "SELECT count(*) FROM stakes WHERE kind = 'unbond' AND delegator IN (SELECT address FROM labels WHERE name = 'dave')",
                &names
            ),
            Some("SELECT count(*) FROM stakes WHERE kind = 'unbond' AND delegator IN (SELECT address FROM labels WHERE name = 'bob')".into())
        );
        assert_eq!(
            repair(
                "What's the largest amount ever moved in one transfer?",
                "SELECT max(amount_hib) FROM transfers WHERE \"from\" IN (SELECT address FROM labels WHERE name = 'bob')",
                &names
            ),
            Some("SELECT max(amount_hib) FROM transfers".into())
        );
        assert_eq!(
            repair(
                "How many unbonds were there?",
                "SELECT count(*) FROM stakes WHERE delegator IN (SELECT address FROM labels WHERE name = 'bob') AND kind = 'unbond' ORDER BY height",
                &names
            ),
            Some("SELECT count(*) FROM stakes WHERE kind = 'unbond' ORDER BY height".into())
        );
        assert_eq!(
            drop_name_filter(
                "SELECT count(*) FROM stakes WHERE kind = 'unbond' AND delegator IN (SELECT address FROM labels WHERE name = 'bob') LIMIT 1",
                "bob"
            ),
            Some("SELECT count(*) FROM stakes WHERE kind = 'unbond' LIMIT 1".into())
        );
        // A bound compares the way the words say.
        assert_eq!(
            repair(
                "How many transfers were smaller than 1 HIB?",
                "SELECT count(*) AS large FROM transfers WHERE amount_hib > 1",
                &names
            ),
            Some("SELECT count(*) AS large FROM transfers WHERE amount_hib < 1".into())
        );
        assert_eq!(
            repair(
                "How many transfers of at least 5 HIB?",
                "SELECT count(*) FROM transfers WHERE amount_hib > 5 AND height > 50",
                &names
            ),
            // … and a bound on a number the question never states goes.
            Some("SELECT count(*) FROM transfers WHERE amount_hib >= 5".into())
        );
        assert_eq!(
            repair(
                "Transfers over 10 HIB in the last 100 blocks",
                "SELECT count(*) FROM transfers WHERE amount_hib > 10 AND height > 100",
                &names
            ),
            None
        );
        assert_eq!(
            repair(
                "How many transfers were under 2.5 HIB?",
                "SELECT count(*) FROM transfers WHERE amount_hib > 2.5",
                &names
            ),
            Some("SELECT count(*) FROM transfers WHERE amount_hib < 2.5".into())
        );
        assert_eq!(
            comparisons("Accounts with no more than 3 transfers?"),
            vec![(" <= ", "3".to_string())]
        );
        // A count of listed rows.
        assert_eq!(
            repair(
                "How many addresses have a label?",
                "SELECT name, address FROM labels",
                &names
            ),
            Some("SELECT count(*) FROM (SELECT name, address FROM labels)".into())
        );
        // SQL that already follows the words is left alone.
        let sql = format!(
            "SELECT count(*) FROM transfers WHERE {} AND {}",
            from("alice"),
            to("carol")
        );
        assert_eq!(
            repair("How many times did alice pay carol?", &sql, &names),
            None
        );
        assert!(
            party_fit("How many times did alice pay carol?", &sql, &names)
                > party_fit(
                    "How many times did alice pay carol?",
                    &format!(
                        "SELECT count(*) FROM transfers WHERE {} AND {}",
                        to("alice"),
                        from("carol")
                    ),
                    &names
                )
        );
        // A name the question never mentions loses a point.
        assert!(
            party_fit(
                "What is the largest transfer?",
                "SELECT max(amount_hib) FROM transfers",
                &names
            ) > party_fit(
                "What is the largest transfer?",
                &format!("SELECT max(amount_hib) FROM transfers WHERE {}", to("bob")),
                &names
            )
        );
    }

    #[test]
    fn repairs_read_ranges_rankings_and_the_fewest() {
        let names = people();
        let cases = [
            // A range bounds both ends.
            (
                "show me the transfers between 2 and 6 HIB",
                "SELECT amount_hib FROM transfers WHERE amount_hib > 2 ORDER BY height",
                Some(
                    "SELECT amount_hib FROM transfers WHERE amount_hib BETWEEN 2 AND 6 ORDER BY height",
                ),
            ),
            (
                "transfers between 9 and 3 HIB",
                "SELECT * FROM transfers WHERE amount_hib >= 3",
                Some("SELECT * FROM transfers WHERE amount_hib BETWEEN 3 AND 9"),
            ),
            (
                "transfers between 2 and 6 HIB",
                "SELECT * FROM transfers WHERE amount_hib > 2 AND amount_hib < 6",
                None,
            ),
            // A ranking lists every row; a superlative keeps one.
            (
                "Rank the senders by how much HIB they sent",
                "SELECT l.name, sum(t.amount_hib) AS s FROM transfers t JOIN labels l ON l.address = t.\"from\" GROUP BY l.name ORDER BY s DESC LIMIT 1",
                Some(
                    "SELECT l.name, sum(t.amount_hib) AS s FROM transfers t JOIN labels l ON l.address = t.\"from\" GROUP BY l.name ORDER BY s DESC",
                ),
            ),
            (
                "Who sent the most in each block?",
                "SELECT l.name FROM transfers t JOIN labels l ON l.address = t.\"from\" GROUP BY l.name ORDER BY count(*) DESC LIMIT 1",
                None,
            ),
            // The fewest is the least, the most the largest; `at least 2` is a bound.
            (
                "Of everyone who sent money, who sent the fewest transfers?",
                "SELECT l.name, count(*) AS n FROM transfers t JOIN labels l ON l.address = t.\"from\" GROUP BY l.name ORDER BY n DESC LIMIT 1",
                Some(
                    "SELECT l.name, count(*) AS n FROM transfers t JOIN labels l ON l.address = t.\"from\" GROUP BY l.name ORDER BY n ASC LIMIT 1",
                ),
            ),
            (
                "How many transfers were at least 2 HIB?",
                "SELECT count(*) FROM transfers WHERE amount_hib >= 2",
                None,
            ),
            // Which blocks: their heights.
            (
                "Which blocks contain bob's transactions?",
                "SELECT count(*) FROM transactions WHERE sender IN (SELECT address FROM labels WHERE name = 'bob')",
                Some(
                    "SELECT height FROM transactions WHERE sender IN (SELECT address FROM labels WHERE name = 'bob')",
                ),
            ),
        ];
        for (question, sql, repaired) in cases {
            assert_eq!(
                repair(question, sql, &names).as_deref(),
                repaired,
                "{question}"
            );
        }
        assert_eq!(
            range("between block 10 and block 20"),
            Some(("10".into(), "20".into()))
        );
        assert_eq!(range("between alice and bob"), None);
        assert_eq!(
            repair(
                "How many transactions did block 15 contain?",
                "SELECT tx_count FROM blocks WHERE height = 15",
                &names
            ),
            None
        );
        assert_eq!(
            repair(
                "Show me the transfers between 1 and 4 HIB",
                "SELECT height, amount_hib FROM transfers WHERE amount_hib > 10 ORDER BY height",
                &names
            )
            .as_deref(),
            Some(
                "SELECT height, amount_hib FROM transfers WHERE amount_hib BETWEEN 1 AND 4 ORDER BY height"
            )
        );
        assert_eq!(
            repair(
                "Which blocks had transactions in them?",
                "SELECT height, tx_count FROM blocks ORDER BY tx_count DESC, height LIMIT 1",
                &names
            )
            .as_deref(),
            Some(
                "SELECT height, tx_count FROM blocks WHERE tx_count > 0 ORDER BY tx_count DESC, height"
            )
        );
        for (question, sql, repaired) in [
            // Numbers copied from an example give way to the stated range.
            (
                "How many empty blocks (no transactions) are there between heights 1 and 20 inclusive?",
                "SELECT count(*) AS blocks FROM blocks WHERE height BETWEEN 10 AND 20 AND height > 10 AND height > 20",
                Some(
                    "SELECT count(*) AS blocks FROM blocks WHERE height BETWEEN 1 AND 20 AND tx_count = 0",
                ),
            ),
            (
                "What is the height of the most recent block that included a transaction?",
                "SELECT max(height) AS height FROM blocks",
                Some("SELECT max(height) AS height FROM blocks WHERE tx_count > 0"),
            ),
            (
                "At what block height will the unbonded stake be released?",
                "SELECT height FROM stakes WHERE kind = 'unbond'",
                Some("SELECT release_height FROM stakes WHERE kind = 'unbond'"),
            ),
            // The number of coins is an amount.
            (
                "total number of coins that dave has received",
                "SELECT count(*) FROM transfers WHERE \"to\" IN (SELECT address FROM labels WHERE name = 'dave')",
                Some(
                    "SELECT sum(amount_hib) FROM transfers WHERE \"to\" IN (SELECT address FROM labels WHERE name = 'dave')",
                ),
            ),
        ] {
            assert_eq!(
                repair(question, sql, &names).as_deref(),
                repaired,
                "{question}"
            );
        }
        assert_eq!(
            repair(
                "At what height did the last transfer happen?",
                "SELECT height FROM transfers ORDER BY height, event_index LIMIT 1",
                &names
            )
            .as_deref(),
            Some("SELECT height FROM transfers ORDER BY height DESC, event_index DESC LIMIT 1")
        );
        assert!(
            cue_fit(
                "biggest single transfer",
                "SELECT max(amount_hib) FROM transfers"
            ) > cue_fit(
                "biggest single transfer",
                "SELECT l.name FROM transfers t JOIN labels l ON l.address = t.\"to\" ORDER BY t.amount_hib DESC LIMIT 1"
            )
        );
        let received = "Which account received the fewest HIB?";
        assert!(
            cue_fit(
                received,
                "SELECT l.name, sum(t.amount_hib) AS r FROM transfers t JOIN labels l ON l.address = t.\"to\" GROUP BY l.name ORDER BY r ASC LIMIT 1"
            ) > cue_fit(
                received,
                "SELECT address, balance_hib FROM accounts ORDER BY balance ASC LIMIT 1"
            )
        );
        assert_eq!(
            range("blocks from height 5 to 15, inclusive"),
            Some(("5".into(), "15".into()))
        );
        assert_eq!(range("in blocks 12-20"), Some(("12".into(), "20".into())));
        assert_eq!(range("more than 2 and less than 6 HIB"), None);
        assert_eq!(
            repair(
                "how many blocks from height 5 to 15, inclusive, contain at least one transaction?",
                "SELECT height FROM blocks WHERE height > 15 AND height > 5 AND tx_count >= 1",
                &names
            )
            .as_deref(),
            Some(
                "SELECT count(*) FROM (SELECT height FROM blocks WHERE height BETWEEN 5 AND 15 AND tx_count >= 1)"
            )
        );
        for (question, sql, repaired) in [
            (
                "How many blocks contain at least one transaction?",
                "SELECT count(*) AS blocks FROM blocks",
                Some("SELECT count(*) AS blocks FROM blocks WHERE tx_count >= 1"),
            ),
            (
                "Which blocks after height 18 had transactions in them?",
                "SELECT height FROM blocks WHERE height > 18",
                Some("SELECT height FROM blocks WHERE height > 18 AND tx_count > 0"),
            ),
            (
                "How many blocks have more than 2 transactions?",
                "SELECT count(*) FROM blocks",
                Some("SELECT count(*) FROM blocks WHERE tx_count > 2"),
            ),
            (
                "Which block had the most transactions?",
                "SELECT height FROM blocks ORDER BY height DESC LIMIT 1",
                None,
            ),
        ] {
            assert_eq!(
                repair(question, sql, &names).as_deref(),
                repaired,
                "{question}"
            );
        }
        assert!(
            cue_fit(
                "How many blocks contain at least one transaction?",
                "SELECT count(*) FROM blocks WHERE tx_count >= 1"
            ) > cue_fit(
                "How many blocks contain at least one transaction?",
                "SELECT count(*) FROM blocks"
            )
        );
        let between = "show me the transfers between 2 and 6 HIB";
        assert!(
            cue_fit(
                between,
                "SELECT * FROM transfers WHERE amount_hib BETWEEN 2 AND 6"
            ) > cue_fit(between, "SELECT * FROM transfers WHERE amount_hib > 2")
        );
        assert!(
            cue_fit(
                "give me the hash of block 12",
                "SELECT hash FROM blocks WHERE height = 12"
            ) > cue_fit(
                "give me the hash of block 12",
                "SELECT count(*) FROM transactions WHERE height = 12"
            )
        );
        assert!(
            cue_fit(
                "Rank the senders by count",
                "SELECT a FROM t ORDER BY b DESC"
            ) > cue_fit(
                "Rank the senders by count",
                "SELECT a FROM t ORDER BY b DESC LIMIT 1"
            )
        );
    }

    #[test]
    fn repairs_read_time_order_amounts_zero_counts_heights_and_distinct_parties() {
        let names = people();
        let from = party_clause("\"from\"", "alice");
        let cases = [
            // The first is the lowest, the latest the highest; a word of size decides first.
            (
                "What was the height of the first block?",
                "SELECT max(height) AS height FROM blocks".to_string(),
                Some("SELECT min(height) AS height FROM blocks".to_string()),
            ),
            (
                "Show the latest 3 transfers",
                "SELECT * FROM transfers ORDER BY height ASC LIMIT 3".into(),
                Some("SELECT * FROM transfers ORDER BY height DESC LIMIT 3".into()),
            ),
            (
                "How many transfers happened in the last 10 blocks?",
                "SELECT count(*) FROM transfers WHERE height > (SELECT max(height) FROM blocks) - 10"
                    .into(),
                None,
            ),
            // An amount asked of a count: the amounts summed; a count stays a count.
            (
                "Total HIB transferred in the last 21 blocks",
                "SELECT count(*) AS n FROM transfers WHERE height > 21".into(),
                Some("SELECT sum(amount_hib) AS n FROM transfers WHERE height > 21".into()),
            ),
            (
                "How many transfers were there in total?",
                "SELECT count(*) FROM transfers".into(),
                None,
            ),
            // A zero count only where the question says none.
            (
                "How many blocks has the chain produced?",
                "SELECT count(*) AS blocks FROM blocks WHERE tx_count = 0".into(),
                Some("SELECT count(*) AS blocks FROM blocks".into()),
            ),
            (
                "How many blocks after height 3 had transactions?",
                "SELECT count(*) FROM blocks WHERE height > 3 AND b.tx_count = 0".into(),
                Some("SELECT count(*) FROM blocks WHERE height > 3 AND tx_count > 0".into()),
            ),
            (
                "How many blocks have no transactions in them?",
                "SELECT count(*) AS blocks FROM blocks".into(),
                Some("SELECT count(*) AS blocks FROM blocks WHERE tx_count = 0".into()),
            ),
            (
                "How many empty blocks are there?",
                "SELECT count(*) FROM blocks WHERE tx_count = 0".into(),
                None,
            ),
            // Which block: the height, not a count.
            (
                "In which block did alice pay something?",
                format!("SELECT count(*) AS transfers FROM transfers WHERE {from}"),
                Some(format!("SELECT height FROM transfers WHERE {from}")),
            ),
            (
                "What was the height of the first transfer?",
                "SELECT amount_hib FROM transfers ORDER BY height, event_index LIMIT 1".into(),
                Some("SELECT height FROM transfers ORDER BY height, event_index LIMIT 1".into()),
            ),
            (
                "At what height did the last transfer happen?",
                "SELECT max(time) AS t FROM transfers".into(),
                Some("SELECT max(height) FROM transfers".into()),
            ),
            // The aggregate the words name.
            (
                "What is the average transfer amount?",
                "SELECT approx_median(amount_hib) AS m FROM transfers".into(),
                Some("SELECT avg(amount_hib) AS m FROM transfers".into()),
            ),
            (
                "What is the total amount of HIB moved by transfers?",
                "SELECT min(amount_hib) FROM transfers".into(),
                Some("SELECT sum(amount_hib) FROM transfers".into()),
            ),
            (
                "Who sent the most HIB?",
                "SELECT l.name, count(*) AS n FROM transfers t JOIN labels l ON l.address = t.\"from\" GROUP BY l.name ORDER BY n DESC LIMIT 1".into(),
                Some("SELECT l.name, sum(amount_hib) AS n FROM transfers t JOIN labels l ON l.address = t.\"from\" GROUP BY l.name ORDER BY n DESC LIMIT 1".into()),
            ),
            // A time window or a bound the question never asks for is dropped.
            (
                "How many blocks have been produced so far?",
                "SELECT count(*) FROM blocks WHERE time >= date_trunc('day', now()) - INTERVAL '1 day' AND time < date_trunc('day', now())".into(),
                Some("SELECT count(*) FROM blocks".into()),
            ),
            (
                "How many transfers happened between block 3 and 9 yesterday?",
                "SELECT count(*) FROM transfers WHERE height BETWEEN 3 AND 9 AND time >= date_trunc('day', now()) - INTERVAL '1 day' AND amount_hib > 4 ORDER BY height".into(),
                Some("SELECT count(*) FROM transfers WHERE height BETWEEN 3 AND 9 AND time >= date_trunc('day', now()) - INTERVAL '1 day' ORDER BY height".into()),
            ),
            (
                "How many blocks have more than three transactions?",
                "SELECT count(*) FROM blocks WHERE tx_count > 3".into(),
                None,
            ),
            // After and before a block.
            (
                "Total HIB transferred after block 15",
                "SELECT sum(amount_hib) FROM transfers WHERE height = 15".into(),
                Some("SELECT sum(amount_hib) FROM transfers WHERE height > 15".into()),
            ),
            // A name the question never mentions beside the one it does.
            (
                "how much did alice get",
                format!(
                    "SELECT sum(amount_hib) FROM transfers WHERE {} AND {}",
                    party_clause("\"to\"", "alice"),
                    party_clause("\"from\"", "carol")
                ),
                Some(format!(
                    "SELECT sum(amount_hib) FROM transfers WHERE {}",
                    party_clause("\"to\"", "alice")
                )),
            ),
            // Distinct people: the other side of the named party.
            (
                "How many different people did alice send HIB to?",
                format!("SELECT count(*) AS n FROM transfers WHERE {from}"),
                Some(format!("SELECT count(DISTINCT \"to\") AS n FROM transfers WHERE {from}")),
            ),
            // Labels joined on the column the named party fills name the other side.
            (
                "Who has sent money to bob?",
                format!(
                    "SELECT DISTINCT l.name FROM transfers t JOIN labels l ON l.address = t.\"to\" WHERE t.{}",
                    party_clause("\"to\"", "bob")
                ),
                Some(format!(
                    "SELECT DISTINCT l.name FROM transfers t JOIN labels l ON l.address = t.\"from\" WHERE t.{}",
                    party_clause("\"to\"", "bob")
                )),
            ),
            // Distinct recipients are read from "to".
            (
                "How many different recipients has alice sent to?",
                format!("SELECT count(DISTINCT \"from\") AS n FROM transfers WHERE {from}"),
                Some(format!("SELECT count(DISTINCT \"to\") AS n FROM transfers WHERE {from}")),
            ),
        ];
        for (question, sql, repaired) in cases {
            assert_eq!(repair(question, &sql, &names), repaired, "{question}");
        }
        // Malformed or foreign SQL is read without a panic.
        for sql in [
            "SELECT 1 FROM transfers WHERE x AND GROUP BY y",
            "SELECT 1 FROM blocks WHERE é.tx_count = 0",
            "SELECT 1 FROM blocks WHERE",
            "SELECT 1 FROM t WHERE a BETWEEN 1 AND",
        ] {
            let _ = where_terms(sql);
            let _ = zero_count_term(sql);
            let _ = repair("How many blocks have been produced so far?", sql, &names);
            let _ = cue_fit("How many blocks have been produced so far?", sql);
        }
        // Rows of events are counted; a named account's nonce already is a number.
        let sent = "SELECT nonce FROM transactions WHERE sender IN (SELECT address FROM labels WHERE name = 'alice')";
        assert_eq!(
            repair("How many transactions has alice signed?", sent, &names),
            Some(format!("SELECT count(*) FROM ({sent})"))
        );
        let nonce = "SELECT nonce FROM accounts WHERE address IN (SELECT address FROM labels WHERE name = 'alice')";
        assert_eq!(
            repair("How many transactions has alice signed?", nonce, &names),
            None
        );
        // What the question names is what is read.
        let richest = "Which named account has the highest balance?";
        assert!(
            cue_fit(
                richest,
                "SELECT l.name, a.balance_hib FROM accounts a JOIN labels l ON l.address = a.address ORDER BY a.balance DESC LIMIT 1"
            ) > cue_fit(
                richest,
                "SELECT l.name, a.stake_hib FROM accounts a JOIN labels l ON l.address = a.address ORDER BY a.stake DESC LIMIT 1"
            )
        );
        assert!(
            cue_fit(
                "How many blocks had no transactions?",
                "SELECT count(*) FROM blocks WHERE tx_count = 0"
            ) > cue_fit(
                "How many blocks had no transactions?",
                "SELECT count(*) FROM blocks"
            )
        );
        assert!(
            cue_fit("How many blocks are there?", "SELECT count(*) FROM blocks")
                > cue_fit(
                    "How many blocks are there?",
                    "SELECT count(*) FROM blocks WHERE tx_count = 0"
                )
        );
    }

    #[test]
    fn a_stated_number_of_rows_is_shown_and_when_reads_height_and_time() {
        // How many rows: beside a word of rank or size, not a bound, an amount or a window.
        for (question, limit) in [
            (
                "Give me the three accounts with the largest balances",
                Some("3"),
            ),
            ("top 5 senders by volume", Some("5")),
            ("alice's 2 biggest transfers", Some("2")),
            ("Show the last 4 transfers", Some("4")),
            ("Who sent more than 2 transfers?", None),
            ("accounts with at least 3 transfers, the most first", None),
            ("the largest transfer in the last 10 blocks", None),
            ("the most recent transfer over 5 HIB", None),
            ("How many transfers are in block 12?", None),
        ] {
            assert_eq!(stated_limit(question).as_deref(), limit, "{question}");
        }
        let names = people();
        assert_eq!(
            repair(
                "Give me the three accounts with the largest balances",
                "SELECT l.name, a.balance_hib FROM accounts a JOIN labels l ON l.address = a.address ORDER BY a.balance DESC",
                &names
            )
            .as_deref(),
            Some(
                "SELECT l.name, a.balance_hib FROM accounts a JOIN labels l ON l.address = a.address ORDER BY a.balance DESC LIMIT 3"
            )
        );
        assert_eq!(
            with_limit("SELECT a FROM t ORDER BY b DESC LIMIT 1", "2").as_deref(),
            Some("SELECT a FROM t ORDER BY b DESC LIMIT 2")
        );
        // An order inside a subquery is not the answer's.
        assert_eq!(
            with_limit("SELECT count(*) FROM (SELECT a FROM t ORDER BY b)", "2"),
            None
        );
        // When: a height and a time, whichever the question means.
        assert!(asks_when("When did the first transfer happen?"));
        assert!(asks_when("what time was block 20 produced"));
        assert!(!asks_when("When will bob's unbond be released?"));
        assert!(!asks_when(
            "How much did alice hold when block 10 was made?"
        ));
        for (sql, both) in [
            (
                "SELECT amount_hib FROM transfers ORDER BY height, event_index LIMIT 1",
                Some("SELECT height, time FROM transfers ORDER BY height, event_index LIMIT 1"),
            ),
            (
                "SELECT min(height) FROM stakes WHERE kind = 'bond'",
                Some("SELECT min(height), min(time) FROM stakes WHERE kind = 'bond'"),
            ),
            (
                "SELECT s.height FROM stakes s JOIN labels l ON l.address = s.delegator",
                Some(
                    "SELECT s.height, s.time FROM stakes s JOIN labels l ON l.address = s.delegator",
                ),
            ),
            ("SELECT max(amount_hib) FROM transfers", None),
            ("SELECT height, time FROM blocks", None),
            ("SELECT balance_hib FROM accounts", None),
        ] {
            assert_eq!(when_columns(sql).as_deref(), both, "{sql}");
        }
        assert!(
            cue_fit(
                "When did carol bond?",
                "SELECT height FROM stakes WHERE kind = 'bond'"
            ) > cue_fit(
                "When did carol bond?",
                "SELECT amount_hib FROM stakes WHERE kind = 'bond'"
            )
        );
    }

    #[test]
    fn one_named_account_is_read_and_base_units_asked_are_read() {
        let names: Vec<String> = vec!["alice".into(), "bob".into()];
        assert_eq!(
            repair(
                "total fees bob has paid, in HIB",
                "SELECT sum(amount_hib) AS fees_hib FROM fees",
                &names
            )
            .as_deref(),
            Some(
                "SELECT sum(amount_hib) AS fees_hib FROM fees WHERE payer IN (SELECT address FROM labels WHERE name = 'bob')"
            )
        );
        assert_eq!(
            account_filter(
                "SELECT count(*) FROM transactions t WHERE t.success = true ORDER BY 1",
                "alice"
            )
            .as_deref(),
            Some(
                "SELECT count(*) FROM transactions t WHERE t.sender IN (SELECT address FROM labels WHERE name = 'alice') AND t.success = true ORDER BY 1"
            )
        );
        assert_eq!(
            account_filter(
                "SELECT kind, sum(amount_hib) FROM stakes GROUP BY kind",
                "bob"
            )
            .as_deref(),
            Some(
                "SELECT kind, sum(amount_hib) FROM stakes WHERE delegator IN (SELECT address FROM labels WHERE name = 'bob') GROUP BY kind"
            )
        );
        // A name already read, a join, a table without one account: left.
        for sql in [
            "SELECT sum(amount_hib) FROM fees WHERE payer IN (SELECT address FROM labels WHERE name = 'bob')",
            "SELECT sum(f.amount_hib) FROM fees f JOIN blocks b ON b.height = f.height",
            "SELECT count(*) FROM blocks",
        ] {
            assert_eq!(account_filter(sql, "bob"), None, "{sql}");
        }
        // `The validator` is a noun, not the account labelled `validator`.
        let with_validator: Vec<String> = vec!["validator".into()];
        assert_eq!(
            repair(
                "What did the validator earn in fees?",
                "SELECT sum(amount_hib) FROM fees",
                &with_validator
            ),
            None
        );
        let names_cue = party_fit(
            "how many fees did bob pay",
            "SELECT count(*) FROM fees",
            &names,
        );
        assert_eq!(names_cue, -1);
        assert_eq!(
            repair(
                "What is the total amount of fees collected across all blocks, in base units?",
                "SELECT sum(amount_hib) AS fees_hib FROM fees",
                &names
            )
            .as_deref(),
            Some("SELECT sum(amount) AS fees FROM fees")
        );
        assert_eq!(base_units("SELECT sum(amount) FROM fees"), None);
        assert!(
            cue_fit(
                "total fees in base units",
                "SELECT sum(amount_hib) FROM fees"
            ) < cue_fit("total fees in base units", "SELECT sum(amount) FROM fees")
        );
    }

    #[test]
    fn two_asks_at_once_read_both_and_one_end_reads_one_row() {
        let names = vec!["dave".to_string(), "bob".to_string()];
        let dave = "\"to\" IN (SELECT address FROM labels WHERE name = 'dave')";
        // `How many …, and how much`: the count and the sum.
        assert_eq!(
            repair(
                "How many transfers did dave get, and how much did they add up to?",
                &format!("SELECT count(*) AS transfers FROM transfers WHERE {dave}"),
                &names,
            )
            .as_deref(),
            Some(
                format!(
                    "SELECT count(*) AS transfers, sum(amount_hib) AS total_hib FROM transfers WHERE {dave}"
                )
                .as_str()
            )
        );
        assert!(asks_count_and_amount(
            "how many payments did bob make and what was their total"
        ));
        assert!(!asks_count_and_amount(
            "How many blocks and transactions are there?"
        ));
        assert!(!asks_count_and_amount(
            "How many transfers did alice send in total?"
        ));
        assert!(
            cue_fit(
                "how many transfers did dave get and how much",
                "SELECT count(*), sum(amount_hib) FROM transfers"
            ) > cue_fit(
                "how many transfers did dave get and how much",
                "SELECT count(*) FROM transfers"
            )
        );
        // `Who …, and how much`: each name with its amount.
        assert_eq!(
            repair(
                "Who unbonded, and how much?",
                "SELECT DISTINCT l.name FROM stakes s JOIN labels l ON l.address = s.delegator WHERE s.kind = 'unbond'",
                &names,
            )
            .as_deref(),
            Some(
                "SELECT l.name, sum(s.amount_hib) AS amount_hib FROM stakes s JOIN labels l ON l.address = s.delegator WHERE s.kind = 'unbond' GROUP BY l.name ORDER BY amount_hib DESC"
            )
        );
        // At what block, and when released: both heights.
        assert_eq!(
            with_height("SELECT release_height FROM stakes WHERE kind = 'unbond'").as_deref(),
            Some("SELECT height, release_height FROM stakes WHERE kind = 'unbond'")
        );
        assert_eq!(
            with_height("SELECT height, release_height FROM stakes"),
            None
        );
        assert!(asks_height_and_release(
            "at what block did bob unbond, and at which height does that stake get released"
        ));
        assert!(!asks_height_and_release(
            "At what block height will the unbonded stake be released?"
        ));
        assert_eq!(with_height("SELECT release_height FROM blocks"), None);
        // `The latest block`: one row, by height.
        assert_eq!(
            asks_one_end("Give me the hash of the latest block."),
            Some(true)
        );
        assert_eq!(
            asks_one_end("what was the most recent transfer"),
            Some(true)
        );
        assert_eq!(asks_one_end("When was the first bond?"), Some(false));
        assert_eq!(asks_one_end("the last 4 transfers"), None);
        assert_eq!(asks_one_end("the first and the last block"), None);
        assert_eq!(
            repair(
                "Give me the hash of the latest block.",
                "SELECT hash FROM blocks",
                &names
            )
            .as_deref(),
            Some("SELECT hash FROM blocks ORDER BY height DESC LIMIT 1")
        );
        assert_eq!(
            one_end(
                "SELECT amount_hib FROM transfers WHERE amount_hib > 1",
                false
            )
            .as_deref(),
            Some(
                "SELECT amount_hib FROM transfers WHERE amount_hib > 1 ORDER BY height ASC, event_index ASC LIMIT 1"
            )
        );
        assert_eq!(one_end("SELECT max(height) FROM blocks", true), None);
        assert_eq!(
            one_end("SELECT hash FROM blocks ORDER BY time DESC", true),
            None
        );
        // `Which account`: its name beside its address.
        assert_eq!(
            named_accounts(
                "SELECT address, balance_hib FROM accounts ORDER BY balance DESC LIMIT 1"
            )
            .as_deref(),
            Some(
                "SELECT l.name, a.address, a.balance_hib FROM accounts a LEFT JOIN (SELECT address, min(name) AS name FROM labels GROUP BY address) l ON l.address = a.address ORDER BY balance DESC LIMIT 1"
            )
        );
        assert_eq!(named_accounts("SELECT balance_hib FROM accounts"), None);
        assert!(asks_who(
            "Which named account currently holds the largest HIB balance?"
        ));
        assert!(!asks_who("Which of the blocks had transactions?"));
    }

    #[test]
    fn shares_groups_and_ranges_over_blocks() {
        // Shares.
        assert!(asks_share(
            "What percentage of all transferred HIB was sent by alice?"
        ));
        assert!(asks_share("alice's % of transfers"));
        assert!(!asks_share("How much did alice send?"));
        let alice = "\"from\" IN (SELECT address FROM labels WHERE name = 'alice')";
        assert_eq!(
            share_of_all(&format!("SELECT sum(amount_hib) AS sent_hib FROM transfers WHERE {alice}")).as_deref(),
            Some(
                format!(
                    "SELECT 100.0 * CAST((SELECT sum(amount_hib) FROM transfers WHERE {alice}) AS DOUBLE) / CAST((SELECT sum(amount_hib) FROM transfers) AS DOUBLE) AS percent"
                )
                .as_str()
            )
        );
        assert_eq!(share_of_all("SELECT sum(amount_hib) FROM transfers"), None);
        assert_eq!(
            share_of_all("SELECT avg(amount_hib) FROM transfers WHERE height > 2"),
            None
        );
        // Each sender.
        assert_eq!(
            grouped_party("For each sender (by name), how many transfers did they make?"),
            Some(Party::Sender)
        );
        assert_eq!(
            grouped_party("total received per recipient"),
            Some(Party::Recipient)
        );
        assert_eq!(grouped_party("how many senders are there"), None);
        assert_eq!(
            per_party(
                "SELECT count(DISTINCT \"from\") AS senders FROM transfers",
                Party::Sender
            )
            .as_deref(),
            Some(
                "SELECT l.name, count(*) AS transfers FROM transfers t JOIN labels l ON l.address = t.\"from\" GROUP BY l.name ORDER BY transfers DESC"
            )
        );
        assert_eq!(
            per_party(
                "SELECT sum(amount_hib) FROM transfers WHERE height > 3",
                Party::Recipient
            )
            .as_deref(),
            Some(
                "SELECT l.name, sum(t.amount_hib) AS total_hib FROM transfers t JOIN labels l ON l.address = t.\"to\" WHERE height > 3 GROUP BY l.name ORDER BY total_hib DESC"
            )
        );
        assert_eq!(
            per_party(
                "SELECT l.name FROM transfers t JOIN labels l ON l.address = t.\"to\"",
                Party::Sender
            ),
            None
        );
        // Groups by name where names are asked for.
        assert!(asks_names(
            "Break down the number of transactions sent per account, using people's names."
        ));
        assert!(!asks_names("How many transactions per block?"));
        assert_eq!(
            named_groups(
                "SELECT sender, count(*) AS txs FROM transactions GROUP BY sender ORDER BY txs DESC"
            )
            .as_deref(),
            Some(
                "SELECT l.name, count(*) AS txs FROM transactions t JOIN (SELECT address, min(name) AS name FROM labels GROUP BY address) l ON l.address = t.sender GROUP BY l.name ORDER BY txs DESC"
            )
        );
        assert_eq!(
            named_groups("SELECT \"to\", sum(amount_hib) AS got FROM transfers WHERE height > 2 GROUP BY \"to\"").as_deref(),
            Some("SELECT l.name, sum(amount_hib) AS got FROM transfers t JOIN (SELECT address, min(name) AS name FROM labels GROUP BY address) l ON l.address = t.\"to\" WHERE height > 2 GROUP BY l.name")
        );
        assert_eq!(
            named_groups("SELECT kind, count(*) FROM stakes GROUP BY kind"),
            None
        );
        assert_eq!(
            named_groups("SELECT count(*) FROM transactions GROUP BY sender"),
            None
        );
        // A range over blocks bounds the height.
        assert_eq!(
            range_on_height(
                "How much HIB was transferred in blocks 10 through 15 inclusive?",
                "SELECT sum(amount_hib) AS large FROM transfers WHERE amount_hib BETWEEN 10 AND 15"
            )
            .as_deref(),
            Some("SELECT sum(amount_hib) AS large FROM transfers WHERE height BETWEEN 10 AND 15")
        );
        assert_eq!(
            range_on_height(
                "transfers between 10 and 15 HIB",
                "SELECT count(*) FROM transfers WHERE amount_hib BETWEEN 10 AND 15"
            ),
            None
        );
        assert_eq!(
            range_on_height(
                "blocks 10 to 15",
                "SELECT count(*) FROM blocks WHERE height BETWEEN 10 AND 15"
            ),
            None
        );
        // `when … give height and time`: both, whatever the alias.
        assert!(asks_when("I need the block height and timestamp"));
        assert!(asks_when("When exactly did bob bond his stake?"));
        assert_eq!(
            when_columns("SELECT min(time) AS last_transfer FROM transfers WHERE height > 2")
                .as_deref(),
            Some("SELECT min(height), min(time) FROM transfers WHERE height > 2")
        );
        assert_eq!(
            named_accounts(
                "SELECT address FROM accounts WHERE address IN (SELECT address FROM labels)"
            ),
            None
        );
    }

    #[test]
    fn who_holds_an_extreme_is_named_and_a_count_reads_the_table_it_counts() {
        let names = people();
        assert_eq!(
            repair(
                "Who sent the smallest transfer?",
                "SELECT min(amount_hib) AS smallest_hib FROM transfers",
                &names
            )
            .as_deref(),
            Some(
                "SELECT l.name, transfers.amount_hib FROM transfers JOIN labels l ON l.address = transfers.\"from\" ORDER BY transfers.amount_hib ASC LIMIT 1"
            )
        );
        assert_eq!(
            who_extreme(
                "who got the biggest transfer",
                "SELECT max(amount_hib) FROM transfers WHERE height > 3"
            )
            .as_deref(),
            Some(
                "SELECT l.name, transfers.amount_hib FROM transfers JOIN labels l ON l.address = transfers.\"to\" WHERE height > 3 ORDER BY transfers.amount_hib DESC LIMIT 1"
            )
        );
        // Other shapes stay.
        assert_eq!(
            who_extreme(
                "who sent the most",
                "SELECT max(n) FROM (SELECT count(*) AS n FROM transfers GROUP BY \"from\")"
            ),
            None
        );
        assert!(asks_who("Which account holds the largest balance?"));
        assert!(!asks_who("Which block was the largest?"));
        assert_eq!(
            counted_table("How many transactions were there between heights 20 and 30?"),
            Some("transactions")
        );
        assert_eq!(counted_table("how much HIB moved"), None);
        assert_eq!(
            counted_table("How many transactions carried a transfer?"),
            None
        );
        assert_eq!(
            counted_table("How many transactions are in block 12?"),
            Some("transactions")
        );
        assert_eq!(
            count_of_table(
                "SELECT count(*) AS blocks FROM blocks WHERE height BETWEEN 20 AND 30",
                "transactions"
            )
            .as_deref(),
            Some(
                "SELECT count(*) AS transactions FROM transactions WHERE height BETWEEN 20 AND 30"
            )
        );
        // A ranking by size orders by the size.
        assert_eq!(
            repair(
                "top 2 recipients by HIB received",
                "SELECT l.name, sum(t.amount_hib) AS received_hib FROM transfers t JOIN labels l ON l.address = t.\"to\" GROUP BY l.name ORDER BY l.name DESC LIMIT 2",
                &names
            )
            .as_deref(),
            Some(
                "SELECT l.name, sum(t.amount_hib) AS received_hib FROM transfers t JOIN labels l ON l.address = t.\"to\" GROUP BY l.name ORDER BY received_hib DESC LIMIT 2"
            )
        );
        assert_eq!(
            order_by_aggregate("SELECT l.name FROM labels l GROUP BY l.name ORDER BY l.name"),
            None
        );
        // A filter on a column of its own (`tx_count`) keeps the table.
        assert_eq!(
            count_of_table(
                "SELECT count(*) FROM blocks WHERE tx_count > 0",
                "transactions"
            ),
            None
        );
    }

    #[test]
    fn the_prompt_names_tables_that_the_examples_read() {
        assert!(mentions_table(
            "SELECT count(*) FROM transfers t JOIN labels l ON l.address = t.\"from\"",
            "labels"
        ));
        assert!(mentions_table(
            "SELECT * FROM (SELECT height FROM blocks) b",
            "blocks"
        ));
        assert!(!mentions_table("SELECT count(*) FROM transfers", "blocks"));
    }
}
