//! Text generation through the public API, on the real SmolLM2 and Gemma 3 models.

mod common;

use std::{sync::Arc, thread};

use hibana_ai::{
    AiError,
    text::{ChatMessage, FinishReason, GenerateParams, Generation, LoadOptions, TextModel},
};

fn greedy(max_tokens: u32) -> GenerateParams {
    GenerateParams {
        max_tokens,
        ..GenerateParams::default()
    }
}

fn chat_prompt(model: &TextModel, question: &str) -> String {
    model
        .apply_chat_template(&[
            ChatMessage::new("system", "You are a helpful assistant."),
            ChatMessage::new("user", question),
        ])
        .expect("template")
}

#[test]
fn smollm2_uses_chatml_and_parses_special_tokens() {
    let model = common::smollm2();
    let prompt = chat_prompt(&model, "Hi");
    assert_eq!(
        prompt,
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    // `<|im_start|>` is one special token, not a run of characters.
    let ids = model.tokenize("<|im_start|>user");
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(
        model.count_tokens(&prompt).expect("count"),
        model.tokenize(&prompt).len() as u32
    );
    assert!(model.count_tokens("Hello world").expect("count") >= 2);
}

#[test]
fn greedy_decoding_is_deterministic_across_calls_and_loads() {
    let model = common::smollm2();
    let prompt = chat_prompt(&model, "Name three colours.");
    let params = greedy(24);
    let a = model.generate(&prompt, &params, &mut |_| true).expect("a");
    let b = model.generate(&prompt, &params, &mut |_| true).expect("b");
    assert_eq!(a, b);
    assert!(!a.text.is_empty());
    assert_eq!(a.prompt_tokens, model.count_tokens(&prompt).expect("count"));

    // A second, separately loaded copy with a different thread count gives the same tokens.
    let other = TextModel::load(
        &common::model("smollm2-135m-instruct"),
        LoadOptions {
            n_ctx: 512,
            threads: 1,
            parallel: 1,
        },
    )
    .expect("load");
    let c = other.generate(&prompt, &params, &mut |_| true).expect("c");
    assert_eq!(a, c);
}

#[test]
fn seeded_sampling_repeats_with_the_same_seed() {
    let model = common::smollm2();
    let prompt = chat_prompt(&model, "Write a word.");
    let params = GenerateParams {
        max_tokens: 12,
        temperature: 1.2,
        top_p: 0.95,
        seed: 7,
        stop: Vec::new(),
    };
    let a = model.generate(&prompt, &params, &mut |_| true).expect("a");
    let b = model.generate(&prompt, &params, &mut |_| true).expect("b");
    assert_eq!(a, b);
}

#[test]
fn max_tokens_ends_with_length_and_streaming_concatenates_to_the_text() {
    let model = common::smollm2();
    let prompt = chat_prompt(&model, "Tell me a long story about a dragon.");
    let mut pieces = Vec::new();
    let g = model
        .generate(&prompt, &greedy(8), &mut |p| {
            pieces.push(p.to_string());
            true
        })
        .expect("generate");
    assert_eq!(g.finish_reason, FinishReason::Length);
    assert_eq!(g.completion_tokens, 8);
    assert!(pieces.len() > 1, "{pieces:?}");
    assert_eq!(pieces.concat(), g.text);
}

#[test]
fn stop_sequence_is_cut_from_the_text() {
    let model = common::smollm2();
    let prompt = chat_prompt(&model, "Tell me a long story about a dragon.");
    let full = model
        .generate(&prompt, &greedy(16), &mut |_| true)
        .expect("full");
    // Stop at the second word of what greedy decoding produces anyway.
    let words: Vec<&str> = full.text.split_whitespace().collect();
    assert!(words.len() >= 3, "{full:?}");
    let stop = format!(" {}", words[1]);
    let at = full.text.find(&stop).expect("stop in text");
    let params = GenerateParams {
        stop: vec!["never-produced-xyz".into(), stop.clone()],
        ..greedy(16)
    };
    let mut streamed = String::new();
    let g = model
        .generate(&prompt, &params, &mut |p| {
            streamed.push_str(p);
            true
        })
        .expect("generate");
    assert_eq!(g.finish_reason, FinishReason::Stop);
    assert_eq!(g.text, full.text[..at]);
    assert_eq!(streamed, g.text);
    assert!(g.completion_tokens < full.completion_tokens);
}

#[test]
fn caller_can_stop_the_stream() {
    let model = common::smollm2();
    let prompt = chat_prompt(&model, "Count to twenty.");
    let mut calls = 0;
    let g = model
        .generate(&prompt, &greedy(32), &mut |_| {
            calls += 1;
            calls < 2
        })
        .expect("generate");
    assert_eq!(calls, 2);
    assert_eq!(g.finish_reason, FinishReason::Stop);
    assert!(g.completion_tokens < 32);
}

#[test]
fn bad_requests_are_rejected_with_a_reason() {
    let model = common::smollm2();
    let long = "word ".repeat(2000);
    match model.generate(&long, &greedy(4), &mut |_| true) {
        Err(AiError::PromptTooLong {
            prompt_tokens,
            context_length,
        }) => {
            assert_eq!(context_length, 512);
            assert!(prompt_tokens >= 512);
        }
        other => panic!("expected PromptTooLong, got {other:?}"),
    }
    assert!(matches!(
        model.generate("hi", &greedy(0), &mut |_| true),
        Err(AiError::InvalidRequest(_))
    ));
    let bad_top_p = GenerateParams {
        temperature: 0.5,
        top_p: 0.0,
        ..greedy(4)
    };
    assert!(matches!(
        model.generate("hi", &bad_top_p, &mut |_| true),
        Err(AiError::InvalidRequest(_))
    ));
}

#[test]
fn concurrent_generations_match_sequential_ones() {
    let model = common::smollm2();
    let questions = [
        "What is Rust?",
        "Name a fruit.",
        "What is 2+2?",
        "Say hello.",
        "Write a haiku about the sea.",
        "List three colours.",
        "Why is the sky blue?",
        "Translate 'thank you' into French.",
    ];
    let prompts: Vec<String> = questions.iter().map(|q| chat_prompt(&model, q)).collect();
    // Eight streams of different lengths share the decoding batches, prompts included.
    let params = greedy(32);
    let sequential: Vec<_> = prompts
        .iter()
        .map(|p| model.generate(p, &params, &mut |_| true).expect("seq"))
        .collect();
    let handles: Vec<_> = prompts
        .iter()
        .cloned()
        .map(|p| {
            let model = Arc::clone(&model);
            let params = params.clone();
            thread::spawn(move || model.generate(&p, &params, &mut |_| true).expect("par"))
        })
        .collect();
    let parallel: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("join"))
        .collect();
    assert_eq!(sequential, parallel);
}

#[test]
fn gemma_completes_text_and_has_its_own_tokenizer() {
    let info = common::model("gemma3-270m");
    let model = TextModel::load(
        &info,
        LoadOptions {
            n_ctx: 256,
            ..LoadOptions::default()
        },
    )
    .expect("load gemma");
    let prompt = "The capital of France is";
    let a = model
        .generate(prompt, &greedy(6), &mut |_| true)
        .expect("a");
    let b = model
        .generate(prompt, &greedy(6), &mut |_| true)
        .expect("b");
    assert_eq!(a, b);
    assert!(a.completion_tokens > 0);
    assert!(!a.text.trim().is_empty(), "{a:?}");
    // Five words plus the <bos> Gemma's tokenizer adds.
    assert_eq!(a.prompt_tokens, 6, "{a:?}");
    assert_eq!(a.prompt_tokens, model.count_tokens(prompt).expect("count"));
    // The base model has no chat template.
    assert!(
        model
            .apply_chat_template(&[ChatMessage::new("user", "hi")])
            .is_err()
    );
}

/// A model of its own for one test, with `parallel` KV streams of `n_ctx` tokens.
fn load(name: &str, n_ctx: u32, parallel: u32) -> TextModel {
    let options = LoadOptions {
        n_ctx,
        parallel,
        ..LoadOptions::default()
    };
    TextModel::load(&common::model(name), options).expect("load")
}

/// The same generation on a freshly loaded model, whose streams hold no cached prefix.
fn fresh_generation(name: &str, n_ctx: u32, prompt: &str, max_tokens: u32) -> Generation {
    let model = load(name, n_ctx, 1);
    let g = model
        .generate(prompt, &greedy(max_tokens), &mut |_| true)
        .expect("fresh");
    assert_eq!(model.reused_prompt_tokens(), 0);
    g
}

#[test]
fn a_cached_prompt_prefix_is_not_read_again_and_changes_no_token() {
    let name = "smollm2-135m-instruct";
    let model = load(name, 512, 2);
    let system = ChatMessage::new("system", "You are a helpful assistant. Answer briefly.");
    let first_turn = [system.clone(), ChatMessage::new("user", "Name a fruit.")];
    let first = model.apply_chat_template(&first_turn).expect("template");
    let a = model
        .generate(&first, &greedy(12), &mut |_| true)
        .expect("a");
    assert_eq!(model.reused_prompt_tokens(), 0, "nothing is cached yet");

    // The same prompt again: all but its last token come from the cache.
    let again = model
        .generate(&first, &greedy(12), &mut |_| true)
        .expect("again");
    assert_eq!(again, a);
    assert_eq!(model.reused_prompt_tokens(), u64::from(a.prompt_tokens) - 1);

    // The next turn of the chat starts with the first prompt and its answer.
    let mut second_turn = first_turn.to_vec();
    second_turn.push(ChatMessage::new("assistant", a.text.clone()));
    second_turn.push(ChatMessage::new("user", "And a vegetable?"));
    let second = model.apply_chat_template(&second_turn).expect("template");
    let before = model.reused_prompt_tokens();
    let b = model
        .generate(&second, &greedy(12), &mut |_| true)
        .expect("b");
    assert!(
        model.reused_prompt_tokens() - before >= u64::from(a.prompt_tokens),
        "the first turn is reused: {} of {} prompt tokens",
        model.reused_prompt_tokens() - before,
        b.prompt_tokens
    );
    assert_eq!(b, fresh_generation(name, 512, &second, 12));

    // Another question under the same system prompt shares only that prefix.
    let other = model
        .apply_chat_template(&[system, ChatMessage::new("user", "What is 2+2?")])
        .expect("template");
    let c = model
        .generate(&other, &greedy(12), &mut |_| true)
        .expect("c");
    assert_eq!(c, fresh_generation(name, 512, &other, 12));
}

#[test]
fn a_sliding_window_model_reuses_a_prefix_longer_than_its_window_exactly() {
    // Gemma 3 attends over a 512-token window in most layers. llama.cpp keeps the whole window
    // cache by default, so a stream never evicts its start and a 600-token prefix is reusable;
    // the continuation must match a fresh model's, window edges included.
    let name = "gemma3-270m";
    let model = load(name, 1024, 1);
    let long: String = (0..80)
        .map(|i| format!("Line {i} of the ledger. "))
        .collect();
    let first = format!("{long}The total is");
    let second = format!("{long}The sum of all lines is");
    let n_first = model.count_tokens(&first).expect("count");
    assert!(n_first > 600, "{n_first}");
    model
        .generate(&first, &greedy(2), &mut |_| true)
        .expect("first");
    let b = model
        .generate(&second, &greedy(4), &mut |_| true)
        .expect("second");
    assert!(
        model.reused_prompt_tokens() > 590,
        "{}",
        model.reused_prompt_tokens()
    );
    assert_eq!(b, fresh_generation(name, 1024, &second, 4));
}
