//! Payment channel records: channels, the vouchers that draw on them, their limits and their
//! state keys.
//!
//! A channel locks a payer's deposit for one payee. The payer (or a key it names, such as the
//! key an API key derives) signs vouchers off chain, each for the channel's *cumulative* amount
//! owed so far; the payee redeems the latest one on chain whenever it likes and is paid the
//! difference to what it redeemed before. So one redemption pays for any number of requests,
//! and a voucher can be replayed for nothing.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{
    Address, Amount, BASE_UNITS_PER_HIB, PublicKey, SecretKey, Signature, SignatureError, encode,
};

/// The account that holds every channel's deposit. Nobody has its key: only the channels'
/// rules move its tokens.
pub const CHANNEL_ESCROW: Address = Address(*b"hibana/channels/lock");

/// Domain separator of voucher signatures.
pub const VOUCHER_SIGN_DOMAIN: &[u8] = b"hibana/voucher/v1\0";

/// Smallest deposit a channel opens with.
pub const MIN_CHANNEL_DEPOSIT: Amount = Amount(BASE_UNITS_PER_HIB / 1_000);
/// Furthest ahead a channel's expiry may be, in blocks.
pub const MAX_CHANNEL_BLOCKS: u64 = 10_000_000;
/// Blocks a payee keeps to redeem after the payer starts closing a channel before its expiry.
pub const SETTLE_DELAY_BLOCKS: u64 = 20;
/// Most channels one payer has open at once.
pub const MAX_OPEN_CHANNELS_PER_PAYER: usize = 64;
/// Most open channels between one payer and one payee.
pub const MAX_OPEN_CHANNELS_PER_PAIR: usize = 8;
/// Most vouchers one redemption carries (each for another channel).
pub const MAX_VOUCHERS_PER_REDEEM: usize = 64;
/// Longest chain id a voucher names, in bytes.
pub const MAX_VOUCHER_CHAIN_ID_BYTES: usize = 64;

/// Where a channel stands.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ChannelStatus {
    /// Vouchers on it can be redeemed.
    Open,
    /// The rest of the deposit went back to the payer; nothing more can be redeemed.
    Closed,
}

/// A unidirectional payment channel.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Channel {
    /// Id.
    pub id: u64,
    /// Who locked the deposit.
    pub payer: Address,
    /// Who redeems vouchers.
    pub payee: Address,
    /// The key whose vouchers the channel honours (the payer's own, or one it delegated).
    pub signer: PublicKey,
    /// Deposited so far, held in [`CHANNEL_ESCROW`] less what was redeemed.
    pub deposit: Amount,
    /// Paid to the payee so far: the highest cumulative amount redeemed.
    pub redeemed: Amount,
    /// Nonce of the last voucher redeemed.
    pub nonce: u64,
    /// Height of opening.
    pub opened_at: u64,
    /// From this height on the payer may close at once.
    pub expires_at: u64,
    /// The payer started closing early: the payee may redeem until this height, then the
    /// payer closes.
    pub settling_until: Option<u64>,
    /// Where it stands.
    pub status: ChannelStatus,
    /// Height it closed, once closed.
    pub closed_at: Option<u64>,
}

impl Channel {
    /// What is locked and not yet paid out.
    pub fn remaining(&self) -> Amount {
        Amount(self.deposit.0.saturating_sub(self.redeemed.0))
    }

    /// The last height at which a voucher can be redeemed, if the channel is closing.
    pub fn redeemable_until(&self) -> Option<u64> {
        self.settling_until
    }
}

/// A payer's promise: the channel owes its payee `cumulative` in all.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Voucher {
    /// The chain the channel is on, so a voucher is never good on another chain.
    pub chain_id: String,
    /// The channel.
    pub channel: u64,
    /// Everything owed on the channel so far.
    pub cumulative: Amount,
    /// Increases with every voucher the signer issues on the channel.
    pub nonce: u64,
}

/// A voucher with its signer and signature.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedVoucher {
    /// What was promised.
    pub voucher: Voucher,
    /// The key that signed (must be the channel's signer).
    pub signer: PublicKey,
    /// Signature over [`VOUCHER_SIGN_DOMAIN`] and the voucher's encoding.
    pub signature: Signature,
}

impl Voucher {
    fn sign_bytes(&self) -> Vec<u8> {
        let mut bytes = VOUCHER_SIGN_DOMAIN.to_vec();
        bytes.extend_from_slice(&encode(self));
        bytes
    }

    /// Signs the voucher with `key`.
    pub fn sign(self, key: &SecretKey) -> SignedVoucher {
        let signature = key.sign(&self.sign_bytes());
        SignedVoucher {
            voucher: self,
            signer: key.public_key(),
            signature,
        }
    }
}

impl SignedVoucher {
    /// Checks the signature against the voucher's named signer.
    pub fn verify(&self) -> Result<(), SignatureError> {
        self.signer
            .verify(&self.voucher.sign_bytes(), &self.signature)
    }

    /// Hex of the canonical encoding.
    pub fn to_hex(&self) -> String {
        hex::encode(encode(self))
    }

    /// Parses the hex form.
    pub fn from_hex(s: &str) -> Result<SignedVoucher, String> {
        let bytes = hex::decode(s.trim()).map_err(|e| format!("voucher is not hex: {e}"))?;
        crate::decode(&bytes).map_err(|e| format!("voucher is malformed: {e}"))
    }
}

/// State key of a channel.
pub fn channel_key(id: u64) -> Vec<u8> {
    [b"channels/channel/".as_slice(), &id.to_be_bytes()].concat()
}

/// State key of the next channel id (`u64`).
pub const NEXT_CHANNEL_KEY: &[u8] = b"channels/next";

/// State key of the open channels a payer funds (`BTreeSet<u64>`).
pub fn payer_channels_key(payer: &Address) -> Vec<u8> {
    [b"channels/of_payer/".as_slice(), &payer.0].concat()
}

/// State key of the open channels from `payer` to `payee` (`BTreeSet<u64>`).
pub fn pair_channels_key(payer: &Address, payee: &Address) -> Vec<u8> {
    [b"channels/between/".as_slice(), &payer.0, &payee.0].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vouchers_verify_and_any_change_breaks_them() {
        let key = SecretKey::generate();
        let v = Voucher {
            chain_id: "c".into(),
            channel: 3,
            cumulative: Amount(10),
            nonce: 1,
        }
        .sign(&key);
        assert_eq!(v.verify(), Ok(()));
        let parsed = SignedVoucher::from_hex(&v.to_hex()).unwrap();
        assert_eq!(parsed, v);
        let mut more = v.clone();
        more.voucher.cumulative = Amount(11);
        assert!(more.verify().is_err());
        let mut other_chain = v.clone();
        other_chain.voucher.chain_id = "d".into();
        assert!(other_chain.verify().is_err());
        let mut other_signer = v;
        other_signer.signer = SecretKey::generate().public_key();
        assert!(other_signer.verify().is_err());
        assert!(SignedVoucher::from_hex("zz").is_err());
    }

    #[test]
    fn the_escrow_address_is_the_one_the_readme_names() {
        assert_eq!(
            CHANNEL_ESCROW.to_string(),
            "hib1dp5kyctwvyhkx6rpdehx2mrn9akx7cmtyw3jm9"
        );
    }
}
