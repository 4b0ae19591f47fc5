//! The component list is the one place a component is added, and the runtime stays a pure
//! function of (state, block).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hibana_runtime::{
    BlockContext, COMPONENTS, Component, ExecError, Genesis, GenesisAccount, GenesisValidator,
    MemState, StateWrite, begin_block_with, end_block_with, init_genesis_with,
};
use hibana_types::{Amount, Event, SecretKey};

/// A toy component: counts the blocks it has seen and says so at the end of each.
struct Beacon;

impl Component for Beacon {
    fn name(&self) -> &'static str {
        "beacon"
    }

    fn init_genesis(&self, state: &mut dyn StateWrite, _: &Genesis) -> Result<(), ExecError> {
        state.put(b"beacon/blocks".to_vec(), 0u64.to_le_bytes().to_vec());
        Ok(())
    }

    fn end_block(
        &self,
        state: &mut dyn StateWrite,
        block: &BlockContext,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        let seen = state
            .get(b"beacon/blocks")?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map_or(0, u64::from_le_bytes);
        state.put(b"beacon/blocks".to_vec(), (seen + 1).to_le_bytes().to_vec());
        events.push(Event::new(
            "beacon.tick",
            [("height", block.height.to_string())],
        ));
        Ok(())
    }
}

fn genesis() -> Genesis {
    Genesis {
        market: Default::default(),
        chain_id: "components".into(),
        genesis_time_ms: 0,
        params: Default::default(),
        accounts: vec![GenesisAccount {
            address: SecretKey::generate().public_key().address(),
            balance: Amount::from_hib(10).unwrap(),
        }],
        validators: vec![GenesisValidator {
            public_key: SecretKey::generate().public_key(),
            stake: Amount::from_hib(1).unwrap(),
        }],
    }
}

fn context(height: u64) -> BlockContext {
    BlockContext {
        chain_id: "components".into(),
        height,
        time_ms: height,
        proposer: SecretKey::generate().public_key().address(),
    }
}

#[test]
fn a_component_added_to_the_list_runs_its_hooks() {
    let components: Vec<&dyn Component> =
        COMPONENTS.iter().copied().chain([&Beacon as _]).collect();
    let mut state = MemState::default();
    init_genesis_with(&components, &mut state, &genesis()).unwrap();
    use hibana_runtime::StateRead;
    assert_eq!(state.get(b"beacon/blocks").unwrap(), Some(vec![0; 8]));
    for height in 1..=3 {
        let ctx = context(height);
        begin_block_with(&components, &mut state, &ctx).unwrap();
        let events = end_block_with(&components, &mut state, &ctx).unwrap();
        let ticks: Vec<&Event> = events.iter().filter(|e| e.kind == "beacon.tick").collect();
        assert_eq!(ticks.len(), 1, "{events:?}");
    }
    assert_eq!(
        state.get(b"beacon/blocks").unwrap(),
        Some(3u64.to_le_bytes().to_vec())
    );

    // The chain's own list does not have it.
    let mut plain = MemState::default();
    hibana_runtime::init_genesis(&mut plain, &genesis()).unwrap();
    let events = hibana_runtime::end_block(&mut plain, &context(1)).unwrap();
    assert!(events.iter().all(|e| e.kind != "beacon.tick"));
    assert_eq!(plain.get(b"beacon/blocks").unwrap(), None);
    let names: Vec<&str> = COMPONENTS.iter().map(|c| c.name()).collect();
    assert_eq!(
        names,
        [
            "bank", "staking", "verify", "subnets", "market", "channels", "data"
        ]
    );
}

/// Nothing under `src/` reads the environment, the disk, the clock or OS randomness: a verdict
/// may depend on the state and the block alone.
#[test]
fn the_runtime_touches_no_environment_disk_clock_or_os_randomness() {
    let forbidden = [
        "std::env",
        "env::var",
        "std::fs",
        "fs::",
        "SystemTime",
        "Instant::now",
        "thread_rng",
        "OsRng",
        "from_entropy",
        "std::net",
        "std::process",
    ];
    let mut files = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    let mut read = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                files.push(entry.unwrap().path());
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        read += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in forbidden {
                assert!(
                    !code.contains(word),
                    "{}:{}: `{word}` in the runtime: {line}",
                    path.display(),
                    n + 1
                );
            }
        }
    }
    assert!(read >= 15, "read only {read} files");
}
