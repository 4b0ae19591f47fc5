//! Verify records: registered ZK models, verified inferences, challenges against signed
//! inference receipts, the rules' constants and their state keys.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{Address, Amount, BASE_UNITS_PER_HIB, Hash, InferenceReceipt};

/// A registered model.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ZkModelRecord {
    /// Model commitment (content hash of the quantised model).
    pub commitment: [u8; 32],
    /// Who registered it.
    pub owner: Address,
    /// log2 of the circuit's rows.
    pub k: u32,
    /// Shape of one input.
    pub input_shape: Vec<u32>,
    /// Shape of the output.
    pub output_shape: Vec<u32>,
    /// Fractional bits of the output values.
    pub output_scale: u32,
    /// Height of registration.
    pub registered_at: u64,
}

/// A verified inference.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ZkInferenceRecord {
    /// blake3 of the proof file: the result's id.
    pub id: [u8; 32],
    /// Model commitment.
    pub model: [u8; 32],
    /// Hash commitment to the input and salt (Poseidon for halo2, Poseidon2 for a STARK).
    pub input_commitment: [u8; 32],
    /// The input, when the prover revealed it.
    pub public_input: Option<Vec<i64>>,
    /// Quantised output (real value = output / 2^output_scale).
    pub output: Vec<i64>,
    /// Predicted class.
    pub class: u32,
    /// Who submitted it.
    pub submitter: Address,
    /// Height of inclusion.
    pub height: u64,
}

/// State key of a registered model's record.
pub fn model_key(commitment: &[u8; 32]) -> Vec<u8> {
    [b"verify/model/".as_slice(), commitment].concat()
}

/// State key of a verified inference's record.
pub fn inference_key(id: &[u8; 32]) -> Vec<u8> {
    [b"verify/inference/".as_slice(), id].concat()
}

/// The account that holds what open challenges lock: each challenger's deposit and the part of
/// the challenged provider's bond held until the verdict. Nobody has its key: only the verify
/// rules move its tokens.
pub const CHALLENGE_ESCROW: Address = Address(*b"hibana/verify/escrow");

/// The `subnet` of a challenge judged by the chain's validators rather than a subnet's: a
/// batch inference line (`DisputeBatchLine`). No subnet has this id.
pub const CHAIN_JUDGED: u32 = u32::MAX;

/// Largest request a challenge carries, in bytes.
pub const MAX_CHALLENGE_REQUEST_BYTES: usize = 64 * 1024;
/// Largest response a challenge carries, in bytes.
pub const MAX_CHALLENGE_RESPONSE_BYTES: usize = 64 * 1024;
/// Smallest deposit a challenger locks (1 HIB): what a challenge the validators reject costs.
pub const MIN_CHALLENGE_DEPOSIT: Amount = Amount(BASE_UNITS_PER_HIB);
/// Oldest receipt that may be challenged: 24 hours before the block time.
pub const CHALLENGE_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;
/// How far past the block time a receipt's timestamp may be (the provider's clock and the
/// validators' differ): 5 minutes.
pub const CHALLENGE_FUTURE_SLACK_MS: u64 = 5 * 60 * 1000;
/// Blocks the validators have to vote: a challenge opened at height `h` takes votes up to and
/// including block `h + CHALLENGE_VOTING_BLOCKS`, and is closed with no quorum at its end if
/// still undecided.
pub const CHALLENGE_VOTING_BLOCKS: u64 = 600;
/// Basis points: the unit of the shares below.
pub const BPS: u32 = 10_000;
/// Share of the provider's bond held when a challenge opens and slashed if it is upheld (10%).
pub const CHALLENGE_SLASH_BPS: u32 = 1_000;
/// Least a challenge holds (1 HIB), unless the bond is smaller: then all of it.
pub const MIN_CHALLENGE_SLASH: Amount = Amount(BASE_UNITS_PER_HIB);
/// Share of an upheld slash, after the challenger's refund of the receipt's price, that rewards
/// the challenger (50%).
pub const CHALLENGER_REWARD_BPS: u32 = 5_000;
/// Share of an upheld slash, after the refund, shared by the validators who voted "wrong", in
/// proportion to their stake (20%). The rest is burned.
pub const UPHELD_VOTERS_BPS: u32 = 2_000;
/// Share of a rejected challenge's deposit shared by the validators who voted "right", in
/// proportion to their stake (50%). The rest is burned.
pub const REJECTED_VOTERS_BPS: u32 = 5_000;
/// Most challenges one list query returns.
pub const MAX_CHALLENGE_LIST: u32 = 100;
/// Most challenge ids one list query reads (newest first); page further with `before`.
pub const MAX_CHALLENGE_SCAN: u64 = 10_000;

/// Where a challenge stands.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeStatus {
    /// Taking votes.
    Open,
    /// More than half of the electorate's stake found the answer wrong: the provider was
    /// slashed.
    Upheld,
    /// At least half of the electorate's stake found the answer right: the deposit was lost.
    Rejected,
    /// Neither side reached its threshold by the deadline: everything went back.
    NoQuorum,
}

impl ChallengeStatus {
    /// The status's name as the JSON and the CLI write it.
    pub fn name(self) -> &'static str {
        match self {
            ChallengeStatus::Open => "open",
            ChallengeStatus::Upheld => "upheld",
            ChallengeStatus::Rejected => "rejected",
            ChallengeStatus::NoQuorum => "no_quorum",
        }
    }
}

/// How a resolved challenge moved tokens. The parts add up to exactly what it held
/// (`deposit + held`): `slashed + bond_returned == held` and
/// `refund + challenger_reward + voters' shares + burned == slashed + deposit - deposit_returned`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ChallengeSettlement {
    /// Height of the resolution.
    pub height: u64,
    /// Taken from the provider's bond for good.
    pub slashed: Amount,
    /// Held from the provider's bond and given back (to the bond, or to its balance if it has
    /// left the market).
    pub bond_returned: Amount,
    /// The challenger's deposit given back.
    pub deposit_returned: Amount,
    /// The receipt's price refunded to the challenger.
    pub refund: Amount,
    /// The challenger's reward.
    pub challenger_reward: Amount,
    /// The winning voters' shares, by account.
    pub voters: Vec<(Address, Amount)>,
    /// Tokens burned (the total supply fell by this much).
    pub burned: Amount,
}

/// A challenge against a signed inference receipt.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Challenge {
    /// Id (counting from 0).
    pub id: u64,
    /// The subnet whose validators judge.
    pub subnet: u32,
    /// Who challenged.
    pub challenger: Address,
    /// The provider whose answer is challenged (`receipt.body.provider`'s address).
    pub provider: Address,
    /// blake3 of the receipt body's encoding: a receipt is challenged once.
    pub receipt_id: Hash,
    /// The signed receipt.
    pub receipt: InferenceReceipt,
    /// The challenger's deposit, held in [`CHALLENGE_ESCROW`].
    pub deposit: Amount,
    /// The part of the provider's bond held in [`CHALLENGE_ESCROW`] until the verdict: the
    /// slash if the challenge is upheld.
    pub held: Amount,
    /// Height it was opened.
    pub opened_at: u64,
    /// Last height that takes votes.
    pub deadline: u64,
    /// Total stake of the electorate: the subnet's validator neurons holding a permit (with
    /// their stake at the subnet's last epoch) when the challenge opened.
    pub electorate_stake: Amount,
    /// Number of validators in the electorate.
    pub electorate_size: u32,
    /// Stake that voted "wrong".
    pub wrong_stake: Amount,
    /// Stake that voted "right".
    pub right_stake: Amount,
    /// Votes cast.
    pub votes: u32,
    /// Where it stands.
    pub status: ChallengeStatus,
    /// How it moved tokens, once resolved.
    pub settlement: Option<ChallengeSettlement>,
}

/// The request and response bytes a challenge carries, stored apart from its record so that
/// reading the record stays cheap.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ChallengeContent {
    /// The request bytes the receipt covers.
    pub request: Vec<u8>,
    /// The response bytes the receipt covers.
    pub response: Vec<u8>,
}

/// One validator of a challenge's electorate.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Elector {
    /// The validator neuron's account.
    pub account: Address,
    /// Its stake when the challenge opened: the weight of its vote.
    pub stake: Amount,
}

/// Which challenges a list query returns (every field optional).
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(default, deny_unknown_fields)]
pub struct ChallengeFilter {
    /// Only challenges in this status.
    pub status: Option<ChallengeStatus>,
    /// Only challenges judged by this subnet.
    pub subnet: Option<u32>,
    /// Only challenges against this provider.
    pub provider: Option<Address>,
    /// Only challenges with an id below this one (to page back).
    pub before: Option<u64>,
    /// At most this many (default and cap [`MAX_CHALLENGE_LIST`]).
    pub limit: Option<u32>,
}

impl ChallengeFilter {
    /// Whether `c` passes the filter (all but the paging fields).
    pub fn matches(&self, c: &Challenge) -> bool {
        self.status.is_none_or(|s| s == c.status)
            && self.subnet.is_none_or(|s| s == c.subnet)
            && self.provider.is_none_or(|p| p == c.provider)
    }
}

/// State key of the next challenge id (`u64`).
pub const NEXT_CHALLENGE_KEY: &[u8] = b"verify/next_challenge";

/// State key of a challenge's record.
pub fn challenge_key(id: u64) -> Vec<u8> {
    [b"verify/challenge/".as_slice(), &id.to_be_bytes()].concat()
}

/// State key of a challenge's request and response ([`ChallengeContent`]).
pub fn challenge_content_key(id: u64) -> Vec<u8> {
    [b"verify/challenge_content/".as_slice(), &id.to_be_bytes()].concat()
}

/// State key of a challenge's electorate (`Vec<Elector>`, by account).
pub fn electorate_key(id: u64) -> Vec<u8> {
    [
        b"verify/challenge_electorate/".as_slice(),
        &id.to_be_bytes(),
    ]
    .concat()
}

/// State key of an account's vote on a challenge (`bool`: `true` for "wrong").
pub fn challenge_vote_key(id: u64, voter: &Address) -> Vec<u8> {
    [
        b"verify/challenge_vote/".as_slice(),
        &id.to_be_bytes(),
        &voter.0,
    ]
    .concat()
}

/// State key of the challenge of a receipt (`u64`), by the receipt id.
pub fn challenged_receipt_key(receipt_id: &Hash) -> Vec<u8> {
    [b"verify/challenged/".as_slice(), &receipt_id.0].concat()
}

/// State key of the challenges whose voting ends with block `height` (`Vec<u64>`).
pub fn challenge_deadline_key(height: u64) -> Vec<u8> {
    [
        b"verify/challenge_deadline/".as_slice(),
        &height.to_be_bytes(),
    ]
    .concat()
}

/// A receipt's id: blake3 of its body's canonical encoding (the signature is left out, so a
/// receipt is one id however it was signed).
pub fn receipt_id(receipt: &InferenceReceipt) -> Hash {
    Hash::digest(&crate::encode(&receipt.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_escrow_address_is_the_one_the_readme_names() {
        assert_eq!(
            CHALLENGE_ESCROW.to_string(),
            "hib1dp5kyctwvyhhvetjd9n8jtm9wd3hymmhxvd3cf"
        );
    }
}
