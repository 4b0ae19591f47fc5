//! Subnets: the model network. Miners serve a task, validators score them and set weights
//! through commit-reveal, and every `tempo` blocks the Yuma epoch ([`epoch`]) turns stake and
//! weights into consensus, incentive and dividends, and mints the subnet's emission.
//!
//! Messages: `CreateSubnet` (locks [`SUBNET_DEPOSIT`]), `RegisterNeuron` (burns the subnet's
//! registration fee; a full subnet replaces its lowest-paid neuron outside the immunity period),
//! `CommitWeights` and `RevealWeights` (a reveal must match a commitment made at least
//! `commit_reveal_interval` blocks earlier and arrive within as many blocks after that, so
//! anyone copying revealed weights is always one interval late).
//!
//! State and the epoch run in [`state`], the messages in `messages`, the pure epoch in
//! [`epoch`]; each block ends by running the epoch of every subnet whose tempo has come.

pub mod epoch;
mod messages;
pub mod state;

pub use hibana_types::records::subnets::{
    EpochSummary, Neuron, PendingCommit, Subnet, WeightsRecord,
};
pub(crate) use messages::check_endpoint;
pub use messages::check_params;
pub use state::{
    HISTORY_EPOCHS, MAX_ENDPOINT_BYTES, MAX_NEURONS, MAX_PENDING_COMMITS, SUBNET_DEPOSIT,
    SUBNET_EMISSION_PER_BLOCK, TASKS, bonds, epoch_emission, epoch_summary, neurons,
    pending_commits, subnet, subnet_by_name, subnet_ids, uid_of, weights,
};

use hibana_types::Event;

use crate::{BlockContext, Component, ExecError, StateWrite};

/// The subnets component.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subnets;

impl Component for Subnets {
    fn name(&self) -> &'static str {
        "subnets"
    }

    fn end_block(
        &self,
        state: &mut dyn StateWrite,
        block: &BlockContext,
        events: &mut Vec<Event>,
    ) -> Result<(), ExecError> {
        state::end_block(state, block.height, events)
    }
}
