//! Provider liveness through transactions: a lease pays no block after its provider's last
//! heartbeat plus the interval, each interval without one is a missed check that costs
//! reputation and tells the provider's clients, three in a row unlist the provider (it cannot
//! bid), and a heartbeat lists it again; the blocks a provider was down for are never paid.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hibana_runtime::market::{self, LeaseStatus, MIN_PROVIDER_BOND};
use hibana_types::records::market::{
    MAX_MISSED_CHECKS, MAX_REPUTATION, MISSED_CHECK_COST, MarketParams, ProviderAttributes,
    Resources,
};
use hibana_types::{
    AcceptBid, Address, Amount, AttestProvider, CreateOrder, Heartbeat, Message, PlaceBid,
    RegisterProvider, SecretKey, SetAutoAccept, WithdrawLease,
};

mod common;

use common::World;

const LIVENESS: u64 = 10;

fn addr(k: &SecretKey) -> Address {
    k.public_key().address()
}

fn world(keys: &[&SecretKey]) -> World {
    World::with_market(
        keys,
        Amount(100_000_000_000),
        MarketParams {
            liveness_blocks: LIVENESS,
        },
    )
}

fn register() -> Message {
    Message::RegisterProvider(RegisterProvider {
        attributes: ProviderAttributes {
            cores: 4,
            memory_mib: 1024,
            gpu_model: String::new(),
            gpu_count: 0,
            region: "eu".into(),
            models: vec![],
        },
        price_per_block: Amount(1_000),
        price_per_token: Amount(1),
        endpoint: "http://127.0.0.1:9".into(),
        bond: MIN_PROVIDER_BOND,
    })
}

fn order(w: &World) -> Message {
    Message::CreateOrder(CreateOrder {
        resources: Resources {
            min_cores: 1,
            ..Default::default()
        },
        duration_blocks: 500,
        max_price_per_block: Amount(1_000),
        deposit: Amount(500_000),
        expires_at: w.height + 100,
    })
}

/// Client `c` orders, provider `p` bids, `c` accepts: lease 0.
fn lease(w: &mut World, c: &SecretKey, p: &SecretKey) {
    w.ok(c, order(w));
    w.ok(
        p,
        Message::PlaceBid(PlaceBid {
            order: 0,
            price_per_block: Amount(1_000),
        }),
    );
    w.ok(
        c,
        Message::AcceptBid(AcceptBid {
            order: 0,
            provider: addr(p),
        }),
    );
}

#[test]
fn a_lease_stops_paying_when_its_provider_stops_proving_it_is_up() {
    let (c, p) = (SecretKey::generate(), SecretKey::generate());
    let mut w = world(&[&c, &p]);
    w.ok(&p, register());
    let registered = w.height;
    lease(&mut w, &c, &p);
    let started = market::lease(&w.state, 0).unwrap().unwrap().started_at;
    // The provider sends no heartbeat: it is live until `registered + LIVENESS`, and misses
    // the checks at the ends of `registered + 11` and `registered + 21`.
    w.idle(registered + 2 * LIVENESS + 2 - w.height);
    w.ok(&p, Message::WithdrawLease(WithdrawLease { lease: 0 }));
    let l = market::lease(&w.state, 0).unwrap().unwrap();
    assert_eq!(
        l.paid.0,
        1_000 * u128::from(registered + LIVENESS - started)
    );
    assert_eq!(
        l.settled_at, w.height,
        "the down blocks are skipped, not owed"
    );
    assert_eq!(l.status, LeaseStatus::Active);
    let live = market::liveness(&w.state, &addr(&p)).unwrap().unwrap();
    assert_eq!(live.missed, 2);
    assert_eq!(live.reputation, MAX_REPUTATION - 2 * MISSED_CHECK_COST);
    assert!(live.listed);

    // Back up: it is paid again from its heartbeat on, and never for the blocks it was down.
    w.ok(&p, Message::Heartbeat(Heartbeat {}));
    let back = w.height;
    w.idle(4);
    w.ok(&p, Message::WithdrawLease(WithdrawLease { lease: 0 }));
    let l2 = market::lease(&w.state, 0).unwrap().unwrap();
    assert_eq!(
        l2.paid.0 - l.paid.0,
        1_000 * u128::from(w.height - l.settled_at)
    );
    assert!(w.height - l.settled_at >= w.height - back);
    let live = market::liveness(&w.state, &addr(&p)).unwrap().unwrap();
    assert_eq!((live.missed, live.last_seen), (0, back));
}

#[test]
fn missed_checks_unlist_a_provider_and_tell_its_clients_until_it_heartbeats() {
    let (c, p) = (SecretKey::generate(), SecretKey::generate());
    let mut w = world(&[&c, &p]);
    w.ok(&p, register());
    lease(&mut w, &c, &p);
    // Each interval without a heartbeat is one missed check.
    let mut seen = Vec::new();
    for _ in 0..(LIVENESS * u64::from(MAX_MISSED_CHECKS) + 3) {
        w.idle(1);
        let live = market::liveness(&w.state, &addr(&p)).unwrap().unwrap();
        if seen.last() != Some(&live.missed) {
            seen.push(live.missed);
        }
    }
    assert_eq!(seen, (0..=MAX_MISSED_CHECKS).collect::<Vec<_>>());
    let live = market::liveness(&w.state, &addr(&p)).unwrap().unwrap();
    assert!(!live.listed);
    assert_eq!(
        live.reputation,
        MAX_REPUTATION - MAX_MISSED_CHECKS * MISSED_CHECK_COST
    );

    // Unlisted, it cannot bid; a heartbeat lists it again.
    w.ok(&c, order(&w));
    w.fails(
        &p,
        Message::PlaceBid(PlaceBid {
            order: 1,
            price_per_block: Amount(1_000),
        }),
        "unlisted after 3 missed liveness checks",
    );
    w.ok(&p, Message::Heartbeat(Heartbeat {}));
    w.ok(
        &p,
        Message::PlaceBid(PlaceBid {
            order: 1,
            price_per_block: Amount(1_000),
        }),
    );
    // Only providers send heartbeats.
    w.fails(
        &c,
        Message::Heartbeat(Heartbeat {}),
        "not a registered provider",
    );
}

#[test]
fn the_chain_tells_a_client_its_lease_stalled() {
    let (c, p) = (SecretKey::generate(), SecretKey::generate());
    let mut w = world(&[&c, &p]);
    w.ok(&p, register());
    let registered = w.height;
    lease(&mut w, &c, &p);
    // The first missed check is at the end of registered + LIVENESS + 1: the events of that
    // block's end name the lease.
    let check = registered + LIVENESS + 1;
    w.idle(check - w.height - 1);
    let mut state = w.state.clone();
    let ctx = hibana_runtime::BlockContext {
        chain_id: common::CHAIN.into(),
        height: check,
        time_ms: check,
        proposer: addr(&w.validator),
    };
    hibana_runtime::begin_block(&mut state, &ctx).unwrap();
    let events = hibana_runtime::end_block(&mut state, &ctx).unwrap();
    let stalled = events
        .iter()
        .find(|e| e.kind == "market.lease_stalled")
        .expect("a lease_stalled event");
    assert!(
        stalled
            .attributes
            .iter()
            .any(|(k, v)| k == "paid_until" && *v == (registered + LIVENESS).to_string())
    );
}

#[test]
fn auto_accept_takes_the_cheapest_bid_of_a_reputable_provider() {
    let (c, cheap, good, other) = (
        SecretKey::generate(),
        SecretKey::generate(),
        SecretKey::generate(),
        SecretKey::generate(),
    );
    let mut w = world(&[&c, &cheap, &good, &other]);
    w.ok(&cheap, register());
    // `cheap` misses two checks (reputation 600, 620 after its heartbeat); `good` registers
    // later and keeps 1,000.
    w.idle(2 * LIVENESS + 2);
    w.ok(&cheap, Message::Heartbeat(Heartbeat {}));
    assert_eq!(
        market::liveness(&w.state, &addr(&cheap))
            .unwrap()
            .unwrap()
            .reputation,
        620
    );
    w.ok(&good, register());
    w.ok(&c, order(&w));
    let bid = |price| {
        Message::PlaceBid(PlaceBid {
            order: 0,
            price_per_block: Amount(price),
        })
    };
    w.ok(&cheap, bid(500));
    w.ok(&good, bid(900));
    let rule = |min_reputation, at| {
        Message::SetAutoAccept(SetAutoAccept {
            order: 0,
            min_reputation,
            at,
            attested_only: false,
        })
    };
    w.fails(&other, rule(700, w.height + 5), "belongs to");
    w.fails(&c, rule(700, w.height), "must be after");
    w.fails(&c, rule(700, w.height + 1_000), "before the order expires");
    w.fails(&c, rule(1_001, w.height + 5), "0 to 1000");
    let at = w.height + 5;
    w.ok(&c, rule(700, at));
    w.idle(at - w.height - 1);
    assert!(market::order(&w.state, 0).unwrap().unwrap().lease.is_none());
    w.idle(1);
    let o = market::order(&w.state, 0).unwrap().unwrap();
    let lease = market::lease(&w.state, o.lease.expect("accepted"))
        .unwrap()
        .unwrap();
    assert_eq!(
        lease.provider,
        addr(&good),
        "the cheaper bid's provider is below the floor"
    );
    assert_eq!(lease.price_per_block, Amount(900));
    assert_eq!(lease.started_at, at);

    // With no eligible bid, the order stays open.
    w.ok(&cheap, Message::Heartbeat(Heartbeat {}));
    w.ok(&c, order(&w));
    w.ok(
        &cheap,
        Message::PlaceBid(PlaceBid {
            order: 1,
            price_per_block: Amount(500),
        }),
    );
    let at = w.height + 3;
    w.ok(
        &c,
        Message::SetAutoAccept(SetAutoAccept {
            order: 1,
            min_reputation: 900,
            at,
            attested_only: false,
        }),
    );
    w.idle(5);
    assert!(market::order(&w.state, 1).unwrap().unwrap().lease.is_none());
    assert!(market::auto_accept(&w.state, 1).unwrap().is_none());
}

#[test]
fn an_attested_only_rule_takes_the_provider_a_validator_audited() {
    let (c, cheap, audited) = (
        SecretKey::generate(),
        SecretKey::generate(),
        SecretKey::generate(),
    );
    let mut w = world(&[&c, &cheap, &audited]);
    let validator = w.validator.clone();
    w.ok(
        &c,
        Message::Transfer(hibana_types::Transfer {
            to: addr(&validator),
            amount: Amount(1_000_000_000),
        }),
    );
    w.ok(&cheap, register());
    w.ok(&audited, register());
    let attest = |provider: &SecretKey, cores| {
        Message::AttestProvider(AttestProvider {
            provider: addr(provider),
            attributes: ProviderAttributes {
                cores,
                memory_mib: 1024,
                gpu_model: String::new(),
                gpu_count: 0,
                region: "eu".into(),
                models: vec![],
            },
        })
    };
    w.fails(&c, attest(&audited, 4), "only validators attest");
    w.fails(&validator, attest(&c, 4), "not a registered provider");
    w.ok(&validator, attest(&audited, 4));
    // An attestation of fewer cores than the order needs does not count.
    w.ok(&validator, attest(&cheap, 1));
    let found = market::attestations(&w.state, &addr(&audited)).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].attester, addr(&validator));

    w.ok(
        &c,
        Message::CreateOrder(CreateOrder {
            resources: Resources {
                min_cores: 2,
                ..Default::default()
            },
            duration_blocks: 500,
            max_price_per_block: Amount(1_000),
            deposit: Amount(500_000),
            expires_at: w.height + 100,
        }),
    );
    for (k, price) in [(&cheap, 100), (&audited, 900)] {
        w.ok(
            k,
            Message::PlaceBid(PlaceBid {
                order: 0,
                price_per_block: Amount(price),
            }),
        );
    }
    let at = w.height + 2;
    w.ok(
        &c,
        Message::SetAutoAccept(SetAutoAccept {
            order: 0,
            min_reputation: 0,
            at,
            attested_only: true,
        }),
    );
    w.idle(2);
    let o = market::order(&w.state, 0).unwrap().unwrap();
    let lease = market::lease(&w.state, o.lease.expect("accepted"))
        .unwrap()
        .unwrap();
    assert_eq!(lease.provider, addr(&audited));
}
