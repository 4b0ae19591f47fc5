//! Access control: unprotected selfdestruct, ether withdrawal, owner change and initialisers,
//! `tx.origin` authorisation, and arbitrary storage writes.

use std::collections::BTreeSet;

use super::{Ctx, is_protected};
use crate::{
    ast::*,
    finding::{
        ARBITRARY_STORAGE, TX_ORIGIN, UNPROTECTED_OWNER, UNPROTECTED_SELFDESTRUCT,
        UNPROTECTED_WITHDRAWAL,
    },
    model::*,
};

/// Expressions collected per entry point, helpers included.
const MAX_SCANNED: usize = 100_000;

const AUTH_WORDS: &[&str] = &[
    "owner",
    "admin",
    "authority",
    "governance",
    "controller",
    "operator",
    "creator",
    "implementation",
    "beacon",
    "logic",
];

/// State variables that decide who is authorised: compared with msg.sender somewhere, or named so.
fn auth_vars(ctx: &Ctx<'_>) -> BTreeSet<String> {
    let model = ctx.model;
    let mut vars = BTreeSet::new();
    let mut blocks: Vec<&Block> = Vec::new();
    for c in &model.linear {
        blocks.extend(
            c.functions
                .iter()
                .chain(&c.modifiers)
                .filter_map(|f| f.body.as_ref()),
        );
    }
    for b in blocks {
        for c in conditions(b) {
            walk_expr(c, &mut |x| match &x.kind {
                ExprKind::Binary("==" | "!=", l, r) if is_msg_sender(l) || is_msg_sender(r) => {
                    for side in [l, r] {
                        if let ExprKind::Ident(n) = &side.kind
                            && model.state_vars.contains_key(n)
                        {
                            vars.insert(n.clone());
                        }
                    }
                }
                ExprKind::Index(a, Some(i)) if is_msg_sender(i) => {
                    if let ExprKind::Ident(n) = &a.kind
                        && matches!(model.state_vars.get(n).map(|v| &v.ty), Some(TypeName::Mapping(_, v)) if **v == TypeName::Elementary("bool".into()))
                    {
                        vars.insert(n.clone());
                    }
                }
                _ => {}
            });
        }
    }
    for (name, v) in &model.state_vars {
        let lower = name.to_ascii_lowercase();
        if matches!(&v.ty, TypeName::Elementary(t) if t == "address")
            && AUTH_WORDS.iter().any(|w| lower.contains(w))
        {
            vars.insert(name.clone());
        }
    }
    vars
}

/// Sensitive operations reachable from `body`, following internal calls a few levels deep.
fn scan<'a>(
    ctx: &Ctx<'a>,
    f: &'a FunctionDef,
    depth: usize,
    out: &mut Vec<(&'a Expr, &'a FunctionDef)>,
) {
    let Some(body) = &f.body else { return };
    // Inlining helpers multiplies work; stop collecting on hostile input.
    if out.len() > MAX_SCANNED {
        return;
    }
    for e in all_exprs(body) {
        out.push((e, f));
        if depth < 3
            && let ExprKind::Call(callee, _) = &e.kind
            && let ExprKind::Ident(n) = &callee.kind
            && let Some(g) = ctx.model.function_named(n)
            && !matches!(
                g.visibility,
                Some(Visibility::Public | Visibility::External) | None
            )
            && !std::ptr::eq(g, f)
            && !is_protected(ctx.model, g)
        {
            scan(ctx, g, depth + 1, out);
        }
    }
}

fn is_this_balance(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Member(a, m) if m.name == "balance" => match &a.kind {
            ExprKind::Ident(n) => n == "this",
            ExprKind::Call(f, args) => {
                matches!(&f.kind, ExprKind::Ident(n) if n == "address")
                    && args
                        .first()
                        .is_some_and(|x| matches!(&x.kind, ExprKind::Ident(n) if n == "this"))
            }
            _ => false,
        },
        _ => false,
    }
}

/// Reports sensitive operations that any caller can trigger, and `tx.origin` checks.
pub(super) fn detect(ctx: &mut Ctx<'_>) {
    let model = ctx.model;
    let auth = auth_vars(ctx);
    let own: Vec<&FunctionDef> = ctx.own_functions().collect();
    let mut hits = Vec::new();
    // tx.origin used to authorise, in functions and modifiers.
    for f in own.iter().copied().chain(model.def.modifiers.iter()) {
        if let Some(body) = &f.body {
            for c in conditions(body) {
                walk_expr(c, &mut |x| {
                    if let ExprKind::Binary("==" | "!=", l, r) = &x.kind {
                        let origin = is_tx_origin(l) || is_tx_origin(r);
                        let anti_contract = is_msg_sender(l) || is_msg_sender(r);
                        if origin && !anti_contract {
                            hits.push((&TX_ORIGIN, x.span, f, "authorisation compares tx.origin; a contract the owner calls can act as the owner".to_string()));
                        }
                    }
                });
            }
        }
    }
    for f in &own {
        if !is_entry_point(f) || is_protected(model, f) {
            continue;
        }
        let scope = Scope::new(model, f);
        let mut ops = Vec::new();
        scan(ctx, f, 0, &mut ops);
        let body_conditions: Vec<&Expr> = f.body.as_ref().map(conditions).unwrap_or_default();
        // Boolean state flags this function sets (an `initialized` flag makes it one-shot).
        let flags: BTreeSet<String> = f
            .body
            .as_ref()
            .map(|b| {
                all_exprs(b)
                    .into_iter()
                    .filter_map(|e| match &e.kind {
                        ExprKind::Assign("=", lhs, rhs)
                            if matches!(rhs.kind, ExprKind::Bool(_)) =>
                        {
                            scope.written_state(lhs).map(str::to_string)
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (e, owner_fn) in ops {
            let scope_here = if std::ptr::eq(owner_fn, *f) {
                None
            } else {
                Some(Scope::new(model, owner_fn))
            };
            let scope_ref = scope_here.as_ref().unwrap_or(&scope);
            match &e.kind {
                ExprKind::Call(callee, _) if matches!(&callee.kind, ExprKind::Ident(n) if n == "selfdestruct" || n == "suicide") =>
                {
                    hits.push((
                        &UNPROTECTED_SELFDESTRUCT,
                        e.span,
                        *f,
                        format!(
                            "`{}` can be called by anyone and destroys the contract",
                            super::function_label(f)
                        ),
                    ));
                }
                ExprKind::Call(..) => {
                    let Some(site) = scope_ref.classify(e) else {
                        continue;
                    };
                    if !site.sends_value || matches!(site.kind, CallKind::External) {
                        continue;
                    }
                    let Some(target) = site.target else { continue };
                    let to_sender = mentions(target, &|x| is_msg_sender(x));
                    let to_state = root_name(target).is_some_and(|n| {
                        scope_ref.is_state(n) && !scope_ref.locals.contains_key(n)
                    }) || matches!(&target.kind, ExprKind::Call(_, a) if a.first().and_then(root_name).is_some_and(|n| model.state_vars.contains_key(n)));
                    let whole_balance = site.value.is_some_and(|v| mentions(v, &is_this_balance));
                    // Parameters of inlined helpers are bound by the caller, not chosen freely.
                    let own = std::ptr::eq(owner_fn, *f);
                    let unconditional = body_conditions.is_empty();
                    let chosen = own
                        && (root_name(target).is_some_and(|n| scope_ref.params.contains(n))
                            || matches!(&target.kind, ExprKind::Call(_, a) if a.first().and_then(root_name).is_some_and(|n| scope_ref.params.contains(n))));
                    if (chosen && !to_state) || (whole_balance && to_sender && unconditional) {
                        hits.push((
                            &UNPROTECTED_WITHDRAWAL,
                            e.span,
                            *f,
                            format!(
                                "`{}` lets any caller send ether out of the contract",
                                super::function_label(f)
                            ),
                        ));
                    }
                }
                ExprKind::Assign(_, lhs, _) => {
                    if let ExprKind::Member(arr, m) = &lhs.kind
                        && m.name == "length"
                        && root_name(arr).is_some_and(|n| scope_ref.is_state(n))
                    {
                        hits.push((&ARBITRARY_STORAGE, e.span, *f, "any caller can change a storage array's length and then write anywhere in storage".to_string()));
                        continue;
                    }
                    let Some(var) = scope_ref.written_state(lhs) else {
                        continue;
                    };
                    if f.kind == FunctionKind::Constructor {
                        continue;
                    }
                    if !auth.contains(var) {
                        // Minting: growing the supply is an owner's power too.
                        let supply = var.to_ascii_lowercase().contains("supply");
                        if supply && matches!(e.kind, ExprKind::Assign("+=", _, _)) {
                            hits.push((
                                &UNPROTECTED_OWNER,
                                e.span,
                                *f,
                                format!(
                                    "`{}` lets any caller mint: it raises `{var}`",
                                    super::function_label(f)
                                ),
                            ));
                        }
                        continue;
                    }
                    // A role inferred only from a msg.sender comparison (a game's `winner`) is
                    // taken over only when the caller chooses who gets it.
                    let named = AUTH_WORDS
                        .iter()
                        .any(|w| var.to_ascii_lowercase().contains(w));
                    let mentions_param = |x: &Expr| {
                        mentions(
                            x,
                            &|y| matches!(&y.kind, ExprKind::Ident(n) if scope_ref.params.contains(n)),
                        )
                    };
                    let chosen_by_caller = mentions_param(lhs)
                        || matches!(&e.kind, ExprKind::Assign(_, _, rhs) if mentions_param(rhs));
                    if !(named || chosen_by_caller) {
                        continue;
                    }
                    // A one-shot initialiser that checks the variable first is safe.
                    let checks_var = body_conditions.iter().any(|c| {
                        mentions(c, &|x| matches!(&x.kind, ExprKind::Ident(n) if n == var))
                    }) || body_conditions.iter().any(|c| {
                        mentions(
                            c,
                            &|x| matches!(&x.kind, ExprKind::Ident(n) if flags.contains(n)),
                        )
                    });
                    if !checks_var {
                        hits.push((
                            &UNPROTECTED_OWNER,
                            e.span,
                            *f,
                            format!(
                                "`{}` lets any caller change `{var}`",
                                super::function_label(f)
                            ),
                        ));
                    }
                }
                ExprKind::Unary("--" | "delete", a) => {
                    if let ExprKind::Member(arr, m) = &a.kind
                        && m.name == "length"
                        && root_name(arr).is_some_and(|n| scope_ref.is_state(n))
                    {
                        hits.push((&ARBITRARY_STORAGE, e.span, *f, "any caller can shrink a storage array's length below zero and then write anywhere in storage".to_string()));
                    }
                }
                _ => {}
            }
        }
        // Assembly storing to a slot the caller chose.
        if let Some(body) = &f.body {
            walk_stmts(body, &mut |s| {
                if let StmtKind::Assembly(words) = &s.kind
                    && words.iter().any(|w| w.name == "sstore")
                    && words.iter().any(|w| scope.params.contains(&w.name))
                {
                    hits.push((
                        &ARBITRARY_STORAGE,
                        s.span,
                        *f,
                        "inline assembly stores to a slot derived from a parameter".to_string(),
                    ));
                }
            });
        }
    }
    for (rule, span, f, msg) in hits {
        ctx.report(rule, span, Some(f), msg);
    }
}
