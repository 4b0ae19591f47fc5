//! Front running (ERC-20 approve race, secrets in clear text, changeable prices) and the
//! short address attack on old compilers.

use std::collections::{BTreeMap, BTreeSet};

use super::{Ctx, resolved_modifiers};
use crate::{
    ast::*,
    finding::{APPROVE_RACE, PRICE_RACE, REVEALED_SECRET, SHORT_ADDRESS},
    model::*,
};

fn is_hash_call(e: &Expr) -> bool {
    matches!(&e.kind, ExprKind::Call(f, _) if matches!(&f.kind, ExprKind::Ident(n) if matches!(n.as_str(), "keccak256" | "sha3" | "sha256")))
}

fn is_msg_value(e: &Expr) -> bool {
    member_of_ident(e) == Some(("msg", "value"))
}

/// Reports transaction-ordering dependence and short address risks.
pub(super) fn detect(ctx: &mut Ctx<'_>) {
    let model = ctx.model;
    let src = ctx.src;
    let mut hits = Vec::new();
    // Which entry points assign each plain name.
    let mut setters: BTreeMap<&str, Vec<&FunctionDef>> = BTreeMap::new();
    for g in model.functions.iter().filter(|g| is_entry_point(g)) {
        for x in g.body.as_ref().map(all_exprs).unwrap_or_default() {
            if let ExprKind::Assign(_, l, _) = &x.kind
                && let ExprKind::Ident(n) = &l.kind
            {
                setters.entry(n.as_str()).or_default().push(g);
            }
        }
    }
    for f in ctx.own_functions() {
        let Some(body) = &f.body else { continue };
        if !is_entry_point(f) {
            continue;
        }
        let scope = Scope::new(model, f);
        let name = f.name.as_ref().map(|n| n.name.as_str()).unwrap_or("");
        let conds = conditions(body);
        let everything = all_exprs(body);
        // --- approve race
        if name == "approve" && f.params.len() == 2 {
            let amount = f.params[1]
                .name
                .as_ref()
                .map(|n| n.name.clone())
                .unwrap_or_default();
            for e in &everything {
                if let ExprKind::Assign("=", lhs, rhs) = &e.kind {
                    let sets = matches!(lhs.kind, ExprKind::Index(..))
                        && scope.writes_state(lhs)
                        && mentions(
                            rhs,
                            &|x| matches!(&x.kind, ExprKind::Ident(n) if *n == amount),
                        );
                    let k = key(src, lhs);
                    let guarded = conds.iter().any(|c| mentions(c, &|x| key(src, x) == k));
                    if sets && !guarded {
                        hits.push((&APPROVE_RACE, e.span, f, "a spender who sees this approve() pending can spend the old and the new allowance".to_string()));
                    }
                }
            }
        }
        // --- secrets revealed in the transaction
        let pays = everything
            .iter()
            .any(|e| scope.classify(e).is_some_and(|s| s.sends_value));
        // A commitment bound to the sender elsewhere in the function makes the reveal safe.
        let committed = conds
            .iter()
            .any(|c| mentions(c, &|x| is_hash_call(x) && mentions(x, &is_msg_sender)));
        if pays && !committed {
            for c in &conds {
                walk_expr(c, &mut |x| {
                    if let ExprKind::Binary("==", a, b) = &x.kind {
                        for side in [a, b] {
                            let from_param = mentions(
                                side,
                                &|y| matches!(&y.kind, ExprKind::Ident(n) if scope.params.contains(n)),
                            );
                            if is_hash_call(side) && from_param && !mentions(side, &is_msg_sender) {
                                hits.push((&REVEALED_SECRET, x.span, f, "the answer travels in clear text; anyone can copy it with a higher gas price".to_string()));
                            }
                        }
                    }
                });
            }
        }
        // --- price the owner can change while a purchase is pending
        if f.mutability == Mutability::Payable {
            let read_here: BTreeSet<&str> = everything
                .iter()
                .filter_map(|x| match &x.kind {
                    ExprKind::Ident(n) => Some(n.as_str()),
                    _ => None,
                })
                .collect();
            'vars: for (var, decl) in &model.state_vars {
                if decl.constant || scope.locals.contains_key(var) {
                    continue;
                }
                let is_var = |x: &Expr| matches!(&x.kind, ExprKind::Ident(n) if n == var);
                if !read_here.contains(var.as_str()) {
                    continue;
                }
                let set_elsewhere = setters
                    .get(var.as_str())
                    .is_some_and(|gs| gs.iter().any(|g| !std::ptr::eq(*g, f)));
                if !set_elsewhere {
                    continue;
                }
                let buyer_bounds = conds.iter().any(|c| {
                    mentions(c, &is_var)
                        && mentions(
                            c,
                            &|x| matches!(&x.kind, ExprKind::Ident(n) if scope.params.contains(n)),
                        )
                });
                if buyer_bounds {
                    continue;
                }
                for e in &everything {
                    if matches!(e.kind, ExprKind::Binary(..))
                        && mentions(e, &is_var)
                        && mentions(e, &is_msg_value)
                    {
                        hits.push((
                            &PRICE_RACE,
                            e.span,
                            f,
                            format!("`{var}` can change between sending and mining this purchase"),
                        ));
                        break 'vars;
                    }
                }
            }
        }
        // --- short address
        let old = model.version.is_some_and(|v| v < (0, 5, 0));
        if old && matches!(name, "transfer" | "transferFrom") && f.params.len() >= 2 {
            let mut all_conds = conds.clone();
            for m in resolved_modifiers(model, f) {
                if let Some(b) = &m.body {
                    all_conds.extend(conditions(b));
                }
            }
            let checks_length = all_conds.iter().any(|c| mentions(c, &|x| member_of_ident(x) == Some(("msg", "data")) || matches!(&x.kind, ExprKind::Member(a, m) if m.name == "length" && member_of_ident(a) == Some(("msg", "data")))));
            if !checks_length {
                hits.push((
                    &SHORT_ADDRESS,
                    f.header,
                    f,
                    format!(
                        "`{name}` does not check msg.data.length; a short address shifts the amount"
                    ),
                ));
            }
        }
    }
    for (rule, span, f, msg) in hits {
        ctx.report(rule, span, Some(f), msg);
    }
}
