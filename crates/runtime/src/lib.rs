//! Hibana's runtime: the deterministic state machine every validator runs.
//!
//! The runtime is a pure function of (state, block): no clock, no randomness, no floats, no
//! I/O. It reads and writes state through [`StateRead`]/[`StateWrite`], which the store
//! implements on disk and [`MemState`] in memory.
//!
//! Every component follows one contract: `init_genesis`, `begin_block`, `end_block`, and for each
//! of its messages ([`MessageHandler`]) `check_stateless` → `check_stateful` → `execute`.
//! Components now: [`bank`] (balances, nonces, transfers, fees, supply), [`staking`] (bond,
//! unbond, slash, jail, validator set), [`verify`] (ZK-verifiable models and proved
//! inferences) and [`subnets`] (the model network: neurons, commit-reveal weights, Yuma epochs).
//!
//! A block runs as: [`begin_block`], then [`deliver_tx`] for each transaction (which first
//! runs the ante checks of [`check_stateful`]: nonce and fee, then pays the fee and runs the
//! messages in a nested overlay that is dropped if one fails), then [`end_block`].
//! [`check_stateless_batch`] verifies signatures of many transactions in parallel beforehand.
//!
//! ```
//! use hibana_runtime::{BlockContext, Genesis, GenesisAccount, GenesisValidator, MemState};
//! use hibana_types::{Amount, Message, SecretKey, Transaction, Transfer};
//!
//! let alice = SecretKey::generate();
//! let validator = SecretKey::generate();
//! let genesis = Genesis {
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
//! hibana_runtime::check_stateless(&tx, "doc", &genesis.params).unwrap();
//! let ctx = BlockContext { chain_id: "doc".into(), height: 1, time_ms: 1, proposer: validator.public_key().address() };
//! let receipt = hibana_runtime::deliver_tx(&mut state, &ctx, &tx, 0).unwrap().unwrap();
//! assert!(receipt.is_success());
//! ```
#![forbid(unsafe_code)]

pub mod bank;
mod error;
mod params;
pub mod staking;
mod state;
pub mod subnets;
pub mod verify;

use hibana_types::{
    Address, Amount, Event, Message, PublicKey, Receipt, SignedTransaction, TxOutcome, encode,
};
use rayon::prelude::*;

pub(crate) use error::invalid;
pub use error::{ExecError, Rejection, TxError};
pub use params::{Genesis, GenesisAccount, GenesisError, GenesisValidator, Params};
pub use state::{
    MemState, StateDelta, StateError, StateRead, StateWrite, apply_writes, get_typed, put_typed,
};

const PARAMS_KEY: &[u8] = b"params";
const CHAIN_ID_KEY: &[u8] = b"chain_id";

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

/// The contract every message type follows.
pub trait MessageHandler {
    /// Checks that need no state (amounts, formats); run in parallel before execution.
    fn check_stateless(&self) -> Result<(), TxError>;
    /// Checks against the current state, without writing.
    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError>;
    /// Applies the message: the only place that writes state and emits events.
    fn execute<S: StateWrite + ?Sized>(
        &self,
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError>;
}

impl MessageHandler for Message {
    fn check_stateless(&self) -> Result<(), TxError> {
        match self {
            Message::Transfer(m) => m.check_stateless(),
            Message::Bond(m) => m.check_stateless(),
            Message::Unbond(m) => m.check_stateless(),
            Message::RegisterZkModel(m) => m.check_stateless(),
            Message::SubmitZkInference(m) => m.check_stateless(),
            Message::CreateSubnet(m) => m.check_stateless(),
            Message::RegisterNeuron(m) => m.check_stateless(),
            Message::CommitWeights(m) => m.check_stateless(),
            Message::RevealWeights(m) => m.check_stateless(),
            Message::SubmitEvidence(m) => m.check_stateless(),
        }
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        match self {
            Message::Transfer(m) => m.check_stateful(state, ctx),
            Message::Bond(m) => m.check_stateful(state, ctx),
            Message::Unbond(m) => m.check_stateful(state, ctx),
            Message::RegisterZkModel(m) => m.check_stateful(state, ctx),
            Message::SubmitZkInference(m) => m.check_stateful(state, ctx),
            Message::CreateSubnet(m) => m.check_stateful(state, ctx),
            Message::RegisterNeuron(m) => m.check_stateful(state, ctx),
            Message::CommitWeights(m) => m.check_stateful(state, ctx),
            Message::RevealWeights(m) => m.check_stateful(state, ctx),
            Message::SubmitEvidence(m) => m.check_stateful(state, ctx),
        }
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        match self {
            Message::Transfer(m) => m.execute(state, ctx, events),
            Message::Bond(m) => m.execute(state, ctx, events),
            Message::Unbond(m) => m.execute(state, ctx, events),
            Message::RegisterZkModel(m) => m.execute(state, ctx, events),
            Message::SubmitZkInference(m) => m.execute(state, ctx, events),
            Message::CreateSubnet(m) => m.execute(state, ctx, events),
            Message::RegisterNeuron(m) => m.execute(state, ctx, events),
            Message::CommitWeights(m) => m.execute(state, ctx, events),
            Message::RevealWeights(m) => m.execute(state, ctx, events),
            Message::SubmitEvidence(m) => m.execute(state, ctx, events),
        }
    }
}

/// The chain parameters stored at genesis.
pub fn params<S: StateRead + ?Sized>(state: &S) -> Result<Params, StateError> {
    Ok(get_typed(state, PARAMS_KEY)?.unwrap_or_default())
}

/// The chain id stored at genesis.
pub fn chain_id<S: StateRead + ?Sized>(state: &S) -> Result<String, StateError> {
    Ok(get_typed(state, CHAIN_ID_KEY)?.unwrap_or_default())
}

/// Writes the genesis state.
pub fn init_genesis<S: StateWrite + ?Sized>(
    state: &mut S,
    genesis: &Genesis,
) -> Result<(), GenesisError> {
    genesis.validate()?;
    staking::check_params(&genesis.params).map_err(|e| GenesisError::Invalid(e.to_string()))?;
    put_typed(state, PARAMS_KEY.to_vec(), &genesis.params);
    put_typed(state, CHAIN_ID_KEY.to_vec(), &genesis.chain_id);
    let fail = |e: ExecError| match e {
        ExecError::State(s) => GenesisError::State(s),
        ExecError::Tx(t) => GenesisError::Invalid(t.to_string()),
    };
    for account in &genesis.accounts {
        bank::credit(state, &account.address, account.balance).map_err(fail)?;
        bank::mint_supply(state, account.balance).map_err(fail)?;
    }
    for v in &genesis.validators {
        staking::genesis_validator(state, v.public_key, v.stake).map_err(fail)?;
    }
    Ok(())
}

/// Checks everything about a transaction that needs no state: chain id, size, message count,
/// message formats and the signature.
pub fn check_stateless(
    tx: &SignedTransaction,
    chain_id: &str,
    params: &Params,
) -> Result<(), Rejection> {
    check_format(tx, chain_id, params)?;
    tx.verify_signature()
        .map_err(|e| Rejection::BadSignature(e.to_string()))
}

fn check_format(tx: &SignedTransaction, chain_id: &str, params: &Params) -> Result<(), Rejection> {
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
    let size = encode(tx).len();
    if size > params.max_tx_bytes as usize {
        return Err(Rejection::Malformed(format!(
            "{size} bytes exceed the limit of {}",
            params.max_tx_bytes
        )));
    }
    for (i, m) in tx.tx.messages.iter().enumerate() {
        m.check_stateless()
            .map_err(|e| Rejection::Malformed(format!("message {i}: {e}")))?;
    }
    Ok(())
}

/// [`check_stateless`] for many transactions, in parallel and with batched signature
/// verification. ZIP-215 batch verification accepts exactly what single verification accepts,
/// so the verdicts are the same as one-by-one checks, on every validator.
pub fn check_stateless_batch(
    txs: &[SignedTransaction],
    chain_id: &str,
    params: &Params,
) -> Vec<Result<(), Rejection>> {
    const CHUNK: usize = 128;
    txs.par_chunks(CHUNK)
        .flat_map_iter(|chunk| {
            let mut results: Vec<Result<(), Rejection>> = chunk
                .iter()
                .map(|tx| check_format(tx, chain_id, params))
                .collect();
            let mut batch = ed25519_consensus::batch::Verifier::new();
            let mut queued = 0usize;
            let sign_bytes: Vec<Vec<u8>> = chunk.iter().map(|tx| tx.tx.sign_bytes()).collect();
            for ((tx, result), msg) in chunk.iter().zip(results.iter_mut()).zip(&sign_bytes) {
                if result.is_err() {
                    continue;
                }
                if tx.tx.signer.verification_key().is_err() {
                    *result = Err(Rejection::BadSignature(
                        "the signer's public key is not a valid ed25519 key".into(),
                    ));
                    continue;
                }
                let key = ed25519_consensus::VerificationKeyBytes::from(tx.tx.signer.0);
                batch.queue((key, tx.signature.to_ed25519(), msg));
                queued += 1;
            }
            if queued > 0 && batch.verify(rand::thread_rng()).is_err() {
                // Some signature is bad: find which, one by one.
                for ((tx, result), msg) in chunk.iter().zip(results.iter_mut()).zip(&sign_bytes) {
                    if result.is_ok()
                        && let Err(e) = tx.tx.signer.verify(msg, &tx.signature)
                    {
                        *result = Err(Rejection::BadSignature(e.to_string()));
                    }
                }
            }
            results
        })
        .collect()
}

/// The ante checks against state: the nonce is the account's next one, the fee meets the minimum
/// and the sender can pay it.
pub fn check_stateful<S: StateRead + ?Sized>(
    state: &S,
    tx: &SignedTransaction,
) -> Result<(), ExecError> {
    check_ante(state, tx)?.map_err(|r| ExecError::Tx(TxError::Invalid(r.to_string())))
}

fn check_ante<S: StateRead + ?Sized>(
    state: &S,
    tx: &SignedTransaction,
) -> Result<Result<(), Rejection>, StateError> {
    let sender = tx.sender();
    let account = bank::account(state, &sender)?;
    if tx.tx.nonce != account.nonce {
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
    let params = params(state)?;
    if tx.tx.fee < params.min_fee {
        return Ok(Err(Rejection::FeeTooLow {
            minimum: params.min_fee,
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
    Ok(Ok(()))
}

/// Runs one transaction whose stateless checks passed. Returns `Ok(Err(rejection))` if it may
/// not be included (state unchanged), `Ok(Ok(receipt))` if it was included (the fee is paid and
/// the nonce used even when a message fails), and `Err` if storage failed.
pub fn deliver_tx<S: StateWrite + ?Sized>(
    state: &mut S,
    block: &BlockContext,
    tx: &SignedTransaction,
    index: u32,
) -> Result<Result<Receipt, Rejection>, StateError> {
    if let Err(rejection) = check_ante(state, tx)? {
        return Ok(Err(rejection));
    }
    let sender = tx.sender();
    let mut account = bank::account(state, &sender)?;
    // check_ante guarantees both of these.
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
    for (i, message) in tx.tx.messages.iter().enumerate() {
        let result = message
            .check_stateful(&overlay, &ctx)
            .and_then(|()| message.execute(&mut overlay, &ctx, &mut msg_events));
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
        tx_hash: tx.hash(),
        height: block.height,
        index,
        outcome,
        fee: tx.tx.fee,
        events,
    }))
}

/// Start-of-block work of every component.
pub fn begin_block<S: StateWrite + ?Sized>(
    state: &mut S,
    block: &BlockContext,
) -> Result<Vec<Event>, StateError> {
    let mut events = Vec::new();
    // Crediting matured stake can only fail on a supply overflow, which genesis rules out.
    block_hook(
        "begin_block",
        staking::begin_block(state, block.height, &mut events),
    )?;
    Ok(events)
}

/// End-of-block work of every component.
pub fn end_block<S: StateWrite + ?Sized>(
    state: &mut S,
    block: &BlockContext,
) -> Result<Vec<Event>, StateError> {
    let mut events = Vec::new();
    // Minting emission can only fail on a supply overflow.
    block_hook(
        "end_block",
        subnets::end_block(state, block.height, &mut events),
    )?;
    Ok(events)
}

/// Block hooks have no transaction to fail: any error of theirs is the node's.
fn block_hook(hook: &str, result: Result<(), ExecError>) -> Result<(), StateError> {
    match result {
        Ok(()) => Ok(()),
        Err(ExecError::State(e)) => Err(e),
        Err(ExecError::Tx(e)) => Err(StateError::Backend(format!("{hook}: {e}"))),
    }
}

/// An account as the RPC shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccountView {
    /// The address.
    pub address: Address,
    /// Spendable balance.
    pub balance: Amount,
    /// Next nonce.
    pub nonce: u64,
    /// Total bonded stake, valued in tokens.
    pub stake: Amount,
    /// Delegations per validator.
    pub delegations: Vec<staking::DelegationView>,
}

/// Reads an account's balance, nonce and stake.
pub fn query_account<S: StateRead + ?Sized>(
    state: &S,
    address: &Address,
) -> Result<AccountView, StateError> {
    let account = bank::account(state, address)?;
    let (delegations, stake) = staking::stake_of(state, address)?;
    Ok(AccountView {
        address: *address,
        balance: account.balance,
        nonce: account.nonce,
        stake,
        delegations,
    })
}
