//! Unchecked low-level calls, and denial of service: failing calls in loops, unbounded loops
//! over storage arrays, and required push payments to a stored address.

use std::collections::{BTreeMap, BTreeSet};

use super::Ctx;
use crate::{
    ast::*,
    finding::{CALL_IN_LOOP, DOS_PUSH_PAYMENT, UNBOUNDED_LOOP, UNCHECKED_CALL},
    model::*,
    span::Span,
};

fn is_unchecked_kind(kind: CallKind) -> bool {
    matches!(
        kind,
        CallKind::LowLevel("call" | "delegatecall" | "callcode") | CallKind::Stipend("send")
    )
}

/// Every expression in a loop body, nested statements included.
fn body_exprs(body: &Stmt) -> Vec<&Expr> {
    let mut out = Vec::new();
    walk_one(body, &mut |s| {
        for e in stmt_exprs(s) {
            walk_expr(e, &mut |x| out.push(x));
        }
    });
    out
}

fn walk_one<'a>(s: &'a Stmt, visit: &mut dyn FnMut(&'a Stmt)) {
    visit(s);
    match &s.kind {
        StmtKind::Block(b) | StmtKind::Unchecked(b) => {
            for x in &b.stmts {
                walk_one(x, visit);
            }
        }
        StmtKind::If(_, a, b) => {
            walk_one(a, visit);
            if let Some(b) = b {
                walk_one(b, visit);
            }
        }
        StmtKind::While(_, b) | StmtKind::DoWhile(b, _) => walk_one(b, visit),
        StmtKind::For(i, _, _, b) => {
            if let Some(i) = i {
                walk_one(i, visit);
            }
            walk_one(b, visit);
        }
        StmtKind::Try(_, blocks) => {
            for b in blocks {
                for x in &b.stmts {
                    walk_one(x, visit);
                }
            }
        }
        _ => {}
    }
}

/// Reports ignored call results and denial-of-service patterns.
pub(super) fn detect(ctx: &mut Ctx<'_>) {
    let model = ctx.model;
    let mut hits: Vec<(&'static crate::finding::Rule, Span, &FunctionDef, String)> = Vec::new();
    // Arrays that any caller can grow with push(); an owner growing its own list is no attack.
    let pushed: BTreeSet<&str> = model
        .functions
        .iter()
        .filter(|g| is_entry_point(g) && !super::is_protected(model, g))
        .filter_map(|g| g.body.as_ref())
        .flat_map(all_exprs)
        .filter_map(|x| match &x.kind {
            ExprKind::Call(c, _) => match &c.kind {
                ExprKind::Member(a, m) if m.name == "push" => root_name(a),
                _ => None,
            },
            _ => None,
        })
        .collect();
    for f in ctx.own_functions() {
        let Some(body) = &f.body else { continue };
        let scope = Scope::new(model, f);
        let everything = all_exprs(body);
        // Where each name is read, and which state names get msg.sender: computed once so the
        // checks below stay linear in the size of the function.
        let mut name_uses: BTreeMap<&str, Vec<Span>> = BTreeMap::new();
        let mut set_to_sender: BTreeSet<&str> = BTreeSet::new();
        for x in &everything {
            match &x.kind {
                ExprKind::Ident(n) => name_uses.entry(n.as_str()).or_default().push(x.span),
                ExprKind::Assign("=", l, r) if is_msg_sender(r) => {
                    if let ExprKind::Ident(n) = &l.kind {
                        set_to_sender.insert(n.as_str());
                    }
                }
                _ => {}
            }
        }
        // --- unchecked low-level calls
        walk_stmts(body, &mut |s| match &s.kind {
            StmtKind::Expr(e) => {
                let call = match &e.kind {
                    ExprKind::Assign("=", lhs, rhs) => {
                        let flag = root_name(lhs).map(str::to_string);
                        let used = flag.as_ref().is_some_and(|n| {
                            name_uses
                                .get(n.as_str())
                                .is_some_and(|uses| uses.iter().any(|s| *s != lhs.span))
                        });
                        if used { None } else { Some(rhs.as_ref()) }
                    }
                    _ => Some(e),
                };
                if let Some(site) = call.and_then(|c| scope.classify(c))
                    && is_unchecked_kind(site.kind)
                {
                    hits.push((
                        &UNCHECKED_CALL,
                        call.map_or(e.span, |c| c.span),
                        f,
                        "the success flag of this low-level call is ignored".into(),
                    ));
                }
            }
            StmtKind::VarDecl(vars, Some(init)) => {
                if let Some(site) = scope.classify(init)
                    && is_unchecked_kind(site.kind)
                {
                    let flag = vars
                        .first()
                        .and_then(|v| v.as_ref())
                        .map(|v| v.name.name.clone());
                    let used = flag.is_some_and(|n| name_uses.contains_key(n.as_str()));
                    if !used {
                        hits.push((
                            &UNCHECKED_CALL,
                            init.span,
                            f,
                            "the success flag of this low-level call is never checked".into(),
                        ));
                    }
                }
            }
            _ => {}
        });
        // --- calls that must succeed inside loops, and unbounded loops
        let in_conditions: BTreeSet<Span> = conditions(body)
            .into_iter()
            .flat_map(|c| {
                let mut v = Vec::new();
                walk_expr(c, &mut |x| v.push(x.span));
                v
            })
            .collect();
        let mut loops = Vec::new();
        walk_stmts(body, &mut |s| match &s.kind {
            StmtKind::For(_, c, _, b) => loops.push((s, c.as_ref(), b.as_ref())),
            StmtKind::While(c, b) | StmtKind::DoWhile(b, c) => loops.push((s, Some(c), b.as_ref())),
            _ => {}
        });
        let mut seen_calls = BTreeSet::new();
        for (stmt, cond, loop_body) in loops {
            let mut has_call = false;
            for e in body_exprs(loop_body) {
                let Some(site) = scope.classify(e) else {
                    continue;
                };
                let must_succeed = match site.kind {
                    CallKind::Stipend("transfer") | CallKind::External => true,
                    CallKind::Stipend(_) | CallKind::LowLevel("call") => {
                        in_conditions.contains(&e.span)
                    }
                    _ => false,
                };
                if must_succeed {
                    has_call = true;
                    if seen_calls.insert(e.span) {
                        hits.push((&CALL_IN_LOOP, e.span, f, "if one call in this loop fails, the whole transaction reverts for everyone".into()));
                    }
                }
            }
            let unbounded = cond.is_some_and(|c| match &c.kind {
                ExprKind::Binary("<" | "<=" | "!=", _, r) => match &r.kind {
                    ExprKind::Member(arr, m) if m.name == "length" => {
                        root_name(arr).is_some_and(|n| scope.is_state(n))
                            && matches!(
                                root_name(arr)
                                    .and_then(|n| model.state_vars.get(n))
                                    .map(|v| &v.ty),
                                Some(TypeName::Array(_, false))
                            )
                    }
                    _ => false,
                },
                _ => false,
            });
            let grows = cond.and_then(|c| match &c.kind {
                ExprKind::Binary(_, _, r) => match &r.kind {
                    ExprKind::Member(arr, _) => root_name(arr),
                    _ => None,
                },
                _ => None,
            });
            // Only a real risk when callers can grow the array.
            let callers_grow = grows.is_some_and(|name| pushed.contains(name));
            // A view loop only costs the caller who runs it off chain.
            let mutates = !matches!(f.mutability, Mutability::View | Mutability::Pure);
            if unbounded && callers_grow && !has_call && is_entry_point(f) && mutates {
                hits.push((&UNBOUNDED_LOOP, stmt.span, f, "this loop walks a storage array that anyone can grow; it can exceed the block gas limit".into()));
            }
        }
        // --- required payment to a stored address that is then replaced
        for e in &everything {
            let Some(site) = scope.classify(e) else {
                continue;
            };
            let must = match site.kind {
                CallKind::Stipend("transfer") => true,
                CallKind::Stipend(_) | CallKind::LowLevel("call") => {
                    in_conditions.contains(&e.span)
                }
                _ => false,
            };
            let Some(target) = site.target else { continue };
            let Some(name) = root_name(target) else {
                continue;
            };
            if !must
                || !model.state_vars.contains_key(name)
                || scope.locals.contains_key(name)
                || seen_calls.contains(&e.span)
            {
                continue;
            }
            let replaced = set_to_sender.contains(name);
            if replaced {
                hits.push((
                    &DOS_PUSH_PAYMENT,
                    e.span,
                    f,
                    format!(
                        "if `{name}` rejects ether, nobody can call `{}` again",
                        super::function_label(f)
                    ),
                ));
            }
        }
    }
    for (rule, span, f, msg) in hits {
        ctx.report(rule, span, Some(f), msg);
    }
}
