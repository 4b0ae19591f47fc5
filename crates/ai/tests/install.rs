//! Installation from PyPI into a fresh folder, idempotency, and catalog hashes.

mod common;

use std::{fs::File, io::Read, sync::Mutex};

use hibana_ai::{
    AiError,
    catalog::{self, ModelKind},
};
use hibana_types::Hash;

fn blake3_file(path: &std::path::Path) -> Hash {
    let mut hasher = blake3::Hasher::new();
    let mut f = File::open(path).expect("open");
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = f.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Hash(*hasher.finalize().as_bytes())
}

#[test]
fn install_is_idempotent_and_records_file_hashes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let names = vec!["all-minilm-l6-v2".to_string()];
    let stages = Mutex::new(Vec::new());
    let record = |stage: &str, _: u64, _: u64| {
        let mut s = stages.lock().expect("lock");
        if s.last().map(String::as_str) != Some(stage) {
            s.push(stage.to_string());
        }
    };
    let first = catalog::install(dir.path(), &names, &record).expect("first install");
    assert_eq!(first.len(), 1);
    let info = &first[0];
    assert_eq!(info.kind, ModelKind::Embedding);
    assert!(
        stages
            .lock()
            .expect("lock")
            .iter()
            .any(|s| s.starts_with("download"))
    );

    // The folder hash is recomputable from the files.
    let mut files: Vec<(String, u64, Hash)> = Vec::new();
    let mut rels = vec![
        "1_Pooling/config.json",
        "config.json",
        "model.safetensors",
        "modules.json",
        "sentence_bert_config.json",
        "tokenizer.json",
    ];
    rels.sort_unstable();
    for rel in rels {
        let path = info.path.join(rel);
        files.push((
            rel.to_string(),
            path.metadata().expect("meta").len(),
            blake3_file(&path),
        ));
    }
    assert_eq!(catalog::hash_files(&files), info.content_hash);
    assert_eq!(info.size_bytes, files.iter().map(|f| f.1).sum::<u64>());

    // Second install: only verification, no download, same result.
    stages.lock().expect("lock").clear();
    let second = catalog::install(dir.path(), &names, &record).expect("second install");
    assert_eq!(second, first);
    let seen = stages.lock().expect("lock").clone();
    assert!(seen.iter().all(|s| s.starts_with("verify")), "{seen:?}");
    assert_eq!(catalog::list(dir.path()).expect("list"), first);

    // A changed file is noticed by find() (size) or reinstall (hash).
    std::fs::write(info.path.join("modules.json"), b"[]").expect("tamper");
    assert!(matches!(
        catalog::find(dir.path(), "all-minilm-l6-v2"),
        Err(AiError::Damaged { .. })
    ));
}

#[test]
fn missing_and_unknown_models_name_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = catalog::find(dir.path(), "gemma3-270m").expect_err("missing");
    assert!(
        err.to_string()
            .contains("hibana models install gemma3-270m"),
        "{err}"
    );
    let err =
        catalog::install(dir.path(), &["gpt-5".to_string()], &|_, _, _| {}).expect_err("unknown");
    assert!(err.to_string().contains("smollm2-135m-instruct"), "{err}");
}

#[test]
fn installed_text_models_hash_to_their_catalog_entries() {
    for name in ["smollm2-135m-instruct", "gemma3-270m"] {
        let info = common::model(name);
        assert_eq!(blake3_file(&info.path), info.content_hash, "{name}");
        assert_eq!(info.path.metadata().expect("meta").len(), info.size_bytes);
    }
}
