//! Measures re-checking by teacher forcing against regenerating, across builds and thread counts.
//! Not a test.
//!
//! ```text
//! cargo run -p hibana-ai --example recheck -- generate --threads 2 --out answers.jsonl
//! cargo run --release -p hibana-ai --example recheck -- check --threads 1 answers.jsonl
//! ```
//!
//! `generate` writes honest answers (SmolLM2 chat through its template, Gemma 3 raw completions;
//! greedy, and sampled at temperature 0.7 with a seed) and honest embeddings as JSONL. `check`
//! re-checks each one, regenerates one in `--regenerate-every K` (default 4) for comparison,
//! and re-checks corrupted copies (words replaced, another prompt's answer, truncated but
//! claimed stopped, another model's answer) to measure detection, then prints the table.

use std::{
    io::{BufRead, Write},
    time::Instant,
};

use hibana_ai::{
    catalog,
    embed::Embedder,
    recheck::{
        self, ClaimedPrompt, GREEDY_MARGIN, Rejection, TextClaim, TextRechecker, TextVerdict,
    },
    text::{ChatMessage, FinishReason, GenerateParams, LoadOptions, TextModel},
};
use serde::{Deserialize, Serialize};

const CHAT_MODEL: &str = "smollm2-135m-instruct";
const COMPLETION_MODEL: &str = "gemma3-270m";
const EMBEDDING_MODEL: &str = "all-minilm-l6-v2";

const QUESTIONS: &[&str] = &[
    "What is the capital of France?",
    "Explain photosynthesis in simple terms.",
    "Write a haiku about autumn leaves.",
    "What is 17 times 23?",
    "Give me three tips for better sleep.",
    "Why is the sky blue?",
    "Translate 'good morning' into Spanish and German.",
    "What is a blockchain?",
    "Describe a cat to someone who has never seen one.",
    "List the planets of the solar system.",
    "How do I boil an egg?",
    "What causes earthquakes?",
    "Write a short poem about the sea.",
    "What is the difference between weather and climate?",
    "Name five programming languages.",
    "Summarise the story of Cinderella in two sentences.",
    "What is machine learning?",
    "How many legs does a spider have?",
    "Suggest a name for a pet goldfish.",
    "What is the boiling point of water in Fahrenheit?",
    "Explain what a prime number is.",
    "Write a limerick about a programmer.",
    "What should I pack for a weekend hiking trip?",
    "Who wrote Romeo and Juliet?",
    "What is the largest ocean on Earth?",
    "Give me a recipe for a simple salad.",
    "What is gravity?",
    "How does a rainbow form?",
    "Tell me a fun fact about octopuses.",
    "What is the meaning of the word 'ephemeral'?",
    "Convert 5 kilometres to miles.",
    "Why do leaves change colour in autumn?",
    "What is the role of the heart in the body?",
    "Write a two-line dialogue between a robot and a child.",
    "What are the three states of matter?",
    "How can I improve my handwriting?",
    "Explain the rules of tic-tac-toe.",
    "What is inflation in economics?",
    "Describe the smell of rain.",
    "What is the tallest mountain in the world?",
    "Give me a motivational quote and explain it.",
    "What is an API?",
    "How do bees make honey?",
    "List four musical instruments and how they make sound.",
    "What is the speed of light?",
    "Write a tweet announcing a new coffee shop.",
    "What is a verb? Give examples.",
    "Why do we have seasons?",
    "What does DNA stand for?",
    "Plan a three-item breakfast menu.",
    "What is the Pythagorean theorem?",
    "Tell me about the Great Wall of China.",
    "How do vaccines work?",
    "What is recursion in programming?",
    "Describe your ideal weekend.",
    "What is the chemical symbol for gold?",
    "Give two arguments for reading books.",
    "Explain what a payment channel is.",
    "What is the freezing point of water?",
    "Write a thank-you note to a teacher.",
];

const COMPLETIONS: &[&str] = &[
    "The history of the bicycle begins",
    "Once upon a time, in a small village by the river,",
    "The three most important rules of cooking are",
    "def fibonacci(n):\n",
    "In 1969, the first humans",
    "The recipe calls for two cups of flour,",
    "Dear hiring manager,\n\nI am writing to",
    "The mitochondria is",
    "Photosynthesis is the process by which",
    "The capital of Japan is",
    "To install the package, run",
    "Water boils at",
    "The quick brown fox",
    "A good night's sleep",
    "The stock market fell sharply today after",
    "Shakespeare's most famous play",
    "SELECT name, email FROM users WHERE",
    "The weather forecast for tomorrow",
    "In mathematics, a prime number",
    "The cat sat on the",
    "Climate change is",
    "My favourite book is",
    "The theory of relativity states that",
    "Step 1: Preheat the oven to",
    "The Amazon rainforest",
    "Bitcoin was created in",
    "The human brain contains",
    "import numpy as np\n",
    "The Eiffel Tower was built",
    "Q: What is the largest planet?\nA:",
    "The best way to learn a language is",
    "Honey bees communicate by",
    "The French Revolution began in",
    "A haiku is a short poem that",
    "Rust is a programming language that",
    "The Moon orbits the Earth every",
    "Elephants are known for",
    "The first rule of investing is",
    "Volcanoes erupt when",
    "The library opens at",
];

const REPLACEMENTS: &[&str] = &[
    "banana",
    "purple",
    "seventeen",
    "quickly",
    "mountain",
    "never",
    "electric",
    "ocean",
    "yesterday",
    "triangle",
];

const SENTENCES: &[&str] = &[
    "A validator re-checks the provider's answer.",
    "The cat sleeps on the warm windowsill.",
    "Payment channels let clients pay per request.",
    "It is raining heavily in the mountains today.",
    "The stock market closed higher on Friday.",
    "Bees collect nectar to make honey.",
    "Rust programs are memory safe without a garbage collector.",
    "She plays the violin every evening.",
    "The train to Tokyo leaves at noon.",
    "Photosynthesis turns light into chemical energy.",
    "A validator checks the answers of providers again.",
    "Quantum computers use qubits.",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Record {
    Text(Answer),
    Embedding(EmbeddingAnswer),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Answer {
    id: usize,
    model: String,
    chat: bool,
    /// The question (chat) or the raw prompt (completion) as the client sent it.
    question: String,
    /// The prompt text the model read (after the chat template).
    prompt: String,
    completion: String,
    finish_reason: FinishReason,
    params: GenerateParams,
    token_ids: Vec<i32>,
    completion_tokens: u32,
    generate_ms: f64,
    build: String,
    threads: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct EmbeddingAnswer {
    text: String,
    vector: Vec<f32>,
}

fn build() -> &'static str {
    if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut threads = 1u32;
    let mut out = None;
    let mut file = None;
    let mut limit = usize::MAX;
    let mut every = 4usize;
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--threads" => {
                threads = args.get(i + 1).ok_or("--threads N")?.parse()?;
                i += 1;
            }
            "--out" => {
                out = Some(args.get(i + 1).ok_or("--out FILE")?.clone());
                i += 1;
            }
            "--regenerate-every" => {
                every = args.get(i + 1).ok_or("--regenerate-every K")?.parse()?;
                every = every.max(1);
                i += 1;
            }
            "--limit" => {
                limit = args.get(i + 1).ok_or("--limit N")?.parse()?;
                i += 1;
            }
            other => file = Some(other.to_string()),
        }
        i += 1;
    }
    match args.first().map(String::as_str) {
        Some("generate") => generate(threads, &out.ok_or("generate needs --out FILE")?),
        Some("check") => check(threads, &file.ok_or("check needs FILE")?, limit, every),
        _ => Err(
            "usage: recheck generate --threads N --out FILE | check --threads M \
                  [--regenerate-every K] [--limit N] FILE"
                .into(),
        ),
    }
}

fn load(name: &str, threads: u32) -> Result<TextModel> {
    let info = catalog::find(&catalog::models_dir(), name)?;
    Ok(TextModel::load(
        &info,
        LoadOptions {
            n_ctx: 2048,
            threads,
            parallel: 1,
        },
    )?)
}

fn chat_prompt(model: &TextModel, question: &str, system: bool) -> Result<String> {
    let mut messages = Vec::new();
    if system {
        messages.push(ChatMessage::new("system", "You are a helpful assistant."));
    }
    messages.push(ChatMessage::new("user", question));
    Ok(model.apply_chat_template(&messages)?)
}

/// The requests `generate` answers: (chat, question, params).
fn requests() -> Vec<(bool, String, bool, GenerateParams)> {
    let mut out = Vec::new();
    let greedy = |max_tokens: u32, stop: Vec<String>| GenerateParams {
        max_tokens,
        stop,
        ..GenerateParams::default()
    };
    for (i, q) in QUESTIONS.iter().enumerate() {
        let stop = match i % 7 {
            3 => vec!["\n\n".to_string()],
            5 => vec![".".to_string()],
            _ => Vec::new(),
        };
        out.push((
            true,
            q.to_string(),
            i.is_multiple_of(2),
            greedy([16, 40, 96][i % 3], stop),
        ));
        out.push((
            true,
            q.to_string(),
            i % 2 == 1,
            greedy([32, 64, 128][i % 3], Vec::new()),
        ));
    }
    for (i, p) in COMPLETIONS.iter().enumerate() {
        let stop = if i % 6 == 2 {
            vec!["\n".to_string()]
        } else {
            Vec::new()
        };
        out.push((
            false,
            p.to_string(),
            false,
            greedy([24, 48, 72][i % 3], stop),
        ));
        out.push((false, p.to_string(), false, greedy(40, Vec::new())));
    }
    // Sampled at 0.7 with a seed; half of them with nucleus sampling.
    for i in 0..30 {
        let q = QUESTIONS[(i * 7 + 3) % QUESTIONS.len()];
        out.push((
            true,
            q.to_string(),
            i.is_multiple_of(2),
            sampled(i, [32, 64, 96][i % 3]),
        ));
    }
    for i in 0..20 {
        let p = COMPLETIONS[(i * 3 + 1) % COMPLETIONS.len()];
        out.push((
            false,
            p.to_string(),
            false,
            sampled(i + 100, [32, 48][i % 2]),
        ));
    }
    out
}

fn sampled(i: usize, max_tokens: u32) -> GenerateParams {
    GenerateParams {
        max_tokens,
        temperature: 0.7,
        top_p: if i.is_multiple_of(2) { 1.0 } else { 0.95 },
        seed: 1000 + i as u64,
        stop: Vec::new(),
    }
}

fn generate(threads: u32, out: &str) -> Result<()> {
    let chat = load(CHAT_MODEL, threads)?;
    let completion = load(COMPLETION_MODEL, threads)?;
    // An interrupted run resumes after the answers it wrote.
    let done = match std::fs::read_to_string(out) {
        Ok(text) => text
            .lines()
            .take_while(|l| matches!(serde_json::from_str(l), Ok(Record::Text(_))))
            .count(),
        Err(_) => 0,
    };
    let kept: String = std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .take(done)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(out, kept)?;
    let mut file = std::io::BufWriter::new(std::fs::OpenOptions::new().append(true).open(out)?);
    let started = Instant::now();
    let requests = requests();
    for (id, (is_chat, question, system, params)) in requests.iter().enumerate().skip(done) {
        let model = if *is_chat { &chat } else { &completion };
        let prompt = if *is_chat {
            chat_prompt(model, question, *system)?
        } else {
            question.clone()
        };
        let t = Instant::now();
        let (generation, token_ids) = model.generate_with_tokens(&prompt, params, &mut |_| true)?;
        let record = Record::Text(Answer {
            id,
            model: model.name().to_string(),
            chat: *is_chat,
            question: question.clone(),
            prompt,
            completion: generation.text,
            finish_reason: generation.finish_reason,
            params: params.clone(),
            token_ids,
            completion_tokens: generation.completion_tokens,
            generate_ms: t.elapsed().as_secs_f64() * 1e3,
            build: build().into(),
            threads,
        });
        writeln!(file, "{}", serde_json::to_string(&record)?)?;
        file.flush()?;
        if id % 25 == 0 {
            eprintln!(
                "{id}/{} answers, {:.0} s",
                requests.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    let embedder = Embedder::load(&catalog::find(&catalog::models_dir(), EMBEDDING_MODEL)?)?;
    let texts: Vec<String> = SENTENCES.iter().map(|s| s.to_string()).collect();
    let (vectors, _) = embedder.embed(&texts)?;
    for (text, vector) in texts.into_iter().zip(vectors) {
        let record = Record::Embedding(EmbeddingAnswer { text, vector });
        writeln!(file, "{}", serde_json::to_string(&record)?)?;
    }
    file.flush()?;
    eprintln!(
        "wrote {} answers and {} embeddings to {out} ({} build, {threads} threads) in {:.0} s",
        requests.len(),
        SENTENCES.len(),
        build(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Figures for one group of answers (greedy or sampled).
#[derive(Default)]
struct Tally {
    answers: usize,
    false_rejections: Vec<String>,
    worst_gap: f32,
    worst_ratio: f64,
    retokenization_differs: usize,
    alternative_path: usize,
    extra_passes: u32,
    regenerated: usize,
    regenerated_identical: usize,
    recheck_ms: Vec<f64>,
    /// Re-check times of the answers also regenerated, in the order of `regenerate_ms`.
    paired_recheck_ms: Vec<f64>,
    regenerate_ms: Vec<f64>,
    tokens: u64,
    caught: [(usize, usize); 4],
    /// Worst gap of each honest answer.
    honest_gaps: Vec<f32>,
    /// What would have caught each corrupted claim: its worst gap (infinite when a rule other
    /// than the margin did), to show detection at other margins.
    corrupt_gaps: Vec<f32>,
    /// Surprisal peak / threshold of honest and corrupted sampled claims.
    honest_ratios: Vec<f64>,
    corrupt_ratios: Vec<f64>,
}

impl Tally {
    fn corrupted(&mut self, kind: usize, verdict: &TextVerdict) {
        self.caught[kind].1 += 1;
        if !verdict.accepted {
            self.caught[kind].0 += 1;
        }
        let gap = match verdict.rejection {
            Some(Rejection::TooManyTokens { .. }) | Some(Rejection::ContainsStopSequence) => {
                f32::INFINITY
            }
            _ => verdict.worst.as_ref().map_or(0.0, |w| w.gap),
        };
        self.corrupt_gaps.push(gap);
        if let Some((peak, threshold)) = verdict.surprisal_peak {
            self.corrupt_ratios.push(peak / threshold);
        }
    }
}

const CORRUPTIONS: [&str; 4] = [
    "3 words replaced",
    "answer to another prompt",
    "truncated, claimed stop",
    "other model's answer",
];

/// Re-checks every answer in `path`; one answer in `every` is also regenerated (timed against its
/// re-check), and another one in `every` is answered by the other model to be claimed as this
/// model's (generations are what makes the run long).
fn check(threads: u32, path: &str, limit: usize, every: usize) -> Result<()> {
    let reader = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut answers = Vec::new();
    let mut embeddings = Vec::new();
    for line in reader.lines() {
        match serde_json::from_str::<Record>(&line?)? {
            Record::Text(a) => answers.push(a),
            Record::Embedding(e) => embeddings.push(e),
        }
    }
    answers.truncate(limit);
    let generated_by = answers
        .first()
        .map(|a| format!("{} build, {} threads", a.build, a.threads))
        .unwrap_or_default();
    let chat = load(CHAT_MODEL, threads)?;
    let completion = load(COMPLETION_MODEL, threads)?;
    let mut chat_checker = TextRechecker::new(&chat);
    let mut completion_checker = TextRechecker::new(&completion);
    // Build each re-checker's vocabulary index and context outside the timings.
    let setup = Instant::now();
    for (checker, prompt) in [(&mut chat_checker, "Hi"), (&mut completion_checker, "Hi")] {
        checker.check(&claim(
            ClaimedPrompt::Text(prompt),
            " there",
            FinishReason::Length,
            &GenerateParams::default(),
        ))?;
    }
    let setup_ms = setup.elapsed().as_secs_f64() * 1e3;

    let mut greedy = Tally::default();
    let mut sampled = Tally::default();
    let started = Instant::now();
    for (n, a) in answers.iter().enumerate() {
        let (model, checker, other_model) = if a.chat {
            (&chat, &mut chat_checker, &completion)
        } else {
            (&completion, &mut completion_checker, &chat)
        };
        let tally = if a.params.temperature == 0.0 {
            &mut greedy
        } else {
            &mut sampled
        };
        tally.answers += 1;
        if n % 25 == 0 {
            eprintln!(
                "{n}/{} checked, {:.0} s",
                answers.len(),
                started.elapsed().as_secs_f64()
            );
        }
        let honest = claim(
            ClaimedPrompt::Text(&a.prompt),
            &a.completion,
            a.finish_reason,
            &a.params,
        );
        let t = Instant::now();
        let verdict = checker.check(&honest)?;
        let recheck_ms = t.elapsed().as_secs_f64() * 1e3;
        tally.recheck_ms.push(recheck_ms);
        tally.tokens += u64::from(verdict.tokens_checked);
        if !verdict.accepted {
            tally.false_rejections.push(format!(
                "#{} {:?}: {}",
                a.id,
                a.completion,
                describe(&verdict)
            ));
        }
        if let Some(w) = &verdict.worst {
            tally.worst_gap = tally.worst_gap.max(w.gap);
            tally.honest_gaps.push(w.gap);
        }
        if let Some((peak, threshold)) = verdict.surprisal_peak {
            tally.worst_ratio = tally.worst_ratio.max(peak / threshold);
            tally.honest_ratios.push(peak / threshold);
        }
        // Does the text re-tokenize into the ids the model generated?
        let generated: Vec<u8> = a
            .token_ids
            .iter()
            .flat_map(|&t| model.token_piece(t))
            .collect();
        let canonical = model.tokenize_output(&a.completion);
        let exact = generated == a.completion.as_bytes() && canonical == a.token_ids;
        if !exact {
            tally.retokenization_differs += 1;
        }
        if verdict.retokenized {
            tally.alternative_path += 1;
        }
        tally.extra_passes += verdict.forward_passes.saturating_sub(1);

        if n.is_multiple_of(every) {
            let t = Instant::now();
            let again = model.generate(&a.prompt, &a.params, &mut |_| true)?;
            tally.regenerate_ms.push(t.elapsed().as_secs_f64() * 1e3);
            tally.paired_recheck_ms.push(recheck_ms);
            tally.regenerated += 1;
            if again.text == a.completion && again.finish_reason == a.finish_reason {
                tally.regenerated_identical += 1;
            }
        }

        // Corrupted claims.
        let words = a.completion.split_whitespace().count();
        if words >= 4 {
            let changed = replace_words(&a.completion, n);
            let v = checker.check(&claim(
                ClaimedPrompt::Text(&a.prompt),
                &changed,
                a.finish_reason,
                &a.params,
            ))?;
            tally.corrupted(0, &v);
            let cut = truncate_half(&a.completion);
            let v = checker.check(&claim(
                ClaimedPrompt::Text(&a.prompt),
                cut,
                FinishReason::Stop,
                &a.params,
            ))?;
            tally.corrupted(2, &v);
        }
        // Another answer of the same model and mode, to a different question.
        if let Some(other) = answers
            .iter()
            .cycle()
            .skip(n + 1)
            .take(answers.len())
            .find(|b| {
                b.chat == a.chat
                    && (b.params.temperature == 0.0) == (a.params.temperature == 0.0)
                    && b.question != a.question
                    && !b.completion.trim().is_empty()
            })
        {
            let params = GenerateParams {
                max_tokens: a.params.max_tokens.max(other.params.max_tokens),
                stop: Vec::new(),
                ..a.params.clone()
            };
            let v = checker.check(&claim(
                ClaimedPrompt::Text(&a.prompt),
                &other.completion,
                other.finish_reason,
                &params,
            ))?;
            tally.corrupted(1, &v);
        }
        // The other model's answer to the very same prompt text.
        if n % every != every / 2 {
            continue;
        }
        let impostor = other_model.generate(&a.prompt, &a.params, &mut |_| true)?;
        if impostor.text != a.completion && !impostor.text.trim().is_empty() {
            let v = checker.check(&claim(
                ClaimedPrompt::Text(&a.prompt),
                &impostor.text,
                impostor.finish_reason,
                &a.params,
            ))?;
            tally.corrupted(3, &v);
        }
    }

    // Embeddings: the honest vector, and the vector of another sentence.
    let embedder = Embedder::load(&catalog::find(&catalog::models_dir(), EMBEDDING_MODEL)?)?;
    let texts: Vec<String> = embeddings.iter().map(|e| e.text.clone()).collect();
    let claimed: Vec<Vec<f32>> = embeddings.iter().map(|e| e.vector.clone()).collect();
    let honest = recheck::check_embeddings(&embedder, &texts, &claimed)?;
    let shifted: Vec<Vec<f32>> = claimed
        .iter()
        .cycle()
        .skip(1)
        .take(claimed.len())
        .cloned()
        .collect();
    let swapped = recheck::check_embeddings(&embedder, &texts, &shifted)?;

    println!();
    println!(
        "generated by: {generated_by}; checked by: {} build, {threads} threads",
        build()
    );
    println!("re-checker setup (vocabulary index, context) for both models: {setup_ms:.0} ms");
    println!(
        "{:<40} {:>22} {:>22}",
        "", "greedy (T=0)", "sampled (T=0.7)"
    );
    let row = |label: &str, g: String, s: String| println!("{label:<40} {g:>22} {s:>22}");
    row(
        "answers",
        greedy.answers.to_string(),
        sampled.answers.to_string(),
    );
    row(
        "false rejections (must be 0)",
        greedy.false_rejections.len().to_string(),
        sampled.false_rejections.len().to_string(),
    );
    row(
        "largest gap of an honest token (logits)",
        format!("{:.4} / margin {GREEDY_MARGIN}", greedy.worst_gap),
        format!("{:.4}", sampled.worst_gap),
    );
    row(
        "largest surprisal run / threshold",
        "-".into(),
        format!("{:.3}", sampled.worst_ratio),
    );
    row(
        "text re-tokenizes differently",
        greedy.retokenization_differs.to_string(),
        sampled.retokenization_differs.to_string(),
    );
    row(
        "accepted on a non-canonical path",
        greedy.alternative_path.to_string(),
        sampled.alternative_path.to_string(),
    );
    row(
        "extra forward passes (all answers)",
        greedy.extra_passes.to_string(),
        sampled.extra_passes.to_string(),
    );
    row(
        "regeneration identical to the claim",
        format!("{}/{}", greedy.regenerated_identical, greedy.regenerated),
        format!("{}/{}", sampled.regenerated_identical, sampled.regenerated),
    );
    row(
        "re-check ms/answer (mean, max)",
        mean_max(&greedy.recheck_ms),
        mean_max(&sampled.recheck_ms),
    );
    row(
        "same answers: re-check ms (mean, max)",
        mean_max(&greedy.paired_recheck_ms),
        mean_max(&sampled.paired_recheck_ms),
    );
    row(
        "same answers: regenerate ms (mean, max)",
        mean_max(&greedy.regenerate_ms),
        mean_max(&sampled.regenerate_ms),
    );
    row(
        "re-check time / regenerate time",
        ratio(&greedy.paired_recheck_ms, &greedy.regenerate_ms),
        ratio(&sampled.paired_recheck_ms, &sampled.regenerate_ms),
    );
    row(
        "positions checked per answer (mean)",
        format!("{:.1}", greedy.tokens as f64 / greedy.answers.max(1) as f64),
        format!(
            "{:.1}",
            sampled.tokens as f64 / sampled.answers.max(1) as f64
        ),
    );
    for (i, name) in CORRUPTIONS.iter().enumerate() {
        row(
            &format!("caught: {name}"),
            share(greedy.caught[i]),
            share(sampled.caught[i]),
        );
    }
    row(
        "honest worst gap p50 / p99 / max",
        quantiles(&greedy.honest_gaps),
        quantiles(&sampled.honest_gaps),
    );
    for margin in [0.5f32, 1.0, 2.0, 4.0] {
        row(
            &format!("corrupted caught if the margin were {margin}"),
            above(&greedy.corrupt_gaps, margin),
            "-".into(),
        );
    }
    row(
        "surprisal run / threshold p50 / p99 / max",
        "-".into(),
        format!("honest {}", quantiles_f64(&sampled.honest_ratios)),
    );
    row(
        "",
        "-".into(),
        format!("corrupted {}", quantiles_f64(&sampled.corrupt_ratios)),
    );
    let min_honest = honest
        .iter()
        .map(|v| v.cosine)
        .fold(f32::INFINITY, f32::min);
    let max_swapped = swapped
        .iter()
        .map(|v| v.cosine)
        .fold(f32::NEG_INFINITY, f32::max);
    println!(
        "embeddings: {} honest, lowest cosine {min_honest:.7}, accepted {}; another sentence's \
         vector: highest cosine {max_swapped:.4}, rejected {}/{} (threshold {})",
        honest.len(),
        honest.iter().filter(|v| v.accepted).count(),
        swapped.iter().filter(|v| !v.accepted).count(),
        swapped.len(),
        recheck::EMBEDDING_MIN_COSINE
    );
    for rejection in greedy
        .false_rejections
        .iter()
        .chain(&sampled.false_rejections)
    {
        println!("FALSE REJECTION {rejection}");
    }
    Ok(())
}

fn claim<'a>(
    prompt: ClaimedPrompt<'a>,
    completion: &'a str,
    finish: FinishReason,
    params: &'a GenerateParams,
) -> TextClaim<'a> {
    TextClaim {
        prompt,
        completion,
        finish,
        stop: &params.stop,
        temperature: params.temperature,
        max_tokens: params.max_tokens,
    }
}

fn describe(v: &TextVerdict) -> String {
    format!(
        "{:?}, worst {:?}, rejected at {:?}",
        v.rejection,
        v.worst,
        v.rejected
            .iter()
            .map(|g| (g.index, g.gap))
            .collect::<Vec<_>>()
    )
}

/// Replaces three words (at a quarter, half and three quarters of the text) with unrelated ones.
fn replace_words(text: &str, seed: usize) -> String {
    let words: Vec<(usize, &str)> = text
        .split_whitespace()
        .map(|w| (w.as_ptr() as usize - text.as_ptr() as usize, w))
        .collect();
    let picks = [words.len() / 4, words.len() / 2, words.len() * 3 / 4];
    let mut out = String::new();
    let mut at = 0;
    for (k, &i) in picks.iter().enumerate() {
        let (start, word) = words[i];
        if start < at {
            continue;
        }
        let mut replacement = REPLACEMENTS[(seed + k) % REPLACEMENTS.len()];
        if replacement == word {
            replacement = REPLACEMENTS[(seed + k + 1) % REPLACEMENTS.len()];
        }
        out.push_str(&text[at..start]);
        out.push_str(replacement);
        at = start + word.len();
    }
    out.push_str(&text[at..]);
    out
}

/// The text cut at the word boundary nearest its middle.
fn truncate_half(text: &str) -> &str {
    let middle = text.len() / 2;
    let cut = text
        .char_indices()
        .filter(|(_, c)| c.is_whitespace())
        .map(|(i, _)| i)
        .min_by_key(|&i| i.abs_diff(middle))
        .unwrap_or(middle);
    text[..cut].trim_end()
}

fn quantiles(values: &[f32]) -> String {
    quantiles_f64(&values.iter().map(|&v| f64::from(v)).collect::<Vec<_>>())
}

fn quantiles_f64(values: &[f64]) -> String {
    if values.is_empty() {
        return "-".into();
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    format!("{:.2} / {:.2} / {:.2}", at(0.5), at(0.99), at(1.0))
}

/// Share of corrupted claims whose worst gap exceeds `margin`.
fn above(gaps: &[f32], margin: f32) -> String {
    share((gaps.iter().filter(|&&g| g > margin).count(), gaps.len()))
}

fn mean_max(values: &[f64]) -> String {
    if values.is_empty() {
        return "-".into();
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let max = values.iter().copied().fold(0.0, f64::max);
    format!("{mean:.1}, {max:.1}")
}

fn ratio(a: &[f64], b: &[f64]) -> String {
    let (sa, sb) = (a.iter().sum::<f64>(), b.iter().sum::<f64>());
    if sb == 0.0 {
        "-".into()
    } else {
        format!("{:.3}", sa / sb)
    }
}

fn share((caught, total): (usize, usize)) -> String {
    if total == 0 {
        return "-".into();
    }
    format!(
        "{caught}/{total} ({:.0}%)",
        100.0 * caught as f64 / total as f64
    )
}
