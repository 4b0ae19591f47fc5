//! Other: uninitialised storage pointers, shadowed state variables, locked ether and
//! delegatecall to a caller-chosen address.

use super::{Ctx, is_protected};
use crate::{
    ast::*,
    finding::{CONTROLLED_DELEGATECALL, LOCKED_ETHER, SHADOWED_STATE, UNINITIALISED_STORAGE},
    model::*,
};

/// Reports the remaining DASP "other" problems; `is_base` says another contract inherits this one.
pub(super) fn detect(ctx: &mut Ctx<'_>, is_base: bool) {
    let model = ctx.model;
    let mut hits = Vec::new();
    let old = model.version.is_some_and(|v| v < (0, 5, 0));
    for f in ctx.own_functions() {
        let Some(body) = &f.body else { continue };
        // --- uninitialised storage pointers (before 0.5 locals of reference type default to storage)
        if old {
            walk_stmts(body, &mut |s| {
                if let StmtKind::VarDecl(vars, None) = &s.kind {
                    for v in vars.iter().flatten() {
                        let reference = match &v.ty {
                            TypeName::User(n) => model.structs.contains(n),
                            TypeName::Array(..) | TypeName::Mapping(..) => true,
                            _ => false,
                        };
                        if reference && v.location != Some(Location::Memory) {
                            hits.push((&UNINITIALISED_STORAGE, s.span, Some(f), format!("`{}` points at storage slot 0 and overwrites state when written", v.name.name)));
                        }
                    }
                }
            });
        }
        // --- delegatecall to a caller-chosen address
        if is_entry_point(f) && !is_protected(model, f) {
            let scope = Scope::new(model, f);
            let tainted = super::tainted_names(
                &scope,
                body,
                &|x| matches!(&x.kind, ExprKind::Ident(n) if scope.params.contains(n)),
            );
            for e in all_exprs(body) {
                if let Some(site) = scope.classify(e) {
                    let chosen = site.target.is_some_and(|t| {
                        super::is_tainted(
                            t,
                            &tainted,
                            &|x| matches!(&x.kind, ExprKind::Ident(n) if scope.params.contains(n)),
                        )
                    });
                    if matches!(site.kind, CallKind::LowLevel("delegatecall" | "callcode"))
                        && chosen
                    {
                        hits.push((&CONTROLLED_DELEGATECALL, e.span, Some(f), "the caller picks the code that runs with this contract's storage and balance".into()));
                    }
                }
            }
        }
    }
    // --- state variables shadowing inherited ones
    for v in &model.def.state_vars {
        let shadows = model
            .linear
            .iter()
            .skip(1)
            .any(|base| base.state_vars.iter().any(|b| b.name.name == v.name.name));
        if shadows {
            hits.push((
                &SHADOWED_STATE,
                v.span,
                None,
                format!(
                    "`{}` hides the inherited state variable of the same name",
                    v.name.name
                ),
            ));
        }
    }
    // --- locked ether
    if model.def.kind == ContractKind::Contract && !is_base {
        let receives = model
            .functions
            .iter()
            .any(|f| f.mutability == Mutability::Payable);
        let sends = model.functions.iter().copied().chain(model.linear.iter().flat_map(|c| c.modifiers.iter())).any(|f| {
            let Some(body) = &f.body else { return false };
            let scope = Scope::new(model, f);
            let mut asm = false;
            walk_stmts(body, &mut |s| asm |= matches!(s.kind, StmtKind::Assembly(_)));
            asm || all_exprs(body).iter().any(|e| {
                matches!(&e.kind, ExprKind::Call(c, _) if matches!(&c.kind, ExprKind::Ident(n) if n == "selfdestruct" || n == "suicide"))
                    || scope.classify(e).is_some_and(|s| s.sends_value || matches!(s.kind, CallKind::LowLevel("delegatecall" | "callcode")))
            })
        });
        if receives && !sends {
            hits.push((
                &LOCKED_ETHER,
                model.def.name.span,
                None,
                format!(
                    "`{}` accepts ether but no function can send it out",
                    model.def.name.name
                ),
            ));
        }
    }
    for (rule, span, f, msg) in hits {
        ctx.report(rule, span, f, msg);
    }
}
