//! The challenges' JSON-RPC methods over a node's chain.

use std::sync::Arc;

use hibana_consensus::Chain;
use hibana_runtime::verify;
use hibana_types::records::verify::{Challenge, ChallengeFilter};
use jsonrpsee::core::{RpcResult, async_trait};

use hibana_rpc::verify::{ChallengeView, ChallengeVote, ElectorView, VerifyApiServer};

use crate::errors::node_error;

/// The challenge methods over a node's chain.
#[derive(Debug, Clone)]
pub(crate) struct VerifyHandler {
    pub(crate) chain: Arc<Chain>,
}

#[async_trait]
impl VerifyApiServer for VerifyHandler {
    async fn verify_challenges(
        &self,
        filter: Option<ChallengeFilter>,
    ) -> RpcResult<Vec<Challenge>> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        verify::query::challenges(&snapshot, &filter.unwrap_or_default()).map_err(node_error)
    }

    async fn verify_challenge(&self, id: u64) -> RpcResult<Option<ChallengeView>> {
        let snapshot = self.chain.store().snapshot().map_err(node_error)?;
        let height = snapshot.height();
        let batch_line =
            hibana_runtime::market::challenged_line(&snapshot, id).map_err(node_error)?;
        Ok(verify::query::challenge_detail(&snapshot, id)
            .map_err(node_error)?
            .map(|(challenge, content, electorate)| ChallengeView {
                height,
                challenge,
                batch_line,
                request: content.request,
                response: content.response,
                electorate: electorate
                    .into_iter()
                    .map(|(e, vote)| ElectorView {
                        account: e.account,
                        stake: e.stake,
                        vote: vote.map(ChallengeVote::from_wrong),
                    })
                    .collect(),
            }))
    }
}
