//! Transactions and the messages they carry.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{Address, Amount, Hash, PublicKey, SecretKey, Signature, SignatureError, encode};

/// Domain separator prepended to the borsh encoding of a transaction before signing, so a
/// transaction signature can never be replayed as a signature over anything else.
pub const TX_SIGN_DOMAIN: &[u8] = b"hibana/tx/v1\0";

/// An unsigned transaction: who signs, which chain, the account nonce, the fee and the messages.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Transaction {
    /// The chain this transaction is valid on.
    pub chain_id: String,
    /// The signer's public key; the sender is its address.
    pub signer: PublicKey,
    /// The sender's account nonce (number of transactions it has had included).
    pub nonce: u64,
    /// Fee paid to the block proposer, even if a message fails.
    pub fee: Amount,
    /// The messages, executed in order and atomically.
    pub messages: Vec<Message>,
}

/// A transaction with the signer's ed25519 signature.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedTransaction {
    /// The signed transaction.
    pub tx: Transaction,
    /// Signature over [`Transaction::sign_bytes`].
    pub signature: Signature,
}

/// One action inside a transaction. New components append variants at the end, so that
/// existing encodings never change.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Move tokens to another account (bank).
    Transfer(Transfer),
    /// Bond tokens to a validator (staking).
    Bond(Bond),
    /// Start unbonding tokens from a validator (staking).
    Unbond(Unbond),
    /// Register a model whose inferences can be proved in zero knowledge (verify).
    RegisterZkModel(RegisterZkModel),
    /// Submit a proved inference of a registered model (verify).
    SubmitZkInference(SubmitZkInference),
    /// Create a subnet for one task, locking a deposit (subnets).
    CreateSubnet(CreateSubnet),
    /// Register the signer as a miner or validator of a subnet (subnets).
    RegisterNeuron(RegisterNeuron),
    /// Commit to a validator's weights by their hash (subnets).
    CommitWeights(CommitWeights),
    /// Reveal weights committed earlier (subnets).
    RevealWeights(RevealWeights),
    /// Prove that a validator equivocated, to slash and jail it (staking).
    SubmitEvidence(SubmitEvidence),
    /// Return the signer, a jailed validator, to the validator set once its jail period is
    /// over (staking).
    Unjail(Unjail),
    /// Register the signer as a compute provider, bonding stake (market).
    RegisterProvider(RegisterProvider),
    /// Change a provider's attributes, price or endpoint (market).
    UpdateProvider(UpdateProvider),
    /// Leave the market and take the bond back (market).
    DeregisterProvider(DeregisterProvider),
    /// Ask for compute, locking a deposit (market).
    CreateOrder(CreateOrder),
    /// Close an unmatched order, releasing every deposit (market).
    CloseOrder(CloseOrder),
    /// Offer to serve an order at a price, locking a bid deposit (market).
    PlaceBid(PlaceBid),
    /// Accept a bid: the order becomes a lease (market).
    AcceptBid(AcceptBid),
    /// Pay a lease's provider what it has earned so far (market).
    WithdrawLease(WithdrawLease),
    /// Close a lease, settling what is owed (market).
    CloseLease(CloseLease),
    /// Lock a deposit for a payee, who redeems vouchers against it (channels).
    OpenChannel(OpenChannel),
    /// Add to a channel's deposit, or move its expiry later (channels).
    TopUpChannel(TopUpChannel),
    /// Redeem the latest vouchers of channels paying the signer (channels).
    RedeemVouchers(RedeemVouchers),
    /// Close a channel, or start closing it before its expiry (channels).
    CloseChannel(CloseChannel),
    /// Challenge a signed inference receipt as a wrong answer, locking a deposit, for the
    /// validators of a subnet to judge (verify).
    ChallengeReceipt(ChallengeReceipt),
    /// Vote on an open challenge as a validator of its subnet (verify).
    VoteChallenge(VoteChallenge),
    /// Open a bounty for data or labels, escrowing its rewards (data).
    CreateBounty(CreateBounty),
    /// Stake to review a bounty's items (data).
    JoinReviewers(JoinReviewers),
    /// Submit an item to a bounty by its content hash, locking a contribution stake (data).
    SubmitContribution(SubmitContribution),
    /// Commit to a verdict on an assigned item (data).
    CommitReview(CommitReview),
    /// Reveal a committed verdict (data).
    RevealReview(RevealReview),
    /// Stop a bounty's submissions before its deadline (data).
    CloseBounty(CloseBounty),
    /// Settle a bounty and publish its dataset's Merkle root (data).
    FinalizeDataset(FinalizeDataset),
    /// Add to a lease's escrow, settling what is owed first (market).
    TopUpLease(TopUpLease),
    /// Give a lease's provider a training job (market).
    SubmitJob(SubmitJob),
    /// Commit the state hashes of a training job's next steps (market).
    CommitSteps(CommitSteps),
    /// Show one committed training step wrong by re-running it on chain (market).
    DisputeStep(DisputeStep),
    /// Move a training job to another lease, to go on from its last checkpoint (market).
    MoveJob(MoveJob),
    /// Commit the averaged parameters of a data-parallel job's round (market).
    CommitAverage(CommitAverage),
    /// Show a data-parallel job's committed average wrong by re-averaging on chain (market).
    DisputeAverage(DisputeAverage),
    /// A provider proves it is up (market).
    Heartbeat(Heartbeat),
    /// Let the chain accept an order's cheapest bid from a reputable provider (market).
    SetAutoAccept(SetAutoAccept),
    /// A validator attests the attributes it audited on a provider (market).
    AttestProvider(AttestProvider),
    /// Give a lease's provider a batch of inference requests (market).
    SubmitBatch(SubmitBatch),
    /// Commit the results root of a batch (market).
    CommitBatch(CommitBatch),
    /// Challenge one answered line of a batch as wrong, for the chain's validators to judge
    /// (verify).
    DisputeBatchLine(DisputeBatchLine),
    /// Ask a batch's provider to post one line on chain, or be slashed (market).
    RequestBatchLine(RequestBatchLine),
    /// Post a requested batch line on chain with its proofs (market).
    PostBatchLine(PostBatchLine),
}

impl Message {
    /// The accounts this message names besides its sender (recipients, validators), which an
    /// account's history lists it under. A new message names its accounts here.
    pub fn accounts(&self) -> Vec<Address> {
        match self {
            Message::Transfer(t) => vec![t.to],
            Message::Bond(b) => vec![b.validator],
            Message::Unbond(u) => vec![u.validator],
            Message::SubmitEvidence(e) => vec![e.equivocation.first.vote.validator],
            Message::RegisterZkModel(_)
            | Message::Unjail(_)
            | Message::SubmitZkInference(_)
            | Message::CreateSubnet(_)
            | Message::RegisterNeuron(_)
            | Message::CommitWeights(_)
            | Message::RevealWeights(_)
            | Message::RegisterProvider(_)
            | Message::UpdateProvider(_)
            | Message::DeregisterProvider(_)
            | Message::CreateOrder(_)
            | Message::CloseOrder(_)
            | Message::WithdrawLease(_)
            | Message::PlaceBid(_)
            | Message::CloseLease(_)
            | Message::TopUpLease(_)
            | Message::SubmitJob(_)
            | Message::CommitSteps(_)
            | Message::DisputeStep(_)
            | Message::MoveJob(_)
            | Message::CommitAverage(_)
            | Message::DisputeAverage(_)
            | Message::Heartbeat(_)
            | Message::SetAutoAccept(_)
            | Message::TopUpChannel(_)
            | Message::RedeemVouchers(_)
            | Message::CloseChannel(_) => Vec::new(),
            Message::AcceptBid(a) => vec![a.provider],
            Message::AttestProvider(a) => vec![a.provider],
            Message::SubmitBatch(_)
            | Message::CommitBatch(_)
            | Message::RequestBatchLine(_)
            | Message::PostBatchLine(_) => Vec::new(),
            Message::DisputeBatchLine(d) => vec![d.receipt.body.provider.address()],
            Message::OpenChannel(o) => vec![o.payee],
            Message::ChallengeReceipt(c) => vec![c.receipt.body.provider.address()],
            // The challenge's parties are in state, not in the message.
            Message::VoteChallenge(_) => Vec::new(),
            // A bounty's parties are in state, not in its messages.
            Message::CreateBounty(_)
            | Message::JoinReviewers(_)
            | Message::SubmitContribution(_)
            | Message::CommitReview(_)
            | Message::RevealReview(_)
            | Message::CloseBounty(_)
            | Message::FinalizeDataset(_) => Vec::new(),
        }
    }
}

/// Register the signer as a compute provider.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RegisterProvider {
    /// What it offers.
    pub attributes: crate::records::market::ProviderAttributes,
    /// Asking price per block, in base units.
    pub price_per_block: Amount,
    /// Price per token of an inference request it answers, in base units (0: free).
    pub price_per_token: Amount,
    /// Where it answers (`http://` or `https://` URL).
    pub endpoint: String,
    /// Stake bond moved from the signer's balance into the market's escrow.
    pub bond: Amount,
}

/// Replace a provider's attributes, price and endpoint (the bond stays).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct UpdateProvider {
    /// What it offers now.
    pub attributes: crate::records::market::ProviderAttributes,
    /// Asking price per block, in base units.
    pub price_per_block: Amount,
    /// Price per token of an inference request it answers, in base units (0: free).
    pub price_per_token: Amount,
    /// Where it answers.
    pub endpoint: String,
}

/// A provider with no open bid and no active lease leaves the market; its bond returns.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct DeregisterProvider {}

/// Ask for compute.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CreateOrder {
    /// What a provider must offer.
    pub resources: crate::records::market::Resources,
    /// Lease length in blocks.
    pub duration_blocks: u64,
    /// Highest price per block, in base units.
    pub max_price_per_block: Amount,
    /// Deposit locked in escrow: at least `max_price_per_block` × `MIN_DEPOSIT_BLOCKS`.
    pub deposit: Amount,
    /// The order expires unmatched at the end of this block.
    pub expires_at: u64,
}

/// The owner closes an unmatched order.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CloseOrder {
    /// The order id.
    pub order: u64,
}

/// A provider bids on an order.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct PlaceBid {
    /// The order id.
    pub order: u64,
    /// Price per block offered, at most the order's maximum.
    pub price_per_block: Amount,
}

/// The order's owner accepts a provider's bid.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AcceptBid {
    /// The order id.
    pub order: u64,
    /// The provider whose bid is accepted.
    pub provider: Address,
}

/// The provider of a lease collects what it has earned.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct WithdrawLease {
    /// The lease id.
    pub lease: u64,
}

/// A lease's client adds to its escrow, so that it runs longer before it is overdrawn.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TopUpLease {
    /// The lease id.
    pub lease: u64,
    /// Added to the escrow, from the client's balance.
    pub amount: Amount,
}

/// A lease's client gives its provider a training job.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SubmitJob {
    /// The lease id.
    pub lease: u64,
    /// What to train.
    pub spec: crate::records::market::TrainingSpec,
    /// More of the client's leases to train on at once, data parallel: every worker takes
    /// `checkpoint_every` local steps, then their parameters are averaged (`CommitAverage`).
    #[serde(default)]
    pub with: Vec<u64>,
}

/// A worker of a data-parallel job commits the state hash of the parameters all workers'
/// round `round` ends with, averaged: the next round starts from it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CommitAverage {
    /// The job id.
    pub job: u64,
    /// The round (0 is the first).
    pub round: u64,
    /// The state hash (`hibana_train::state_hash`) of the average at the round's last global
    /// step.
    pub hash: Hash,
}

/// Anyone shows a data-parallel job's committed average of round `round` wrong: the message
/// carries every worker's parameters at the round's end (each must hash to that worker's own
/// last commitment), and the chain averages them. Locks
/// [`DISPUTE_DEPOSIT`](crate::records::market::DISPUTE_DEPOSIT) from the sender.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct DisputeAverage {
    /// The job id.
    pub job: u64,
    /// The round.
    pub round: u64,
    /// Each worker's parameters at the round's end, in worker order.
    pub parts: Vec<Vec<i32>>,
}

/// A job's provider commits the state hash after each of its next steps: one checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CommitSteps {
    /// The job id.
    pub job: u64,
    /// Steps the job had committed before this message: a commit repeated after a lost answer
    /// is refused instead of being recorded as the next steps.
    pub after: u64,
    /// The hash after each step, in order, starting with the first uncommitted step; exactly
    /// one checkpoint's worth (fewer only for the last).
    pub hashes: Vec<Hash>,
}

/// One row of a training dataset with the proof that it is row `index` under the job's
/// dataset root.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ProvenRow {
    /// Its index in the dataset.
    pub index: u64,
    /// Its class.
    pub label: u32,
    /// Its features, fixed-point (65,536 is 1.0).
    pub features: Vec<i32>,
    /// Merkle proof of its leaf under the dataset root.
    pub proof: Vec<crate::MerkleStep>,
}

/// Anyone shows that the provider's hash after `step` is wrong: the message carries the
/// parameters before the step (they must hash to the provider's own hash of step `step - 1`)
/// and the step's batch rows with their proofs; the chain re-runs that one step. Locks
/// [`DISPUTE_DEPOSIT`](crate::records::market::DISPUTE_DEPOSIT) from the sender.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct DisputeStep {
    /// The job id.
    pub job: u64,
    /// The disputed step (1 is the first).
    pub step: u64,
    /// The parameters before the step, fixed-point.
    pub params: Vec<i32>,
    /// The step's batch, in batch order.
    pub rows: Vec<ProvenRow>,
}

/// A job's client moves it to another of its leases (its provider stopped, or was too slow):
/// the old lease is closed, and the new lease's provider goes on from the last committed step,
/// whose checkpoint it fetches by its state hash. In a data-parallel job, `replaces` names the
/// worker's lease the new one takes over, and only that worker moves.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct MoveJob {
    /// The job id.
    pub job: u64,
    /// The lease to go on on.
    pub lease: u64,
    /// In a data-parallel job, the lease of the worker replaced.
    #[serde(default)]
    pub replaces: Option<u64>,
}

/// A registered provider proves it is up: its leases pay until `liveness_blocks` after this,
/// and it is listed again if missed checks had unlisted it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Heartbeat {}

/// An order's owner lets the chain accept, at the end of height `at`, the cheapest bid from a
/// listed provider with at least `min_reputation` (ties: the earliest bid). Replaces an earlier
/// rule of the order.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SetAutoAccept {
    /// The order id.
    pub order: u64,
    /// The least reputation (0 to 1,000) of a provider whose bid may be taken.
    pub min_reputation: u32,
    /// The height at whose end the bid is taken: after the current one, before the order
    /// expires.
    pub at: u64,
    /// Take only providers whose attributes a validator attested to meet the order.
    pub attested_only: bool,
}

/// A bonded, unjailed validator attests the attributes it audited on a registered provider
/// (after Akash's auditors); an order's auto-accept rule can require such an attestation.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AttestProvider {
    /// The provider.
    pub provider: Address,
    /// What the validator found.
    pub attributes: crate::records::market::ProviderAttributes,
}

/// A lease's client gives its provider a batch of inference requests: a JSONL file of
/// OpenAI batch lines, named by the Merkle root over the lines' request hashes, uploaded to the
/// provider afterwards.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SubmitBatch {
    /// The lease (the signer's).
    pub lease: u64,
    /// Merkle root over the lines' input leaves.
    pub input_root: Hash,
    /// Lines in the file.
    pub lines: u32,
    /// Size of the file, in bytes.
    pub input_bytes: u64,
    /// Paid for each answered line, on top of the lease: `lines ×` this is held in escrow from
    /// the client and paid for the answered lines once no line can be challenged any more
    /// (refused lines, and every line of a refuted or never-committed batch, are refunded).
    #[serde(default)]
    pub price_per_line: Amount,
}

/// A batch's provider commits the Merkle sum tree root over its lines' results (per line, the
/// id of its receipt or signed refusal, or the blake3 of an unsigned refusal's error body,
/// counting 1 if answered): the client fetches the results and checks them against it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CommitBatch {
    /// The batch id.
    pub batch: u64,
    /// Merkle sum tree root over the lines' result leaves (`crate::count_root`).
    pub results_root: Hash,
    /// Lines answered with a receipt for tokens or a price (which the batch pays): the count
    /// the root holds, or the proof of any line refutes the batch.
    pub answered: u32,
}

/// Anyone but the provider challenges one answered line of a committed batch as a wrong
/// answer: the message carries the line's receipt, its exact request and response bytes, and
/// the Merkle proofs that the request is the line's under the input root and the receipt its
/// result under the results root. The chain's validators re-run it and vote, as for
/// `ChallengeReceipt`; an upheld challenge also refutes the batch and closes its lease.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct DisputeBatchLine {
    /// The batch id.
    pub batch: u64,
    /// The line (0 is the first).
    pub line: u32,
    /// The provider's signed receipt of the line.
    pub receipt: crate::InferenceReceipt,
    /// The line's request bytes (its `body`, as the batch format encodes it).
    pub request: Vec<u8>,
    /// The response bytes the receipt covers.
    pub response: Vec<u8>,
    /// Proof of the line's input leaf under the batch's input root.
    pub input_proof: Vec<crate::MerkleStep>,
    /// Proof of the line's result leaf under the batch's results root (a count tree: it also
    /// shows the answered lines the root counts).
    pub result_proof: Vec<crate::CountStep>,
    /// Deposit locked until the validators decide; lost if they find the answer right.
    pub deposit: Amount,
}

/// Anyone but the provider asks a committed batch's provider to post one line on chain
/// (`PostBatchLine`) within `LINE_ANSWER_BLOCKS`, so that a provider cannot keep a line it got
/// wrong from spot-checkers by not serving it. The requester locks `LINE_REQUEST_DEPOSIT`: paid
/// to whoever posts the line, or back to the requester (with a share of the slash) if nobody
/// does, in which case the batch is refuted and its provider slashed.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RequestBatchLine {
    /// The batch id.
    pub batch: u64,
    /// The line (0 is the first).
    pub line: u32,
}

/// Posts a requested line of a batch on chain: its request and response bytes, the receipt for
/// an answered line (none for a refused one), and the proofs of both under the batch's roots.
/// Anyone holding the line may post it; the chain checks it against the committed roots.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct PostBatchLine {
    /// The batch id.
    pub batch: u64,
    /// The line (0 is the first).
    pub line: u32,
    /// The line's request bytes (its `body`, as the batch format encodes it).
    pub request: Vec<u8>,
    /// The response bytes (the answer, or the error body of a refused line).
    pub response: Vec<u8>,
    /// The provider's signed receipt, for an answered line.
    pub receipt: Option<crate::InferenceReceipt>,
    /// Proof of the line's input leaf under the batch's input root.
    pub input_proof: Vec<crate::MerkleStep>,
    /// Proof of the line's result leaf under the batch's results root (a count tree: it also
    /// shows the answered lines the root counts).
    pub result_proof: Vec<crate::CountStep>,
}

/// Either side of a lease closes it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CloseLease {
    /// The lease id.
    pub lease: u64,
}

/// Challenge a provider's signed answer as wrong. The message carries the receipt and the exact
/// request and response bytes it covers (for a stream: each data payload followed by `\n`), so
/// the chain checks the provider's signature and both hashes without state, and the subnet's
/// validators can re-run the request and vote.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ChallengeReceipt {
    /// The subnet whose validators judge: one the provider serves as a miner.
    pub subnet: u32,
    /// The provider's signed receipt.
    pub receipt: crate::InferenceReceipt,
    /// The request bytes, whose blake3 is the receipt's `request_hash`.
    pub request: Vec<u8>,
    /// The response bytes, whose blake3 is the receipt's `response_hash`.
    pub response: Vec<u8>,
    /// Deposit locked until the challenge is resolved; lost if the validators find the answer
    /// right.
    pub deposit: Amount,
}

/// A validator's vote on an open challenge.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct VoteChallenge {
    /// The challenge id.
    pub id: u64,
    /// `true`: the provider's answer is wrong (uphold); `false`: it is right (reject).
    pub wrong: bool,
}

/// A jailed validator asks to rejoin the validator set (it signs for itself).
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Unjail {}

/// Evidence that a validator signed two conflicting votes.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SubmitEvidence {
    /// The two votes.
    pub equivocation: crate::Equivocation,
}

/// Parameters of a subnet, chosen by its creator.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubnetParams {
    /// Blocks per epoch: the Yuma epoch runs every `tempo` blocks.
    pub tempo: u64,
    /// Share of validator stake (parts per million) whose weights decide a miner's consensus.
    pub kappa_ppm: u32,
    /// Most neurons (miners and validators); a full subnet replaces its lowest-ranked neuron.
    pub max_neurons: u16,
    /// Most validators with a permit (the largest stake holders).
    pub max_validators: u16,
    /// Blocks after registration during which a neuron cannot be replaced.
    pub immunity_period: u64,
    /// Blocks after its last revealed weights for which a validator counts as active.
    pub activity_cutoff: u64,
    /// Weight of the previous bonds in their moving average (parts per million).
    pub bonds_moving_average_ppm: u32,
    /// Share of the network's subnet emission paid to this subnet (parts per million).
    pub emission_share_ppm: u32,
    /// Share of each epoch's emission paid to the owner (parts per million).
    pub owner_cut_ppm: u32,
    /// Blocks between committing weights and the earliest reveal; the reveal window lasts as
    /// long again.
    pub commit_reveal_interval: u64,
    /// Fee burned by each neuron registration.
    pub registration_fee: Amount,
}

impl Default for SubnetParams {
    fn default() -> Self {
        SubnetParams {
            tempo: 100,
            kappa_ppm: 500_000,
            max_neurons: 256,
            max_validators: 64,
            immunity_period: 500,
            activity_cutoff: 5_000,
            bonds_moving_average_ppm: 900_000,
            emission_share_ppm: 100_000,
            owner_cut_ppm: 180_000,
            commit_reveal_interval: 10,
            registration_fee: Amount(1_000_000_000),
        }
    }
}

/// Create a subnet: its name (unique, used by clients to pick it), its task and parameters.
/// The signer becomes its owner and locks the creation deposit.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CreateSubnet {
    /// Unique name: 1 to 32 characters of `a-z`, `0-9` and `-`.
    pub name: String,
    /// The task: `chat`, `text-generation`, `embeddings`, `audit` or `zk-inference`.
    pub task: String,
    /// Parameters.
    pub params: SubnetParams,
}

/// What a neuron does in its subnet.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum NeuronRole {
    /// Serves the task; paid by incentive.
    Miner,
    /// Scores miners and sets weights; paid by dividends.
    Validator,
}

/// Register the signer as a neuron of a subnet, burning the subnet's registration fee.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RegisterNeuron {
    /// The subnet id.
    pub subnet: u32,
    /// Miner or validator.
    pub role: NeuronRole,
    /// Where the neuron answers (`http://` or `https://` URL; a miner speaks the provider API).
    pub endpoint: String,
    /// Content hash of the model it serves (zero for validators).
    pub model: Hash,
}

/// Commit to weights: `commitment` is [`RevealWeights::commitment`] of the later reveal.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CommitWeights {
    /// The subnet id.
    pub subnet: u32,
    /// Hash of the weights, the salt and the committer.
    pub commitment: Hash,
}

/// Parts per million: the unit of weights, which must sum to exactly this.
pub const WEIGHTS_TOTAL: u32 = 1_000_000;

/// Reveal weights matching an earlier commitment.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RevealWeights {
    /// The subnet id.
    pub subnet: u32,
    /// (miner uid, weight in parts per million), uids strictly increasing, weights summing to
    /// [`WEIGHTS_TOTAL`].
    pub weights: Vec<(u16, u32)>,
    /// The secret salt of the commitment.
    pub salt: Hash,
}

/// Domain separator of weight commitments.
pub const WEIGHTS_COMMIT_DOMAIN: &[u8] = b"hibana/weights/v1\0";

impl RevealWeights {
    /// The commitment a validator `committer` publishes before revealing these weights. It
    /// binds the committer, so a copied commitment cannot be revealed by anyone else.
    pub fn commitment(&self, committer: &Address) -> Hash {
        let mut bytes = WEIGHTS_COMMIT_DOMAIN.to_vec();
        bytes.extend_from_slice(&encode(&(
            self.subnet,
            committer,
            &self.weights,
            &self.salt,
        )));
        Hash::digest(&bytes)
    }
}

/// Register a compiled ZK model: the `.zkm` bytes (quantised model, circuit size), from which
/// every validator derives the same verifying key. The model commitment is their content hash;
/// the signer becomes the owner.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RegisterZkModel {
    /// The `.zkm` file.
    pub zkm: Vec<u8>,
}

/// Submit a proof that a registered model produced an output. The message carries the `.zkm`
/// so the proof can be checked without state (in parallel, before execution); execution then
/// requires that this exact model is registered.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SubmitZkInference {
    /// The registered model's `.zkm` file.
    pub zkm: Vec<u8>,
    /// The proof file (model commitment, input commitment or input, output, proof).
    pub proof: Vec<u8>,
}

/// Move `amount` from the signer to `to`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Transfer {
    /// Recipient.
    pub to: Address,
    /// Amount moved.
    pub amount: Amount,
}

/// Bond `amount` of the signer's tokens to `validator`. Bonding to oneself registers the
/// signer as a validator with its public key.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Bond {
    /// The validator receiving the stake.
    pub validator: Address,
    /// Amount bonded.
    pub amount: Amount,
}

/// Unbond `amount` from `validator`; the tokens return after the unbonding period.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Unbond {
    /// The validator the stake is bonded to.
    pub validator: Address,
    /// Amount unbonded.
    pub amount: Amount,
}

impl Transaction {
    /// The bytes the signer signs: domain separator followed by the canonical encoding.
    pub fn sign_bytes(&self) -> Vec<u8> {
        let mut bytes = TX_SIGN_DOMAIN.to_vec();
        bytes.extend_from_slice(&encode(self));
        bytes
    }

    /// The sender's address.
    pub fn sender(&self) -> Address {
        self.signer.address()
    }

    /// Signs the transaction. The key should match `signer`; otherwise verification fails.
    pub fn sign(self, key: &SecretKey) -> SignedTransaction {
        let signature = key.sign(&self.sign_bytes());
        SignedTransaction {
            tx: self,
            signature,
        }
    }
}

impl SignedTransaction {
    /// The transaction hash: blake3 of the canonical encoding of the signed transaction.
    pub fn hash(&self) -> Hash {
        Hash::digest(&encode(self))
    }

    /// Checks the signature against the signer's key.
    pub fn verify_signature(&self) -> Result<(), SignatureError> {
        self.tx
            .signer
            .verify(&self.tx.sign_bytes(), &self.signature)
    }

    /// The sender's address.
    pub fn sender(&self) -> Address {
        self.tx.sender()
    }

    /// The accounts the transaction involves: the sender, then every account its messages name,
    /// each once.
    pub fn accounts(&self) -> Vec<Address> {
        let mut accounts = vec![self.sender()];
        for other in self.tx.messages.iter().flat_map(Message::accounts) {
            if !accounts.contains(&other) {
                accounts.push(other);
            }
        }
        accounts
    }
}

/// Lock `deposit` for `payee`: the payee redeems vouchers signed by `signer` (the sender's own
/// key when absent) up to the deposit, until the payer closes the channel.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct OpenChannel {
    /// Who is paid.
    pub payee: Address,
    /// The key whose vouchers count; `None` for the sender's own key.
    pub signer: Option<PublicKey>,
    /// Tokens moved from the sender into the channels' escrow.
    pub deposit: Amount,
    /// From this height on the payer may close the channel at once.
    pub expires_at: u64,
}

/// Add to an open channel's deposit and optionally move its expiry later (payer only).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TopUpChannel {
    /// The channel.
    pub channel: u64,
    /// Tokens added (may be 0 when only the expiry moves).
    pub amount: Amount,
    /// A later expiry height, if any.
    pub expires_at: Option<u64>,
}

/// Redeem vouchers, at most one per channel, each paying the signer (the payee) the difference
/// between its cumulative amount and what the channel paid before.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RedeemVouchers {
    /// The vouchers, for distinct channels.
    pub vouchers: Vec<crate::records::channels::SignedVoucher>,
}

/// Close a channel. The payer closes at once from its expiry height or once a settle period it
/// started is over, and starts that period before the expiry; the payee closes at once. The
/// rest of the deposit returns to the payer.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CloseChannel {
    /// The channel.
    pub channel: u64,
}

/// Open a data bounty on the given terms, escrowing `max_items` items' rewards.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CreateBounty {
    /// What it asks for and pays.
    pub terms: crate::records::data::BountyTerms,
}

/// Stake in a bounty to be assigned its items for review (or add to that stake).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct JoinReviewers {
    /// The bounty.
    pub bounty: u64,
    /// Tokens staked (at least the bounty's review stake when joining).
    pub stake: Amount,
}

/// Submit an item, already uploaded to the blob store, to one bounty.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SubmitContribution {
    /// The bounty, the only one that can pay for the item.
    pub bounty: u64,
    /// blake3 of the item's bytes.
    pub hash: Hash,
    /// The item's size in bytes.
    pub size: u64,
}

/// Commit to a verdict on an item assigned to the sender.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CommitReview {
    /// The item.
    pub item: u64,
    /// [`crate::records::data::review_commitment`] of the verdict and a secret salt.
    pub commitment: Hash,
}

/// Reveal the verdict committed on an item.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RevealReview {
    /// The item.
    pub item: u64,
    /// The verdict (true = accept).
    pub accept: bool,
    /// The salt the commitment used.
    pub salt: Hash,
}

/// Stop a bounty's submissions now (owner only); items under review are still settled.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CloseBounty {
    /// The bounty.
    pub bounty: u64,
}

/// Settle a bounty whose items are all settled: pay reviewers (measured by the revealed gold
/// answers), return stakes and unspent escrow, and publish the dataset of accepted items.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct FinalizeDataset {
    /// The bounty.
    pub bounty: u64,
    /// The dataset's licence (e.g. `CC-BY-4.0`).
    pub licence: String,
    /// The gold answers committed at creation (owner only; empty when none).
    pub gold: Vec<crate::records::data::GoldAnswer>,
    /// The salt of the gold commitment.
    pub gold_salt: Hash,
}
