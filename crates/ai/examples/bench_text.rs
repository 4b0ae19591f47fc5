//! Text generation throughput: prompt and decode tokens per second for the catalog's text
//! models, with 1 and 4 concurrent streams. Not a test; run it in release mode:
//!
//! `cargo run --release -p hibana-ai --example bench_text [MAX_TOKENS]`

use std::{
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use hibana_ai::{
    catalog,
    text::{GenerateParams, LoadOptions, TextModel},
};

const PROMPT: &str = "Hibana is a network in which validators re-execute the answers of \
inference providers to check them. Explain, step by step and in detail, how a payment channel \
lets a client pay a provider for each request without a transaction per request, what a voucher \
contains, and how the provider finally redeems it on chain.";

struct Run {
    prompt_tokens: u32,
    completion_tokens: u32,
    first_token: Duration,
    total: Duration,
}

fn one(model: &TextModel, prompt: &str, params: &GenerateParams) -> Run {
    let start = Instant::now();
    let mut first = None;
    let g = model
        .generate(prompt, params, &mut |_| {
            first.get_or_insert_with(|| start.elapsed());
            true
        })
        .unwrap_or_else(|e| panic!("generate: {e}"));
    let total = start.elapsed();
    Run {
        prompt_tokens: g.prompt_tokens,
        completion_tokens: g.completion_tokens,
        first_token: first.unwrap_or(total),
        total,
    }
}

fn main() {
    let max_tokens: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(64);
    let dir = catalog::models_dir();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("threads available: {threads}; max_tokens {max_tokens}; greedy");
    println!(
        "{:<24} {:>7} {:>13} {:>13} {:>15} {:>10}",
        "model", "streams", "prompt tok/s", "decode tok/s", "decode total/s", "wall s"
    );
    for name in ["smollm2-135m-instruct", "gemma3-270m"] {
        let info = catalog::find(&dir, name).unwrap_or_else(|e| panic!("{e}"));
        let model = Arc::new(
            TextModel::load(&info, LoadOptions::default()).unwrap_or_else(|e| panic!("{e}")),
        );
        let prompt = if name.contains("instruct") {
            model
                .apply_chat_template(&[hibana_ai::text::ChatMessage::new("user", PROMPT)])
                .unwrap_or_else(|e| panic!("{e}"))
        } else {
            PROMPT.to_string()
        };
        let params = GenerateParams {
            max_tokens,
            ..GenerateParams::default()
        };
        one(&model, &prompt, &params); // warm-up (page in the weights)
        for streams in [1usize, 4] {
            let start = Instant::now();
            let runs: Vec<Run> = (0..streams)
                .map(|_| {
                    let model = Arc::clone(&model);
                    let prompt = prompt.clone();
                    let params = params.clone();
                    thread::spawn(move || one(&model, &prompt, &params))
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| panic!("bench thread panicked")))
                .collect();
            let wall = start.elapsed().as_secs_f64();
            let prompt_rate: f64 = runs
                .iter()
                .map(|r| f64::from(r.prompt_tokens) / r.first_token.as_secs_f64())
                .sum::<f64>()
                / runs.len() as f64;
            let decode_rate: f64 = runs
                .iter()
                .map(|r| {
                    f64::from(r.completion_tokens.saturating_sub(1))
                        / (r.total - r.first_token).as_secs_f64()
                })
                .sum::<f64>()
                / runs.len() as f64;
            let total_tokens: u32 = runs.iter().map(|r| r.completion_tokens).sum();
            println!(
                "{:<24} {:>7} {:>13.1} {:>13.1} {:>15.1} {:>10.2}",
                name,
                streams,
                prompt_rate,
                decode_rate,
                f64::from(total_tokens) / wall,
                wall
            );
            println!(
                "{:<24}   (prompt {} tokens, completion {:?} tokens)",
                "",
                runs[0].prompt_tokens,
                runs.iter().map(|r| r.completion_tokens).collect::<Vec<_>>()
            );
        }
    }
    println!("prompt tok/s = prompt tokens / time to first token (per stream, averaged);");
    println!("decode tok/s = per stream average; decode total/s = all streams' tokens / wall time");
}
