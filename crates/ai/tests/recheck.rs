//! Re-checking claimed answers by teacher forcing, on the real SmolLM2, Gemma 3 and MiniLM models.

mod common;

use hibana_ai::{
    embed::Embedder,
    recheck::{
        self, ClaimedPrompt, Ending, GREEDY_MARGIN, RecheckError, Rejection, TextClaim,
        TextRechecker,
    },
    text::{ChatMessage, FinishReason, GenerateParams, TextModel},
};

fn chat_prompt(model: &TextModel, question: &str) -> String {
    model
        .apply_chat_template(&[ChatMessage::new("user", question)])
        .expect("template")
}

fn claim<'a>(
    prompt: &'a str,
    completion: &'a str,
    finish: FinishReason,
    params: &'a GenerateParams,
) -> TextClaim<'a> {
    TextClaim {
        prompt: ClaimedPrompt::Text(prompt),
        completion,
        finish,
        stop: &params.stop,
        temperature: params.temperature,
        max_tokens: params.max_tokens,
    }
}

fn greedy(max_tokens: u32) -> GenerateParams {
    GenerateParams {
        max_tokens,
        ..GenerateParams::default()
    }
}

#[test]
fn honest_greedy_answer_is_accepted_and_a_changed_word_is_rejected_at_its_position() {
    let model = common::smollm2();
    let prompt = chat_prompt(&model, "Describe a cat to someone who has never seen one.");
    let params = greedy(48);
    let answer = model
        .generate(&prompt, &params, &mut |_| true)
        .expect("generate");
    let mut checker = TextRechecker::new(&model);

    let verdict = checker
        .check(&claim(&prompt, &answer.text, answer.finish_reason, &params))
        .expect("check");
    assert!(verdict.accepted, "{verdict:?}");
    assert!(verdict.rejected.is_empty());
    let worst = verdict.worst.expect("worst position");
    assert!(worst.gap <= GREEDY_MARGIN, "{worst:?}");
    assert!(verdict.tokens_checked >= answer.completion_tokens.min(params.max_tokens) - 2);

    // Replace one word in the middle of the answer with an unrelated one.
    let words: Vec<&str> = answer.text.split_whitespace().collect();
    assert!(words.len() >= 6, "{answer:?}");
    let target = words[words.len() / 2];
    let at = answer.text.find(&format!(" {target}")).expect("word") + 1;
    let changed = format!(
        "{}submarine{}",
        &answer.text[..at],
        &answer.text[at + target.len()..]
    );
    let verdict = checker
        .check(&claim(&prompt, &changed, answer.finish_reason, &params))
        .expect("check");
    assert!(!verdict.accepted, "{verdict:?}");
    assert_eq!(verdict.rejection, Some(Rejection::TokenOutsideMargin));
    // The first rejected token starts where the new word does (or at the space before it).
    let first = verdict.rejected.first().expect("a rejected position");
    assert!(
        first.byte_offset == at || first.byte_offset + 1 == at,
        "rejected at byte {} but the word starts at {at}: {verdict:?}",
        first.byte_offset
    );
    assert!(first.gap > GREEDY_MARGIN);
}

#[test]
fn a_claimed_stop_needs_the_end_token_and_max_tokens_bounds_the_answer() {
    let model = common::smollm2();
    let prompt = chat_prompt(&model, "What is the capital of France?");
    let params = greedy(64);
    let answer = model
        .generate(&prompt, &params, &mut |_| true)
        .expect("generate");
    assert_eq!(answer.finish_reason, FinishReason::Stop, "{answer:?}");
    let mut checker = TextRechecker::new(&model);
    let verdict = checker
        .check(&claim(&prompt, &answer.text, FinishReason::Stop, &params))
        .expect("check");
    assert!(verdict.accepted, "{verdict:?}");
    assert_eq!(verdict.ending, Some(Ending::EndOfGeneration));

    // Cut in the middle but still claimed as stopped by the model.
    let cut = answer.text[..answer.text.len() / 2].trim_end();
    let verdict = checker
        .check(&claim(&prompt, cut, FinishReason::Stop, &params))
        .expect("check");
    assert!(!verdict.accepted, "{verdict:?}");

    // The same honest answer, claimed for a request that allowed fewer tokens.
    let short = greedy(answer.completion_tokens / 2);
    let verdict = checker
        .check(&claim(&prompt, &answer.text, FinishReason::Stop, &short))
        .expect("check");
    assert!(
        matches!(verdict.rejection, Some(Rejection::TooManyTokens { max_tokens, .. }) if max_tokens == short.max_tokens),
        "{verdict:?}"
    );
}

#[test]
fn honest_sampled_answers_are_accepted() {
    let model = common::smollm2();
    let prompt = chat_prompt(&model, "Write a short poem about the sea.");
    let mut checker = TextRechecker::new(&model);
    for seed in [1, 2, 3] {
        let params = GenerateParams {
            max_tokens: 48,
            temperature: 0.7,
            top_p: 1.0,
            seed,
            stop: Vec::new(),
        };
        let answer = model
            .generate(&prompt, &params, &mut |_| true)
            .expect("generate");
        let verdict = checker
            .check(&claim(&prompt, &answer.text, answer.finish_reason, &params))
            .expect("check");
        assert!(verdict.accepted, "seed {seed}: {answer:?} {verdict:?}");
        let (peak, threshold) = verdict.surprisal_peak.expect("sampled statistic");
        assert!(peak <= threshold);
    }
}

#[test]
fn another_models_text_is_rejected() {
    // Gemma 3's continuation claimed as SmolLM2's, greedy.
    let smol = common::smollm2();
    let gemma = common::gemma3();
    let prompt = "The history of the bicycle begins";
    let params = greedy(40);
    let impostor = gemma
        .generate(prompt, &params, &mut |_| true)
        .expect("gemma");
    let own = smol
        .generate(prompt, &params, &mut |_| true)
        .expect("smollm2");
    assert_ne!(impostor.text, own.text);
    let verdict = TextRechecker::new(&smol)
        .check(&claim(
            prompt,
            &impostor.text,
            impostor.finish_reason,
            &params,
        ))
        .expect("check");
    assert!(!verdict.accepted, "{verdict:?}");
    // And Gemma accepts its own answer given as prompt tokens.
    let tokens = gemma.tokenize(prompt);
    let verdict = TextRechecker::new(&gemma)
        .check(&TextClaim {
            prompt: ClaimedPrompt::Tokens(&tokens),
            ..claim(prompt, &impostor.text, impostor.finish_reason, &params)
        })
        .expect("check");
    assert!(verdict.accepted, "{verdict:?}");
}

#[test]
fn a_stop_sequence_ending_is_checked_and_one_inside_the_text_is_rejected() {
    let model = common::smollm2();
    let prompt = chat_prompt(&model, "List the planets of the solar system.");
    let params = GenerateParams {
        stop: vec!["Mars".to_string()],
        ..greedy(200)
    };
    let answer = model
        .generate(&prompt, &params, &mut |_| true)
        .expect("generate");
    assert_eq!(answer.finish_reason, FinishReason::Stop, "{answer:?}");
    let mut checker = TextRechecker::new(&model);
    let verdict = checker
        .check(&claim(&prompt, &answer.text, FinishReason::Stop, &params))
        .expect("check");
    assert!(verdict.accepted, "{verdict:?}");
    assert_eq!(verdict.ending, Some(Ending::StopSequence(0)));

    let with_stop = format!("{}Mars and more", answer.text);
    let verdict = checker
        .check(&claim(&prompt, &with_stop, FinishReason::Length, &params))
        .expect("check");
    assert_eq!(verdict.rejection, Some(Rejection::ContainsStopSequence));
}

#[test]
fn over_long_and_malformed_claims_are_refused_with_a_reason() {
    let model = common::smollm2();
    let mut checker = TextRechecker::new(&model);
    let params = greedy(100_000);
    let long = "word ".repeat(2000);
    match checker.check(&claim(
        "Say something.",
        &long,
        FinishReason::Length,
        &params,
    )) {
        Err(RecheckError::ClaimTooLong { tokens, limit }) => {
            assert_eq!(limit, 512);
            assert!(tokens > 512);
        }
        other => panic!("expected ClaimTooLong, got {other:?}"),
    }
    let hot = GenerateParams {
        temperature: f32::NAN,
        ..greedy(8)
    };
    assert!(matches!(
        checker.check(&claim("Hi", "there", FinishReason::Length, &hot)),
        Err(RecheckError::InvalidClaim(_))
    ));
    let bad_tokens = [1, 2, i32::MAX];
    assert!(matches!(
        checker.check(&TextClaim {
            prompt: ClaimedPrompt::Tokens(&bad_tokens),
            ..claim("", "there", FinishReason::Length, &greedy(8))
        }),
        Err(RecheckError::InvalidClaim(_))
    ));
}

#[test]
fn embeddings_honest_accepted_other_sentence_rejected_wrong_shape_refused() {
    let embedder = Embedder::load(&common::model("all-minilm-l6-v2")).expect("load");
    let texts = vec![
        "A validator re-checks the provider's answer.".to_string(),
        "The cat sleeps on the warm windowsill.".to_string(),
    ];
    let (vectors, _) = embedder.embed(&texts).expect("embed");
    let verdicts = recheck::check_embeddings(&embedder, &texts, &vectors).expect("check");
    assert!(
        verdicts.iter().all(|v| v.accepted && v.cosine > 0.9999),
        "{verdicts:?}"
    );

    let swapped = vec![vectors[1].clone(), vectors[0].clone()];
    let verdicts = recheck::check_embeddings(&embedder, &texts, &swapped).expect("check");
    assert!(verdicts.iter().all(|v| !v.accepted), "{verdicts:?}");

    let short = vec![vectors[0][..100].to_vec(), vectors[1].clone()];
    assert!(matches!(
        recheck::check_embeddings(&embedder, &texts, &short),
        Err(RecheckError::DimensionMismatch {
            claimed: 100,
            expected: 384
        })
    ));
    let mut nan = vectors.clone();
    nan[1][7] = f32::NAN;
    assert!(matches!(
        recheck::check_embeddings(&embedder, &texts, &nan),
        Err(RecheckError::NonFinite { index: 7 })
    ));
}
