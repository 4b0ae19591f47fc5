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
            explanation: None,
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
    let types = FileTypes::new(unit);
    for def in &unit.contracts {
        if matches!(def.kind, ContractKind::Interface) {
            continue;
        }
        let mut model = ContractModel::new(def, version, &types);
        model.sender_checkers = sender_checkers(&model);
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
    let lines = crate::span::LineIndex::new(src);
    findings.retain(|f| {
        let line = lines.position(f.span.start).0;
        seen.insert((f.rule.category, line))
    });
    findings
}

/// Whether a modifier (resolved or by name) restricts the caller.
fn modifier_restricts(model: &ContractModel<'_>, name: &str) -> bool {
    match model.modifiers.get(name) {
        Some(m) => checks_sender(model, m),
        None => {
            let n = name.to_ascii_lowercase();
            ["only", "auth", "owner", "admin", "restricted", "governance"]
                .iter()
                .any(|w| n.contains(w))
        }
    }
}

/// Functions and modifiers that check the caller, in their own conditions or through the
/// internal functions they call (`_checkOwner()`). Computed once per contract as a fixpoint so
/// that call fan-out cannot make it exponential.
pub(crate) fn sender_checkers(model: &ContractModel<'_>) -> BTreeSet<*const FunctionDef> {
    let all: Vec<&FunctionDef> = model
        .functions
        .iter()
        .copied()
        .chain(model.modifiers.values().copied())
        .collect();
    let mut checking = BTreeSet::new();
    let mut callees: Vec<BTreeSet<*const FunctionDef>> = Vec::with_capacity(all.len());
    for f in &all {
        let Some(body) = &f.body else {
            callees.push(BTreeSet::new());
            continue;
        };
        if conditions(body).iter().any(|c| is_sender_check(model, c)) {
            checking.insert(*f as *const FunctionDef);
        }
        let names: BTreeSet<&str> = all_exprs(body)
            .into_iter()
            .filter_map(|e| match &e.kind {
                ExprKind::Call(c, _) => match &c.kind {
                    ExprKind::Ident(n) => Some(n.as_str()),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        callees.push(
            names
                .into_iter()
                .filter_map(|n| model.function_named(n))
                .map(|g| g as *const FunctionDef)
                .collect(),
        );
    }
    for _ in 0..4 {
        let before = checking.len();
        for (f, called) in all.iter().zip(&callees) {
            if called.iter().any(|g| checking.contains(g)) {
                checking.insert(*f as *const FunctionDef);
            }
        }
        if checking.len() == before {
            break;
        }
    }
    checking
}

/// Whether `f` checks the caller itself (or through helpers it calls).
fn checks_sender(model: &ContractModel<'_>, f: &FunctionDef) -> bool {
    model.sender_checkers.contains(&(f as *const FunctionDef))
        || f.body
            .as_ref()
            .is_some_and(|b| conditions(b).iter().any(|c| is_sender_check(model, c)))
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
        || checks_sender(model, f)
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
