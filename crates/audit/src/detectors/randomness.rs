//! Bad randomness (block data feeding hashes, modulo or guesses) and time manipulation
//! (timestamps deciding exact matches, jackpots or amounts).

use super::{Ctx, is_tainted, tainted_names};
use crate::{
    ast::*,
    finding::{TIMESTAMP_DECISION, WEAK_RANDOMNESS},
    model::*,
};

/// Block values that miners or callers can predict or choose.
fn is_weak_source(e: &Expr) -> bool {
    if is_timestamp(e) {
        return true;
    }
    if let Some(("block", m)) = member_of_ident(e) {
        return matches!(
            m,
            "number" | "difficulty" | "prevrandao" | "coinbase" | "gaslimit"
        );
    }
    match &e.kind {
        ExprKind::Call(f, _) => {
            matches!(&f.kind, ExprKind::Ident(n) if n == "blockhash")
                || member_of_ident(f) == Some(("block", "blockhash"))
        }
        _ => false,
    }
}

fn is_hash_call(e: &Expr) -> bool {
    matches!(&e.kind, ExprKind::Call(f, _) if matches!(&f.kind, ExprKind::Ident(n) if matches!(n.as_str(), "keccak256" | "sha3" | "sha256" | "ripemd160")))
}

fn is_this_balance(e: &Expr) -> bool {
    matches!(&e.kind, ExprKind::Member(_, m) if m.name == "balance")
        && mentions(e, &|x| matches!(&x.kind, ExprKind::Ident(n) if n == "this"))
}

/// Reports predictable randomness and timestamp-dependent decisions.
pub(super) fn detect(ctx: &mut Ctx<'_>) {
    let model = ctx.model;
    let mut hits = Vec::new();
    // State names that some caller-facing function sets to msg.sender.
    let set_by_callers: std::collections::BTreeSet<&str> = model
        .functions
        .iter()
        .filter(|g| is_entry_point(g))
        .filter_map(|g| g.body.as_ref())
        .flat_map(all_exprs)
        .filter_map(|x| match &x.kind {
            ExprKind::Assign("=", l, r) if is_msg_sender(r) => root_name(l),
            _ => None,
        })
        .collect();
    for f in ctx.own_functions() {
        let Some(body) = &f.body else { continue };
        let scope = Scope::new(model, f);
        let weak = tainted_names(&scope, body, &is_weak_source);
        let is_weak = |e: &Expr| is_tainted(e, &weak, &is_weak_source);
        let from_param = |e: &Expr| {
            mentions(
                e,
                &|x| matches!(&x.kind, ExprKind::Ident(n) if scope.params.contains(n)),
            )
        };
        for e in all_exprs(body) {
            let sink = match &e.kind {
                ExprKind::Call(_, args) if is_hash_call(e) => args.iter().any(is_weak),
                ExprKind::Binary("%", a, _) => is_weak(a),
                ExprKind::Binary("==", a, b) => {
                    (mentions(a, &is_weak_source) && from_param(b))
                        || (mentions(b, &is_weak_source) && from_param(a))
                }
                _ => false,
            };
            // The first use is the finding; later uses of the same value repeat it.
            if sink {
                hits.push((&WEAK_RANDOMNESS, e.span, f, "this value comes from block data that a miner or a calling contract can predict".to_string()));
                break;
            }
        }
        // --- time manipulation
        let stamp = tainted_names(&scope, body, &is_timestamp);
        let is_stamp = |e: &Expr| {
            is_tainted(e, &stamp, &is_timestamp)
                && !mentions(e, &|x| {
                    is_hash_call(x) || matches!(x.kind, ExprKind::Binary("%", _, _))
                })
        };
        let everything = all_exprs(body);
        // An authorised beneficiary collecting after a deadline is not a race.
        // The recipient must be decided by the race: the caller, or a stored address that
        // callers overwrite (`lastInvestor = msg.sender`). A fixed beneficiary is a timelock.
        let pays_jackpot = !super::is_protected(model, f)
            && everything.iter().any(|e| {
                scope.classify(e).is_some_and(|s| {
                    s.sends_value
                        && s.value.is_some_and(|v| mentions(v, &is_this_balance))
                        && s.target.is_some_and(|t| {
                            mentions(t, &is_msg_sender)
                                || root_name(t).is_some_and(|n| set_by_callers.contains(n))
                        })
                })
            });
        for c in conditions(body) {
            walk_expr(c, &mut |x| {
                if let ExprKind::Binary(op, a, b) = &x.kind {
                    let timed = is_stamp(a) || is_stamp(b);
                    let direct = |e: &Expr| mentions(e, &is_timestamp) && is_stamp(e);
                    if (direct(a) || direct(b)) && *op == "==" {
                        hits.push((
                            &TIMESTAMP_DECISION,
                            x.span,
                            f,
                            "an exact timestamp match can be hit or dodged by the miner".into(),
                        ));
                    } else if timed && matches!(*op, "<" | ">" | "<=" | ">=") && pays_jackpot {
                        hits.push((
                            &TIMESTAMP_DECISION,
                            x.span,
                            f,
                            "the block timestamp decides who receives the contract's balance"
                                .into(),
                        ));
                    }
                }
            });
        }
        for e in &everything {
            if let Some(site) = scope.classify(e)
                && site.sends_value
                && site
                    .value
                    .is_some_and(|v| is_stamp(v) && !mentions(v, &is_this_balance))
            {
                hits.push((
                    &TIMESTAMP_DECISION,
                    e.span,
                    f,
                    "the amount paid depends on the block timestamp".into(),
                ));
            }
        }
    }
    for (rule, span, f, msg) in hits {
        ctx.report(rule, span, Some(f), msg);
    }
}
