//! Solidity audits as a network service: the provider's `POST /v1/audit` runs the auditor on a
//! source file and signs a receipt priced by its token count; the gateway forwards it like the
//! other endpoints, and validators of an `audit` subnet score miners with generated challenges
//! of known answer ([`hibana_audit::challenge`]).

use hibana_audit::{Category, challenge::Reported};
use hibana_types::Hash;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::openai::ApiError;

/// The model name under which providers serve the auditor.
pub const AUDIT_MODEL: &str = "hibana-audit";

/// Largest source accepted in one audit request.
pub const MAX_SOURCE_BYTES: usize = 512 * 1024;

/// The content hash that names this auditor's engine: its version and rule catalogue, so that a
/// miner running another build registers as another model.
pub fn engine_hash() -> Hash {
    let rules: Vec<&str> = hibana_audit::finding::RULES.iter().map(|r| r.id).collect();
    Hash::digest(
        format!(
            "{AUDIT_MODEL}/{}/{}",
            env!("CARGO_PKG_VERSION"),
            rules.join(",")
        )
        .as_bytes(),
    )
}

/// Body of `POST /v1/audit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditRequest {
    /// `hibana-audit`, its engine hash, or (at the gateway) an audit subnet's name.
    pub model: String,
    /// The file name to report findings under.
    #[serde(default)]
    pub path: Option<String>,
    /// The Solidity source text.
    pub source: String,
}

/// Checks a request before any work: a non-empty source within the size limit.
pub fn validate(req: &AuditRequest) -> Result<(), ApiError> {
    if req.source.trim().is_empty() {
        return Err(ApiError::invalid(Some("source"), "source is empty"));
    }
    if req.source.len() > MAX_SOURCE_BYTES {
        return Err(ApiError::invalid(
            Some("source"),
            format!(
                "source is {} bytes; at most {MAX_SOURCE_BYTES} bytes per request",
                req.source.len()
            ),
        ));
    }
    if req.source.contains('\0') {
        return Err(ApiError::invalid(
            Some("source"),
            "source contains NUL bytes: not a Solidity file",
        ));
    }
    Ok(())
}

/// Runs the auditor; returns the answer document and the token count it is priced by.
pub fn run(req: &AuditRequest) -> (Value, u32) {
    let path = req.path.clone().unwrap_or_else(|| "contract.sol".into());
    let report = hibana_audit::analyse_source(&path, &req.source);
    let tokens = u32::try_from(hibana_audit::token_count(&req.source)).unwrap_or(u32::MAX);
    let mut doc = hibana_audit::report::json_value(std::slice::from_ref(&report));
    let file = doc
        .get_mut("files")
        .and_then(|f| f.get_mut(0))
        .map(Value::take)
        .unwrap_or_default();
    let answer = json!({
        "object": "audit",
        "model": AUDIT_MODEL,
        "engine": engine_hash(),
        "path": path,
        "contracts": file.get("contracts").cloned().unwrap_or(json!(0)),
        "errors": file.get("errors").cloned().unwrap_or(json!([])),
        "findings": file.get("findings").cloned().unwrap_or(json!([])),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    (answer, tokens)
}

/// The findings of an audit answer as (category, line), skipping entries it cannot read.
pub fn reported(answer: &Value) -> Option<Vec<Reported>> {
    let findings = answer.get("findings")?.as_array()?;
    Some(
        findings
            .iter()
            .filter_map(|f| {
                let category = Category::parse(f.get("category")?.as_str()?)?;
                let line = usize::try_from(f.get("line")?.as_u64()?).ok()?;
                Some((category, line))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audit_answer_carries_the_findings_it_reports() {
        let c = hibana_audit::challenge::generate(3);
        let req = AuditRequest {
            model: AUDIT_MODEL.into(),
            path: Some(c.path.clone()),
            source: c.source.clone(),
        };
        validate(&req).unwrap();
        let (answer, tokens) = run(&req);
        assert!(tokens > 50);
        let found = reported(&answer).unwrap();
        let cmp = hibana_audit::challenge::score(&c.planted, &found);
        assert_eq!(cmp.score.false_negatives + cmp.score.false_positives, 0);
        let empty = AuditRequest {
            source: "  ".into(),
            ..req
        };
        assert!(validate(&empty).is_err());
        assert_ne!(engine_hash(), Hash::digest(b""));
    }
}
