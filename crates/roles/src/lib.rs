//! Hibana's off-chain roles.
//!
//! - [`provider`]: loads installed models (llama.cpp text generation, candle embeddings) and
//!   serves them over an OpenAI-shaped HTTP API; every answer carries an
//!   [`InferenceReceipt`](hibana_types::InferenceReceipt) signed by the provider's key that binds
//!   the model's content hash, the exact request and response bytes, token counts and price.
//! - [`gateway`]: the OpenAI-compatible front door (`/v1/models`, `/v1/chat/completions` with
//!   streaming, `/v1/completions`, `/v1/embeddings`, and `/v1/zk/infer`): API keys bound to
//!   accounts ([`keys`]), per-key rate limits and usage, routing to healthy providers with
//!   failover, and receipt verification before any answer reaches the client. With a chain
//!   and an operator key it bills every answer through payment channels (the key's account
//!   pays the operator, the operator pays the provider; vouchers written to a synced ledger
//!   before the answer is sent) and takes each provider's key, price and models from its
//!   registration on chain.
//! - [`recheck`]: judges a receipted answer from its exact bytes by teacher forcing on a local
//!   copy of the model; validators and the gateway re-check a share of what they see and
//!   challenge wrong answers on chain, and validators vote on challenges.
//! - [`zk`]: proved inference on the provider (`POST /v1/zk/infer`): output plus a
//!   zero-knowledge proof of a compiled `.zkm` model, with the input private or public; the
//!   gateway forwards it like the other endpoints.
//! - [`audit`]: Solidity audits as a service (`POST /v1/audit` on providers and the gateway),
//!   scored on `audit` subnets with generated challenges of known answer.
//! - [`data`]: the data network's checks before review (JSON Schema, near-duplicates by
//!   MiniLM embedding, spam heuristics, a zero-shot label classifier): hints for reviewers and
//!   the scripted reviewer's verdict.
//! - [`ask`]: questions in plain language answered by SQL a small CPU model writes over the
//!   analytics tables (retrieved worked examples, decoding under a grammar of the live schema,
//!   execution and a vote), always with the SQL and its rows.
//! - [`validator`]: the model network's validator: challenges every miner of a subnet, scores
//!   the answers and sets weights on chain by commit-reveal.
//!
//! Flow of a chat request: client → gateway (auth, one of its bounded slots for requests in
//! flight or 429 at once, rate limit, pick the least-loaded healthy provider of the model with
//! room; hold the most it can cost on the key's channel, or 402) → provider (generate, sign
//! receipt) → gateway (check the receipt covers the bytes sent and received, names the model
//! asked for and charges no more than the registered price; sign and persist the vouchers) →
//! client, with the receipt in the
//! `x-hibana-receipt` header (or as a final SSE comment when streaming). The provider gets the
//! client's exact bytes, so the client can check the receipt too; when the client named a
//! subnet or a kind of model, the model to serve goes in the `x-hibana-model` header.
#![forbid(unsafe_code)]

pub mod ask;
pub mod audit;
pub mod batch;
pub mod data;
pub mod endpoints;
pub mod gateway;
pub mod keys;
pub mod limits;
pub mod openai;
pub mod provider;
pub mod recheck;
pub mod spot_check;
pub mod validator;
pub mod zk;

/// Connections a role's HTTP listener holds waiting to be accepted (the kernel caps it at
/// `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `addr` with room for a burst of connections: with the usual backlog of 128, the
/// 129th of a burst of new clients has its SYN dropped and connects only a second later.
pub(crate) fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}
