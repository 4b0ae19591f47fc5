//! A chain in memory driven block by block, shared by the component tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use hibana_runtime::{
    BlockContext, Genesis, GenesisAccount, GenesisValidator, MemState, bank, begin_block,
    deliver_tx, end_block,
};
use hibana_types::records::MODULE_ACCOUNTS;
use hibana_types::records::market::{MIN_PROVIDER_BOND, ProviderAttributes, Resources};
use hibana_types::{
    AcceptBid, Address, Amount, CreateOrder, Message, PlaceBid, RegisterProvider, SecretKey,
    Transaction, TxOutcome,
};

/// The chain id of the test chains.
pub const CHAIN: &str = "component-test";
/// The fee every test transaction pays.
pub const FEE: u128 = 1_000;

/// A chain in memory with funded accounts, driven block by block.
pub struct World {
    /// Its state.
    pub state: MemState,
    /// Its one validator.
    pub validator: SecretKey,
    /// The funded accounts.
    pub accounts: Vec<Address>,
    /// The last block's height.
    pub height: u64,
}

impl World {
    /// A chain where each of `accounts` has `balance`.
    pub fn new(accounts: &[&SecretKey], balance: Amount) -> World {
        World::with_market(accounts, balance, Default::default())
    }

    /// [`World::new`] with these market parameters.
    pub fn with_market(
        accounts: &[&SecretKey],
        balance: Amount,
        market: hibana_types::records::market::MarketParams,
    ) -> World {
        let validator = SecretKey::generate();
        let genesis = Genesis {
            market,
            chain_id: CHAIN.into(),
            genesis_time_ms: 0,
            params: Default::default(),
            accounts: accounts
                .iter()
                .map(|k| GenesisAccount {
                    address: k.public_key().address(),
                    balance,
                })
                .collect(),
            validators: vec![GenesisValidator {
                public_key: validator.public_key(),
                stake: Amount::from_hib(1).unwrap(),
            }],
        };
        let mut state = MemState::default();
        hibana_runtime::init_genesis(&mut state, &genesis).unwrap();
        World {
            state,
            validator,
            accounts: accounts.iter().map(|k| k.public_key().address()).collect(),
            height: 0,
        }
    }

    /// The context of the block at the current height.
    pub fn ctx(&self) -> BlockContext {
        BlockContext {
            chain_id: CHAIN.into(),
            height: self.height,
            time_ms: self.height,
            proposer: self.validator.public_key().address(),
        }
    }

    /// Runs one block with these (signer, message) transactions; returns each outcome.
    pub fn block(&mut self, txs: Vec<(&SecretKey, Message)>) -> Vec<TxOutcome> {
        self.height += 1;
        let ctx = self.ctx();
        begin_block(&mut self.state, &ctx).unwrap();
        let mut outcomes = Vec::new();
        for (i, (key, message)) in txs.into_iter().enumerate() {
            let nonce = bank::account(&self.state, &key.public_key().address())
                .unwrap()
                .nonce;
            let tx = Transaction {
                chain_id: CHAIN.into(),
                signer: key.public_key(),
                nonce,
                fee: Amount(FEE),
                messages: vec![message],
            }
            .sign(key);
            let outcome = hibana_runtime::check_stateless(&tx, CHAIN, &Default::default())
                .map_err(|e| e.to_string())
                .and_then(|tx| {
                    deliver_tx(&mut self.state, &ctx, &tx, i as u32)
                        .unwrap()
                        .map_err(|e| e.to_string())
                })
                .map_or_else(
                    |e| TxOutcome::Failed(format!("rejected: {e}")),
                    |r| r.outcome,
                );
            outcomes.push(outcome);
        }
        end_block(&mut self.state, &ctx).unwrap();
        outcomes
    }

    /// Runs `message` alone in a block; it must succeed.
    pub fn ok(&mut self, key: &SecretKey, message: Message) {
        let outcome = self.block(vec![(key, message)]).remove(0);
        assert_eq!(outcome, TxOutcome::Success);
    }

    /// The message fails mentioning `needle`, and no balance but the fee payer's moves (by the
    /// fee, if the transaction was included).
    pub fn fails(&mut self, key: &SecretKey, message: Message, needle: &str) {
        let before = self.balances();
        let held: Vec<Amount> = MODULE_ACCOUNTS.iter().map(|a| self.balance(a)).collect();
        match &self.block(vec![(key, message)])[0] {
            TxOutcome::Failed(reason) => {
                assert!(reason.contains(needle), "{reason:?} lacks {needle:?}")
            }
            TxOutcome::Success => panic!("expected a failure mentioning {needle:?}"),
        }
        let now: Vec<Amount> = MODULE_ACCOUNTS.iter().map(|a| self.balance(a)).collect();
        assert_eq!(now, held, "a module account's balance moved");
        let signer = key.public_key().address();
        for (address, balance) in before {
            let now = self.balance(&address);
            if address == signer {
                assert!(
                    now == balance || now.0 + FEE == balance.0,
                    "the signer lost more than the fee"
                );
            } else {
                assert_eq!(now, balance, "a balance moved");
            }
        }
    }

    /// The balance of `address`.
    pub fn balance(&self, address: &Address) -> Amount {
        bank::account(&self.state, address).unwrap().balance
    }

    /// The funded accounts' balances.
    pub fn balances(&self) -> Vec<(Address, Amount)> {
        self.accounts
            .iter()
            .map(|a| (*a, self.balance(a)))
            .collect()
    }

    /// Provider `p` registers (2 cores, 4 GiB, in eu, 1,000 per block, the minimum bond) and
    /// client `c` leases it for 200 blocks through the market's `order`-th order, which becomes
    /// lease `order`.
    pub fn lease(&mut self, c: &SecretKey, p: &SecretKey, order: u64) {
        self.lease_at(c, p, order, (Amount(1_000), Amount(200_000), 200));
    }

    /// [`World::lease`] at `price` per block, with `deposit` in escrow, for `blocks` blocks.
    pub fn lease_at(
        &mut self,
        c: &SecretKey,
        p: &SecretKey,
        order: u64,
        (price, deposit, blocks): (Amount, Amount, u64),
    ) {
        self.ok(
            p,
            Message::RegisterProvider(RegisterProvider {
                attributes: ProviderAttributes {
                    cores: 2,
                    memory_mib: 4_096,
                    gpu_model: String::new(),
                    gpu_count: 0,
                    region: "eu".into(),
                    models: vec![],
                },
                price_per_block: price,
                price_per_token: Amount(1),
                endpoint: "http://127.0.0.1:9".into(),
                bond: MIN_PROVIDER_BOND,
            }),
        );
        self.ok(
            c,
            Message::CreateOrder(CreateOrder {
                resources: Resources {
                    min_cores: 1,
                    ..Default::default()
                },
                duration_blocks: blocks,
                max_price_per_block: price,
                deposit,
                expires_at: self.height + 20,
            }),
        );
        self.ok(
            p,
            Message::PlaceBid(PlaceBid {
                order,
                price_per_block: price,
            }),
        );
        self.ok(
            c,
            Message::AcceptBid(AcceptBid {
                order,
                provider: p.public_key().address(),
            }),
        );
    }

    /// Runs `blocks` empty blocks.
    pub fn idle(&mut self, blocks: u64) {
        for _ in 0..blocks {
            self.block(Vec::new());
        }
    }
}
