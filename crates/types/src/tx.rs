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
}
