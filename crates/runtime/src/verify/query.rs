//! Verify queries: challenges as the RPC answers them.

use hibana_types::records::verify::{
    Challenge, ChallengeContent, ChallengeFilter, Elector, MAX_CHALLENGE_LIST, MAX_CHALLENGE_SCAN,
};

use super::state::{challenge, challenge_content, challenge_count, electorate, vote_of};
use crate::{StateError, StateRead};

/// The challenges `filter` selects, newest first: at most its `limit` (capped at
/// [`MAX_CHALLENGE_LIST`]), among the [`MAX_CHALLENGE_SCAN`] ids below its `before` (default:
/// all), so one query reads a bounded number of records; page back with `before` = the last id
/// returned.
pub fn challenges<S: StateRead + ?Sized>(
    state: &S,
    filter: &ChallengeFilter,
) -> Result<Vec<Challenge>, StateError> {
    let limit = filter
        .limit
        .unwrap_or(MAX_CHALLENGE_LIST)
        .min(MAX_CHALLENGE_LIST) as usize;
    let end = filter
        .before
        .unwrap_or(u64::MAX)
        .min(challenge_count(state)?);
    let start = end.saturating_sub(MAX_CHALLENGE_SCAN);
    let mut out = Vec::new();
    for id in (start..end).rev() {
        if out.len() >= limit {
            break;
        }
        if let Some(c) = challenge(state, id)?
            && filter.matches(&c)
        {
            out.push(c);
        }
    }
    Ok(out)
}

/// A challenge with the request and response it carries and its electorate, each elector with
/// its vote (`Some(true)` for "wrong").
pub type ChallengeDetail = (Challenge, ChallengeContent, Vec<(Elector, Option<bool>)>);

/// A challenge by id, with its content, electorate and votes.
pub fn challenge_detail<S: StateRead + ?Sized>(
    state: &S,
    id: u64,
) -> Result<Option<ChallengeDetail>, StateError> {
    let Some(c) = challenge(state, id)? else {
        return Ok(None);
    };
    let content = challenge_content(state, id)?.unwrap_or(ChallengeContent {
        request: Vec::new(),
        response: Vec::new(),
    });
    let mut voters = Vec::new();
    for e in electorate(state, id)? {
        let vote = vote_of(state, id, &e.account)?;
        voters.push((e, vote));
    }
    Ok(Some((c, content, voters)))
}
