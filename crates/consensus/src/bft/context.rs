//! Hibana's types for the Malachite engine: heights, validator addresses and sets (from
//! staking), values (block hashes), votes, proposals, proposal parts, and ed25519 signing with
//! the validators' own keys.

use std::{fmt, sync::Arc};

use borsh::{BorshDeserialize, BorshSerialize};
use hibana_runtime::staking::ValidatorInfo;
use hibana_types::{Address, Block, BlockHeader, Hash, PublicKey, SecretKey, SignedTransaction};

use super::evidence::EvidenceWatch;
use malachitebft_core_types::{
    self as mc, NilOrVal, Round, SignedExtension, SignedMessage, SigningProvider, VoteType,
    VotingPower,
};

/// One HIB in base units: voting power counts whole HIB so that the total fits in a `u64`.
const BASE_UNITS_PER_POWER: u128 = 1_000_000_000;

/// A block height as the engine sees it.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct Height(pub u64);

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl mc::Height for Height {
    const ZERO: Self = Height(0);
    const INITIAL: Self = Height(1);

    fn increment_by(&self, n: u64) -> Self {
        Height(self.0.saturating_add(n))
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Height)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// A validator's address (the account address of its key).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct ValidatorAddress(pub Address);

impl fmt::Display for ValidatorAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for ValidatorAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl mc::Address for ValidatorAddress {}

/// The value consensus decides on: the hash of a block. The block itself travels in the
/// proposal parts and in sync responses.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct BlockHash(pub Hash);

impl fmt::Display for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl mc::Value for BlockHash {
    type Id = BlockHash;

    fn id(&self) -> BlockHash {
        *self
    }
}

/// An ed25519 signature on a consensus message.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub struct ConsensusSignature(pub [u8; 64]);

impl fmt::Debug for ConsensusSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex_prefix(&self.0))
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A signature of the wrong length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a signature is 64 bytes, found {0}")]
pub struct SignatureLengthError(pub usize);

/// The signing scheme: ed25519 with the validators' account keys (one key per validator for
/// its account, its consensus messages and its libp2p identity).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ed25519;

impl mc::SigningScheme for Ed25519 {
    type DecodingError = SignatureLengthError;
    type Signature = ConsensusSignature;
    type PublicKey = PublicKey;
    type PrivateKey = SecretKey;

    fn decode_signature(bytes: &[u8]) -> Result<ConsensusSignature, SignatureLengthError> {
        <[u8; 64]>::try_from(bytes)
            .map(ConsensusSignature)
            .map_err(|_| SignatureLengthError(bytes.len()))
    }

    fn encode_signature(signature: &ConsensusSignature) -> Vec<u8> {
        signature.0.to_vec()
    }
}

/// A member of the validator set with its voting power.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ConsensusValidator {
    /// Address.
    pub address: ValidatorAddress,
    /// Consensus key.
    pub public_key: PublicKey,
    /// Voting power: bonded stake in whole HIB (at least 1).
    pub voting_power: VotingPower,
}

impl mc::Validator<HibanaContext> for ConsensusValidator {
    fn address(&self) -> &ValidatorAddress {
        &self.address
    }

    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    fn voting_power(&self) -> VotingPower {
        self.voting_power
    }
}

/// The validator set of a height, in staking's order (power descending, then address).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ConsensusValidatorSet {
    validators: Vec<ConsensusValidator>,
}

/// A validator set cannot be empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the validator set is empty: the chain needs at least one bonded, unjailed validator")]
pub struct EmptyValidatorSet;

impl ConsensusValidatorSet {
    /// The set from staking's validator set (voting power = bonded stake in whole HIB).
    pub fn from_staking(set: &[ValidatorInfo]) -> Result<Self, EmptyValidatorSet> {
        let mut validators: Vec<ConsensusValidator> = set
            .iter()
            .map(|v| ConsensusValidator {
                address: ValidatorAddress(v.address),
                public_key: v.public_key,
                voting_power: u64::try_from(v.power.0 / BASE_UNITS_PER_POWER)
                    .unwrap_or(u64::MAX / 1024)
                    .clamp(1, u64::MAX / 1024),
            })
            .collect();
        if validators.is_empty() {
            return Err(EmptyValidatorSet);
        }
        validators.sort_by(|a, b| {
            b.voting_power
                .cmp(&a.voting_power)
                .then(a.address.cmp(&b.address))
        });
        Ok(ConsensusValidatorSet { validators })
    }

    /// The validators.
    pub fn validators(&self) -> &[ConsensusValidator] {
        &self.validators
    }
}

impl mc::ValidatorSet<HibanaContext> for ConsensusValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }

    fn total_voting_power(&self) -> VotingPower {
        self.validators
            .iter()
            .fold(0u64, |sum, v| sum.saturating_add(v.voting_power))
    }

    fn get_by_address(&self, address: &ValidatorAddress) -> Option<&ConsensusValidator> {
        self.validators.iter().find(|v| &v.address == address)
    }

    fn get_by_index(&self, index: usize) -> Option<&ConsensusValidator> {
        self.validators.get(index)
    }
}

/// A prevote or precommit for a block hash (or nil).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub struct ConsensusVote {
    /// Prevote or precommit.
    pub vote_type: VoteType,
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// The block voted for, or nil.
    pub value: NilOrVal<BlockHash>,
    /// The voter.
    pub validator: ValidatorAddress,
}

impl mc::Vote<HibanaContext> for ConsensusVote {
    fn height(&self) -> Height {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &NilOrVal<BlockHash> {
        &self.value
    }

    fn take_value(self) -> NilOrVal<BlockHash> {
        self.value
    }

    fn vote_type(&self) -> VoteType {
        self.vote_type
    }

    fn validator_address(&self) -> &ValidatorAddress {
        &self.validator
    }

    // Vote extensions are not used: votes carry none and ignore any given.
    fn extension(&self) -> Option<&SignedExtension<HibanaContext>> {
        None
    }

    fn take_extension(&mut self) -> Option<SignedExtension<HibanaContext>> {
        None
    }

    fn extend(self, _extension: SignedExtension<HibanaContext>) -> Self {
        self
    }
}

/// A proposal: the block hash a proposer puts forward at a height and round.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ConsensusProposal {
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// The proposed block's hash.
    pub value: BlockHash,
    /// The round of the proof of lock, or nil.
    pub pol_round: Round,
    /// The proposer.
    pub proposer: ValidatorAddress,
}

impl mc::Proposal<HibanaContext> for ConsensusProposal {
    fn height(&self) -> Height {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &BlockHash {
        &self.value
    }

    fn take_value(self) -> BlockHash {
        self.value
    }

    fn pol_round(&self) -> Round {
        self.pol_round
    }

    fn validator_address(&self) -> &ValidatorAddress {
        &self.proposer
    }
}

/// A proposed block with the round it is proposed in, as the proposer streams it to the other
/// validators next to the signed proposal (which carries only the block's hash).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BlockPart {
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// The round in which the block was first proposed, if re-proposed.
    pub valid_round: Round,
    /// The proposer of this round.
    pub proposer: ValidatorAddress,
    /// The block.
    pub block: Block,
}

/// The first part of a streamed block: everything but the transactions, which follow in
/// `chunks` [`Part::BlockTxs`] parts.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ProposalInit {
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// The round in which the block was first proposed, if re-proposed.
    pub valid_round: Round,
    /// The proposer of this round.
    pub proposer: ValidatorAddress,
    /// The block's header.
    pub header: BlockHeader,
    /// How many transaction chunks follow.
    pub chunks: u32,
    /// The proposer's signature over the fields above ([`Ed25519Signer::sign_init`]): the header
    /// commits to the transactions (`tx_root`), so a stream whose init verifies can carry only
    /// the proposer's block.
    pub signature: ConsensusSignature,
}

/// What a [`ProposalInit`]'s signature covers: every field but the signature.
#[derive(BorshSerialize)]
struct InitFields<'a> {
    height: &'a Height,
    round: &'a Round,
    valid_round: &'a Round,
    proposer: &'a ValidatorAddress,
    header: &'a BlockHeader,
    chunks: u32,
}

impl ProposalInit {
    fn signed_fields(&self) -> InitFields<'_> {
        InitFields {
            height: &self.height,
            round: &self.round,
            valid_round: &self.valid_round,
            proposer: &self.proposer,
            header: &self.header,
            chunks: self.chunks,
        }
    }
}

/// What travels on the engine's proposal-part channel: a proposed block, streamed as an
/// [`Part::Init`] and chunks of its transactions, or transactions a node accepted from its
/// clients and passes on to every other mempool (transaction gossip).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Part {
    /// The start of a proposed block (stream sequence 0).
    Init(Box<ProposalInit>),
    /// The next chunk of the proposed block's transactions (sequences 1 to `chunks`).
    BlockTxs(Vec<SignedTransaction>),
    /// Transactions for the other nodes' mempools.
    Txs(Vec<SignedTransaction>),
}

impl mc::ProposalPart<HibanaContext> for Part {
    fn is_first(&self) -> bool {
        !matches!(self, Part::BlockTxs(_))
    }

    fn is_last(&self) -> bool {
        !matches!(self, Part::Init(_))
    }
}

/// Hibana's Malachite context.
#[derive(Clone, Copy, Debug, Default)]
pub struct HibanaContext;

impl mc::Context for HibanaContext {
    type Address = ValidatorAddress;
    type Height = Height;
    type ProposalPart = Part;
    type Proposal = ConsensusProposal;
    type Validator = ConsensusValidator;
    type ValidatorSet = ConsensusValidatorSet;
    type Value = BlockHash;
    type Vote = ConsensusVote;
    type Extension = Vec<u8>;
    type SigningScheme = Ed25519;

    /// Round robin over the set in its canonical order, shifted by height.
    fn select_proposer<'a>(
        &self,
        validator_set: &'a ConsensusValidatorSet,
        height: Height,
        round: Round,
    ) -> &'a ConsensusValidator {
        proposer_of(validator_set, height, round)
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: BlockHash,
        pol_round: Round,
        address: ValidatorAddress,
    ) -> ConsensusProposal {
        ConsensusProposal {
            height,
            round,
            value,
            pol_round,
            proposer: address,
        }
    }

    fn new_prevote(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<BlockHash>,
        address: ValidatorAddress,
    ) -> ConsensusVote {
        ConsensusVote {
            vote_type: VoteType::Prevote,
            height,
            round,
            value: value_id,
            validator: address,
        }
    }

    fn new_precommit(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<BlockHash>,
        address: ValidatorAddress,
    ) -> ConsensusVote {
        ConsensusVote {
            vote_type: VoteType::Precommit,
            height,
            round,
            value: value_id,
            validator: address,
        }
    }
}

/// The proposer of a height and round: round robin over the set, shifted by height.
pub fn proposer_of(
    set: &ConsensusValidatorSet,
    height: Height,
    round: Round,
) -> &ConsensusValidator {
    let count = set.validators.len().max(1) as u64;
    let round = u64::try_from(round.as_i64()).unwrap_or(0);
    let index = height.0.wrapping_add(round) % count;
    // The set is never empty (`from_staking` refuses it), so the index is in range.
    &set.validators[usize::try_from(index).unwrap_or(0)]
}

/// Signs and verifies consensus messages with a validator's key. Every signature covers the
/// chain id and the kind of message, so it cannot be replayed on another chain or as another
/// kind of message.
#[derive(Clone)]
pub struct Ed25519Signer {
    key: SecretKey,
    chain_id: String,
    watch: Option<Arc<EvidenceWatch>>,
}

impl fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ed25519Signer({})", self.key.public_key().address())
    }
}

impl Ed25519Signer {
    /// A signer for `chain_id` with `key`.
    pub fn new(key: SecretKey, chain_id: &str) -> Self {
        Ed25519Signer {
            key,
            chain_id: chain_id.to_string(),
            watch: None,
        }
    }

    /// The same signer, handing every vote it verifies to `watch`.
    pub fn watching(self, watch: Arc<EvidenceWatch>) -> Self {
        Ed25519Signer {
            watch: Some(watch),
            ..self
        }
    }

    /// Signs the start of a proposed block's stream.
    pub fn sign_init(&self, init: &ProposalInit) -> ConsensusSignature {
        self.sign("proposal-init", &init.signed_fields())
    }

    /// Whether `init` carries a signature of `public_key` over its fields.
    pub fn verify_init(&self, init: &ProposalInit, public_key: &PublicKey) -> bool {
        self.verify(
            "proposal-init",
            &init.signed_fields(),
            &init.signature,
            public_key,
        )
    }

    fn sign_bytes<T: BorshSerialize>(&self, kind: &str, message: &T) -> Vec<u8> {
        sign_bytes(&self.chain_id, kind, message)
    }

    fn sign<T: BorshSerialize>(&self, kind: &str, message: &T) -> ConsensusSignature {
        ConsensusSignature(self.key.sign(&self.sign_bytes(kind, message)).0)
    }

    fn verify<T: BorshSerialize>(
        &self,
        kind: &str,
        message: &T,
        signature: &ConsensusSignature,
        public_key: &PublicKey,
    ) -> bool {
        public_key
            .verify(
                &self.sign_bytes(kind, message),
                &hibana_types::Signature(signature.0),
            )
            .is_ok()
    }
}

/// The bytes a consensus signature covers: a domain tag, the chain id, the message kind and the
/// message's borsh encoding (the definition lives in `hibana-types`, where the chain checks
/// equivocation evidence).
pub fn sign_bytes<T: BorshSerialize>(chain_id: &str, kind: &str, message: &T) -> Vec<u8> {
    hibana_types::consensus_sign_bytes(chain_id, kind, message)
}

impl SigningProvider<HibanaContext> for Ed25519Signer {
    fn sign_vote(&self, vote: ConsensusVote) -> SignedMessage<HibanaContext, ConsensusVote> {
        let signature = self.sign("vote", &vote);
        SignedMessage::new(vote, signature)
    }

    fn verify_signed_vote(
        &self,
        vote: &ConsensusVote,
        signature: &ConsensusSignature,
        public_key: &PublicKey,
    ) -> bool {
        let valid = self.verify("vote", vote, signature, public_key);
        if valid
            && let Some(watch) = &self.watch
            && let Some(evidence) =
                watch.observe(vote, &hibana_types::Signature(signature.0), public_key)
        {
            tracing::warn!(
                validator = %evidence.first.vote.validator,
                height = evidence.first.vote.height,
                "a validator signed two conflicting votes"
            );
        }
        valid
    }

    fn sign_proposal(
        &self,
        proposal: ConsensusProposal,
    ) -> SignedMessage<HibanaContext, ConsensusProposal> {
        let signature = self.sign("proposal", &proposal);
        SignedMessage::new(proposal, signature)
    }

    fn verify_signed_proposal(
        &self,
        proposal: &ConsensusProposal,
        signature: &ConsensusSignature,
        public_key: &PublicKey,
    ) -> bool {
        self.verify("proposal", proposal, signature, public_key)
    }

    fn sign_proposal_part(&self, part: Part) -> SignedMessage<HibanaContext, Part> {
        let signature = self.sign("part", &part);
        SignedMessage::new(part, signature)
    }

    fn verify_signed_proposal_part(
        &self,
        part: &Part,
        signature: &ConsensusSignature,
        public_key: &PublicKey,
    ) -> bool {
        self.verify("part", part, signature, public_key)
    }

    fn sign_vote_extension(&self, extension: Vec<u8>) -> SignedMessage<HibanaContext, Vec<u8>> {
        let signature = self.sign("extension", &extension);
        SignedMessage::new(extension, signature)
    }

    fn verify_signed_vote_extension(
        &self,
        extension: &Vec<u8>,
        signature: &ConsensusSignature,
        public_key: &PublicKey,
    ) -> bool {
        self.verify("extension", extension, signature, public_key)
    }
}
