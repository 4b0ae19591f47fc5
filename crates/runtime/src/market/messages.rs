//! Market messages: providers (`RegisterProvider`, `UpdateProvider`, `DeregisterProvider`),
//! orders and bids (`CreateOrder`, `CloseOrder`, `PlaceBid`, `AcceptBid`) and leases
//! (`WithdrawLease`, `TopUpLease`, `CloseLease`).
//!
//! Each message's stateful rules live in one function that reads what the message needs and
//! returns it; `check_stateful` calls it and discards the result, `execute` calls it again on
//! the same state and writes, so the two can never disagree.

use std::collections::BTreeSet;

use hibana_types::records::market::{
    BID_DEPOSIT, Bid, Lease, LeaseStatus, MAX_ACTIVE_LEASES_PER_PROVIDER, MAX_BIDS_PER_ORDER,
    MAX_CORES, MAX_GPU_MODEL_BYTES, MAX_GPUS, MAX_LEASE_BLOCKS, MAX_MODELS,
    MAX_OPEN_BIDS_PER_PROVIDER, MAX_ORDER_TTL_BLOCKS, MAX_REGION_BYTES, MIN_DEPOSIT_BLOCKS,
    MIN_PROVIDER_BOND, Order, OrderStatus, Provider, ProviderAttributes, Resources, expiry_key,
    owner_leases_key, provider_leases_key,
};
use hibana_types::{
    AcceptBid, Address, Amount, CloseLease, CloseOrder, CreateOrder, DeregisterProvider, Event,
    Hash, PlaceBid, RegisterProvider, TopUpLease, UpdateProvider, WithdrawLease,
};

use super::state::*;
use crate::subnets::check_endpoint;
use crate::{
    ExecError, MessageHandler, StateRead, StateWrite, TxContext, TxError, bank, invalid, put_typed,
};

fn bad(msg: impl Into<String>) -> TxError {
    TxError::Invalid(msg.into())
}

/// A GPU model name: printable ASCII letters, digits, space, `-`, `_` and `.`.
fn check_gpu_model(name: &str) -> Result<(), TxError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_GPU_MODEL_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" -_.".contains(&b));
    if !ok {
        return Err(bad(format!(
            "GPU model {name:?} must be 1 to {MAX_GPU_MODEL_BYTES} characters of letters, digits, space, -, _ and ."
        )));
    }
    Ok(())
}

/// A region: lowercase letters, digits and `-`.
fn check_region(region: &str) -> Result<(), TxError> {
    let ok = !region.is_empty()
        && region.len() <= MAX_REGION_BYTES
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(bad(format!(
            "region {region:?} must be 1 to {MAX_REGION_BYTES} characters of a-z, 0-9 and -"
        )));
    }
    Ok(())
}

/// Checks a provider's declared attributes, price and endpoint.
pub(crate) fn check_offer(
    a: &ProviderAttributes,
    price: Amount,
    endpoint: &str,
) -> Result<(), TxError> {
    if a.cores == 0 || a.cores > MAX_CORES {
        return Err(bad(format!(
            "cores must be 1 to {MAX_CORES}, got {}",
            a.cores
        )));
    }
    if a.memory_mib == 0 {
        return Err(bad("memory must be at least 1 MiB"));
    }
    if a.gpu_model.is_empty() {
        if a.gpu_count != 0 {
            return Err(bad(format!(
                "{} GPUs declared without a GPU model: name the model",
                a.gpu_count
            )));
        }
    } else {
        check_gpu_model(&a.gpu_model)?;
        if a.gpu_count == 0 || a.gpu_count > MAX_GPUS {
            return Err(bad(format!(
                "GPU count must be 1 to {MAX_GPUS} with a GPU model, got {}",
                a.gpu_count
            )));
        }
    }
    check_region(&a.region)?;
    if a.models.len() > MAX_MODELS {
        return Err(bad(format!(
            "{} models declared, at most {MAX_MODELS} allowed",
            a.models.len()
        )));
    }
    let distinct: BTreeSet<&Hash> = a.models.iter().collect();
    if distinct.len() != a.models.len() {
        return Err(bad("a model is declared twice"));
    }
    if distinct.contains(&Hash::ZERO) {
        return Err(bad("the zero hash is not a model"));
    }
    if price.0 == 0 {
        return Err(bad("price per block must be positive"));
    }
    check_endpoint(endpoint)
}

/// Checks an order's resource needs.
fn check_resources(r: &Resources) -> Result<(), TxError> {
    if r.min_cores > MAX_CORES {
        return Err(bad(format!(
            "min cores must be at most {MAX_CORES}, got {}",
            r.min_cores
        )));
    }
    if r.gpu_count > MAX_GPUS {
        return Err(bad(format!(
            "GPU count must be at most {MAX_GPUS}, got {}",
            r.gpu_count
        )));
    }
    if let Some(m) = &r.gpu_model {
        check_gpu_model(m)?;
    }
    if let Some(region) = &r.region {
        check_region(region)?;
    }
    if r.model == Some(Hash::ZERO) {
        return Err(bad("the zero hash is not a model"));
    }
    Ok(())
}

/// Why a provider does not serve an order, naming the first attribute that does not match.
pub fn mismatch(p: &ProviderAttributes, r: &Resources) -> Option<String> {
    if p.cores < r.min_cores {
        return Some(format!(
            "cores: it declares {}, the order needs at least {}",
            p.cores, r.min_cores
        ));
    }
    if p.memory_mib < r.min_memory_mib {
        return Some(format!(
            "memory: it declares {} MiB, the order needs at least {} MiB",
            p.memory_mib, r.min_memory_mib
        ));
    }
    if let Some(model) = &r.gpu_model
        && *model != p.gpu_model
    {
        return Some(format!(
            "GPU model: it declares {:?}, the order needs {model:?}",
            p.gpu_model
        ));
    }
    if p.gpu_count < r.gpu_count {
        return Some(format!(
            "GPU count: it declares {}, the order needs at least {}",
            p.gpu_count, r.gpu_count
        ));
    }
    if let Some(region) = &r.region
        && *region != p.region
    {
        return Some(format!(
            "region: it declares {:?}, the order needs {region:?}",
            p.region
        ));
    }
    if let Some(model) = &r.model
        && !p.models.contains(model)
    {
        return Some(format!("model: it does not serve {model}"));
    }
    None
}

fn registered<S: StateRead + ?Sized>(state: &S, address: &Address) -> Result<Provider, ExecError> {
    provider(state, address)?.ok_or_else(|| {
        invalid(format!(
            "{address} is not a registered provider (register with `hibana market provider register`)"
        ))
    })
}

fn existing_order<S: StateRead + ?Sized>(state: &S, id: u64) -> Result<Order, ExecError> {
    order(state, id)?.ok_or_else(|| invalid(format!("order {id} does not exist")))
}

fn open_order<S: StateRead + ?Sized>(state: &S, id: u64) -> Result<Order, ExecError> {
    let o = existing_order(state, id)?;
    if o.status != OrderStatus::Open {
        let status = match o.status {
            OrderStatus::Matched => "matched already (a bid was accepted)",
            OrderStatus::Closed => "closed",
            _ => "expired",
        };
        return Err(invalid(format!("order {id} is {status}")));
    }
    Ok(o)
}

fn active_lease<S: StateRead + ?Sized>(state: &S, id: u64) -> Result<Lease, ExecError> {
    let l = lease(state, id)?.ok_or_else(|| invalid(format!("lease {id} does not exist")))?;
    if l.status != LeaseStatus::Active {
        return Err(invalid(format!("lease {id} is closed already")));
    }
    Ok(l)
}

fn register_rules<S: StateRead + ?Sized>(
    m: &RegisterProvider,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<(), ExecError> {
    if provider(state, &ctx.sender)?.is_some() {
        return Err(invalid(format!(
            "{} is already a provider: use UpdateProvider to change it",
            ctx.sender
        )));
    }
    bank::require_balance(state, &ctx.sender, m.bond)
}

impl MessageHandler for RegisterProvider {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        check_offer(&self.attributes, self.price_per_block, &self.endpoint)?;
        if self.bond < MIN_PROVIDER_BOND {
            return Err(bad(format!(
                "bond {} is below the minimum provider bond {MIN_PROVIDER_BOND}",
                self.bond
            )));
        }
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        register_rules(self, state, ctx)
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        register_rules(self, state, ctx)?;
        lock(state, &ctx.sender, self.bond)?;
        let p = Provider {
            address: ctx.sender,
            attributes: self.attributes.clone(),
            price_per_block: self.price_per_block,
            price_per_token: self.price_per_token,
            endpoint: self.endpoint.clone(),
            bond: self.bond,
            registered_at: ctx.block.height,
            open_bids: 0,
            active_leases: 0,
        };
        put_provider(state, &p);
        list_provider(state, &ctx.sender, true)?;
        super::liveness::start(state, &ctx.sender, ctx.block.height)?;
        events.push(Event::new(
            "market.provider_registered",
            [
                ("provider", ctx.sender.to_string()),
                ("bond", self.bond.0.to_string()),
                ("price_per_block", self.price_per_block.0.to_string()),
                ("price_per_token", self.price_per_token.0.to_string()),
            ],
        ));
        Ok(())
    }
}

impl MessageHandler for UpdateProvider {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        check_offer(&self.attributes, self.price_per_block, &self.endpoint)
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        registered(state, &ctx.sender).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let mut p = registered(state, &ctx.sender)?;
        p.attributes = self.attributes.clone();
        p.price_per_block = self.price_per_block;
        p.price_per_token = self.price_per_token;
        p.endpoint = self.endpoint.clone();
        put_provider(state, &p);
        events.push(Event::new(
            "market.provider_updated",
            [
                ("provider", ctx.sender.to_string()),
                ("price_per_block", self.price_per_block.0.to_string()),
                ("price_per_token", self.price_per_token.0.to_string()),
            ],
        ));
        Ok(())
    }
}

fn deregister_rules<S: StateRead + ?Sized>(
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<Provider, ExecError> {
    let p = registered(state, &ctx.sender)?;
    if p.active_leases > 0 {
        return Err(invalid(format!(
            "{} serves {} active lease(s): close them first",
            ctx.sender, p.active_leases
        )));
    }
    if p.open_bids > 0 {
        return Err(invalid(format!(
            "{} has {} open bid(s): they are released when their orders are accepted, closed or expire",
            ctx.sender, p.open_bids
        )));
    }
    let open: std::collections::BTreeSet<(u8, u64)> = crate::get_typed(
        state,
        &hibana_types::records::market::provider_open_work_key(&ctx.sender),
    )?
    .unwrap_or_default();
    // Work still open to disputes holds the bond: a job inside its window after the last
    // commit, a batch until its lines are paid.
    let height = ctx.block.height;
    for (kind, id) in open {
        let until = if kind == hibana_types::records::market::WORK_JOB {
            super::jobs::job(state, id)?
                .filter(|j| {
                    matches!(
                        j.status,
                        hibana_types::records::market::JobStatus::Running
                            | hibana_types::records::market::JobStatus::Done
                    )
                })
                .map(|j| ("training job", j.dispute_until()))
        } else {
            super::batch::batch(state, id)?
                .filter(|b| b.status == hibana_types::records::market::BatchStatus::Done)
                .map(|b| ("batch", b.pay_at()))
        };
        if let Some((what, until)) = until
            && height <= until
        {
            return Err(invalid(format!(
                "{} committed {what} {id}, which can be disputed until height {until}: its bond \
                 answers for it until then",
                ctx.sender
            )));
        }
    }
    Ok(p)
}

impl MessageHandler for DeregisterProvider {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        deregister_rules(state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let p = deregister_rules(state, ctx)?;
        release(state, &ctx.sender, p.bond)?;
        state.delete(hibana_types::records::market::provider_key(&ctx.sender));
        list_provider(state, &ctx.sender, false)?;
        super::liveness::forget(state, &ctx.sender);
        events.push(Event::new(
            "market.provider_deregistered",
            [
                ("provider", ctx.sender.to_string()),
                ("bond", p.bond.0.to_string()),
            ],
        ));
        Ok(())
    }
}

fn create_order_rules<S: StateRead + ?Sized>(
    m: &CreateOrder,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<(), ExecError> {
    let height = ctx.block.height;
    let latest = height.saturating_add(MAX_ORDER_TTL_BLOCKS);
    if m.expires_at <= height || m.expires_at > latest {
        return Err(invalid(format!(
            "expiry height {} must be after the current height {height} and at most {latest}",
            m.expires_at
        )));
    }
    bank::require_balance(state, &ctx.sender, m.deposit)
}

impl MessageHandler for CreateOrder {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        check_resources(&self.resources)?;
        if self.duration_blocks == 0 || self.duration_blocks > MAX_LEASE_BLOCKS {
            return Err(bad(format!(
                "duration must be 1 to {MAX_LEASE_BLOCKS} blocks, got {}",
                self.duration_blocks
            )));
        }
        if self.max_price_per_block.0 == 0 {
            return Err(bad("maximum price per block must be positive"));
        }
        let minimum = self
            .max_price_per_block
            .0
            .checked_mul(u128::from(MIN_DEPOSIT_BLOCKS))
            .ok_or(TxError::Overflow("minimum deposit"))?;
        if self.deposit.0 < minimum {
            return Err(bad(format!(
                "deposit {} must cover the maximum price for at least {MIN_DEPOSIT_BLOCKS} blocks: {}",
                self.deposit,
                Amount(minimum)
            )));
        }
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        create_order_rules(self, state, ctx)
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        create_order_rules(self, state, ctx)?;
        lock(state, &ctx.sender, self.deposit)?;
        let id = next_order_id(state)?;
        let o = Order {
            id,
            owner: ctx.sender,
            resources: self.resources.clone(),
            duration_blocks: self.duration_blocks,
            max_price_per_block: self.max_price_per_block,
            deposit: self.deposit,
            created_at: ctx.block.height,
            expires_at: self.expires_at,
            status: OrderStatus::Open,
            lease: None,
        };
        put_order(state, &o);
        list_open_order(state, id, true)?;
        let mut due = expiring_at(state, self.expires_at)?;
        due.push(id);
        put_typed(state, expiry_key(self.expires_at), &due);
        events.push(Event::new(
            "market.order_created",
            [
                ("order", id.to_string()),
                ("owner", ctx.sender.to_string()),
                ("deposit", self.deposit.0.to_string()),
                (
                    "max_price_per_block",
                    self.max_price_per_block.0.to_string(),
                ),
                ("expires_at", self.expires_at.to_string()),
            ],
        ));
        Ok(())
    }
}

fn close_order_rules<S: StateRead + ?Sized>(
    m: &CloseOrder,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<Order, ExecError> {
    let o = open_order(state, m.order)?;
    if o.owner != ctx.sender {
        return Err(invalid(format!(
            "order {} belongs to {}, not to {}",
            m.order, o.owner, ctx.sender
        )));
    }
    Ok(o)
}

impl MessageHandler for CloseOrder {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        close_order_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let o = close_order_rules(self, state, ctx)?;
        let deposit = o.deposit;
        end_order(state, o, OrderStatus::Closed)?;
        events.push(Event::new(
            "market.order_closed",
            [
                ("order", self.order.to_string()),
                ("refund", deposit.0.to_string()),
            ],
        ));
        Ok(())
    }
}

fn bid_rules<S: StateRead + ?Sized>(
    m: &PlaceBid,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<(Provider, Vec<Bid>), ExecError> {
    let p = registered(state, &ctx.sender)?;
    super::liveness::check_listed(state, &ctx.sender)?;
    let o = open_order(state, m.order)?;
    if o.owner == ctx.sender {
        return Err(invalid(format!("cannot bid on your own order {}", m.order)));
    }
    if let Some(why) = mismatch(&p.attributes, &o.resources) {
        return Err(invalid(format!(
            "provider {} does not match order {}: {why}",
            ctx.sender, m.order
        )));
    }
    if m.price_per_block > o.max_price_per_block {
        return Err(invalid(format!(
            "bid price {} per block is above order {}'s maximum of {}",
            m.price_per_block, m.order, o.max_price_per_block
        )));
    }
    let order_bids = bids(state, m.order)?;
    if order_bids.iter().any(|b| b.provider == ctx.sender) {
        return Err(invalid(format!(
            "{} has bid on order {} already",
            ctx.sender, m.order
        )));
    }
    if order_bids.len() >= MAX_BIDS_PER_ORDER {
        return Err(invalid(format!(
            "order {} has the most bids it takes ({MAX_BIDS_PER_ORDER})",
            m.order
        )));
    }
    if p.open_bids >= MAX_OPEN_BIDS_PER_PROVIDER {
        return Err(invalid(format!(
            "{} has the most open bids a provider may have ({MAX_OPEN_BIDS_PER_PROVIDER})",
            ctx.sender
        )));
    }
    bank::require_balance(state, &ctx.sender, BID_DEPOSIT)?;
    Ok((p, order_bids))
}

impl MessageHandler for PlaceBid {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        if self.price_per_block.0 == 0 {
            return Err(bad("bid price per block must be positive"));
        }
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        bid_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let (mut p, mut order_bids) = bid_rules(self, state, ctx)?;
        lock(state, &ctx.sender, BID_DEPOSIT)?;
        let bid = Bid {
            order: self.order,
            provider: ctx.sender,
            price_per_block: self.price_per_block,
            deposit: BID_DEPOSIT,
            placed_at: ctx.block.height,
        };
        let at = order_bids.partition_point(|b| b.provider < ctx.sender);
        order_bids.insert(at, bid);
        put_bids(state, self.order, &order_bids);
        p.open_bids = p.open_bids.saturating_add(1);
        put_provider(state, &p);
        events.push(Event::new(
            "market.bid",
            [
                ("order", self.order.to_string()),
                ("provider", ctx.sender.to_string()),
                ("price_per_block", self.price_per_block.0.to_string()),
                ("deposit", BID_DEPOSIT.0.to_string()),
            ],
        ));
        Ok(())
    }
}

fn accept_rules<S: StateRead + ?Sized>(
    m: &AcceptBid,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<(Order, Vec<Bid>, Bid, Provider), ExecError> {
    let o = open_order(state, m.order)?;
    if o.owner != ctx.sender {
        return Err(invalid(format!(
            "order {} belongs to {}, not to {}",
            m.order, o.owner, ctx.sender
        )));
    }
    let order_bids = bids(state, m.order)?;
    let bid = order_bids
        .iter()
        .find(|b| b.provider == m.provider)
        .cloned()
        .ok_or_else(|| invalid(format!("{} has no bid on order {}", m.provider, m.order)))?;
    let p = registered(state, &m.provider)?;
    if p.active_leases >= MAX_ACTIVE_LEASES_PER_PROVIDER {
        return Err(invalid(format!(
            "provider {} serves the most leases it may ({MAX_ACTIVE_LEASES_PER_PROVIDER})",
            m.provider
        )));
    }
    Ok((o, order_bids, bid, p))
}

/// Turns an open order into a lease with `bid` (one of `order_bids`, all of the order's bids)
/// at `height`: the other bids' deposits go back, the order's deposit becomes the escrow.
/// Returns the lease id.
pub(crate) fn open_lease<S: StateWrite + ?Sized>(
    state: &mut S,
    mut o: Order,
    order_bids: &[Bid],
    bid: &Bid,
    height: u64,
    events: &mut Vec<Event>,
) -> Result<u64, ExecError> {
    // The losing bids' deposits go back; the winner's stays locked with the lease.
    release_bids(state, order_bids, Some(&bid.provider))?;
    put_bids(state, o.id, &[]);
    let id = next_lease_id(state)?;
    let lease = Lease {
        id,
        order: o.id,
        owner: o.owner,
        provider: bid.provider,
        price_per_block: bid.price_per_block,
        escrow: o.deposit,
        bid_deposit: bid.deposit,
        paid: Amount::ZERO,
        started_at: height,
        ends_at: height
            .checked_add(o.duration_blocks)
            .ok_or(TxError::Overflow("lease end height"))?,
        settled_at: height,
        status: LeaseStatus::Active,
        closed_at: None,
    };
    put_lease(state, &lease);
    file_lease_due(state, &lease)?;
    // The winner's bid is no longer open: it is now a lease.
    let mut p = registered(state, &bid.provider)?;
    p.open_bids = p.open_bids.saturating_sub(1);
    p.active_leases = p.active_leases.saturating_add(1);
    put_provider(state, &p);
    let mut of_owner = owner_lease_ids(state, &o.owner)?;
    of_owner.insert(id);
    put_set(state, owner_leases_key(&o.owner), &of_owner);
    let mut of_provider = provider_lease_ids(state, &bid.provider)?;
    of_provider.insert(id);
    put_set(state, provider_leases_key(&bid.provider), &of_provider);
    list_open_order(state, o.id, false)?;
    o.status = OrderStatus::Matched;
    o.lease = Some(id);
    put_order(state, &o);
    events.push(Event::new(
        "market.lease_created",
        [
            ("lease", id.to_string()),
            ("order", o.id.to_string()),
            ("owner", o.owner.to_string()),
            ("provider", bid.provider.to_string()),
            ("price_per_block", bid.price_per_block.0.to_string()),
            ("escrow", o.deposit.0.to_string()),
        ],
    ));
    Ok(id)
}

impl MessageHandler for AcceptBid {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        accept_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let (o, order_bids, bid, _) = accept_rules(self, state, ctx)?;
        open_lease(state, o, &order_bids, &bid, ctx.block.height, events)?;
        Ok(())
    }
}

fn withdraw_rules<S: StateRead + ?Sized>(
    m: &WithdrawLease,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<Lease, ExecError> {
    let l = active_lease(state, m.lease)?;
    if l.provider != ctx.sender {
        return Err(invalid(format!(
            "lease {} pays {}, not {}: only its provider withdraws",
            m.lease, l.provider, ctx.sender
        )));
    }
    Ok(l)
}

impl MessageHandler for WithdrawLease {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        withdraw_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let l = withdraw_rules(self, state, ctx)?;
        settle(state, l, ctx.block.height, false, events)?;
        Ok(())
    }
}

fn close_lease_rules<S: StateRead + ?Sized>(
    m: &CloseLease,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<Lease, ExecError> {
    let l = active_lease(state, m.lease)?;
    if l.provider != ctx.sender && l.owner != ctx.sender {
        return Err(invalid(format!(
            "lease {} is between {} and {}: {} cannot close it",
            m.lease, l.owner, l.provider, ctx.sender
        )));
    }
    Ok(l)
}

impl MessageHandler for CloseLease {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        close_lease_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let l = close_lease_rules(self, state, ctx)?;
        settle(state, l, ctx.block.height, true, events)?;
        Ok(())
    }
}

fn top_up_rules<S: StateRead + ?Sized>(
    m: &TopUpLease,
    state: &S,
    ctx: &TxContext<'_>,
) -> Result<Lease, ExecError> {
    let l = active_lease(state, m.lease)?;
    if l.owner != ctx.sender {
        return Err(invalid(format!(
            "lease {} belongs to {}, not to {}: only its client tops it up",
            m.lease, l.owner, ctx.sender
        )));
    }
    let height = ctx.block.height;
    let (_, ran_out) = l.owed_at(height);
    if ran_out || height >= l.ends_at {
        return Err(invalid(format!(
            "lease {} ran out at height {} and closes; open a new order instead",
            m.lease,
            l.due_at()
        )));
    }
    bank::require_balance(state, &ctx.sender, m.amount)?;
    Ok(l)
}

impl MessageHandler for TopUpLease {
    type Verified = ();

    fn check_stateless(&self) -> Result<(), TxError> {
        if self.amount.0 == 0 {
            return Err(bad("a top-up adds more than 0"));
        }
        Ok(())
    }

    fn check_stateful<S: StateRead + ?Sized>(
        &self,
        _: &(),
        state: &S,
        ctx: &TxContext<'_>,
    ) -> Result<(), ExecError> {
        top_up_rules(self, state, ctx).map(|_| ())
    }

    fn execute<S: StateWrite + ?Sized>(
        &self,
        _: &(),
        state: &mut S,
        ctx: &TxContext<'_>,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let l = top_up_rules(self, state, ctx)?;
        // What is owed so far is paid at the old escrow, as Akash settles on a deposit.
        settle(state, l, ctx.block.height, false, events)?;
        let mut l = active_lease(state, self.lease)?;
        unfile_lease_due(state, l.id, l.due_at())?;
        lock(state, &ctx.sender, self.amount)?;
        l.escrow = l
            .escrow
            .checked_add(self.amount)
            .ok_or(TxError::Overflow("lease escrow"))?;
        put_lease(state, &l);
        file_lease_due(state, &l)?;
        events.push(Event::new(
            "market.lease_topped_up",
            [
                ("lease", l.id.to_string()),
                ("owner", l.owner.to_string()),
                ("amount", self.amount.0.to_string()),
                ("escrow", l.escrow.0.to_string()),
                ("due_at", l.due_at().to_string()),
            ],
        ));
        Ok(())
    }
}
