//! Detectors: each walks the semantic model of one file and reports findings.

mod access;
mod arithmetic;
mod calls;
mod frontrun;
mod other;
mod randomness;
mod reentrancy;

use std::collections::BTreeSet;

use crate::{
    ast::*,
    finding::{Finding, Rule},
    model::*,
    span::Span,
};

/// Everything a detector needs to look at one contract.
pub(crate) struct Ctx<'a> {
    pub(crate) src: &'a str,
    pub(crate) model: &'a ContractModel<'a>,
    pub(crate) findings: &'a mut Vec<Finding>,
}

impl<'a> Ctx<'a> {
    /// Records a finding.
    pub(crate) fn report(
        &mut self,
        rule: &'static Rule,
        span: Span,
        function: Option<&FunctionDef>,
        message: String,
    ) {
        self.findings.push(Finding {
            rule,
            span,
            message,
            contract: self.model.def.name.name.clone(),
            function: function.map(function_label),
        });
    }

    /// Own functions of the contract that have a body.
    pub(crate) fn own_functions(&self) -> impl Iterator<Item = &'a FunctionDef> + use<'a> {
        let def: &'a ContractDef = self.model.def;
        def.functions.iter().filter(|f| f.body.is_some())
    }
}

/// A readable name for a function in messages.
pub(crate) fn function_label(f: &FunctionDef) -> String {
    match (&f.name, f.kind) {
        (Some(n), _) => n.name.clone(),
        (None, FunctionKind::Constructor) => "constructor".into(),
        (None, FunctionKind::Receive) => "receive".into(),
        _ => "fallback".into(),
    }
}

/// Runs every detector over a parsed file.
pub(crate) fn run_all(src: &str, unit: &SourceUnit) -> Vec<Finding> {
    let version = min_version(&unit.pragmas);
    let mut findings = Vec::new();
    let bases: BTreeSet<&str> = unit
        .contracts
        .iter()
        .flat_map(|c| c.bases.iter().map(|b| b.name.as_str()))
        .collect();
    for def in &unit.contracts {
        if matches!(def.kind, ContractKind::Interface) {
            continue;
        }
        let model = ContractModel::new(unit, def, version);
        let mut ctx = Ctx {
            src,
            model: &model,
            findings: &mut findings,
        };
        reentrancy::detect(&mut ctx);
        access::detect(&mut ctx);
        arithmetic::detect(&mut ctx);
        calls::detect(&mut ctx);
        randomness::detect(&mut ctx);
        frontrun::detect(&mut ctx);
        other::detect(&mut ctx, bases.contains(def.name.name.as_str()));
    }
    findings.sort_by(|a, b| (a.span.start, a.rule.id).cmp(&(b.span.start, b.rule.id)));
    // One finding per category and line is enough for a reader.
    let mut seen = BTreeSet::new();
    findings.retain(|f| {
        let line = src[..f.span.start.min(src.len())]
            .bytes()
            .filter(|b| *b == b'\n')
            .count();
        seen.insert((f.rule.category, line))
    });
    findings
}

/// Whether a modifier (resolved or by name) restricts the caller.
fn modifier_restricts(model: &ContractModel<'_>, name: &str) -> bool {
    match model.modifiers.get(name) {
        Some(m) => m
            .body
            .as_ref()
            .is_some_and(|b| block_checks_sender(model, b, 0)),
        None => {
            let n = name.to_ascii_lowercase();
            ["only", "auth", "owner", "admin", "restricted", "governance"]
                .iter()
                .any(|w| n.contains(w))
        }
    }
}

/// Whether a block checks the caller in a condition (directly or in an internal function it calls).
fn block_checks_sender(model: &ContractModel<'_>, b: &Block, depth: usize) -> bool {
    if conditions(b).iter().any(|c| is_sender_check(model, c)) {
        return true;
    }
    if depth > 2 {
        return false;
    }
    all_exprs(b).iter().any(|e| match &e.kind {
        ExprKind::Call(f, _) => match &f.kind {
            ExprKind::Ident(n) => model
                .function_named(n)
                .and_then(|g| g.body.as_ref())
                .is_some_and(|body| block_checks_sender(model, body, depth + 1)),
            _ => false,
        },
        _ => false,
    })
}

/// Whether a condition restricts who the caller is: `msg.sender == x`, `admins[msg.sender]`
/// (a boolean mapping) or `isAllowed(msg.sender)`; `balances[msg.sender] >= v` is not one.
fn is_sender_check(model: &ContractModel<'_>, c: &Expr) -> bool {
    let caller = |x: &Expr| is_msg_sender(x) || is_tx_origin(x);
    let mut found = false;
    walk_expr(c, &mut |x| match &x.kind {
        ExprKind::Binary("==" | "!=", l, r) => {
            found |= mentions(l, &caller) || mentions(r, &caller)
        }
        ExprKind::Index(a, Some(i)) if caller(i) => {
            let ty = root_name(a)
                .and_then(|n| model.state_vars.get(n))
                .map(|v| &v.ty);
            let mut value = ty;
            while let Some(TypeName::Mapping(_, v)) = value {
                value = Some(v);
            }
            found |= matches!(value, Some(TypeName::Elementary(t)) if t == "bool");
        }
        ExprKind::Call(f, args) if args.iter().any(&caller) => {
            let name = match &f.kind {
                ExprKind::Ident(n) => Some(n.as_str()),
                ExprKind::Member(_, m) => Some(m.name.as_str()),
                _ => None,
            };
            found |= matches!(&f.kind, ExprKind::Ident(_))
                || name.is_some_and(|n| {
                    let n = n.to_ascii_lowercase();
                    ["role", "auth", "owner", "admin", "allowed", "whitelist"]
                        .iter()
                        .any(|w| n.contains(w))
                });
        }
        _ => {}
    });
    found
}

/// Whether only some callers can run `f` (a modifier or a condition on msg.sender/tx.origin).
pub(crate) fn is_protected(model: &ContractModel<'_>, f: &FunctionDef) -> bool {
    f.modifiers
        .iter()
        .any(|m| modifier_restricts(model, &m.name.name))
        || f.body
            .as_ref()
            .is_some_and(|b| block_checks_sender(model, b, 0))
}

/// The modifiers of `f` that resolve to definitions, in order.
pub(crate) fn resolved_modifiers<'a>(
    model: &ContractModel<'a>,
    f: &FunctionDef,
) -> Vec<&'a FunctionDef> {
    f.modifiers
        .iter()
        .filter_map(|m| model.modifiers.get(&m.name.name).copied())
        .collect()
}

/// Names of locals (and parameters) whose value derives from a parameter or `msg.value`.
pub(crate) fn tainted_names(
    scope: &Scope<'_>,
    body: &Block,
    source: &dyn Fn(&Expr) -> bool,
) -> BTreeSet<String> {
    let mut tainted: BTreeSet<String> = BTreeSet::new();
    // Two passes reach locals assigned from locals declared later in loops.
    for _ in 0..2 {
        walk_stmts(body, &mut |s| {
            let is_tainted = |e: &Expr, t: &BTreeSet<String>| {
                mentions(e, &|x| {
                    source(x) || matches!(&x.kind, ExprKind::Ident(n) if t.contains(n))
                })
            };
            match &s.kind {
                StmtKind::VarDecl(vars, Some(init)) if is_tainted(init, &tainted) => {
                    for v in vars.iter().flatten() {
                        tainted.insert(v.name.name.clone());
                    }
                }
                _ => {
                    for e in stmt_exprs(s) {
                        let mut newly = Vec::new();
                        walk_expr(e, &mut |x| {
                            if let ExprKind::Assign(_, lhs, rhs) = &x.kind
                                && let ExprKind::Ident(n) = &lhs.kind
                                && scope.locals.contains_key(n)
                                && is_tainted(rhs, &tainted)
                            {
                                newly.push(n.clone());
                            }
                        });
                        tainted.extend(newly);
                    }
                }
            }
        });
    }
    tainted
}

/// Whether `e` mentions a tainted name or a source expression.
pub(crate) fn is_tainted(
    e: &Expr,
    tainted: &BTreeSet<String>,
    source: &dyn Fn(&Expr) -> bool,
) -> bool {
    mentions(e, &|x| {
        source(x) || matches!(&x.kind, ExprKind::Ident(n) if tainted.contains(n))
    })
}
