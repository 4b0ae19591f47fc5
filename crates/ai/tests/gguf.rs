//! The catalog's GGUF header reader accepts the real models it installs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use hibana_ai::gguf::{GgufValue, read_header};

#[test]
fn real_models_have_readable_headers() {
    for (name, arch) in [
        ("smollm2-135m-instruct", "llama"),
        ("gemma3-270m", "gemma3"),
    ] {
        let info = common::model(name);
        let mut file = std::io::BufReader::new(std::fs::File::open(&info.path).unwrap());
        let header = read_header(&mut file).unwrap();
        assert_eq!(header.architecture(), Some(arch), "{name}");
        assert!(header.tensor_count > 0, "{name}");
        assert!(
            matches!(
                header.metadata.get("tokenizer.ggml.tokens"),
                Some(GgufValue::Array { item_type: 8, len }) if *len > 1000
            ),
            "{name}"
        );
    }
}
