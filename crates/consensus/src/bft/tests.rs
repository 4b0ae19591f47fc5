//! Unit tests of the context, signing and codec.

use bytes::Bytes;
use hibana_runtime::staking::ValidatorInfo;
use hibana_types::{
    Amount, Block, BlockHeader, Hash, Message, SecretKey, SignedTransaction, Transaction, Transfer,
};
use malachitebft_app_channel::app::{
    streaming::{StreamContent, StreamId, StreamMessage},
    types::{
        SignedConsensusMsg,
        codec::Codec,
        core::{CommitCertificate, NilOrVal, Round, SigningProvider, VoteType},
    },
};
use malachitebft_core_types::Context as _;

use super::*;

fn info(key: &SecretKey, hib: u128) -> ValidatorInfo {
    ValidatorInfo {
        address: key.public_key().address(),
        public_key: key.public_key(),
        power: Amount::from_hib(hib).unwrap(),
    }
}

fn vote(key: &SecretKey, round: u32, value: Option<Hash>) -> ConsensusVote {
    HibanaContext.new_precommit(
        Height(7),
        Round::new(round),
        match value {
            Some(h) => NilOrVal::Val(BlockHash(h)),
            None => NilOrVal::Nil,
        },
        ValidatorAddress(key.public_key().address()),
    )
}

fn transfer(key: &SecretKey, nonce: u64) -> SignedTransaction {
    Transaction {
        chain_id: "c".into(),
        signer: key.public_key(),
        nonce,
        fee: Amount(1_000),
        messages: vec![Message::Transfer(Transfer {
            to: key.public_key().address(),
            amount: Amount(1),
        })],
    }
    .sign(key)
}

fn block(height: u64) -> Block {
    Block {
        header: BlockHeader {
            chain_id: "test".into(),
            height,
            parent_hash: Hash::digest(b"parent"),
            time_ms: 1,
            proposer: SecretKey::generate().public_key().address(),
            tx_root: Hash::ZERO,
            state_root: Hash::digest(b"root"),
            app_hash: Hash::ZERO,
        },
        txs: vec![],
    }
}

#[test]
fn validator_set_follows_stake_and_refuses_to_be_empty() {
    let (a, b, c) = (
        SecretKey::generate(),
        SecretKey::generate(),
        SecretKey::generate(),
    );
    let set =
        ConsensusValidatorSet::from_staking(&[info(&a, 10), info(&b, 30), info(&c, 20)]).unwrap();
    let powers: Vec<u64> = set.validators().iter().map(|v| v.voting_power).collect();
    assert_eq!(powers, vec![30, 20, 10]);
    assert_eq!(
        malachitebft_core_types::ValidatorSet::total_voting_power(&set),
        60
    );
    assert_eq!(
        ConsensusValidatorSet::from_staking(&[]),
        Err(EmptyValidatorSet)
    );
}

#[test]
fn proposers_rotate_through_every_validator() {
    let keys: Vec<SecretKey> = (0..4).map(|_| SecretKey::generate()).collect();
    let infos: Vec<ValidatorInfo> = keys.iter().map(|k| info(k, 5)).collect();
    let set = ConsensusValidatorSet::from_staking(&infos).unwrap();
    let mut seen: Vec<ValidatorAddress> = (1..=4)
        .map(|h| {
            HibanaContext
                .select_proposer(&set, Height(h), Round::new(0))
                .address
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4);
    // A new round at the same height moves to the next proposer.
    assert_ne!(
        HibanaContext
            .select_proposer(&set, Height(9), Round::new(0))
            .address,
        HibanaContext
            .select_proposer(&set, Height(9), Round::new(1))
            .address
    );
}

#[test]
fn signatures_bind_the_key_the_chain_and_the_message() {
    let key = SecretKey::generate();
    let signer = Ed25519Signer::new(key.clone(), "chain-a");
    let signed = signer.sign_vote(vote(&key, 0, Some(Hash::digest(b"x"))));
    let pk = key.public_key();
    assert!(signer.verify_signed_vote(&signed.message, &signed.signature, &pk));
    let other = SecretKey::generate().public_key();
    assert!(!signer.verify_signed_vote(&signed.message, &signed.signature, &other));
    let other_chain = Ed25519Signer::new(key.clone(), "chain-b");
    assert!(!other_chain.verify_signed_vote(&signed.message, &signed.signature, &pk));
    let changed = vote(&key, 0, None);
    assert!(!signer.verify_signed_vote(&changed, &signed.signature, &pk));
    // A vote signature is not a proposal signature.
    let proposal = HibanaContext.new_proposal(
        Height(7),
        Round::new(0),
        BlockHash(Hash::digest(b"x")),
        Round::Nil,
        ValidatorAddress(pk.address()),
    );
    assert!(!signer.verify_signed_proposal(&proposal, &signed.signature, &pk));
}

#[test]
fn codec_round_trips_network_wal_and_sync_messages() {
    let key = SecretKey::generate();
    let signer = Ed25519Signer::new(key.clone(), "c");
    let codec = BorshCodec;
    let msg = SignedConsensusMsg::Vote(signer.sign_vote(vote(&key, 2, Some(Hash::digest(b"v")))));
    let bytes = Codec::<SignedConsensusMsg<HibanaContext>>::encode(&codec, &msg).unwrap();
    let back: SignedConsensusMsg<HibanaContext> = codec.decode(bytes).unwrap();
    assert_eq!(back, msg);

    let init = ProposalInit {
        height: Height(3),
        round: Round::new(1),
        valid_round: Round::Nil,
        proposer: ValidatorAddress(key.public_key().address()),
        header: block(3).header,
        chunks: 1,
        signature: context::ConsensusSignature([7; 64]),
    };
    for part in [
        Part::Init(Box::new(init)),
        Part::BlockTxs(vec![transfer(&key, 0)]),
        Part::Txs(vec![transfer(&key, 0), transfer(&key, 1)]),
    ] {
        let stream = StreamMessage::new(
            StreamId::new(Bytes::from_static(b"id")),
            0,
            StreamContent::Data(part.clone()),
        );
        let bytes = codec.encode(&stream).unwrap();
        let back: StreamMessage<Part> = codec.decode(bytes).unwrap();
        assert_eq!(back.content.as_data(), Some(&part));
    }

    let signed = signer.sign_vote(vote(&key, 0, Some(Hash::digest(b"d"))));
    let certificate = CommitCertificate::<HibanaContext>::new(
        Height(7),
        Round::new(0),
        BlockHash(Hash::digest(b"d")),
        vec![signed],
    );
    let bytes = codec.encode(&certificate).unwrap();
    let back: CommitCertificate<HibanaContext> = codec.decode(bytes).unwrap();
    assert_eq!(back, certificate);
    assert_eq!(back.commit_signatures.len(), 1);
    assert_eq!(VoteType::Precommit, vote(&key, 0, None).vote_type);
}

#[test]
fn codec_refuses_malformed_and_oversized_input() {
    let codec = BorshCodec;
    let garbage = Bytes::from_static(&[0xff, 1, 2, 3]);
    assert!(matches!(
        Codec::<SignedConsensusMsg<HibanaContext>>::decode(&codec, garbage),
        Err(CodecError::Malformed(_))
    ));
    let huge = Bytes::from(vec![0u8; MAX_MESSAGE_BYTES + 1]);
    assert!(matches!(
        Codec::<StreamMessage<Part>>::decode(&codec, huge),
        Err(CodecError::TooLarge(_))
    ));
}

/// A sync status with a malformed peer id is refused, not a panic (Malachite's `PeerId` borsh
/// decoding unwraps; found by the `consensus` fuzz target).
#[test]
fn codec_refuses_a_status_with_a_malformed_peer_id() {
    use malachitebft_app_channel::app::types::sync::Status;
    let codec = BorshCodec;
    let mut bytes = 3u32.to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0x74, 0xaa, 0xbb]);
    bytes.extend_from_slice(&[0; 16]);
    assert!(matches!(
        Codec::<Status<HibanaContext>>::decode(&codec, Bytes::from(bytes)),
        Err(CodecError::Malformed(_))
    ));
    // A real peer id still decodes.
    let status = Status::<HibanaContext> {
        // A sha2-256 multihash, as libp2p derives from a large public key.
        peer_id: malachitebft_peer::PeerId::from_bytes(
            &[[0x12, 0x20].as_slice(), &[5; 32]].concat(),
        )
        .unwrap(),
        tip_height: Height(4),
        history_min_height: Height(1),
    };
    let bytes = Codec::<Status<HibanaContext>>::encode(&codec, &status).unwrap();
    assert_eq!(
        Codec::<Status<HibanaContext>>::decode(&codec, bytes).unwrap(),
        status
    );
}

/// The chain checks equivocation evidence with `hibana_types::ConsensusVote`: its encoding must
/// be exactly the engine's vote encoding, or no evidence signature would ever verify.
#[test]
fn evidence_votes_encode_like_engine_votes() {
    let key = SecretKey::generate();
    let signer = Ed25519Signer::new(key.clone(), "test");
    for (round, value) in [(0, Some(Hash::digest(b"a"))), (3, None)] {
        let engine = vote(&key, round, value);
        let mirror = hibana_types::ConsensusVote {
            kind: hibana_types::VoteKind::Precommit,
            height: 7,
            round: hibana_types::VoteRound::Some(round),
            value: value.map_or(hibana_types::VoteValue::Nil, hibana_types::VoteValue::Block),
            validator: key.public_key().address(),
        };
        assert_eq!(hibana_types::encode(&engine), hibana_types::encode(&mirror));
        let signed = signer.sign_vote(engine);
        let bytes = hibana_types::consensus_sign_bytes("test", "vote", &mirror);
        key.public_key()
            .verify(&bytes, &hibana_types::Signature(signed.signature.0))
            .unwrap();
    }
    let prevote = HibanaContext.new_prevote(
        Height(7),
        Round::Nil,
        NilOrVal::Nil,
        ValidatorAddress(key.public_key().address()),
    );
    let mirror = hibana_types::ConsensusVote {
        kind: hibana_types::VoteKind::Prevote,
        height: 7,
        round: hibana_types::VoteRound::Nil,
        value: hibana_types::VoteValue::Nil,
        validator: key.public_key().address(),
    };
    assert_eq!(
        hibana_types::encode(&prevote),
        hibana_types::encode(&mirror)
    );
}

/// The signer hands the votes it verified to the watch, which turns two conflicting votes of
/// one validator into evidence the chain accepts, once, and ignores everything else.
#[test]
fn the_watch_finds_conflicting_votes_and_nothing_else() {
    let cheater = SecretKey::generate();
    let honest = SecretKey::generate();
    let watch = Arc::new(EvidenceWatch::new());
    let verifier = Ed25519Signer::new(SecretKey::generate(), "test").watching(watch.clone());
    let signer = |key: &SecretKey| Ed25519Signer::new(key.clone(), "test");
    let receive = |key: &SecretKey, vote: ConsensusVote| {
        let signed = signer(key).sign_vote(vote);
        assert!(verifier.verify_signed_vote(&signed.message, &signed.signature, &key.public_key()));
    };
    let (a, b) = (Some(Hash::digest(b"a")), Some(Hash::digest(b"b")));
    // The same vote twice, and one vote per round, are honest.
    receive(&honest, vote(&honest, 0, a));
    receive(&honest, vote(&honest, 0, a));
    receive(&honest, vote(&honest, 1, b));
    receive(&cheater, vote(&cheater, 0, a));
    assert!(watch.take().is_empty());
    // A vote with a bad signature is not evidence of anything.
    let forged = signer(&honest).sign_vote(vote(&cheater, 0, b));
    assert!(!verifier.verify_signed_vote(
        &forged.message,
        &forged.signature,
        &cheater.public_key()
    ));
    assert!(watch.take().is_empty());
    // A second value in the same round is, once.
    receive(&cheater, vote(&cheater, 0, b));
    receive(&cheater, vote(&cheater, 0, None));
    let found = watch.take();
    assert_eq!(found.len(), 1);
    found[0].check("test").unwrap();
    assert!(found[0].check("another chain").is_err());
    assert_eq!(found[0].public_key, cheater.public_key());
    assert_ne!(found[0].first.vote.value, found[0].second.vote.value);
    assert!(watch.take().is_empty());
}

/// Votes far below the newest height are forgotten, so the watch stays small.
#[test]
fn the_watch_forgets_old_heights() {
    let cheater = SecretKey::generate();
    let watch = EvidenceWatch::new();
    let signed = |height: u64, value: &[u8]| {
        let vote = HibanaContext.new_prevote(
            Height(height),
            Round::new(0),
            NilOrVal::Val(BlockHash(Hash::digest(value))),
            ValidatorAddress(cheater.public_key().address()),
        );
        let s = Ed25519Signer::new(cheater.clone(), "test").sign_vote(vote);
        (s.message, hibana_types::Signature(s.signature.0))
    };
    let (v, s) = signed(1, b"a");
    assert!(watch.observe(&v, &s, &cheater.public_key()).is_none());
    let (v, s) = signed(100, b"a");
    assert!(watch.observe(&v, &s, &cheater.public_key()).is_none());
    let (v, s) = signed(1, b"b");
    assert!(watch.observe(&v, &s, &cheater.public_key()).is_none());
    let (v, s) = signed(100, b"b");
    let evidence = watch.observe(&v, &s, &cheater.public_key()).unwrap();
    assert_eq!(evidence.first.vote.height, 100);
}

fn big_block(key: &SecretKey, n: u64) -> BlockPart {
    let mut b = block(3);
    b.txs = (0..n).map(|k| transfer(key, k)).collect();
    BlockPart {
        height: Height(3),
        round: Round::new(0),
        valid_round: Round::Nil,
        proposer: ValidatorAddress(key.public_key().address()),
        block: b,
    }
}

/// A block split into parts of bounded size comes back whole, whatever order its messages
/// arrive in, and only once all have arrived.
#[test]
fn blocks_stream_in_parts_and_come_back_in_any_order() {
    use super::stream::{Streams, messages, split};
    let key = SecretKey::generate();
    let part = big_block(&key, 40);
    let one = super::stream::tx_bytes(&part.block.txs[0]);
    let parts = split(part.clone(), one * 3, &Ed25519Signer::new(key.clone(), "c"));
    assert_eq!(
        parts.len(),
        1 + 14,
        "an init and 14 chunks of at most 3 transactions"
    );
    let id = StreamId::new(Bytes::from_static(b"h3r0"));
    let mut msgs = messages(id.clone(), parts);
    // Reverse order, with a duplicate: nothing until the last one, then the block.
    msgs.reverse();
    let dup = msgs[3].clone();
    msgs.insert(5, dup);
    let mut streams: Streams<u8> = Streams::new(10_000);
    let last = msgs.pop().unwrap();
    for m in msgs {
        assert_eq!(streams.insert(1, m).unwrap(), None);
    }
    assert_eq!(streams.insert(1, last).unwrap(), Some(part.clone()));
    assert_eq!(streams.len(), 0);
    // An empty block is an init and the end.
    let empty = big_block(&key, 0);
    let mut got = None;
    for m in messages(
        id.clone(),
        split(empty.clone(), 1024, &Ed25519Signer::new(key.clone(), "c")),
    ) {
        got = streams.insert(2, m).unwrap();
    }
    assert_eq!(got, Some(empty));
}

/// Parts out of place and blocks beyond the limits drop their stream, with a reason; streams of
/// two peers with the same id do not mix.
#[test]
fn broken_streams_are_dropped() {
    use super::stream::{Streams, messages, split};
    let key = SecretKey::generate();
    let id = StreamId::new(Bytes::from_static(b"id"));
    let mut streams: Streams<u8> = Streams::new(10);
    // A chunk at sequence 0, an init elsewhere.
    let chunk = StreamMessage::new(
        id.clone(),
        0,
        StreamContent::Data(Part::BlockTxs(vec![transfer(&key, 0)])),
    );
    assert!(streams.insert(1, chunk).is_err());
    let init = split(
        big_block(&key, 1),
        1024,
        &Ed25519Signer::new(key.clone(), "c"),
    )
    .remove(0);
    assert!(
        streams
            .insert(
                1,
                StreamMessage::new(id.clone(), 2, StreamContent::Data(init))
            )
            .is_err()
    );
    // Gossip on a block stream.
    let gossip = StreamMessage::new(id.clone(), 1, StreamContent::Data(Part::Txs(vec![])));
    assert!(streams.insert(1, gossip).is_err());
    // More transactions than a block may hold.
    let mut too_many = Ok(None);
    for m in messages(
        id.clone(),
        split(
            big_block(&key, 11),
            1 << 20,
            &Ed25519Signer::new(key.clone(), "c"),
        ),
    ) {
        too_many = streams.insert(1, m);
        if too_many.is_err() {
            break;
        }
    }
    assert!(too_many.is_err());
    assert_eq!(streams.len(), 0);
    // Two peers, one stream id, different blocks: each gets its own back.
    let (a, b) = (big_block(&key, 2), big_block(&key, 3));
    let (ma, mb) = (
        messages(
            id.clone(),
            split(a.clone(), 1, &Ed25519Signer::new(key.clone(), "c")),
        ),
        messages(
            id.clone(),
            split(b.clone(), 1, &Ed25519Signer::new(key.clone(), "c")),
        ),
    );
    let mut done = Vec::new();
    for k in 0..ma.len().max(mb.len()) {
        if let Some(x) = ma.get(k) {
            done.extend(streams.insert(1, x.clone()).unwrap());
        }
        if let Some(y) = mb.get(k) {
            done.extend(streams.insert(2, y.clone()).unwrap());
        }
    }
    assert_eq!(done, vec![a, b]);
}

/// A stream's init is signed by its proposer over every field: another key, another round or a
/// changed header does not verify.
#[test]
fn proposal_inits_are_signed_by_their_proposer() {
    use super::stream::split;
    let key = SecretKey::generate();
    let signer = Ed25519Signer::new(key.clone(), "c");
    let Part::Init(init) = split(big_block(&key, 2), 1024, &signer).remove(0) else {
        panic!("the first part is the init");
    };
    assert!(signer.verify_init(&init, &key.public_key()));
    let stranger = SecretKey::generate();
    assert!(!signer.verify_init(&init, &stranger.public_key()));
    let forged = split(
        big_block(&key, 2),
        1024,
        &Ed25519Signer::new(stranger.clone(), "c"),
    )
    .remove(0);
    let Part::Init(forged) = forged else {
        panic!("the first part is the init");
    };
    assert!(!signer.verify_init(&forged, &key.public_key()));
    let mut moved = init.clone();
    moved.round = Round::new(1);
    assert!(!signer.verify_init(&moved, &key.public_key()));
    let mut changed = init.clone();
    changed.header.tx_root = Hash::digest(b"other transactions");
    assert!(!signer.verify_init(&changed, &key.public_key()));
    let other_chain = Ed25519Signer::new(key.clone(), "other");
    assert!(!other_chain.verify_init(&init, &key.public_key()));
}

/// A peer that opens stream after stream (chunks with no init) evicts only its own streams and
/// the init-less ones: the proposer's stream, opened first, still completes.
#[test]
fn a_flooding_peer_cannot_evict_a_proposers_stream() {
    use super::stream::{Streams, messages, split};
    let key = SecretKey::generate();
    let signer = Ed25519Signer::new(key.clone(), "c");
    let honest = big_block(&key, 4);
    let mut msgs = messages(
        StreamId::new(Bytes::from_static(b"h3r0")),
        split(honest.clone(), 1, &signer),
    );
    let last = msgs.pop().unwrap();
    let mut streams: Streams<u32> = Streams::new(10_000);
    for m in msgs {
        assert_eq!(streams.insert(1, m).unwrap(), None);
    }
    // One flooding peer, then many.
    for (peer, n) in [(2u32, 0u64), (3, 1), (4, 2)]
        .into_iter()
        .chain((5..200).map(|p| (p, 0)))
    {
        for id in 0..50u64 {
            let chunk = StreamMessage::new(
                StreamId::new(Bytes::from(format!("junk{id}"))),
                1,
                StreamContent::Data(Part::BlockTxs(vec![transfer(&key, n)])),
            );
            assert_eq!(streams.insert(peer, chunk).unwrap(), None);
        }
        assert!(streams.len() <= 32, "{} streams open", streams.len());
    }
    assert_eq!(streams.insert(1, last).unwrap(), Some(honest));
}
