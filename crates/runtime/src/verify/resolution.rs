//! How a challenge against a signed inference receipt is decided and settled.
//!
//! A pure function of the tallies and the amounts held, in integer arithmetic with every
//! operation checked, so every validator settles the same way to the base unit. The steps:
//! 1. **Hold** (when the challenge opens). `held = bond × CHALLENGE_SLASH_BPS / BPS` (rounded
//!    down), raised to `MIN_CHALLENGE_SLASH`, capped at the provider's bond. It moves out of the
//!    bond with the challenger's `deposit`, both into the challenge escrow.
//! 2. **Verdict** (after every vote). Let `T` be the electorate's stake (the subnet's validator
//!    neurons holding a permit when the challenge opened, with their stake at the subnet's last
//!    epoch), `W` the stake that voted "wrong" and `R` the stake that voted "right". If
//!    `2W > T` the challenge is upheld; else if `2R ≥ T` it is rejected; else it waits. Since
//!    `W + R ≤ T`, both cannot hold. A challenge still undecided at the end of its deadline block
//!    closes with no quorum.
//! 3. **Upheld.** The provider loses `held` (the slash `S`):
//!    a. `refund = min(price, S)`: the receipt's price, back to the challenger;
//!    b. `rest = S − refund`; `reward = rest × CHALLENGER_REWARD_BPS / BPS` to the challenger;
//!    c. `pool = rest × UPHELD_VOTERS_BPS / BPS`, shared by the "wrong" voters: each gets
//!    `pool × stake / W` rounded down, in order of account;
//!    d. `burned = rest − reward − Σ shares` (the shares' rounding dust included);
//!    e. the deposit goes back to the challenger in full.
//! 4. **Rejected.** The challenger loses its `deposit` `D`: `pool = D × REJECTED_VOTERS_BPS /
//!    BPS` is shared by the "right" voters as in 3c (over `R`), the rest is burned, and `held`
//!    goes back to the provider.
//! 5. **No quorum.** The deposit goes back to the challenger and `held` to the provider; nobody
//!    is paid and nothing is burned.
//!
//! In every case the parts add up to exactly `held + deposit`, what the escrow holds for the
//! challenge, so the total supply falls by `burned` and by nothing else.

use hibana_types::Amount;
use hibana_types::records::verify::{
    BPS, CHALLENGE_SLASH_BPS, CHALLENGER_REWARD_BPS, ChallengeSettlement, ChallengeStatus, Elector,
    MIN_CHALLENGE_SLASH, REJECTED_VOTERS_BPS, UPHELD_VOTERS_BPS,
};

use crate::TxError;
use crate::staking::mul_div;

/// The stake behind each side of a challenge, in base units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// The electorate's stake `T`.
    pub electorate: u128,
    /// Stake that voted "wrong" `W`.
    pub wrong: u128,
    /// Stake that voted "right" `R`.
    pub right: u128,
}

/// What a tally decides (step 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Neither side has reached its threshold.
    Undecided,
    /// More than half of the electorate's stake found the answer wrong.
    Upheld,
    /// At least half of the electorate's stake found the answer right.
    Rejected,
}

fn overflow() -> TxError {
    TxError::Overflow("challenge settlement")
}

/// `amount × bps / BPS`, rounded down.
fn bps_of(amount: u128, bps: u32) -> Result<u128, TxError> {
    mul_div(amount, u128::from(bps), u128::from(BPS)).ok_or_else(overflow)
}

fn sub(a: u128, b: u128) -> Result<u128, TxError> {
    a.checked_sub(b).ok_or_else(overflow)
}

/// Step 1: what a challenge holds from a provider's `bond`.
pub fn hold_for(bond: Amount) -> Amount {
    // mul_div splits the bond so the product never overflows; the fallback is never taken.
    let share = mul_div(bond.0, u128::from(CHALLENGE_SLASH_BPS), u128::from(BPS))
        .unwrap_or((bond.0 / u128::from(BPS)).saturating_mul(u128::from(CHALLENGE_SLASH_BPS)));
    Amount(share.max(MIN_CHALLENGE_SLASH.0).min(bond.0))
}

/// Step 2: the verdict of a tally.
pub fn verdict(t: &Tally) -> Verdict {
    // Doubling a stake overflows only beyond any possible supply; count that as a majority.
    let twice = |x: u128| x.saturating_mul(2);
    if t.electorate == 0 {
        return Verdict::Undecided;
    }
    if twice(t.wrong) > t.electorate {
        Verdict::Upheld
    } else if twice(t.right) >= t.electorate {
        Verdict::Rejected
    } else {
        Verdict::Undecided
    }
}

/// Step 3c: shares `pool` among `winners` in proportion to their stake, each rounded down, in
/// the winners' order. Returns the shares (zero ones left out) and their sum.
fn share_by_stake(
    pool: u128,
    winners: &[Elector],
) -> Result<(Vec<(hibana_types::Address, Amount)>, u128), TxError> {
    let total = winners
        .iter()
        .try_fold(0u128, |sum, e| sum.checked_add(e.stake.0))
        .ok_or_else(overflow)?;
    let mut shares = Vec::new();
    let mut paid = 0u128;
    if total == 0 || pool == 0 {
        return Ok((shares, paid));
    }
    for e in winners {
        let part = mul_div(pool, e.stake.0, total).ok_or_else(overflow)?;
        if part > 0 {
            shares.push((e.account, Amount(part)));
            paid = paid.checked_add(part).ok_or_else(overflow)?;
        }
    }
    Ok((shares, paid))
}

/// Step 3: an upheld challenge that held `held` of the bond and `deposit`, for a receipt of
/// `price`, with the "wrong" voters `winners`.
pub fn upheld(
    height: u64,
    held: Amount,
    deposit: Amount,
    price: Amount,
    winners: &[Elector],
) -> Result<ChallengeSettlement, TxError> {
    let slashed = held.0;
    let refund = price.0.min(slashed);
    let rest = sub(slashed, refund)?;
    let reward = bps_of(rest, CHALLENGER_REWARD_BPS)?;
    let pool = bps_of(rest, UPHELD_VOTERS_BPS)?;
    let (voters, paid) = share_by_stake(pool, winners)?;
    let burned = sub(sub(rest, reward)?, paid)?;
    Ok(ChallengeSettlement {
        height,
        slashed: held,
        bond_returned: Amount::ZERO,
        deposit_returned: deposit,
        refund: Amount(refund),
        challenger_reward: Amount(reward),
        voters,
        burned: Amount(burned),
    })
}

/// Step 4: a rejected challenge that held `held` of the bond and `deposit`, with the "right"
/// voters `winners`.
pub fn rejected(
    height: u64,
    held: Amount,
    deposit: Amount,
    winners: &[Elector],
) -> Result<ChallengeSettlement, TxError> {
    let pool = bps_of(deposit.0, REJECTED_VOTERS_BPS)?;
    let (voters, paid) = share_by_stake(pool, winners)?;
    let burned = sub(deposit.0, paid)?;
    Ok(ChallengeSettlement {
        height,
        slashed: Amount::ZERO,
        bond_returned: held,
        deposit_returned: Amount::ZERO,
        refund: Amount::ZERO,
        challenger_reward: Amount::ZERO,
        voters,
        burned: Amount(burned),
    })
}

/// Step 5: a challenge closed with no quorum.
pub fn no_quorum(height: u64, held: Amount, deposit: Amount) -> ChallengeSettlement {
    ChallengeSettlement {
        height,
        slashed: Amount::ZERO,
        bond_returned: held,
        deposit_returned: deposit,
        refund: Amount::ZERO,
        challenger_reward: Amount::ZERO,
        voters: Vec::new(),
        burned: Amount::ZERO,
    }
}

/// The status a settlement's verdict gives (undecided: closed with no quorum).
pub fn status_of(verdict: Verdict) -> ChallengeStatus {
    match verdict {
        Verdict::Upheld => ChallengeStatus::Upheld,
        Verdict::Rejected => ChallengeStatus::Rejected,
        Verdict::Undecided => ChallengeStatus::NoQuorum,
    }
}

/// What a settlement pays out of the escrow, in total: it must equal what the challenge held.
pub fn paid_out(s: &ChallengeSettlement) -> Option<u128> {
    let mut total = s
        .bond_returned
        .0
        .checked_add(s.deposit_returned.0)?
        .checked_add(s.refund.0)?
        .checked_add(s.challenger_reward.0)?
        .checked_add(s.burned.0)?;
    for (_, share) in &s.voters {
        total = total.checked_add(share.0)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hibana_types::{Address, BASE_UNITS_PER_HIB};

    const HIB: u128 = BASE_UNITS_PER_HIB;

    fn elector(byte: u8, stake: u128) -> Elector {
        Elector {
            account: Address([byte; 20]),
            stake: Amount(stake),
        }
    }

    #[test]
    fn the_hold_is_a_tenth_of_the_bond_at_least_one_hib_at_most_the_bond() {
        assert_eq!(hold_for(Amount(100 * HIB)), Amount(10 * HIB));
        assert_eq!(hold_for(Amount(10 * HIB)), Amount(HIB));
        assert_eq!(hold_for(Amount(5 * HIB)), Amount(HIB));
        assert_eq!(hold_for(Amount(HIB / 2)), Amount(HIB / 2));
        assert_eq!(hold_for(Amount::ZERO), Amount::ZERO);
        assert_eq!(hold_for(Amount(u128::MAX)).0, u128::MAX / 10);
    }

    #[test]
    fn more_than_half_wrong_upholds_half_right_rejects() {
        let t = |wrong, right| {
            verdict(&Tally {
                electorate: 100,
                wrong,
                right,
            })
        };
        assert_eq!(t(50, 0), Verdict::Undecided);
        assert_eq!(t(51, 0), Verdict::Upheld);
        assert_eq!(t(0, 49), Verdict::Undecided);
        assert_eq!(t(0, 50), Verdict::Rejected);
        assert_eq!(t(49, 49), Verdict::Undecided);
        assert_eq!(
            verdict(&Tally {
                electorate: 3,
                wrong: 1,
                right: 1
            }),
            Verdict::Undecided
        );
        assert_eq!(
            verdict(&Tally {
                electorate: 3,
                wrong: 2,
                right: 0
            }),
            Verdict::Upheld
        );
        assert_eq!(verdict(&Tally::default()), Verdict::Undecided);
    }

    #[test]
    fn an_upheld_slash_refunds_rewards_pays_voters_and_burns_the_rest_exactly() {
        // S = 1 HIB, price 0.1 HIB: rest 0.9, reward 0.45, voters 0.18 (2:1), burned 0.27.
        let s = upheld(
            7,
            Amount(HIB),
            Amount(2 * HIB),
            Amount(HIB / 10),
            &[elector(1, 200), elector(2, 100)],
        )
        .unwrap();
        assert_eq!(s.refund, Amount(100_000_000));
        assert_eq!(s.challenger_reward, Amount(450_000_000));
        assert_eq!(
            s.voters,
            vec![
                (Address([1; 20]), Amount(120_000_000)),
                (Address([2; 20]), Amount(60_000_000))
            ]
        );
        assert_eq!(s.burned, Amount(270_000_000));
        assert_eq!(s.deposit_returned, Amount(2 * HIB));
        assert_eq!(paid_out(&s), Some(3 * HIB));
        // A price above the slash refunds the whole slash and nothing else.
        let s = upheld(
            7,
            Amount(HIB),
            Amount(HIB),
            Amount(5 * HIB),
            &[elector(1, 1)],
        )
        .unwrap();
        assert_eq!((s.refund, s.burned), (Amount(HIB), Amount::ZERO));
        assert_eq!(paid_out(&s), Some(2 * HIB));
    }

    #[test]
    fn a_rejected_deposit_goes_half_to_the_right_voters_with_the_dust_burned() {
        let s = rejected(
            3,
            Amount(HIB),
            Amount(1_000),
            &[elector(1, 1), elector(2, 1), elector(3, 1)],
        )
        .unwrap();
        // 500 shared by three: 166 each, 2 of dust burned with the other 500.
        assert_eq!(s.voters.len(), 3);
        assert!(s.voters.iter().all(|(_, a)| *a == Amount(166)));
        assert_eq!(s.burned, Amount(502));
        assert_eq!(s.bond_returned, Amount(HIB));
        assert_eq!(paid_out(&s), Some(HIB + 1_000));
        let s = no_quorum(3, Amount(5), Amount(7));
        assert_eq!(paid_out(&s), Some(12));
        assert_eq!(s.burned, Amount::ZERO);
    }
}
