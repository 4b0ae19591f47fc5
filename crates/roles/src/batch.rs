//! Batch inference files in OpenAI's batch format, and how a batch is named on chain.
//!
//! An input line is `{"custom_id": …, "method": "POST", "url": "/v1/chat/completions",
//! "body": {…}}` (or `/v1/completions`, `/v1/embeddings`). A line's request bytes are its
//! `body` re-encoded by `serde_json` (so the client, the provider and a challenger all derive the
//! same bytes from the same file); the batch's input root is the Merkle root over
//! `batch_leaf(input domain, line, blake3(request))`. The provider answers each line as its
//! endpoint would, with a signed receipt, and commits the Merkle sum tree root over
//! `batch_leaf(result domain, line, outcome)`, each counting 1 if its line is answered, where
//! the outcome is the id of the line's receipt (or signed refusal) and, for a refusal without
//! a signature, the blake3 of the error body. [`check_results`] checks a
//! provider's results against the chain's batch: roots, counts, every signature and hash.

use std::collections::HashSet;

use hibana_types::records::market::{
    BATCH_INPUT_LEAF_DOMAIN, BATCH_RESULT_LEAF_DOMAIN, BatchJob, LineCount, MAX_BATCH_LINES,
    batch_leaf, counts_as_answered, line_count,
};
use hibana_types::records::verify::{MAX_CHALLENGE_REQUEST_BYTES, MAX_CHALLENGE_RESPONSE_BYTES};
use hibana_types::{
    CountStep, Hash, InferenceReceipt, MerkleStep, count_proof, count_root, merkle_proof,
    merkle_root,
};
use serde::{Deserialize, Serialize};

/// The endpoints a batch line may name.
pub const ENDPOINTS: [&str; 3] = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"];

/// Longest `custom_id`, in bytes.
pub const MAX_CUSTOM_ID_BYTES: usize = 512;

/// One request of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRequest {
    /// The client's name for the line.
    pub custom_id: String,
    /// The endpoint, one of [`ENDPOINTS`].
    pub url: String,
    /// The request bytes the provider answers and signs for.
    pub body: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputLine {
    custom_id: String,
    #[serde(default)]
    method: Option<String>,
    url: String,
    body: serde_json::Value,
}

/// Parses a batch input file (JSON lines; blank lines are skipped), or says which line is
/// wrong and why.
pub fn parse_input(text: &str) -> Result<Vec<BatchRequest>, String> {
    let mut out = Vec::new();
    let mut ids = HashSet::new();
    for (n, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let at = n + 1;
        if out.len() == MAX_BATCH_LINES as usize {
            return Err(format!(
                "line {at}: a batch has at most {MAX_BATCH_LINES} requests"
            ));
        }
        let line: InputLine = serde_json::from_str(raw).map_err(|e| {
            format!(
                "line {at}: not a batch request ({{\"custom_id\", \"method\", \"url\", \"body\"}}): {e}"
            )
        })?;
        if line.custom_id.is_empty() || line.custom_id.len() > MAX_CUSTOM_ID_BYTES {
            return Err(format!(
                "line {at}: custom_id must have 1 to {MAX_CUSTOM_ID_BYTES} bytes"
            ));
        }
        if !ids.insert(line.custom_id.clone()) {
            return Err(format!(
                "line {at}: custom_id {:?} is used twice",
                line.custom_id
            ));
        }
        if line.method.as_deref().is_some_and(|m| m != "POST") {
            return Err(format!("line {at}: method must be POST"));
        }
        if !ENDPOINTS.contains(&line.url.as_str()) {
            return Err(format!(
                "line {at}: url {:?} is not one of {}",
                line.url,
                ENDPOINTS.join(", ")
            ));
        }
        let serde_json::Value::Object(fields) = &line.body else {
            return Err(format!("line {at}: body must be a JSON object"));
        };
        // A body readable as another endpoint's request could be judged as that one.
        let (needs, refuses) = match line.url.as_str() {
            "/v1/chat/completions" => ("messages", ["prompt", "input"]),
            "/v1/completions" => ("prompt", ["messages", "input"]),
            _ => ("input", ["messages", "prompt"]),
        };
        if !fields.contains_key(needs) {
            return Err(format!("line {at}: a {} body needs \"{needs}\"", line.url));
        }
        if let Some(extra) = refuses.iter().find(|f| fields.contains_key(**f)) {
            return Err(format!(
                "line {at}: a {} body takes no \"{extra}\" (it belongs to another endpoint)",
                line.url
            ));
        }
        if fields.get("stream").and_then(|s| s.as_bool()) == Some(true) {
            return Err(format!(
                "line {at}: a batch answers each request whole; remove \"stream\": true"
            ));
        }
        let body = serde_json::to_vec(&line.body).map_err(|e| format!("line {at}: {e}"))?;
        if body.len() > MAX_CHALLENGE_REQUEST_BYTES {
            return Err(format!(
                "line {at}: the body is {} bytes; at most {MAX_CHALLENGE_REQUEST_BYTES} (so that any answer can be challenged)",
                body.len()
            ));
        }
        out.push(BatchRequest {
            custom_id: line.custom_id,
            url: line.url,
            body,
        });
    }
    if out.is_empty() {
        return Err("the batch file has no requests".into());
    }
    Ok(out)
}

/// The lines' input leaves.
pub fn input_leaves(requests: &[BatchRequest]) -> Vec<Hash> {
    requests
        .iter()
        .enumerate()
        .map(|(i, r)| batch_leaf(BATCH_INPUT_LEAF_DOMAIN, i as u32, &Hash::digest(&r.body)))
        .collect()
}

/// The input root a `SubmitBatch` names.
pub fn input_root(requests: &[BatchRequest]) -> Hash {
    merkle_root(&input_leaves(requests))
}

/// A line's answer as the provider keeps and serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineResult {
    /// The line (0 is the first).
    pub line: u32,
    /// The line's `custom_id`.
    pub custom_id: String,
    /// The HTTP status its endpoint answered with.
    pub status: u16,
    /// The exact response body.
    pub response: String,
    /// The signed receipt (hex), for an answered line.
    pub receipt: Option<String>,
    /// The signed refusal (hex), for a refused line: a receipt over the request and the error
    /// body, for no tokens and no price, which a challenge can carry like an answer's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

impl LineResult {
    /// The receipt, decoded.
    pub fn receipt(&self) -> Result<Option<InferenceReceipt>, String> {
        self.receipt
            .as_deref()
            .map(|hex| {
                InferenceReceipt::from_hex(hex).map_err(|e| format!("line {}: {e}", self.line))
            })
            .transpose()
    }

    /// The signed refusal, decoded.
    pub fn refusal(&self) -> Result<Option<InferenceReceipt>, String> {
        self.refusal
            .as_deref()
            .map(|hex| {
                InferenceReceipt::from_hex(hex).map_err(|e| format!("line {}: {e}", self.line))
            })
            .transpose()
    }

    /// The receipt a challenge of this line carries: the answer's, or the refusal's.
    pub fn signed(&self) -> Result<Option<InferenceReceipt>, String> {
        Ok(self.receipt()?.or(self.refusal()?))
    }

    /// The count its result leaf holds, by the chain's rule: 1 for a line answered with a
    /// receipt for tokens or a price (which the batch pays), 0 for a refusal.
    pub fn count(&self) -> Result<u32, String> {
        Ok(u32::from(counts_as_answered(self.signed()?.as_ref())))
    }

    /// The outcome its result leaf commits to: the id of its receipt or signed refusal, or
    /// (a refusal without one) the blake3 of the error body.
    pub fn outcome(&self) -> Result<Hash, String> {
        Ok(match self.signed()? {
            Some(r) => hibana_types::records::verify::receipt_id(&r),
            None => Hash::digest(self.response.as_bytes()),
        })
    }

    /// The line as OpenAI's batch output writes it, with the receipt beside.
    pub fn to_openai(&self, batch: u64) -> serde_json::Value {
        let body: serde_json::Value = serde_json::from_str(&self.response)
            .unwrap_or_else(|_| serde_json::Value::String(self.response.clone()));
        let ok = self.receipt.is_some();
        serde_json::json!({
            "id": format!("batch_{batch}_req_{}", self.line),
            "custom_id": self.custom_id,
            "response": {"status_code": self.status, "request_id": format!("{batch}-{}", self.line), "body": body},
            "error": if ok { serde_json::Value::Null } else { body.get("error").cloned().unwrap_or(serde_json::Value::Null) },
            "receipt": self.receipt,
        })
    }
}

/// The results' leaves, each with its count ([`LineResult::count`]).
pub fn result_leaves(results: &[LineResult]) -> Result<Vec<(Hash, u32)>, String> {
    results
        .iter()
        .map(|r| {
            Ok((
                batch_leaf(BATCH_RESULT_LEAF_DOMAIN, r.line, &r.outcome()?),
                r.count()?,
            ))
        })
        .collect()
}

/// The results root a `CommitBatch` names, and the answered lines it counts.
pub fn results_root_and_count(results: &[LineResult]) -> Result<(Hash, u32), String> {
    count_root(&result_leaves(results)?).ok_or_else(|| "too many results".to_string())
}

/// The results root a `CommitBatch` names.
pub fn results_root(results: &[LineResult]) -> Result<Hash, String> {
    Ok(results_root_and_count(results)?.0)
}

/// Why results that reproduce batch `b`'s committed root prove its provider's count false
/// (the root counts another number of answered lines than the provider committed; any line's
/// proof shows it on chain), or `None` when the count holds or the results are not the
/// committed ones. (A line counted other than its receipt says cannot be in such results:
/// their counts follow the receipts; [`line_miscount`] finds one in a served line.)
pub fn miscount(b: &BatchJob, results: &[LineResult]) -> Option<String> {
    let (root, total) = results_root_and_count(results).ok()?;
    (Some(root) == b.results_root && results.len() == b.lines as usize && total != b.answered).then(
        || {
            format!(
                "the provider committed {} answered lines, its results root counts {total}",
                b.answered
            )
        },
    )
}

/// Reads a results file (JSON lines of [`LineResult`]).
pub fn parse_results(text: &str) -> Result<Vec<LineResult>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("result line {}: {e}", i + 1)))
        .collect()
}

/// Checks a provider's results against the chain's batch `b` and its input: one result per
/// line in order with its `custom_id`, each answered line's receipt signed by the batch's
/// provider over exactly that request and response, the answered count and the results root
/// as committed. Returns the receipts by line.
pub fn check_results(
    b: &BatchJob,
    requests: &[BatchRequest],
    results: &[LineResult],
) -> Result<Vec<Option<InferenceReceipt>>, String> {
    if input_root(requests) != b.input_root || requests.len() != b.lines as usize {
        return Err(format!(
            "the input file is not batch {}'s input (root {}, {} lines)",
            b.id, b.input_root, b.lines
        ));
    }
    let committed = b.results_root.ok_or_else(|| {
        format!(
            "batch {}'s results are not committed yet: wait for its provider",
            b.id
        )
    })?;
    if results.len() != requests.len() {
        return Err(format!(
            "the provider returned {} results for {} lines",
            results.len(),
            requests.len()
        ));
    }
    let root = results_root(results)?;
    if root != committed {
        return Err(format!(
            "the results hash to root {root}, not to the committed {committed}: the provider \
             serves other results than it committed (a line it serves may prove its count \
             false: `hibana batch dispute {} --line N` checks it; `hibana batch spot-check {} \
             --request` asks for lines on chain)",
            b.id, b.id
        ));
    }
    if let Some(why) = miscount(b, results) {
        return Err(format!(
            "{why}: `hibana batch dispute {} --line 0` proves it on chain",
            b.id
        ));
    }
    let mut receipts = Vec::with_capacity(results.len());
    for (i, (req, res)) in requests.iter().zip(results).enumerate() {
        if res.line as usize != i || res.custom_id != req.custom_id {
            return Err(format!(
                "result {i} is for line {} ({:?}), not for line {i} ({:?})",
                res.line, res.custom_id, req.custom_id
            ));
        }
        if res.receipt.is_some() && res.refusal.is_some() {
            return Err(format!("line {i} is both answered and refused"));
        }
        if let Some(r) = res.signed()? {
            check_signed(b, i as u32, &r, &req.body, res.response.as_bytes())?;
        }
        // An answer's receipt is for tokens or a price, a refusal's for neither: the chain
        // counts (and pays) a line by that, whatever field holds it.
        let counted = res.count()? == 1;
        if counted != res.receipt.is_some() {
            return Err(format!(
                "line {i}'s {} is for {}tokens or a price",
                if counted { "refusal" } else { "receipt" },
                if counted { "" } else { "no " }
            ));
        }
        if counted && crate::recheck::is_refusal(res.response.as_bytes()) {
            return Err(format!(
                "line {i} is counted as answered, but its response is an error: dispute it \
                 with `hibana batch dispute {} --line {i}`",
                b.id
            ));
        }
        receipts.push(res.receipt()?);
    }
    Ok(receipts)
}

/// Checks that `r` is signed by batch `b`'s provider over exactly `request` and `response`.
fn check_signed(
    b: &BatchJob,
    line: u32,
    r: &InferenceReceipt,
    request: &[u8],
    response: &[u8],
) -> Result<(), String> {
    if r.body.provider.address() != b.provider {
        return Err(format!(
            "line {line}: the receipt is signed by {}, not by the batch's provider {}",
            r.body.provider.address(),
            b.provider
        ));
    }
    r.verify(
        &r.body.provider,
        &Hash::digest(request),
        &Hash::digest(response),
    )
    .map_err(|e| format!("line {line}: {e}"))
}

/// The proofs a `DisputeBatchLine` of line `line` carries: its input leaf under the input
/// root, its result leaf under the results root; an error if the line is out of range.
pub fn line_proofs(
    requests: &[BatchRequest],
    results: &[LineResult],
    line: u32,
) -> Result<(Vec<MerkleStep>, Vec<CountStep>), String> {
    let i = line as usize;
    let input = merkle_proof(&input_leaves(requests), i)
        .ok_or_else(|| format!("the batch has no line {line}"))?;
    let result = count_proof(&result_leaves(results)?, i)
        .ok_or_else(|| format!("the results have no line {line}"))?;
    Ok((input, result))
}

/// One line of a batch as its provider serves it to a spot-check (`GET
/// /v1/batches/{id}/lines/{line}`): the request, the result, and the proofs of both under the
/// committed roots, so the checker needs neither whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenLine {
    /// The line (0 is the first).
    pub line: u32,
    /// The request's `custom_id`.
    pub custom_id: String,
    /// The request's endpoint.
    pub url: String,
    /// The request bytes (the body as the input root names it), as text.
    pub body: String,
    /// The provider's result.
    pub result: LineResult,
    /// The input leaf's proof under the input root.
    pub input_proof: Vec<MerkleStep>,
    /// The result leaf's proof under the results root (with the answered lines it counts).
    pub result_proof: Vec<CountStep>,
}

/// Line `line` of a batch with its proofs, from the batch's input and results.
pub fn proven_line(
    requests: &[BatchRequest],
    results: &[LineResult],
    line: u32,
) -> Result<ProvenLine, String> {
    let (input_proof, result_proof) = line_proofs(requests, results, line)?;
    let (request, result) = (&requests[line as usize], &results[line as usize]);
    Ok(ProvenLine {
        line,
        custom_id: request.custom_id.clone(),
        url: request.url.clone(),
        body: String::from_utf8(request.body.clone()).map_err(|e| e.to_string())?,
        result: result.clone(),
        input_proof,
        result_proof,
    })
}

impl ProvenLine {
    /// The message that disputes this line of batch `batch` with `receipt` (its answer's or its
    /// signed refusal's), locking `deposit`.
    pub fn to_dispute(
        self,
        batch: u64,
        receipt: InferenceReceipt,
        deposit: hibana_types::Amount,
    ) -> hibana_types::DisputeBatchLine {
        hibana_types::DisputeBatchLine {
            batch,
            line: self.line,
            receipt,
            request: self.body.into_bytes(),
            response: self.result.response.into_bytes(),
            input_proof: self.input_proof,
            result_proof: self.result_proof,
            deposit,
        }
    }

    /// The message that posts this line of batch `batch` on chain (after a line request).
    pub fn to_post(&self, batch: u64) -> Result<hibana_types::PostBatchLine, String> {
        Ok(hibana_types::PostBatchLine {
            batch,
            line: self.line,
            request: self.body.clone().into_bytes(),
            response: self.result.response.clone().into_bytes(),
            receipt: self.result.signed()?,
            input_proof: self.input_proof.clone(),
            result_proof: self.result_proof.clone(),
        })
    }
}

/// Checks a served line against the chain's batch `b`: its request under the input root, its
/// result under the committed results root, and its receipt or signed refusal, signed by the
/// batch's provider over exactly that request and response. Returns that receipt (`None` for
/// a line refused without one).
pub fn check_line(b: &BatchJob, p: &ProvenLine) -> Result<Option<InferenceReceipt>, String> {
    let committed = b
        .results_root
        .ok_or_else(|| format!("batch {}'s results are not committed yet", b.id))?;
    if p.line >= b.lines || p.result.line != p.line {
        return Err(format!("line {} is not a line of batch {}", p.line, b.id));
    }
    let request = Hash::digest(p.body.as_bytes());
    let input_leaf = batch_leaf(BATCH_INPUT_LEAF_DOMAIN, p.line, &request);
    if !hibana_types::verify_merkle_proof(&input_leaf, &p.input_proof, &b.input_root) {
        return Err(format!(
            "line {}'s request is not under batch {}'s input root",
            p.line, b.id
        ));
    }
    if p.result.receipt.is_some() && p.result.refusal.is_some() {
        return Err(format!("line {} is both answered and refused", p.line));
    }
    match result_count(b, &committed, p)? {
        LineCount::Holds => {}
        // A false count is proven by the line on chain: refused here, so that it is requested
        // (or disputed).
        LineCount::Miscounted(why) => return Err(format!("{why}: the line on chain proves it")),
    }
    let signed = p.result.signed()?;
    if let Some(r) = &signed {
        check_signed(
            b,
            p.line,
            r,
            p.body.as_bytes(),
            p.result.response.as_bytes(),
        )?;
    }
    Ok(signed)
}

/// What line `p`'s result proof under `committed` shows of its batch's count, as the chain
/// judges it ([`line_count`]); an error when it reaches the root with neither count.
fn result_count(b: &BatchJob, committed: &Hash, p: &ProvenLine) -> Result<LineCount, String> {
    let leaf = batch_leaf(BATCH_RESULT_LEAF_DOMAIN, p.line, &p.result.outcome()?);
    let answered = p.result.count()? == 1;
    line_count(b, committed, (p.line, &leaf, answered), &p.result_proof).ok_or_else(|| {
        format!(
            "line {}'s result is not under batch {}'s committed results root",
            p.line, b.id
        )
    })
}

/// Why served line `p` proves batch `b`'s provider's count false, once its request is under
/// the input root, its result under the committed root (with one count or the other) and its
/// receipt signed by the provider over them; `None` when it does not (or does not check out).
pub fn line_miscount(b: &BatchJob, p: &ProvenLine) -> Option<String> {
    let committed = b.results_root?;
    let input_leaf = batch_leaf(
        BATCH_INPUT_LEAF_DOMAIN,
        p.line,
        &Hash::digest(p.body.as_bytes()),
    );
    if p.line >= b.lines
        || p.result.line != p.line
        || !hibana_types::verify_merkle_proof(&input_leaf, &p.input_proof, &b.input_root)
    {
        return None;
    }
    if p.result.receipt.is_some() && p.result.refusal.is_some() {
        return None;
    }
    if let Some(r) = p.result.signed().ok()? {
        check_signed(
            b,
            p.line,
            &r,
            p.body.as_bytes(),
            p.result.response.as_bytes(),
        )
        .ok()?;
    }
    match result_count(b, &committed, p).ok()? {
        LineCount::Miscounted(why) => Some(why),
        LineCount::Holds => None,
    }
}

/// Whether a response fits in a challenge (longer answers could not be disputed, so a provider
/// refuses to give them).
pub fn disputable_response(bytes: &[u8]) -> bool {
    bytes.len() <= MAX_CHALLENGE_RESPONSE_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;
    use hibana_types::verify_merkle_proof;

    fn file() -> String {
        [
            r#"{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":4}}"#,
            "",
            r#"{"custom_id":"b","url":"/v1/embeddings","body":{"model":"e","input":"x"}}"#,
        ]
        .join("\n")
    }

    #[test]
    fn a_file_parses_and_its_leaves_prove_under_its_root() {
        let reqs = parse_input(&file()).unwrap();
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[1].url, "/v1/embeddings");
        let root = input_root(&reqs);
        let leaves = input_leaves(&reqs);
        for (i, leaf) in leaves.iter().enumerate() {
            let proof = merkle_proof(&leaves, i).unwrap();
            assert!(hibana_types::verify_merkle_proof(leaf, &proof, &root));
        }
        // The same request bytes come out of the same text every time.
        assert_eq!(parse_input(&file()).unwrap(), reqs);
    }

    #[test]
    fn bad_files_say_which_line_and_why() {
        let cases = [
            ("", "no requests"),
            (
                r#"{"custom_id":"a","url":"/v1/x","body":{}}"#,
                "line 1: url",
            ),
            (
                r#"{"custom_id":"a","url":"/v1/completions","body":[]}"#,
                "JSON object",
            ),
            (
                r#"{"custom_id":"","url":"/v1/completions","body":{}}"#,
                "custom_id",
            ),
            (
                r#"{"custom_id":"a","method":"GET","url":"/v1/completions","body":{}}"#,
                "POST",
            ),
            (
                r#"{"custom_id":"a","url":"/v1/completions","body":{"prompt":"x","stream":true}}"#,
                "stream",
            ),
            (
                r#"{"custom_id":"a","url":"/v1/chat/completions","body":{"prompt":"x"}}"#,
                "needs \"messages\"",
            ),
            (
                r#"{"custom_id":"a","url":"/v1/completions","body":{"prompt":"x","messages":[]}}"#,
                "another endpoint",
            ),
            ("not json", "line 1: not a batch request"),
        ];
        for (text, why) in cases {
            let e = parse_input(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
        let twice = format!(
            "{}\n{}",
            file().lines().next().unwrap(),
            file().lines().next().unwrap()
        );
        assert!(parse_input(&twice).unwrap_err().contains("used twice"));
    }

    #[test]
    fn results_are_checked_against_the_committed_batch() {
        let reqs = parse_input(&file()).unwrap();
        let key = hibana_types::SecretKey::from_bytes([7; 32]);
        let answer = |i: u32, text: &str| {
            let receipt = hibana_types::ReceiptBody {
                provider: key.public_key(),
                model_hash: Hash([1; 32]),
                request_hash: Hash::digest(&reqs[i as usize].body),
                response_hash: Hash::digest(text.as_bytes()),
                prompt_tokens: 1,
                completion_tokens: 1,
                price: hibana_types::Amount(0),
                timestamp_ms: 1,
            }
            .sign(&key);
            LineResult {
                line: i,
                custom_id: reqs[i as usize].custom_id.clone(),
                status: 200,
                response: text.into(),
                receipt: Some(receipt.to_hex()),
                refusal: None,
            }
        };
        let results = vec![answer(0, "{\"a\":1}"), answer(1, "{\"b\":2}")];
        let mut b = BatchJob {
            id: 0,
            lease: 0,
            client: hibana_types::Address([1; 20]),
            provider: key.public_key().address(),
            input_root: input_root(&reqs),
            lines: 2,
            input_bytes: 10,
            submitted_at: 1,
            results_root: Some(results_root(&results).unwrap()),
            answered: 2,
            committed_at: 2,
            status: hibana_types::records::market::BatchStatus::Done,
            refuted_line: None,
            price_per_line: hibana_types::Amount::ZERO,
            lines_until: 0,
            models: Vec::new(),
        };
        assert_eq!(check_results(&b, &reqs, &results).unwrap().len(), 2);
        let (input, result) = line_proofs(&reqs, &results, 1).unwrap();
        assert!(verify_merkle_proof(
            &input_leaves(&reqs)[1],
            &input,
            &b.input_root
        ));
        let (leaf, count) = result_leaves(&results).unwrap()[1];
        assert_eq!(
            hibana_types::verify_count_proof(
                (&leaf, count),
                (1, 2),
                1,
                &result,
                &b.results_root.unwrap()
            ),
            Some(2)
        );
        // A response changed after signing.
        let mut forged = results.clone();
        forged[1].response = "{\"b\":3}".into();
        assert!(
            check_results(&b, &reqs, &forged)
                .unwrap_err()
                .contains("line 1")
        );
        // Results that are not the committed ones.
        let other = vec![answer(0, "{\"a\":1}"), answer(1, "{\"b\":9}")];
        assert!(
            check_results(&b, &reqs, &other)
                .unwrap_err()
                .contains("not to the committed")
        );
        // One served line checks out on its own, with its proofs.
        let served = proven_line(&reqs, &results, 1).unwrap();
        assert!(check_line(&b, &served).unwrap().is_some());
        // A served line is hostile until checked: a swapped request, a result the provider
        // did not commit, another line's proofs, a line past the batch.
        let mut bad = served.clone();
        bad.body = String::from_utf8(reqs[0].body.clone()).unwrap();
        assert!(check_line(&b, &bad).unwrap_err().contains("input root"));
        let mut bad = served.clone();
        bad.result = other[1].clone();
        assert!(check_line(&b, &bad).unwrap_err().contains("results root"));
        let mut bad = proven_line(&reqs, &results, 0).unwrap();
        bad.line = 1;
        assert!(check_line(&b, &bad).is_err());
        let mut bad = served.clone();
        bad.line = 7;
        assert!(check_line(&b, &bad).unwrap_err().contains("not a line"));
        // A signed refusal stands in for a receipt: its id is the result leaf, its signature is
        // checked, and it is disputable like an answer; a line cannot be both, and an error
        // counted as an answer is caught.
        let error = r#"{"error":{"message":"busy"}}"#;
        let mut refused = results.clone();
        let refusal = hibana_types::ReceiptBody {
            response_hash: Hash::digest(error.as_bytes()),
            prompt_tokens: 0,
            completion_tokens: 0,
            ..refused[1].receipt().unwrap().unwrap().body
        }
        .sign(&key);
        refused[1] = LineResult {
            status: 503,
            response: error.into(),
            receipt: None,
            refusal: Some(refusal.to_hex()),
            ..refused[1].clone()
        };
        let mut rb = b.clone();
        rb.results_root = Some(results_root(&refused).unwrap());
        rb.answered = 1;
        let checked = check_results(&rb, &reqs, &refused).unwrap();
        assert!(checked[1].is_none(), "a refusal is not an answer");
        let line = proven_line(&reqs, &refused, 1).unwrap();
        assert_eq!(check_line(&rb, &line).unwrap(), Some(refusal.clone()));
        assert_eq!(line.to_post(0).unwrap().receipt, Some(refusal));
        let mut both = refused.clone();
        both[1].receipt = results[1].receipt.clone();
        let mut rb_both = rb.clone();
        (rb_both.results_root, rb_both.answered) = (Some(results_root(&both).unwrap()), 2);
        assert!(
            check_results(&rb_both, &reqs, &both)
                .unwrap_err()
                .contains("both")
        );
        // A free receipt in an answer's place is not counted; an error body sold for tokens
        // is, and is caught (a dispute shows it wrong).
        let mut counted = refused.clone();
        counted[1].receipt = counted[1].refusal.take();
        assert_eq!(results_root_and_count(&counted).unwrap().1, 1);
        rb.results_root = Some(results_root(&counted).unwrap());
        assert!(
            check_results(&rb, &reqs, &counted)
                .unwrap_err()
                .contains("line 1's receipt is for no tokens or a price")
        );
        let mut sold = refused.clone();
        let receipt = hibana_types::ReceiptBody {
            response_hash: Hash::digest(error.as_bytes()),
            ..results[1].receipt().unwrap().unwrap().body
        }
        .sign(&key);
        (sold[1].receipt, sold[1].refusal) = (Some(receipt.to_hex()), None);
        let mut rb_sold = rb.clone();
        (rb_sold.results_root, rb_sold.answered) = (Some(results_root(&sold).unwrap()), 2);
        assert!(
            check_results(&rb_sold, &reqs, &sold)
                .unwrap_err()
                .contains("its response is an error")
        );
        // A total other than the committed one is provable at any line (a served line with
        // it is refused).
        let mut over = rb.clone();
        over.results_root = Some(results_root(&refused).unwrap());
        over.answered = 2;
        assert_eq!(miscount(&rb, &refused), None, "not the committed results");
        let why = miscount(&over, &refused).unwrap();
        assert!(
            why.contains("committed 2 answered lines, its results root counts 1"),
            "{why}"
        );
        assert!(
            check_results(&over, &reqs, &refused)
                .unwrap_err()
                .contains("batch dispute 0 --line 0")
        );
        let over_line = proven_line(&reqs, &refused, 0).unwrap();
        let e = check_line(&over, &over_line).unwrap_err();
        assert!(e.contains("counts 1 answered lines"), "{e}");
        assert!(line_miscount(&over, &over_line).is_some());
        // A refusal the provider's root counts as answered: its results cannot reproduce the
        // root, but the line it serves, with its proof, shows the false count.
        let mut leaves = result_leaves(&refused).unwrap();
        leaves[1].1 = 1;
        let mut lie = rb.clone();
        lie.results_root = Some(count_root(&leaves).unwrap().0);
        lie.answered = 2;
        assert_eq!(miscount(&lie, &refused), None);
        assert!(
            check_results(&lie, &reqs, &refused)
                .unwrap_err()
                .contains("serves other results")
        );
        let mut lie_line = proven_line(&reqs, &refused, 1).unwrap();
        lie_line.result_proof = count_proof(&leaves, 1).unwrap();
        let why = line_miscount(&lie, &lie_line).unwrap();
        assert!(why.contains("no receipt for tokens or a price"), "{why}");
        assert!(check_line(&lie, &lie_line).unwrap_err().contains(&why));
        // Honest counts prove nothing.
        assert_eq!(miscount(&b, &results), None);
        assert_eq!(
            line_miscount(&b, &proven_line(&reqs, &results, 1).unwrap()),
            None
        );
        // Another provider's key.
        b.provider = hibana_types::Address([9; 20]);
        assert!(
            check_results(&b, &reqs, &results)
                .unwrap_err()
                .contains("not by the batch's provider")
        );
        assert!(
            check_line(&b, &served)
                .unwrap_err()
                .contains("not by the batch's provider")
        );
    }
}
