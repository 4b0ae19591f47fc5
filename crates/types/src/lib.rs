//! Hibana's chain data types, shared by every crate and by clients.
//!
//! Main types: [`Address`] (bech32 `hib1…`, derived from an ed25519 key), [`Hash`] (blake3),
//! [`Amount`] (base units, 1 HIB = 10^9), [`PublicKey`]/[`SecretKey`]/[`Signature`] (ed25519),
//! [`Transaction`] and [`SignedTransaction`] carrying [`Message`]s, [`Block`] with its
//! [`BlockHeader`], and [`Receipt`]s with [`Event`]s. Everything has one canonical borsh
//! encoding (what is hashed and signed) and a JSON form (what the RPC shows). No I/O here.
//!
//! ```
//! use hibana_types::{Amount, Message, SecretKey, Transaction, Transfer};
//! let key = SecretKey::generate();
//! let to = SecretKey::generate().public_key().address();
//! let tx = Transaction {
//!     chain_id: "hibana-devnet".into(),
//!     signer: key.public_key(),
//!     nonce: 0,
//!     fee: Amount::from_base(1_000),
//!     messages: vec![Message::Transfer(Transfer { to, amount: "1.5HIB".parse().unwrap() })],
//! };
//! let signed = tx.sign(&key);
//! assert!(signed.verify_signature().is_ok());
//! ```
#![forbid(unsafe_code)]

mod address;
mod amount;
mod block;
mod count_tree;
mod crypto;
mod evidence;
mod hash;
mod inference;
pub mod light;
mod proof;
mod receipt;
pub mod records;
mod tx;

pub use address::{ADDRESS_HRP, Address, AddressError};
pub use amount::{Amount, AmountError, BASE_UNITS_PER_HIB};
pub use block::{Block, BlockHeader, MerkleStep, merkle_proof, merkle_root, verify_merkle_proof};
pub use count_tree::{CountStep, count_proof, count_root, verify_count_proof};
pub use crypto::{PublicKey, SecretKey, Signature, SignatureError};
pub use evidence::{
    CONSENSUS_SIGN_DOMAIN, ConsensusVote, Equivocation, SignedVote, VoteKind, VoteRound, VoteValue,
    consensus_sign_bytes,
};
pub use hash::{Hash, HashParseError};
pub use inference::{InferenceReceipt, RECEIPT_SIGN_DOMAIN, ReceiptBody, ReceiptError};
pub use proof::{ProofError, StateHasher, StateProof, state_key_hash, verify_state_proof};
pub use receipt::{Event, Receipt, TxOutcome, TxStatus};
pub use records::AccountView;
pub use tx::{
    AcceptBid, AttestProvider, Bond, ChallengeReceipt, CloseBounty, CloseChannel, CloseLease,
    CloseOrder, CommitAverage, CommitBatch, CommitReview, CommitSteps, CommitWeights, CreateBounty,
    CreateOrder, CreateSubnet, DeregisterProvider, DisputeAverage, DisputeBatchLine, DisputeStep,
    FinalizeDataset, Heartbeat, JoinReviewers, Message, MoveJob, NeuronRole, OpenChannel, PlaceBid,
    PostBatchLine, ProvenRow, RedeemVouchers, RegisterNeuron, RegisterProvider, RegisterZkModel,
    RequestBatchLine, RevealReview, RevealWeights, SetAutoAccept, SignedTransaction, SubmitBatch,
    SubmitContribution, SubmitEvidence, SubmitJob, SubmitZkInference, SubnetParams, TX_SIGN_DOMAIN,
    TopUpChannel, TopUpLease, Transaction, Transfer, Unbond, Unjail, UpdateProvider, VoteChallenge,
    WEIGHTS_COMMIT_DOMAIN, WEIGHTS_TOTAL, WithdrawLease,
};

/// Decodes a borsh value from bytes, requiring that every byte is consumed.
pub fn decode<T: borsh::BorshDeserialize>(bytes: &[u8]) -> Result<T, borsh::io::Error> {
    borsh::from_slice(bytes)
}

/// Encodes a value with its canonical borsh encoding.
pub fn encode<T: borsh::BorshSerialize>(value: &T) -> Vec<u8> {
    // Writing into a Vec cannot fail.
    borsh::to_vec(value).unwrap_or_default()
}
