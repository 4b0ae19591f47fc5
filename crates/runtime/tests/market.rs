//! The market component through transactions: providers, orders, bids, leases, expiry, the
//! errors users get for bad input (balances untouched), and a property test that random
//! sequences of market messages conserve the supply and never pay out more than was deposited.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hibana_runtime::{
    bank,
    market::{self, BID_DEPOSIT, LeaseStatus, MARKET_ESCROW, MIN_PROVIDER_BOND, OrderStatus},
};
use hibana_types::records::market::{ProviderAttributes, Resources};
use hibana_types::{
    AcceptBid, Address, Amount, CloseLease, CloseOrder, CreateOrder, DeregisterProvider, Hash,
    Message, PlaceBid, RegisterProvider, SecretKey, TopUpLease, UpdateProvider, WithdrawLease,
};
use proptest::prelude::*;

mod common;

use common::{FEE, World};

fn gpu_box() -> ProviderAttributes {
    ProviderAttributes {
        cores: 16,
        memory_mib: 65_536,
        gpu_model: "A100".into(),
        gpu_count: 2,
        region: "eu-west".into(),
        models: vec![Hash::digest(b"smollm2")],
    }
}

fn register(attributes: ProviderAttributes) -> Message {
    Message::RegisterProvider(RegisterProvider {
        attributes,
        price_per_block: Amount(1_000),
        price_per_token: Amount(3),
        endpoint: "http://127.0.0.1:9000".into(),
        bond: MIN_PROVIDER_BOND,
    })
}

fn needs() -> Resources {
    Resources {
        min_cores: 8,
        min_memory_mib: 16_384,
        gpu_model: Some("A100".into()),
        gpu_count: 1,
        region: Some("eu-west".into()),
        model: Some(Hash::digest(b"smollm2")),
    }
}

fn create(resources: Resources, deposit: u128, expires_at: u64) -> Message {
    Message::CreateOrder(CreateOrder {
        resources,
        duration_blocks: 100,
        max_price_per_block: Amount(1_000),
        deposit: Amount(deposit),
        expires_at,
    })
}

fn bid(order: u64, price: u128) -> Message {
    Message::PlaceBid(PlaceBid {
        order,
        price_per_block: Amount(price),
    })
}

fn addr(k: &SecretKey) -> Address {
    k.public_key().address()
}

fn hib(n: u128) -> Amount {
    Amount::from_hib(n).unwrap()
}

#[test]
fn nobody_transfers_to_the_escrow_or_another_module_account() {
    let p = SecretKey::generate();
    let mut w = World::new(&[&p], hib(100));
    for to in hibana_types::records::MODULE_ACCOUNTS {
        w.fails(
            &p,
            Message::Transfer(hibana_types::Transfer { to, amount: hib(1) }),
            "nobody may transfer to it",
        );
        assert_eq!(w.balance(&to), Amount(0));
    }
}

#[test]
fn provider_registers_updates_and_deregisters_with_its_bond() {
    let p = SecretKey::generate();
    let mut w = World::new(&[&p], hib(100));
    w.ok(&p, register(gpu_box()));
    assert_eq!(w.balance(&MARKET_ESCROW), MIN_PROVIDER_BOND);
    assert_eq!(
        w.balance(&addr(&p)).0,
        hib(100).0 - MIN_PROVIDER_BOND.0 - FEE
    );
    let stored = market::provider(&w.state, &addr(&p)).unwrap().unwrap();
    assert_eq!(stored.attributes, gpu_box());
    w.fails(&p, register(gpu_box()), "already a provider");
    let mut bigger = gpu_box();
    bigger.cores = 32;
    w.ok(
        &p,
        Message::UpdateProvider(UpdateProvider {
            attributes: bigger,
            price_per_block: Amount(5),
            price_per_token: Amount(7),
            endpoint: "https://gpu.example".into(),
        }),
    );
    let stored = market::provider(&w.state, &addr(&p)).unwrap().unwrap();
    assert_eq!(
        (
            stored.attributes.cores,
            stored.price_per_block,
            stored.price_per_token
        ),
        (32, Amount(5), Amount(7))
    );
    assert_eq!(stored.bond, MIN_PROVIDER_BOND);
    w.ok(&p, Message::DeregisterProvider(DeregisterProvider {}));
    assert_eq!(w.balance(&MARKET_ESCROW), Amount::ZERO);
    // Four transactions paid fees (one failed); the bond is back in full.
    assert_eq!(w.balance(&addr(&p)).0, hib(100).0 - 4 * FEE);
    assert!(market::provider(&w.state, &addr(&p)).unwrap().is_none());
    w.fails(
        &p,
        Message::DeregisterProvider(DeregisterProvider {}),
        "not a registered provider",
    );
}

#[test]
fn bad_provider_declarations_are_rejected_with_a_reason() {
    let p = SecretKey::generate();
    let mut w = World::new(&[&p], hib(100));
    let with = |f: &dyn Fn(&mut ProviderAttributes)| {
        let mut a = gpu_box();
        f(&mut a);
        register(a)
    };
    w.fails(&p, with(&|a| a.cores = 0), "cores must be");
    w.fails(&p, with(&|a| a.memory_mib = 0), "memory");
    w.fails(&p, with(&|a| a.gpu_count = 0), "GPU count");
    w.fails(&p, with(&|a| a.gpu_model = "x".repeat(65)), "GPU model");
    w.fails(
        &p,
        with(&|a| {
            a.gpu_model.clear();
        }),
        "without a GPU model",
    );
    w.fails(&p, with(&|a| a.region = "EU West".into()), "region");
    w.fails(
        &p,
        with(&|a| a.models = (0..17u8).map(|i| Hash::digest(&[i])).collect()),
        "at most 16",
    );
    w.fails(
        &p,
        with(&|a| a.models = vec![Hash::digest(b"m"); 2]),
        "twice",
    );
    let mut m = register(gpu_box());
    if let Message::RegisterProvider(r) = &mut m {
        r.endpoint = format!("http://{}", "a".repeat(300));
    }
    w.fails(&p, m, "endpoint");
    let mut m = register(gpu_box());
    if let Message::RegisterProvider(r) = &mut m {
        r.endpoint = "ftp://host".into();
    }
    w.fails(&p, m, "endpoint");
    let mut m = register(gpu_box());
    if let Message::RegisterProvider(r) = &mut m {
        r.bond = Amount(MIN_PROVIDER_BOND.0 - 1);
    }
    w.fails(&p, m, "below the minimum provider bond");
    let mut m = register(gpu_box());
    if let Message::RegisterProvider(r) = &mut m {
        r.price_per_block = Amount::ZERO;
    }
    w.fails(&p, m, "price per block must be positive");
    let poor = SecretKey::generate();
    let mut w = World::new(&[&poor], hib(5));
    w.fails(&poor, register(gpu_box()), "insufficient funds");
    w.fails(
        &poor,
        Message::UpdateProvider(UpdateProvider {
            attributes: gpu_box(),
            price_per_block: Amount(1),
            price_per_token: Amount::ZERO,
            endpoint: "http://x".into(),
        }),
        "not a registered provider",
    );
}

#[test]
fn orders_validate_and_close_releasing_every_deposit() {
    let c = SecretKey::generate();
    let p = SecretKey::generate();
    let q = SecretKey::generate();
    let mut w = World::new(&[&c, &p, &q], hib(100));
    w.ok(&p, register(gpu_box()));
    w.ok(&q, register(gpu_box()));
    w.fails(&c, create(needs(), 9_999, 50), "at least 10 blocks");
    w.fails(&c, create(needs(), 10_000, w.height + 1), "expiry height");
    w.fails(
        &c,
        create(needs(), 10_000, w.height + 200_000),
        "expiry height",
    );
    let mut m = create(needs(), 10_000, 50);
    if let Message::CreateOrder(o) = &mut m {
        o.duration_blocks = 0;
    }
    w.fails(&c, m, "duration");
    w.fails(&c, create(needs(), hib(1_000).0, 50), "insufficient funds");
    let mut bad = needs();
    bad.region = Some("Mars!".into());
    w.fails(&c, create(bad, 10_000, 50), "region");

    let client_start = w.balance(&addr(&c));
    w.ok(&c, create(needs(), 100_000, 50));
    let order = 0;
    assert_eq!(w.balance(&addr(&c)).0, client_start.0 - 100_000 - FEE);
    let p_before = w.balance(&addr(&p));
    let q_before = w.balance(&addr(&q));
    w.ok(&p, bid(order, 900));
    w.ok(&q, bid(order, 800));
    assert_eq!(w.balance(&addr(&p)).0, p_before.0 - BID_DEPOSIT.0 - FEE);
    w.fails(&q, bid(order, 700), "has bid on order 0 already");
    w.fails(&p, Message::CloseOrder(CloseOrder { order }), "belongs to");
    w.ok(&c, Message::CloseOrder(CloseOrder { order }));
    assert_eq!(w.balance(&addr(&c)).0, client_start.0 - 2 * FEE);
    // Each provider paid its bid's fee and one failed message's fee; the deposits are back.
    assert_eq!(w.balance(&addr(&p)).0, p_before.0 - 2 * FEE);
    assert_eq!(w.balance(&addr(&q)).0, q_before.0 - 2 * FEE);
    assert_eq!(w.balance(&MARKET_ESCROW).0, 2 * MIN_PROVIDER_BOND.0);
    let o = market::order(&w.state, order).unwrap().unwrap();
    assert_eq!(o.status, OrderStatus::Closed);
    assert!(market::bids(&w.state, order).unwrap().is_empty());
    w.fails(&p, bid(order, 500), "order 0 is closed");
    w.fails(&c, Message::CloseOrder(CloseOrder { order }), "closed");
    w.fails(
        &c,
        Message::CloseOrder(CloseOrder { order: 7 }),
        "does not exist",
    );
}

#[test]
fn bids_must_match_name_the_attribute_and_stay_under_the_maximum() {
    let c = SecretKey::generate();
    let p = SecretKey::generate();
    let stranger = SecretKey::generate();
    let mut w = World::new(&[&c, &p, &stranger], hib(100));
    w.ok(&p, register(gpu_box()));
    type Change = Box<dyn Fn(&mut Resources)>;
    let cases: Vec<(Change, &str)> = vec![
        (Box::new(|r| r.min_cores = 64), "cores: it declares 16"),
        (Box::new(|r| r.min_memory_mib = 1 << 20), "memory"),
        (Box::new(|r| r.gpu_model = Some("H100".into())), "GPU model"),
        (Box::new(|r| r.gpu_count = 4), "GPU count"),
        (Box::new(|r| r.region = Some("us-east".into())), "region"),
        (
            Box::new(|r| r.model = Some(Hash::digest(b"other"))),
            "model: it does not serve",
        ),
    ];
    for (i, (change, needle)) in cases.iter().enumerate() {
        let mut r = needs();
        change(&mut r);
        w.ok(&c, create(r, 10_000, 1_000));
        w.fails(&p, bid(i as u64, 100), needle);
    }
    w.ok(&c, create(needs(), 10_000, 1_000));
    let good = cases.len() as u64;
    w.fails(&p, bid(good, 1_001), "above order");
    w.fails(&p, bid(good, 0), "must be positive");
    w.fails(&stranger, bid(good, 10), "not a registered provider");
    w.fails(&p, bid(99, 10), "order 99 does not exist");
    w.ok(&p, create(needs(), 10_000, 1_000));
    w.fails(&p, bid(good + 1, 10), "your own order");
    w.ok(&p, bid(good, 1_000));
    w.fails(
        &p,
        Message::DeregisterProvider(DeregisterProvider {}),
        "open bid",
    );
}

#[test]
fn lease_pays_per_block_lazily_and_closes_refunding_the_rest() {
    let c = SecretKey::generate();
    let p = SecretKey::generate();
    let q = SecretKey::generate();
    let mut w = World::new(&[&c, &p, &q], hib(100));
    w.ok(&p, register(gpu_box()));
    w.ok(&q, register(gpu_box()));
    w.ok(&c, create(needs(), 50_000, 500));
    w.ok(&p, bid(0, 300));
    w.ok(&q, bid(0, 200));
    let (c0, p0, q0) = (
        w.balance(&addr(&c)),
        w.balance(&addr(&p)),
        w.balance(&addr(&q)),
    );
    w.fails(
        &p,
        Message::AcceptBid(AcceptBid {
            order: 0,
            provider: addr(&p),
        }),
        "belongs to",
    );
    w.fails(
        &c,
        Message::AcceptBid(AcceptBid {
            order: 0,
            provider: addr(&c),
        }),
        "has no bid",
    );
    w.ok(
        &c,
        Message::AcceptBid(AcceptBid {
            order: 0,
            provider: addr(&q),
        }),
    );
    let start = w.height;
    // The losing bid's deposit is back; the winner's stays with the lease.
    assert_eq!(w.balance(&addr(&p)).0, p0.0 + BID_DEPOSIT.0 - FEE);
    assert_eq!(w.balance(&addr(&q)), q0);
    w.fails(
        &c,
        Message::AcceptBid(AcceptBid {
            order: 0,
            provider: addr(&q),
        }),
        "matched already",
    );
    let l = market::lease(&w.state, 0).unwrap().unwrap();
    assert_eq!(
        (l.price_per_block, l.escrow, l.settled_at),
        (Amount(200), Amount(50_000), start)
    );
    assert_eq!(market::order(&w.state, 0).unwrap().unwrap().lease, Some(0));

    w.idle(9);
    w.fails(
        &p,
        Message::WithdrawLease(WithdrawLease { lease: 0 }),
        "only its provider withdraws",
    );
    w.fails(
        &c,
        Message::WithdrawLease(WithdrawLease { lease: 0 }),
        "only its provider withdraws",
    );
    // Withdrawing at height start + 13 pays 13 blocks.
    w.ok(&q, Message::WithdrawLease(WithdrawLease { lease: 0 }));
    let blocks = u128::from(w.height - start);
    assert_eq!(blocks, 13);
    assert_eq!(w.balance(&addr(&q)).0, q0.0 + 200 * blocks - FEE);
    let l = market::lease(&w.state, 0).unwrap().unwrap();
    assert_eq!(
        (l.settled_at, l.paid, l.escrow),
        (w.height, Amount(2_600), Amount(47_400))
    );

    w.idle(2);
    w.fails(
        &p,
        Message::CloseLease(CloseLease { lease: 0 }),
        "cannot close it",
    );
    w.ok(&c, Message::CloseLease(CloseLease { lease: 0 }));
    let total = 200 * u128::from(w.height - start);
    let l = market::lease(&w.state, 0).unwrap().unwrap();
    assert_eq!((l.status, l.paid), (LeaseStatus::Closed, Amount(total)));
    assert_eq!(w.balance(&addr(&q)).0, q0.0 + total + BID_DEPOSIT.0 - FEE);
    // The client gets back what the lease did not pay; it paid five fees since `c0`.
    assert_eq!(w.balance(&addr(&c)).0, c0.0 + 50_000 - total - 5 * FEE);
    assert_eq!(w.balance(&MARKET_ESCROW).0, 2 * MIN_PROVIDER_BOND.0);
    assert!(
        market::owner_lease_ids(&w.state, &addr(&c))
            .unwrap()
            .is_empty()
    );
    w.fails(
        &q,
        Message::WithdrawLease(WithdrawLease { lease: 0 }),
        "closed already",
    );
    w.fails(
        &c,
        Message::CloseLease(CloseLease { lease: 0 }),
        "closed already",
    );
    // With its lease closed, the provider may leave.
    w.ok(&q, Message::DeregisterProvider(DeregisterProvider {}));
}

/// Provider `p` registers, client `c` orders 100 blocks with `deposit`, `p` bids 1,000 per
/// block and `c` accepts: lease 0.
fn lease_at_1000_per_block(w: &mut World, c: &SecretKey, p: &SecretKey, deposit: u128) {
    w.ok(p, register(gpu_box()));
    w.ok(c, create(needs(), deposit, w.height + 50));
    w.ok(p, bid(0, 1_000));
    w.ok(
        c,
        Message::AcceptBid(AcceptBid {
            order: 0,
            provider: addr(p),
        }),
    );
}

#[test]
fn a_lease_whose_escrow_runs_out_closes_overdrawn() {
    let c = SecretKey::generate();
    let p = SecretKey::generate();
    let mut w = World::new(&[&c, &p], hib(100));
    // 10 blocks' worth of escrow for a 100-block lease.
    lease_at_1000_per_block(&mut w, &c, &p, 10_000);
    w.fails(
        &p,
        Message::DeregisterProvider(DeregisterProvider {}),
        "active lease",
    );
    let p0 = w.balance(&addr(&p));
    let l = market::lease(&w.state, 0).unwrap().unwrap();
    let due = l.due_at();
    assert_eq!(due, l.started_at + 10);
    assert_eq!(market::leases_due_at(&w.state, due).unwrap().len(), 1);
    // Nobody settles: the chain closes it at the block its escrow runs out.
    w.idle(due - w.height - 1);
    assert_eq!(
        market::lease(&w.state, 0).unwrap().unwrap().status,
        LeaseStatus::Active
    );
    w.idle(1);
    let l = market::lease(&w.state, 0).unwrap().unwrap();
    assert_eq!(l.status, LeaseStatus::Overdrawn);
    assert_eq!(l.closed_at, Some(due));
    assert_eq!((l.paid, l.escrow), (Amount(10_000), Amount::ZERO));
    assert_eq!(w.balance(&addr(&p)).0, p0.0 + 10_000 + BID_DEPOSIT.0);
    assert_eq!(w.balance(&MARKET_ESCROW), MIN_PROVIDER_BOND);
    assert!(market::leases_due_at(&w.state, due).unwrap().is_empty());
    w.fails(
        &p,
        Message::WithdrawLease(WithdrawLease { lease: 0 }),
        "closed already",
    );
    // With no lease left, the provider may leave.
    w.ok(&p, Message::DeregisterProvider(DeregisterProvider {}));
}

#[test]
fn a_lease_closes_at_the_end_of_its_term_and_a_top_up_keeps_it_running() {
    let c = SecretKey::generate();
    let p = SecretKey::generate();
    let stranger = SecretKey::generate();
    let mut w = World::new(&[&c, &p, &stranger], hib(100));
    // 20 blocks' worth of escrow for a 100-block lease.
    lease_at_1000_per_block(&mut w, &c, &p, 20_000);
    let start = market::lease(&w.state, 0).unwrap().unwrap().started_at;
    assert_eq!(
        market::lease(&w.state, 0).unwrap().unwrap().due_at(),
        start + 20
    );
    let top_up = |amount: u128| {
        Message::TopUpLease(TopUpLease {
            lease: 0,
            amount: Amount(amount),
        })
    };
    w.fails(&stranger, top_up(1_000), "only its client tops it up");
    w.fails(&p, top_up(1_000), "only its client tops it up");
    w.fails(&c, top_up(0), "more than 0");
    w.fails(&c, top_up(hib(1_000).0), "insufficient funds");
    w.idle(5);
    // A top-up pays what is owed first, then adds to the escrow: 80 more blocks, to the end of
    // the term.
    let c0 = w.balance(&addr(&c));
    let p0 = w.balance(&addr(&p));
    w.ok(&c, top_up(100_000));
    let at = w.height;
    let l = market::lease(&w.state, 0).unwrap().unwrap();
    assert_eq!(l.settled_at, at);
    assert_eq!(l.paid, Amount(1_000 * u128::from(at - start)));
    assert_eq!(l.escrow.0, 20_000 - l.paid.0 + 100_000);
    assert_eq!(l.due_at(), l.ends_at);
    assert_eq!(w.balance(&addr(&c)).0, c0.0 - 100_000 - FEE);
    assert_eq!(w.balance(&addr(&p)).0, p0.0 + l.paid.0);
    assert!(
        market::leases_due_at(&w.state, start + 20)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        market::leases_due_at(&w.state, l.ends_at).unwrap(),
        [0].into()
    );
    // Nobody settles: the chain closes it at the end of its term, paying the provider for
    // every block and refunding the rest.
    let ends = l.ends_at;
    w.idle(ends - w.height);
    let l = market::lease(&w.state, 0).unwrap().unwrap();
    assert_eq!(l.status, LeaseStatus::Closed);
    assert_eq!(l.paid, Amount(100_000));
    assert_eq!(
        w.balance(&addr(&c)).0,
        c0.0 - 100_000 - FEE + (120_000 - 100_000)
    );
    assert_eq!(w.balance(&addr(&p)).0, p0.0 + 100_000 + BID_DEPOSIT.0);
    assert_eq!(w.balance(&MARKET_ESCROW), MIN_PROVIDER_BOND);
    w.fails(&c, top_up(1_000), "closed already");
}

#[test]
fn unmatched_orders_expire_at_their_height_releasing_every_deposit() {
    let c = SecretKey::generate();
    let p = SecretKey::generate();
    let mut w = World::new(&[&c, &p], hib(100));
    w.ok(&p, register(gpu_box()));
    let c0 = w.balance(&addr(&c));
    let expiry = w.height + 5;
    w.ok(&c, create(needs(), 20_000, expiry));
    w.ok(&c, create(needs(), 20_000, expiry + 1));
    w.ok(&p, bid(0, 10));
    assert_eq!(market::expiring_at(&w.state, expiry).unwrap(), vec![0]);
    let p0 = w.balance(&addr(&p));
    w.idle(expiry - w.height);
    assert_eq!(w.height, expiry);
    let o = market::order(&w.state, 0).unwrap().unwrap();
    assert_eq!(o.status, OrderStatus::Expired);
    assert_eq!(
        market::order(&w.state, 1).unwrap().unwrap().status,
        OrderStatus::Open
    );
    assert!(market::expiring_at(&w.state, expiry).unwrap().is_empty());
    assert_eq!(w.balance(&addr(&p)).0, p0.0 + BID_DEPOSIT.0);
    assert_eq!(w.balance(&addr(&c)).0, c0.0 - 20_000 - 2 * FEE);
    w.idle(1);
    assert_eq!(w.balance(&addr(&c)).0, c0.0 - 2 * FEE);
    assert_eq!(w.balance(&MARKET_ESCROW), MIN_PROVIDER_BOND);
    assert_eq!(
        market::provider(&w.state, &addr(&p))
            .unwrap()
            .unwrap()
            .open_bids,
        0
    );
}

#[derive(Debug, Clone)]
enum Action {
    Register(usize),
    Deregister(usize),
    Order {
        who: usize,
        deposit: u64,
        price: u64,
        duration: u64,
        ttl: u64,
    },
    CloseOrder {
        who: usize,
        order: u64,
    },
    Bid {
        who: usize,
        order: u64,
        price: u64,
    },
    /// Signed by the order's owner: who may accept is tested above; here leases must happen.
    Accept {
        order: u64,
        provider: usize,
    },
    /// Signed by the lease's provider.
    Withdraw {
        lease: u64,
    },
    /// Signed by the lease's provider or its client.
    CloseLease {
        by_provider: bool,
        lease: u64,
    },
    /// Signed by the lease's client.
    TopUp {
        lease: u64,
        amount: u64,
    },
    Idle(u64),
}

fn action(n: usize) -> impl Strategy<Value = Action> {
    prop_oneof![
        1 => (0..n).prop_map(Action::Register),
        1 => (0..n).prop_map(Action::Deregister),
        2 => (0..n, 0u64..3_000_000, 1u64..20_000, 1u64..60, 1u64..60).prop_map(|(who, deposit, price, duration, ttl)| Action::Order { who, deposit, price, duration, ttl }),
        1 => (0..n, 0u64..8).prop_map(|(who, order)| Action::CloseOrder { who, order }),
        4 => (0..n, 0u64..8, 1u64..25_000).prop_map(|(who, order, price)| Action::Bid { who, order, price }),
        3 => (0u64..8, 0..n).prop_map(|(order, provider)| Action::Accept { order, provider }),
        2 => (0u64..5).prop_map(|lease| Action::Withdraw { lease }),
        1 => (any::<bool>(), 0u64..5).prop_map(|(by_provider, lease)| Action::CloseLease { by_provider, lease }),
        1 => (0u64..5, 0u64..200_000).prop_map(|(lease, amount)| Action::TopUp { lease, amount }),
        1 => (1u64..15).prop_map(Action::Idle),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn market_conserves_supply_and_escrow_pays_no_more_than_deposited(
        actions in prop::collection::vec(action(4), 1..60),
    ) {
        let keys: Vec<SecretKey> = (0..4).map(|_| SecretKey::generate()).collect();
        let refs: Vec<&SecretKey> = keys.iter().collect();
        let mut w = World::new(&refs, Amount(30_000_000_000));
        // Keys 0 and 1 start as providers (and bid), keys 2 and 3 as clients; any may still
        // register, deregister or order.
        w.ok(&keys[0], register(gpu_box()));
        w.ok(&keys[1], register(gpu_box()));
        let supply = bank::total_supply(&w.state).unwrap();
        // Every token moved into escrow and out of it, over the whole run.
        let mut deposited: u128 = w.balance(&MARKET_ESCROW).0;
        let mut paid_out: u128 = 0;
        // What top-ups added to each lease's funding, beyond its order's deposit.
        let mut topped: std::collections::BTreeMap<u64, u128> = Default::default();
        let index = |a: Address| keys.iter().position(|k| addr(k) == a).unwrap_or(0);
        for a in actions {
            // Actions name the k-th order or lease that exists, so that most of them land.
            let orders = (0..).take_while(|i| market::order(&w.state, *i).unwrap().is_some()).count() as u64;
            let leases = (0..).take_while(|i| market::lease(&w.state, *i).unwrap().is_some()).count() as u64;
            let a = match a {
                Action::CloseOrder { who, order } => Action::CloseOrder { who, order: order % orders.max(1) },
                Action::Bid { who, order, price } => {
                    let order = order % orders.max(1);
                    // Mostly at or under the order's maximum, sometimes above it.
                    let max = market::order(&w.state, order).unwrap().map_or(1, |o| o.max_price_per_block.0 as u64);
                    Action::Bid { who, order, price: 1 + price % (max + max / 8).max(1) }
                }
                Action::Accept { order, provider } => Action::Accept { order: order % orders.max(1), provider },
                Action::Withdraw { lease } => Action::Withdraw { lease: lease % leases.max(1) },
                Action::CloseLease { by_provider, lease } => Action::CloseLease { by_provider, lease: lease % leases.max(1) },
                Action::TopUp { lease, amount } => Action::TopUp { lease: lease % leases.max(1), amount },
                other => other,
            };
            let message = match a {
                Action::Register(i) => Some((i, register(gpu_box()))),
                Action::Deregister(i) => Some((i, Message::DeregisterProvider(DeregisterProvider {}))),
                Action::Order { who, deposit, price, duration, ttl } => Some((who, Message::CreateOrder(CreateOrder {
                    resources: needs(),
                    duration_blocks: duration,
                    max_price_per_block: Amount(u128::from(price)),
                    deposit: Amount(u128::from(deposit)),
                    expires_at: w.height + 1 + ttl,
                }))),
                Action::CloseOrder { who, order } => Some((who, Message::CloseOrder(CloseOrder { order }))),
                Action::Bid { who, order, price } => Some((who % 2, bid(order, u128::from(price)))),
                Action::Accept { order, provider } => {
                    let owner = market::order(&w.state, order).unwrap().map_or(0, |o| index(o.owner));
                    // The k-th bid on the order if there is one, else some key (which fails).
                    let bids = market::bids(&w.state, order).unwrap();
                    let provider = bids.get(provider % bids.len().max(1)).map_or(addr(&keys[provider]), |b| b.provider);
                    Some((owner, Message::AcceptBid(AcceptBid { order, provider })))
                }
                Action::Withdraw { lease } => {
                    let provider = market::lease(&w.state, lease).unwrap().map_or(0, |l| index(l.provider));
                    Some((provider, Message::WithdrawLease(WithdrawLease { lease })))
                }
                Action::CloseLease { by_provider, lease } => {
                    let who = market::lease(&w.state, lease).unwrap().map_or(0, |l| {
                        index(if by_provider { l.provider } else { l.owner })
                    });
                    Some((who, Message::CloseLease(CloseLease { lease })))
                }
                Action::TopUp { lease, amount } => {
                    let owner = market::lease(&w.state, lease).unwrap().map_or(0, |l| index(l.owner));
                    Some((owner, Message::TopUpLease(TopUpLease { lease, amount: Amount(u128::from(amount)) })))
                }
                Action::Idle(n) => { w.idle(n); None }
            };
            let funded = |w: &World, id: u64| market::lease(&w.state, id).unwrap().map_or(0, |l| l.paid.0 + l.escrow.0);
            let topped_before = match a {
                Action::TopUp { lease, .. } => Some((lease, funded(&w, lease))),
                _ => None,
            };
            let escrow_before = w.balance(&MARKET_ESCROW).0;
            if let Some((who, m)) = message {
                w.block(vec![(&keys[who], m)]);
            }
            if let Some((lease, before)) = topped_before {
                *topped.entry(lease).or_insert(0) += funded(&w, lease).saturating_sub(before);
            }
            let escrow_after = w.balance(&MARKET_ESCROW).0;
            if escrow_after >= escrow_before {
                deposited += escrow_after - escrow_before;
            } else {
                paid_out += escrow_before - escrow_after;
            }
            prop_assert!(paid_out <= deposited, "escrow paid out more than was deposited");
            prop_assert_eq!(bank::total_supply(&w.state).unwrap(), supply, "total supply changed");
            let mut held: u128 = keys.iter().map(|k| w.balance(&addr(k)).0).sum();
            held += w.balance(&w.validator.public_key().address()).0;
            held += w.balance(&MARKET_ESCROW).0;
            held += hibana_runtime::staking::total_staked(&w.state, w.height + 1).unwrap();
            prop_assert_eq!(held, supply.0, "tokens appeared or vanished");
            // The escrow holds exactly what the market owes: bonds, open deposits, lease escrow.
            let mut owed: u128 = 0;
            for p in market::query::providers(&w.state).unwrap() {
                owed += p.bond.0;
            }
            for o in market::query::open_orders(&w.state).unwrap() {
                owed += o.deposit.0;
                owed += market::bids(&w.state, o.id).unwrap().iter().map(|b| b.deposit.0).sum::<u128>();
            }
            for id in 0..64u64 {
                if let Some(l) = market::lease(&w.state, id).unwrap()
                    && l.status == LeaseStatus::Active
                {
                    let deposit = market::order(&w.state, l.order).unwrap().unwrap().deposit.0;
                    prop_assert!(l.paid.0 + l.escrow.0 <= deposit + topped.get(&id).copied().unwrap_or(0));
                    // The chain closed every lease whose term or escrow ran out.
                    prop_assert!(l.due_at() > w.height, "lease {} outlived its due height {}", id, l.due_at());
                    owed += l.escrow.0 + l.bid_deposit.0;
                }
            }
            prop_assert_eq!(w.balance(&MARKET_ESCROW).0, owed, "escrow differs from what the market owes");
        }
    }
}
