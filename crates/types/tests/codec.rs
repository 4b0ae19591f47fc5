//! Property tests of the canonical encodings: every type round-trips through borsh and JSON, and
//! decoding arbitrary bytes returns an error instead of panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hibana_types::records::channels::{SignedVoucher, Voucher};
use hibana_types::records::market::{ProviderAttributes, Resources};
use hibana_types::{AcceptBid, CreateOrder, OpenChannel, RedeemVouchers, RegisterProvider};
use hibana_types::{
    Address, Amount, Block, BlockHeader, Bond, Event, Hash, Message, PublicKey, Receipt, SecretKey,
    Signature, SignedTransaction, Transaction, Transfer, TxOutcome, Unbond, decode, encode,
};
use proptest::prelude::*;

fn address() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address)
}

fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

fn amount() -> impl Strategy<Value = Amount> {
    any::<u128>().prop_map(Amount)
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (address(), amount()).prop_map(|(to, amount)| Message::Transfer(Transfer { to, amount })),
        (address(), amount())
            .prop_map(|(validator, amount)| Message::Bond(Bond { validator, amount })),
        (address(), amount())
            .prop_map(|(validator, amount)| Message::Unbond(Unbond { validator, amount })),
        (
            any::<u32>(),
            "[ -~]{0,12}",
            prop::collection::vec(hash(), 0..3),
            amount()
        )
            .prop_map(|(cores, region, models, bond)| {
                Message::RegisterProvider(RegisterProvider {
                    attributes: ProviderAttributes {
                        cores,
                        memory_mib: u64::from(cores),
                        gpu_model: region.clone(),
                        gpu_count: cores,
                        region,
                        models,
                    },
                    price_per_block: bond,
                    price_per_token: bond,
                    endpoint: "http://x".into(),
                    bond,
                })
            }),
        (
            any::<u64>(),
            prop::option::of("[a-z]{0,8}"),
            prop::option::of(hash()),
            amount()
        )
            .prop_map(|(n, region, model, price)| {
                Message::CreateOrder(CreateOrder {
                    resources: Resources {
                        min_cores: n as u32,
                        min_memory_mib: n,
                        gpu_model: region.clone(),
                        gpu_count: 1,
                        region,
                        model,
                    },
                    duration_blocks: n,
                    max_price_per_block: price,
                    deposit: price,
                    expires_at: n,
                })
            }),
        (any::<u64>(), address())
            .prop_map(|(order, provider)| Message::AcceptBid(AcceptBid { order, provider })),
        (address(), any::<[u8; 32]>(), amount(), any::<u64>()).prop_map(
            |(payee, key, deposit, expires_at)| Message::OpenChannel(OpenChannel {
                payee,
                signer: Some(PublicKey(key)),
                deposit,
                expires_at,
            })
        ),
        (any::<u64>(), amount(), any::<[u8; 32]>(), any::<u8>()).prop_map(
            |(channel, cumulative, key, n)| {
                Message::RedeemVouchers(RedeemVouchers {
                    vouchers: vec![
                        SignedVoucher {
                            voucher: Voucher {
                                chain_id: "c".into(),
                                channel,
                                cumulative,
                                nonce: u64::from(n),
                            },
                            signer: PublicKey(key),
                            signature: Signature([n; 64]),
                        };
                        usize::from(n % 3)
                    ],
                })
            }
        ),
    ]
}

fn signed_tx() -> impl Strategy<Value = SignedTransaction> {
    (
        "[a-z0-9-]{0,20}",
        any::<[u8; 32]>(),
        any::<u64>(),
        amount(),
        prop::collection::vec(message(), 0..4),
        prop::collection::vec(any::<u8>(), 64),
    )
        .prop_map(|(chain_id, key, nonce, fee, messages, sig)| {
            let mut signature = [0u8; 64];
            signature.copy_from_slice(&sig);
            SignedTransaction {
                tx: Transaction {
                    chain_id,
                    signer: PublicKey(key),
                    nonce,
                    fee,
                    messages,
                },
                signature: Signature(signature),
            }
        })
}

fn header() -> impl Strategy<Value = BlockHeader> {
    (
        "[a-z0-9-]{0,20}",
        any::<u64>(),
        hash(),
        any::<u64>(),
        address(),
        hash(),
        hash(),
        hash(),
    )
        .prop_map(
            |(chain_id, height, parent_hash, time_ms, proposer, tx_root, state_root, app_hash)| {
                BlockHeader {
                    chain_id,
                    height,
                    parent_hash,
                    time_ms,
                    proposer,
                    tx_root,
                    state_root,
                    app_hash,
                }
            },
        )
}

fn receipt() -> impl Strategy<Value = Receipt> {
    (
        hash(),
        any::<u64>(),
        any::<u32>(),
        prop_oneof![
            Just(TxOutcome::Success),
            ".{0,20}".prop_map(TxOutcome::Failed)
        ],
        amount(),
        prop::collection::vec(("[a-z.]{1,10}", "[a-z]{1,5}", ".{0,10}"), 0..3),
    )
        .prop_map(|(tx_hash, height, index, outcome, fee, events)| Receipt {
            tx_hash,
            height,
            index,
            outcome,
            fee,
            events: events
                .into_iter()
                .map(|(kind, k, v)| Event {
                    kind,
                    attributes: vec![(k, v)],
                })
                .collect(),
        })
}

fn round_trip<T>(value: &T)
where
    T: borsh::BorshSerialize
        + borsh::BorshDeserialize
        + serde::Serialize
        + serde::de::DeserializeOwned
        + PartialEq
        + std::fmt::Debug,
{
    let bytes = encode(value);
    assert_eq!(&decode::<T>(&bytes).unwrap(), value);
    let json = serde_json::to_string(value).unwrap();
    assert_eq!(&serde_json::from_str::<T>(&json).unwrap(), value);
}

proptest! {
    #[test]
    fn transactions_round_trip(tx in signed_tx()) {
        round_trip(&tx);
    }

    #[test]
    fn blocks_round_trip(header in header(), txs in prop::collection::vec(signed_tx(), 0..3)) {
        round_trip(&Block { header, txs });
    }

    #[test]
    fn receipts_round_trip(r in receipt()) {
        round_trip(&r);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode::<SignedTransaction>(&bytes);
        let _ = decode::<Block>(&bytes);
        let _ = decode::<Receipt>(&bytes);
        let _ = decode::<BlockHeader>(&bytes);
    }

    #[test]
    fn truncated_or_extended_encodings_are_rejected(tx in signed_tx(), cut in 1usize..40) {
        let bytes = encode(&tx);
        let cut = cut.min(bytes.len());
        prop_assert!(decode::<SignedTransaction>(&bytes[..bytes.len() - cut]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(decode::<SignedTransaction>(&longer).is_err());
    }
}

#[test]
fn a_signature_covers_every_field() {
    let key = SecretKey::generate();
    let tx = Transaction {
        chain_id: "a".into(),
        signer: key.public_key(),
        nonce: 1,
        fee: Amount(5),
        messages: vec![Message::Transfer(Transfer {
            to: Address([1; 20]),
            amount: Amount(9),
        })],
    }
    .sign(&key);
    assert!(tx.verify_signature().is_ok());
    let mut other_chain = tx.clone();
    other_chain.tx.chain_id = "b".into();
    assert!(other_chain.verify_signature().is_err());
    let mut other_nonce = tx.clone();
    other_nonce.tx.nonce = 2;
    assert!(other_nonce.verify_signature().is_err());
    let mut other_amount = tx;
    other_amount.tx.messages = vec![Message::Transfer(Transfer {
        to: Address([1; 20]),
        amount: Amount(10),
    })];
    assert!(other_amount.verify_signature().is_err());
}
