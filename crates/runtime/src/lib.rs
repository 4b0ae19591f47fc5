//! Hibana's runtime: the deterministic state machine every validator runs.
//!
//! The runtime is a pure function of (state, block): no clock, no randomness, no floats, no
//! I/O. It reads and writes state through [`StateRead`]/[`StateWrite`], which the store
//! implements on disk and [`MemState`] in memory.
//!
//! Every component follows one contract ([`Component`]): `init_genesis`, `begin_block`,
//! `end_block`, listed once in [`COMPONENTS`], and for each of its messages ([`MessageHandler`])
//! `check_stateless` → `check_stateful` → `execute`, where what `check_stateless` verified (a
//! decoded model, a checked proof) is handed on, so nothing is verified twice. Each component
//! is a folder: `mod.rs` (the component), `messages.rs`, `state.rs`, and `query.rs` where it
//! answers the RPC; the records clients read live in `hibana_types::records`. Components now:
//! [`bank`] (balances, nonces, transfers, fees, supply), [`staking`] (bond, unbond, slash,
//! jail, validator set), [`verify`] (ZK-verifiable models and proved inferences; challenges
//! against signed inference receipts, judged by a subnet's validators, and the slashing of the
//! provider's market bond that follows), [`subnets`] (the model network: neurons,
//! commit-reveal weights, Yuma epochs), [`market`] (the compute market: providers, orders,
//! bids, leases paid from escrow), [`channels`] (payment channels: deposits, vouchers
//! redeemed in batches, closing with a settle delay) and [`data`] (the data network: bounties,
//! contributions, commit-reveal reviews, datasets with a Merkle root).
//!
//! A block runs as: [`begin_block`], then [`deliver_tx`] for each [`CheckedTx`] (which first
//! runs the ante checks: nonce, fee and balance; then pays the fee and runs the messages in a
//! nested overlay that is dropped if one fails), then [`end_block`]. Only [`check_stateless`]
//! and [`check_stateless_batch`] (signatures in parallel, batched) make a [`CheckedTx`]; a
//! mempool asks [`admit`], which runs the cheap checks before the expensive ones.
//!
//! ```
//! use hibana_runtime::{BlockContext, Genesis, GenesisAccount, GenesisValidator, MemState};
//! use hibana_types::{Amount, Message, SecretKey, Transaction, Transfer};
//!
//! let alice = SecretKey::generate();
//! let validator = SecretKey::generate();
//! let genesis = Genesis {
//!     market: Default::default(),
//!     chain_id: "doc".into(),
//!     genesis_time_ms: 0,
//!     params: Default::default(),
//!     accounts: vec![GenesisAccount { address: alice.public_key().address(), balance: Amount::from_hib(10).unwrap() }],
//!     validators: vec![GenesisValidator { public_key: validator.public_key(), stake: Amount::from_hib(1).unwrap() }],
//! };
//! let mut state = MemState::default();
//! hibana_runtime::init_genesis(&mut state, &genesis).unwrap();
//! let tx = Transaction {
//!     chain_id: "doc".into(),
//!     signer: alice.public_key(),
//!     nonce: 0,
//!     fee: Amount(1_000),
//!     messages: vec![Message::Transfer(Transfer { to: validator.public_key().address(), amount: Amount(5) })],
//! }
//! .sign(&alice);
//! let tx = hibana_runtime::check_stateless(&tx, "doc", &genesis.params).unwrap();
//! let ctx = BlockContext { chain_id: "doc".into(), height: 1, time_ms: 1, proposer: validator.public_key().address() };
//! let receipt = hibana_runtime::deliver_tx(&mut state, &ctx, &tx, 0).unwrap().unwrap();
//! assert!(receipt.is_success());
//! ```
#![forbid(unsafe_code)]

pub mod bank;
pub mod channels;
pub mod data;
mod error;
pub mod market;
mod params;
pub mod staking;
mod state;
pub mod subnets;
pub mod verify;

use std::sync::Arc;

use hibana_types::{
    Address, Amount, Event, Hash, Message, PublicKey, Receipt, Signature, SignedTransaction,
    TX_SIGN_DOMAIN, TxOutcome,
};
use rand::{SeedableRng, rngs::StdRng};
use rayon::prelude::*;

pub use bank::query::query_account;
pub(crate) use error::invalid;
pub use error::{ExecError, Rejection, TxError};
pub use hibana_types::AccountView;
pub use params::{Genesis, GenesisAccount, GenesisError, GenesisValidator, Params};
pub use state::{
    MemState, StateDelta, StateError, StateRead, StateWrite, apply_writes, get_typed, put_typed,
};

const PARAMS_KEY: &[u8] = b"params";
const CHAIN_ID_KEY: &[u8] = b"chain_id";
const BLOCK_TIME_KEY: &[u8] = b"block_time";

/// What a block tells the runtime about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockContext {
    /// The chain id.
    pub chain_id: String,
    /// The block height.
    pub height: u64,
    /// The block time (ms since the Unix epoch), the only clock the runtime sees.
    pub time_ms: u64,
    /// The proposer, who receives fees.
    pub proposer: Address,
}

/// What a message handler knows about its transaction.
#[derive(Clone, Debug)]
pub struct TxContext<'a> {
    /// The sender's address.
    pub sender: Address,
    /// The sender's public key.
    pub signer: PublicKey,
    /// The enclosing block.
    pub block: &'a BlockContext,
}

/// The contract every message type follows: `check_stateless` (no state; run in parallel before
/// execution) returns what it verified, which `check_stateful` and `execute` take, so nothing is
/// verified twice and no cache decides a verdict.
pub trait MessageHandler {
    /// What `check_stateless` established (a decoded model, a verified proof), or `()`.
    type Verified;
    /// Checks that need no state (amounts, formats, proofs).
    fn check_stateless(&self) -> Result<Self::Verified, TxError>;
    /// Checks against the current state, without writing.
    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        verified: &Self::Verified,
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError>;
    /// Applies the message: the only place that writes state and emits events.
    fn execute<S: StateWrite + ?Sized>(
        &self,
        verified: &Self::Verified,
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError>;
}

/// What the stateless checks of one message established, kept with its transaction until
/// execution.
#[derive(Clone, Debug)]
pub enum VerifiedMessage {
    /// Nothing beyond the message's own fields.
    Plain,
    /// A `RegisterZkModel`'s decoded `.zkm`.
    ZkModel(Arc<hibana_zkml::ZkModel>),
    /// A `SubmitZkInference` whose proof verified.
    ZkInference(Arc<verify::VerifiedSubmission>),
    /// A `ChallengeReceipt` or `DisputeBatchLine` whose receipt signature and hashes verified:
    /// the receipt's id.
    Challenge(Hash),
    /// A `PostBatchLine` whose sizes (and receipt, for an answered line) checked out: the
    /// outcome hash its result leaf commits to.
    Outcome(Hash),
}

/// A message whose verified data does not belong to it: a bug, never a user's doing.
fn mismatch() -> ExecError {
    ExecError::Tx(TxError::Invalid(
        "internal error: the verified data does not match the message".into(),
    ))
}

impl MessageHandler for Message {
    type Verified = VerifiedMessage;

    fn check_stateless(&self) -> Result<VerifiedMessage, TxError> {
        Ok(match self {
            Message::Transfer(m) => plain(m.check_stateless())?,
            Message::Bond(m) => plain(m.check_stateless())?,
            Message::Unbond(m) => plain(m.check_stateless())?,
            Message::CreateSubnet(m) => plain(m.check_stateless())?,
            Message::RegisterNeuron(m) => plain(m.check_stateless())?,
            Message::CommitWeights(m) => plain(m.check_stateless())?,
            Message::RevealWeights(m) => plain(m.check_stateless())?,
            Message::SubmitEvidence(m) => plain(m.check_stateless())?,
            Message::Unjail(m) => plain(m.check_stateless())?,
            Message::RegisterProvider(m) => plain(m.check_stateless())?,
            Message::UpdateProvider(m) => plain(m.check_stateless())?,
            Message::DeregisterProvider(m) => plain(m.check_stateless())?,
            Message::CreateOrder(m) => plain(m.check_stateless())?,
            Message::CloseOrder(m) => plain(m.check_stateless())?,
            Message::PlaceBid(m) => plain(m.check_stateless())?,
            Message::AcceptBid(m) => plain(m.check_stateless())?,
            Message::WithdrawLease(m) => plain(m.check_stateless())?,
            Message::TopUpLease(m) => plain(m.check_stateless())?,
            Message::SubmitJob(m) => plain(m.check_stateless())?,
            Message::CommitSteps(m) => plain(m.check_stateless())?,
            Message::DisputeStep(m) => plain(m.check_stateless())?,
            Message::MoveJob(m) => plain(m.check_stateless())?,
            Message::CommitAverage(m) => plain(m.check_stateless())?,
            Message::DisputeAverage(m) => plain(m.check_stateless())?,
            Message::Heartbeat(m) => plain(m.check_stateless())?,
            Message::SetAutoAccept(m) => plain(m.check_stateless())?,
            Message::AttestProvider(m) => plain(m.check_stateless())?,
            Message::SubmitBatch(m) => plain(m.check_stateless())?,
            Message::CommitBatch(m) => plain(m.check_stateless())?,
            Message::DisputeBatchLine(m) => VerifiedMessage::Challenge(m.check_stateless()?),
            Message::RequestBatchLine(m) => plain(m.check_stateless())?,
            Message::PostBatchLine(m) => VerifiedMessage::Outcome(m.check_stateless()?),
            Message::CloseLease(m) => plain(m.check_stateless())?,
            Message::OpenChannel(m) => plain(m.check_stateless())?,
            Message::TopUpChannel(m) => plain(m.check_stateless())?,
            Message::RedeemVouchers(m) => plain(m.check_stateless())?,
            Message::CloseChannel(m) => plain(m.check_stateless())?,
            Message::RegisterZkModel(m) => VerifiedMessage::ZkModel(Arc::new(m.check_stateless()?)),
            Message::SubmitZkInference(m) => {
                VerifiedMessage::ZkInference(Arc::new(m.check_stateless()?))
            }
            Message::ChallengeReceipt(m) => VerifiedMessage::Challenge(m.check_stateless()?),
            Message::VoteChallenge(m) => plain(m.check_stateless())?,
            Message::CreateBounty(m) => plain(m.check_stateless())?,
            Message::JoinReviewers(m) => plain(m.check_stateless())?,
            Message::SubmitContribution(m) => plain(m.check_stateless())?,
            Message::CommitReview(m) => plain(m.check_stateless())?,
            Message::RevealReview(m) => plain(m.check_stateless())?,
            Message::CloseBounty(m) => plain(m.check_stateless())?,
            Message::FinalizeDataset(m) => plain(m.check_stateless())?,
        })
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        verified: &VerifiedMessage,
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        use VerifiedMessage as V;
        match (self, verified) {
            (Message::Transfer(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::Bond(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::Unbond(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::CreateSubnet(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::RegisterNeuron(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::CommitWeights(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::RevealWeights(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::SubmitEvidence(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::Unjail(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::RegisterProvider(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::UpdateProvider(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::DeregisterProvider(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::CreateOrder(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::CloseOrder(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::PlaceBid(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::AcceptBid(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::WithdrawLease(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::TopUpLease(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::SubmitJob(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::CommitSteps(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::DisputeStep(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::MoveJob(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::CommitAverage(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::DisputeAverage(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::Heartbeat(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::SetAutoAccept(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::AttestProvider(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::SubmitBatch(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::CommitBatch(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::DisputeBatchLine(m), V::Challenge(id)) => m.check_stateful(id, state, ctx),
            (Message::RequestBatchLine(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::PostBatchLine(m), V::Outcome(h)) => m.check_stateful(h, state, ctx),
            (Message::CloseLease(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::OpenChannel(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::TopUpChannel(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::RedeemVouchers(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::CloseChannel(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::RegisterZkModel(m), V::ZkModel(v)) => m.check_stateful(v, state, ctx),
            (Message::SubmitZkInference(m), V::ZkInference(v)) => m.check_stateful(v, state, ctx),
            (Message::ChallengeReceipt(m), V::Challenge(id)) => m.check_stateful(id, state, ctx),
            (Message::VoteChallenge(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::CreateBounty(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::JoinReviewers(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::SubmitContribution(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::CommitReview(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::RevealReview(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::CloseBounty(m), V::Plain) => m.check_stateful(&(), state, ctx),
            (Message::FinalizeDataset(m), V::Plain) => m.check_stateful(&(), state, ctx),
            _ => Err(mismatch()),
        }
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        verified: &VerifiedMessage,
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        use VerifiedMessage as V;
        match (self, verified) {
            (Message::Transfer(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::Bond(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::Unbond(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::CreateSubnet(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::RegisterNeuron(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::CommitWeights(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::RevealWeights(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::SubmitEvidence(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::Unjail(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::RegisterProvider(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::UpdateProvider(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::DeregisterProvider(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::CreateOrder(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::CloseOrder(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::PlaceBid(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::AcceptBid(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::WithdrawLease(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::TopUpLease(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::SubmitJob(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::CommitSteps(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::DisputeStep(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::MoveJob(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::CommitAverage(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::DisputeAverage(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::Heartbeat(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::SetAutoAccept(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::AttestProvider(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::SubmitBatch(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::CommitBatch(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::DisputeBatchLine(m), V::Challenge(id)) => m.execute(id, state, ctx, events),
            (Message::RequestBatchLine(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::PostBatchLine(m), V::Outcome(h)) => m.execute(h, state, ctx, events),
            (Message::CloseLease(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::OpenChannel(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::TopUpChannel(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::RedeemVouchers(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::CloseChannel(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::RegisterZkModel(m), V::ZkModel(v)) => m.execute(v, state, ctx, events),
            (Message::SubmitZkInference(m), V::ZkInference(v)) => m.execute(v, state, ctx, events),
            (Message::ChallengeReceipt(m), V::Challenge(id)) => m.execute(id, state, ctx, events),
            (Message::VoteChallenge(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::CreateBounty(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::JoinReviewers(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::SubmitContribution(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::CommitReview(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::RevealReview(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::CloseBounty(m), V::Plain) => m.execute(&(), state, ctx, events),
            (Message::FinalizeDataset(m), V::Plain) => m.execute(&(), state, ctx, events),
            _ => Err(mismatch()),
        }
    }
}

fn plain(result: Result<(), TxError>) -> Result<VerifiedMessage, TxError> {
    result.map(|()| VerifiedMessage::Plain)
}

/// A component of the state machine: its genesis, its work at the start and end of every
/// block, and (in its folder) its messages, state and queries. Every hook runs through
/// [`COMPONENTS`], in order.
pub trait Component: Sync {
    /// The component's name (the prefix of its events and state keys).
    fn name(&self) -> &'static str;
    /// Writes the component's genesis state.
    fn init_genesis(
        &self,
        _state: &mut dyn StateWrite,
        _genesis: &Genesis,
    ) -> Result<(), ExecError> {
        Ok(())
    }
    /// Work at the start of every block, before its transactions.
    fn begin_block(
        &self,
        _state: &mut dyn StateWrite,
        _block: &BlockContext,
        _events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        Ok(())
    }
    /// Work at the end of every block, after its transactions.
    fn end_block(
        &self,
        _state: &mut dyn StateWrite,
        _block: &BlockContext,
        _events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        Ok(())
    }
}

/// The chain's components, in the order their hooks run. Adding a component is a folder, one
/// line here, and its messages in `hibana-types`.
pub static COMPONENTS: &[&dyn Component] = &[
    &bank::Bank,
    &staking::Staking,
    &verify::Verify,
    &subnets::Subnets,
    &market::Market,
    &channels::Channels,
    &data::Data,
];

/// The chain parameters stored at genesis.
pub fn params<S: StateRead + ?Sized>(state: &S) -> Result<Params, StateError> {
    Ok(get_typed(state, PARAMS_KEY)?.unwrap_or_default())
}

/// The time of the latest block begun (ms since the Unix epoch; 0 before the first block): the
/// clock a mempool's dry run uses, since it has no block of its own.
pub fn block_time<S: StateRead + ?Sized>(state: &S) -> Result<u64, StateError> {
    Ok(get_typed(state, BLOCK_TIME_KEY)?.unwrap_or(0))
}

/// The chain id stored at genesis.
pub fn chain_id<S: StateRead + ?Sized>(state: &S) -> Result<String, StateError> {
    Ok(get_typed(state, CHAIN_ID_KEY)?.unwrap_or_default())
}

/// Writes the genesis state.
pub fn init_genesis<S: StateWrite>(state: &mut S, genesis: &Genesis) -> Result<(), GenesisError> {
    init_genesis_with(COMPONENTS, state, genesis)
}

/// Writes the genesis state of a chain made of `components`.
pub fn init_genesis_with<S: StateWrite>(
    components: &[&dyn Component],
    state: &mut S,
    genesis: &Genesis,
) -> Result<(), GenesisError> {
    genesis.validate()?;
    put_typed(state, PARAMS_KEY.to_vec(), &genesis.params);
    put_typed(state, CHAIN_ID_KEY.to_vec(), &genesis.chain_id);
    for component in components {
        component
            .init_genesis(state, genesis)
            .map_err(|e| match e {
                ExecError::State(s) => GenesisError::State(s),
                ExecError::Tx(t) => GenesisError::Invalid(format!("{}: {t}", component.name())),
            })?;
    }
    Ok(())
}

/// A transaction whose stateless checks passed, with what they verified. Only
/// [`check_stateless`] and [`check_stateless_batch`] make one, so [`deliver_tx`] never runs a
/// transaction whose signature, format or proofs were not checked.
#[derive(Clone, Debug)]
pub struct CheckedTx {
    tx: SignedTransaction,
    hash: Hash,
    size: usize,
    verified: Vec<VerifiedMessage>,
}

impl CheckedTx {
    /// The transaction.
    pub fn tx(&self) -> &SignedTransaction {
        &self.tx
    }

    /// The transaction, without what was verified.
    pub fn into_tx(self) -> SignedTransaction {
        self.tx
    }

    /// The transaction hash (computed once).
    pub fn hash(&self) -> Hash {
        self.hash
    }

    /// The encoded size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The sender's address.
    pub fn sender(&self) -> Address {
        self.tx.sender()
    }
}

/// Checks everything about a transaction that needs no state: chain id, size, message count,
/// message formats (proofs included) and the signature.
pub fn check_stateless(
    tx: &SignedTransaction,
    chain_id: &str,
    params: &Params,
) -> Result<CheckedTx, Rejection> {
    let (message, encoded) = encodings(tx);
    let format = check_format(tx, &encoded, chain_id, params)?;
    tx.tx
        .signer
        .verify(&message, &tx.signature)
        .map_err(|e| Rejection::BadSignature(e.to_string()))?;
    check_messages(tx.clone(), format)
}

/// A transaction's signed bytes and its encoding, from one encoding of its body: the signed
/// bytes are the domain then the body, the encoding is the body then the signature.
fn encodings(tx: &SignedTransaction) -> (Vec<u8>, Vec<u8>) {
    let message = tx.tx.sign_bytes();
    let body = message.get(TX_SIGN_DOMAIN.len()..).unwrap_or_default();
    let mut encoded = Vec::with_capacity(body.len() + tx.signature.0.len());
    encoded.extend_from_slice(body);
    encoded.extend_from_slice(&tx.signature.0);
    (message, encoded)
}

/// What the format check learnt about a transaction's encoding.
#[derive(Clone, Copy)]
struct Format {
    hash: Hash,
    size: usize,
}

/// The cheap checks: chain id, message count and size. No signature, no message checks.
fn check_format(
    tx: &SignedTransaction,
    encoded: &[u8],
    chain_id: &str,
    params: &Params,
) -> Result<Format, Rejection> {
    if tx.tx.chain_id != chain_id {
        return Err(Rejection::WrongChain {
            expected: chain_id.to_string(),
            found: tx.tx.chain_id.clone(),
        });
    }
    let n = tx.tx.messages.len();
    if n == 0 {
        return Err(Rejection::Malformed(
            "a transaction needs at least one message".into(),
        ));
    }
    if n > params.max_messages_per_tx as usize {
        return Err(Rejection::Malformed(format!(
            "{n} messages exceed the limit of {}",
            params.max_messages_per_tx
        )));
    }
    let size = encoded.len();
    if size > params.max_tx_bytes as usize {
        return Err(Rejection::Malformed(format!(
            "{size} bytes exceed the limit of {}",
            params.max_tx_bytes
        )));
    }
    Ok(Format {
        hash: Hash::digest(encoded),
        size,
    })
}

/// Each message's stateless checks, after the signature: what they verified goes with the
/// transaction.
fn check_messages(tx: SignedTransaction, format: Format) -> Result<CheckedTx, Rejection> {
    let verified = tx
        .tx
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            m.check_stateless()
                .map_err(|e| Rejection::Malformed(format!("message {i}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CheckedTx {
        tx,
        hash: format.hash,
        size: format.size,
        verified,
    })
}

/// Signatures verified together at least and at most: a batch shares one multi-scalar
/// multiplication, so a larger one costs less per signature (on the 2-core machine: 19 µs at
/// 128, 15 µs at 1,024), and a bad signature sends only its own batch to one-by-one checks.
const BATCH_MIN: usize = 128;
const BATCH_MAX: usize = 1024;

/// What a signature check needs of a transaction: its signer, signature and signed bytes.
struct SignatureJob {
    signer: PublicKey,
    signature: Signature,
    message: Vec<u8>,
}

/// [`check_stateless`] for many transactions, in parallel and with batched signature
/// verification. ZIP-215 batch verification accepts exactly what single verification accepts,
/// so the verdicts are the same as one-by-one checks, on every validator. Batches run on
/// ed25519-zebra (mainline curve25519-dalek, which picks its AVX2 backend at run time): about
/// 10% faster than ed25519-consensus here; `tests/signatures.rs` holds the two to the same
/// verdicts, ZIP-215's edge cases included.
pub fn check_stateless_batch(
    txs: Vec<SignedTransaction>,
    chain_id: &str,
    params: &Params,
) -> Vec<Result<CheckedTx, Rejection>> {
    let (mut checks, jobs) = check_unsigned(txs, chain_id, params);
    for (check, verdict) in checks.iter_mut().zip(verify_signatures(&jobs)) {
        if let Some(rejection) = verdict {
            *check = Err(rejection);
        }
    }
    checks
}

/// [`check_stateless_batch`] that hands the checks to `then` while the signatures are still
/// being verified on other threads, so a block executes while its signatures are checked.
/// `then`'s result is returned only if every signature is valid; otherwise the first bad
/// signature's index in `txs` and its rejection (whatever `then` found). A check that failed
/// before its signature (format, messages) reaches `then` as an error and its signature is
/// not verified.
pub fn check_stateless_batch_then<R: Send>(
    txs: Vec<SignedTransaction>,
    chain_id: &str,
    params: &Params,
    then: impl FnOnce(Vec<Result<CheckedTx, Rejection>>) -> R + Send,
) -> Result<R, (usize, Rejection)> {
    let (checks, jobs) = check_unsigned(txs, chain_id, params);
    if jobs.iter().all(Option::is_none) {
        // No signature to verify (a block whose transactions this node checked on admission):
        // `then` runs here, without a hop to the pool.
        return Ok(then(checks));
    }
    let (verdicts, result) = rayon::join(|| verify_signatures(&jobs), || then(checks));
    match verdicts
        .into_iter()
        .enumerate()
        .find_map(|(i, v)| v.map(|r| (i, r)))
    {
        Some(bad) => Err(bad),
        None => Ok(result),
    }
}

/// The format and message checks of each transaction (in parallel), and the signature check
/// each one that passed still needs.
fn check_unsigned(
    txs: Vec<SignedTransaction>,
    chain_id: &str,
    params: &Params,
) -> (Vec<Result<CheckedTx, Rejection>>, Vec<Option<SignatureJob>>) {
    txs.into_par_iter()
        .map(|tx| {
            let (message, encoded) = encodings(&tx);
            let job = SignatureJob {
                signer: tx.tx.signer,
                signature: tx.signature,
                message,
            };
            match check_format(&tx, &encoded, chain_id, params).and_then(|f| check_messages(tx, f))
            {
                Ok(checked) => (Ok(checked), Some(job)),
                Err(rejection) => (Err(rejection), None),
            }
        })
        .unzip()
}

/// Verifies the signatures of `jobs` in parallel batches: `None` for a valid one (or a
/// missing job), the rejection for a bad one.
fn verify_signatures(jobs: &[Option<SignatureJob>]) -> Vec<Option<Rejection>> {
    let size = jobs
        .len()
        .div_ceil(rayon::current_num_threads().max(1))
        .clamp(BATCH_MIN, BATCH_MAX);
    jobs.par_chunks(size)
        .flat_map_iter(|chunk| {
            let mut batch = ed25519_zebra::batch::Verifier::new();
            // The batch's random coefficients come from a hash of everything in the batch, so
            // a signer cannot choose signatures that cancel out, and no OS randomness is used.
            let mut transcript = blake3::Hasher::new_derive_key("hibana/runtime/batch-verify/v1");
            let mut queued = 0usize;
            for job in chunk.iter().flatten() {
                let signature = ed25519_zebra::Signature::from(job.signature.0);
                transcript.update(&job.signer.0);
                transcript.update(&job.signature.0);
                transcript.update(blake3::hash(&job.message).as_bytes());
                // An invalid key fails the batch, and the one-by-one checks below name it.
                batch.queue((
                    ed25519_zebra::VerificationKeyBytes::from(job.signer.0),
                    signature,
                    &job.message,
                ));
                queued += 1;
            }
            let coefficients = StdRng::from_seed(*transcript.finalize().as_bytes());
            let all_valid = queued == 0 || batch.verify(coefficients).is_ok();
            chunk
                .iter()
                .map(|job| match job {
                    Some(job) if !all_valid => job
                        .signer
                        .verify(&job.message, &job.signature)
                        .err()
                        .map(|e| Rejection::BadSignature(e.to_string())),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Which nonces the ante check accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Nonce {
    /// Only the account's next nonce (block execution).
    Next,
    /// The next one or a later one (the mempool queues transactions behind earlier ones).
    NextOrLater,
}

/// The ante checks against state: the nonce (see [`Nonce`]), the fee meets the minimum and the
/// sender can pay it. Passes with the account's next nonce.
fn check_ante<S: StateRead + ?Sized>(
    state: &S,
    tx: &SignedTransaction,
    min_fee: Amount,
    nonce: Nonce,
) -> Result<Result<u64, Rejection>, StateError> {
    let sender = tx.sender();
    let account = bank::account(state, &sender)?;
    let later_ok = nonce == Nonce::NextOrLater && tx.tx.nonce > account.nonce;
    if tx.tx.nonce != account.nonce && !later_ok {
        let hint = if tx.tx.nonce < account.nonce {
            " (already used: a replay or a duplicate)"
        } else {
            " (earlier nonces are missing)"
        };
        return Ok(Err(Rejection::WrongNonce {
            account: sender,
            expected: account.nonce,
            found: tx.tx.nonce,
            hint,
        }));
    }
    if tx.tx.fee < min_fee {
        return Ok(Err(Rejection::FeeTooLow {
            minimum: min_fee,
            found: tx.tx.fee,
        }));
    }
    if account.balance < tx.tx.fee {
        return Ok(Err(Rejection::CannotPayFee {
            account: sender,
            available: account.balance,
            fee: tx.tx.fee,
        }));
    }
    Ok(Ok(account.nonce))
}

/// Whether a transaction carries messages whose stateless checks are costly (proof
/// verification, a verifier derived from a `.zkm`): a mempool budgets their failures.
pub fn has_costly_checks(tx: &SignedTransaction) -> bool {
    tx.tx.messages.iter().any(|m| {
        matches!(
            m,
            Message::SubmitZkInference(_) | Message::RegisterZkModel(_)
        )
    })
}

/// Admits a transaction to a mempool over the committed `state`, cheapest checks first: the
/// format (chain id, size, message count), then the ante checks (fee, balance, a nonce not yet
/// used), and only for a transaction that passes them the signature and the messages'
/// stateless checks (proofs). A transaction next in line is then dry-run against the state at
/// `next_height` and the latest block's time, so one bound to fail is refused with its reason
/// instead of costing its fee.
/// Returns the checked transaction and its sender's next nonce, or `Err` only if storage failed.
pub fn admit<S: StateRead + ?Sized>(
    state: &S,
    tx: &SignedTransaction,
    chain_id: &str,
    params: &Params,
    next_height: u64,
) -> Result<Result<(CheckedTx, u64), Rejection>, StateError> {
    let (message, encoded) = encodings(tx);
    let format = match check_format(tx, &encoded, chain_id, params) {
        Ok(f) => f,
        Err(rejection) => return Ok(Err(rejection)),
    };
    let account_nonce = match check_ante(state, tx, params.min_fee, Nonce::NextOrLater)? {
        Ok(nonce) => nonce,
        Err(rejection) => return Ok(Err(rejection)),
    };
    if let Err(e) = tx.tx.signer.verify(&message, &tx.signature) {
        return Ok(Err(Rejection::BadSignature(e.to_string())));
    }
    let checked = match check_messages(tx.clone(), format) {
        Ok(checked) => checked,
        Err(rejection) => return Ok(Err(rejection)),
    };
    if tx.tx.nonce == account_nonce {
        let block = BlockContext {
            chain_id: chain_id.to_string(),
            height: next_height,
            time_ms: block_time(state)?,
            proposer: tx.sender(),
        };
        let mut dry = StateDelta::new(state);
        match apply(&mut dry, &block, &checked, 0)? {
            Ok(receipt) => {
                if let TxOutcome::Failed(reason) = receipt.outcome {
                    return Ok(Err(Rejection::WouldFail(reason)));
                }
            }
            Err(rejection) => return Ok(Err(rejection)),
        }
    }
    Ok(Ok((checked, account_nonce)))
}

/// Runs one transaction whose stateless checks passed. Returns `Ok(Err(rejection))` if it may
/// not be included (state unchanged), `Ok(Ok(receipt))` if it was included (the fee is paid and
/// the nonce used even when a message fails), and `Err` if storage failed.
pub fn deliver_tx<S: StateWrite + ?Sized>(
    state: &mut S,
    block: &BlockContext,
    tx: &CheckedTx,
    index: u32,
) -> Result<Result<Receipt, Rejection>, StateError> {
    let min_fee = params(state)?.min_fee;
    if let Err(rejection) = check_ante(state, &tx.tx, min_fee, Nonce::Next)? {
        return Ok(Err(rejection));
    }
    apply(state, block, tx, index)
}

/// Pays the fee, uses the nonce and runs the messages of a transaction that passed the ante
/// checks.
fn apply<S: StateWrite + ?Sized>(
    state: &mut S,
    block: &BlockContext,
    checked: &CheckedTx,
    index: u32,
) -> Result<Result<Receipt, Rejection>, StateError> {
    let tx = &checked.tx;
    let sender = tx.sender();
    let mut account = bank::account(state, &sender)?;
    // The ante checks guarantee both of these.
    account.balance = account
        .balance
        .checked_sub(tx.tx.fee)
        .unwrap_or(Amount::ZERO);
    account.nonce = account.nonce.saturating_add(1);
    bank::set_account(state, &sender, &account);
    let mut events = Vec::new();
    if tx.tx.fee.0 > 0 {
        match bank::credit(state, &block.proposer, tx.tx.fee) {
            Ok(()) => {}
            Err(ExecError::State(e)) => return Err(e),
            Err(ExecError::Tx(e)) => return Ok(Err(Rejection::Malformed(format!("fee: {e}")))),
        }
        events.push(Event::new(
            "bank.fee",
            [
                ("payer", sender.to_string()),
                ("amount", tx.tx.fee.0.to_string()),
            ],
        ));
    }
    let ctx = TxContext {
        sender,
        signer: tx.tx.signer,
        block,
    };
    let mut overlay = StateDelta::new(&*state);
    let mut msg_events = Vec::new();
    let mut outcome = TxOutcome::Success;
    for (i, (message, verified)) in tx.tx.messages.iter().zip(&checked.verified).enumerate() {
        let result = message
            .check_stateful(verified, &overlay, &ctx)
            .and_then(|()| message.execute(verified, &mut overlay, &ctx, &mut msg_events));
        match result {
            Ok(()) => {}
            Err(ExecError::State(e)) => return Err(e),
            Err(ExecError::Tx(e)) => {
                outcome = TxOutcome::Failed(format!("message {i}: {e}"));
                break;
            }
        }
    }
    if outcome == TxOutcome::Success {
        let writes = overlay.into_writes();
        apply_writes(state, writes);
        events.extend(msg_events);
    }
    Ok(Ok(Receipt {
        tx_hash: checked.hash,
        height: block.height,
        index,
        outcome,
        fee: tx.tx.fee,
        events,
    }))
}

/// Start-of-block work of every component.
pub fn begin_block<S: StateWrite>(
    state: &mut S,
    block: &BlockContext,
) -> Result<Vec<Event>, StateError> {
    begin_block_with(COMPONENTS, state, block)
}

/// End-of-block work of every component.
pub fn end_block<S: StateWrite>(
    state: &mut S,
    block: &BlockContext,
) -> Result<Vec<Event>, StateError> {
    end_block_with(COMPONENTS, state, block)
}

/// Start-of-block work of `components`, in order, after recording the block's time (see
/// [`block_time`]).
pub fn begin_block_with<S: StateWrite>(
    components: &[&dyn Component],
    state: &mut S,
    block: &BlockContext,
) -> Result<Vec<Event>, StateError> {
    put_typed(state, BLOCK_TIME_KEY.to_vec(), &block.time_ms);
    run_hooks(components, "begin_block", |c, events| {
        c.begin_block(state, block, events)
    })
}

/// End-of-block work of `components`, in order.
pub fn end_block_with<S: StateWrite>(
    components: &[&dyn Component],
    state: &mut S,
    block: &BlockContext,
) -> Result<Vec<Event>, StateError> {
    run_hooks(components, "end_block", |c, events| {
        c.end_block(state, block, events)
    })
}

/// Runs one block hook of every component, collecting their events.
fn run_hooks(
    components: &[&dyn Component],
    hook: &str,
    mut run: impl FnMut(&dyn Component, &mut Vec<Event>) -> Result<(), ExecError>,
) -> Result<Vec<Event>, StateError> {
    let mut events = Vec::new();
    for component in components {
        block_hook(component.name(), hook, run(*component, &mut events))?;
    }
    Ok(events)
}

/// Block hooks have no transaction to fail: any error of theirs (crediting matured stake or
/// minting emission can only fail on a supply overflow, which genesis rules out) is the node's.
fn block_hook(
    component: &str,
    hook: &str,
    result: Result<(), ExecError>,
) -> Result<(), StateError> {
    match result {
        Ok(()) => Ok(()),
        Err(ExecError::State(e)) => Err(e),
        Err(ExecError::Tx(e)) => Err(StateError::Backend(format!("{component} {hook}: {e}"))),
    }
}
