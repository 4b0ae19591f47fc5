//! JSON-RPC methods of challenges against signed inference receipts: lists that filter by
//! status, subnet and provider, and one challenge with the request and response bytes its
//! receipt covers, so a validator can re-run the request before it votes.

use hibana_types::records::verify::{Challenge, ChallengeFilter};
use hibana_types::{Address, Amount};
#[cfg_attr(not(feature = "server"), allow(unused_imports))]
use jsonrpsee::core::RpcResult;
use jsonrpsee::proc_macros::rpc;
use serde::{Deserialize, Serialize};

/// How an elector voted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeVote {
    /// The provider's answer is wrong.
    Wrong,
    /// The provider's answer is right.
    Right,
}

impl ChallengeVote {
    /// The vote a stored `wrong` flag records.
    pub fn from_wrong(wrong: bool) -> ChallengeVote {
        if wrong {
            ChallengeVote::Wrong
        } else {
            ChallengeVote::Right
        }
    }
}

/// A validator of a challenge's electorate and its vote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectorView {
    /// The validator's account.
    pub account: Address,
    /// Its stake when the challenge opened: the weight of its vote.
    pub stake: Amount,
    /// Its vote, if it voted.
    pub vote: Option<ChallengeVote>,
}

/// A challenge with the bytes it carries and its electorate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeView {
    /// Height the view was read at.
    pub height: u64,
    /// The challenge.
    pub challenge: Challenge,
    /// The batch and line it disputes, for a challenge of a batch line.
    #[serde(default)]
    pub batch_line: Option<(u64, u32)>,
    /// The request bytes the receipt covers (hex in JSON).
    #[serde(with = "hex_bytes")]
    pub request: Vec<u8>,
    /// The response bytes the receipt covers (hex in JSON).
    #[serde(with = "hex_bytes")]
    pub response: Vec<u8>,
    /// The electorate, by account, with the votes cast.
    pub electorate: Vec<ElectorView>,
}

/// Bytes as a hex string.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

/// The challenges' JSON-RPC API.
#[cfg_attr(feature = "server", rpc(server, client))]
#[cfg_attr(not(feature = "server"), rpc(client))]
pub trait VerifyApi {
    /// Challenges, newest first, filtered by status, subnet and provider (all optional; at
    /// most 100, page back with `before`).
    #[method(name = "verify_challenges")]
    async fn verify_challenges(&self, filter: Option<ChallengeFilter>)
    -> RpcResult<Vec<Challenge>>;

    /// A challenge by id, with its request and response bytes and its electorate's votes.
    #[method(name = "verify_challenge")]
    async fn verify_challenge(&self, id: u64) -> RpcResult<Option<ChallengeView>>;
}
