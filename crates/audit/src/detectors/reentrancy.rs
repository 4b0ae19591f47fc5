//! Reentrancy: a state write reachable after an external call on some path, following
//! modifiers and internal calls; reentrancy guards and checks-effects-interactions are safe.

use std::collections::BTreeMap;

use super::{Ctx, resolved_modifiers};
use crate::{
    ast::*,
    finding::{REENTRANCY_CALL, REENTRANCY_ETH},
    model::*,
    span::Span,
};

/// What is known at a program point: is it reachable, and which call may have happened before.
#[derive(Clone, Copy)]
struct Fact {
    live: bool,
    call: Option<(Span, bool)>,
}

impl Fact {
    fn join(self, other: Fact) -> Fact {
        match (self.live, other.live) {
            (false, _) => other,
            (_, false) => self,
            _ => Fact {
                live: true,
                call: self.call.or(other.call),
            },
        }
    }
}

/// Visits allowed per entry point; real contracts need a few thousand.
const WALK_BUDGET: usize = 200_000;

const DEAD: Fact = Fact {
    live: false,
    call: None,
};

struct Walker<'a, 'm> {
    model: &'m ContractModel<'a>,
    scopes: Vec<Scope<'m>>,
    /// Bodies of the modifier chain followed by the function body.
    chain: Vec<&'a Block>,
    level: usize,
    returns: Vec<Vec<Fact>>,
    inlined: Vec<*const FunctionDef>,
    /// Call site → (first state variable written after it, whether the call carries ether).
    found: BTreeMap<Span, (String, bool)>,
    /// Statements and expressions still allowed to be visited for this entry point.
    steps: usize,
}

impl<'a, 'm> Walker<'a, 'm> {
    fn scope(&self) -> &Scope<'m> {
        // A scope is pushed before any walking starts.
        &self.scopes[self.scopes.len() - 1]
    }

    fn block(&mut self, b: &'a Block, mut fact: Fact) -> Fact {
        for s in &b.stmts {
            if !fact.live {
                break;
            }
            fact = self.stmt(s, fact);
        }
        fact
    }

    fn stmt(&mut self, s: &'a Stmt, fact: Fact) -> Fact {
        // Loops are walked twice and helpers inlined, so bound the work on hostile input.
        if self.steps == 0 {
            return fact;
        }
        self.steps -= 1;
        match &s.kind {
            StmtKind::Block(b) | StmtKind::Unchecked(b) => self.block(b, fact),
            StmtKind::VarDecl(_, Some(e)) | StmtKind::Expr(e) | StmtKind::Emit(e) => {
                let f = self.expr(e, fact);
                if is_revert_call(e) { DEAD } else { f }
            }
            StmtKind::If(c, a, b) => {
                let f = self.expr(c, fact);
                let fa = self.stmt(a, f);
                let fb = match b {
                    Some(b) => self.stmt(b, f),
                    None => f,
                };
                fa.join(fb)
            }
            StmtKind::While(c, body) | StmtKind::DoWhile(body, c) => {
                let mut f = fact;
                for _ in 0..2 {
                    let c1 = self.expr(c, f);
                    let b1 = self.stmt(body, c1);
                    f = f.join(b1).join(c1);
                }
                f
            }
            StmtKind::For(init, c, post, body) => {
                let mut f = match init {
                    Some(i) => self.stmt(i, fact),
                    None => fact,
                };
                for _ in 0..2 {
                    let c1 = match c {
                        Some(c) => self.expr(c, f),
                        None => f,
                    };
                    let mut b1 = self.stmt(body, c1);
                    if let Some(p) = post {
                        b1 = self.expr(p, b1);
                    }
                    f = f.join(b1).join(c1);
                }
                f
            }
            StmtKind::Return(e) => {
                let f = match e {
                    Some(e) => self.expr(e, fact),
                    None => fact,
                };
                if let Some(frame) = self.returns.last_mut() {
                    frame.push(f);
                }
                DEAD
            }
            StmtKind::Revert(_) | StmtKind::Throw => DEAD,
            StmtKind::Try(e, blocks) => {
                let f = self.expr(e, fact);
                blocks
                    .iter()
                    .fold(DEAD, |acc, b| acc.join(self.block(b, f)))
            }
            StmtKind::Placeholder => {
                if self.level + 1 < self.chain.len() {
                    self.level += 1;
                    let body = self.chain[self.level];
                    let f = self.block(body, fact);
                    self.level -= 1;
                    f
                } else {
                    fact
                }
            }
            StmtKind::Assembly(words) => {
                if words
                    .iter()
                    .any(|w| matches!(w.name.as_str(), "call" | "delegatecall" | "callcode"))
                {
                    Fact {
                        live: fact.live,
                        call: fact.call.or(Some((s.span, true))),
                    }
                } else {
                    fact
                }
            }
            StmtKind::VarDecl(_, None) | StmtKind::Jump => fact,
        }
    }

    fn write(&mut self, var: &str, fact: Fact) {
        if let Some((call, value)) = fact.call {
            self.found.entry(call).or_insert((var.to_string(), value));
        }
    }

    fn expr(&mut self, e: &'a Expr, fact: Fact) -> Fact {
        if !fact.live || self.steps == 0 {
            return fact;
        }
        self.steps -= 1;
        match &e.kind {
            ExprKind::Assign(_, lhs, rhs) => {
                let mut f = self.expr(rhs, fact);
                f = self.lvalue_parts(lhs, f);
                if let Some(var) = self.scope().written_state(lhs).map(str::to_string) {
                    self.write(&var, f);
                }
                if let ExprKind::Tuple(items) = &lhs.kind {
                    for i in items.iter().flatten() {
                        if let Some(var) = self.scope().written_state(i).map(str::to_string) {
                            self.write(&var, f);
                        }
                    }
                }
                f
            }
            ExprKind::Unary(op, a) => {
                let f = self.expr(a, fact);
                if matches!(*op, "++" | "--" | "delete")
                    && let Some(var) = self.scope().written_state(a).map(str::to_string)
                {
                    self.write(&var, f);
                }
                f
            }
            ExprKind::Call(callee, args) => {
                let mut f = self.callee_parts(callee, fact);
                for a in args {
                    f = self.expr(a, f);
                }
                self.call(e, f)
            }
            ExprKind::Member(a, _) => self.expr(a, fact),
            ExprKind::Index(a, i) => {
                let f = self.expr(a, fact);
                match i {
                    Some(i) => self.expr(i, f),
                    None => f,
                }
            }
            ExprKind::CallOptions(a, opts) => {
                let f = self.expr(a, fact);
                opts.iter().fold(f, |f, (_, v)| self.expr(v, f))
            }
            ExprKind::Binary(_, a, b) => {
                let f = self.expr(a, fact);
                self.expr(b, f)
            }
            ExprKind::Ternary(c, a, b) => {
                let f = self.expr(c, fact);
                let fa = self.expr(a, f);
                let fb = self.expr(b, f);
                fa.join(fb)
            }
            ExprKind::Tuple(items) => items.iter().flatten().fold(fact, |f, i| self.expr(i, f)),
            ExprKind::Array(items) => items.iter().fold(fact, |f, i| self.expr(i, f)),
            _ => fact,
        }
    }

    fn lvalue_parts(&mut self, e: &'a Expr, fact: Fact) -> Fact {
        match &e.kind {
            ExprKind::Index(a, i) => {
                let f = self.lvalue_parts(a, fact);
                match i {
                    Some(i) => self.expr(i, f),
                    None => f,
                }
            }
            ExprKind::Member(a, _) => self.lvalue_parts(a, fact),
            _ => fact,
        }
    }

    /// Evaluates the receiver and options of a callee without treating the callee as a call.
    fn callee_parts(&mut self, callee: &'a Expr, fact: Fact) -> Fact {
        match &callee.kind {
            ExprKind::Member(a, _) => self.expr(a, fact),
            ExprKind::CallOptions(a, opts) => {
                let f = self.callee_parts(a, fact);
                opts.iter().fold(f, |f, (_, v)| self.expr(v, f))
            }
            ExprKind::Call(inner, args) => {
                let f = self.callee_parts(inner, fact);
                args.iter().fold(f, |f, a| self.expr(a, f))
            }
            _ => fact,
        }
    }

    fn call(&mut self, e: &'a Expr, fact: Fact) -> Fact {
        let Some(site) = self.scope().classify(e) else {
            return fact;
        };
        let is_this = site
            .target
            .is_some_and(|t| matches!(&t.kind, ExprKind::Ident(n) if n == "this"));
        match site.kind {
            CallKind::LowLevel("staticcall") => fact,
            CallKind::LowLevel(kind) => {
                // A bare `.call(...)` forwards all gas, so it can re-enter even without value.
                let value = site.sends_value || kind == "call";
                Fact {
                    live: true,
                    call: fact.call.or(Some((e.span, value))),
                }
            }
            CallKind::External if !is_this => Fact {
                live: true,
                call: fact.call.or(Some((e.span, false))),
            },
            CallKind::External | CallKind::Stipend(_) => fact,
            CallKind::Internal => {
                let ExprKind::Call(callee, _) = &e.kind else {
                    return fact;
                };
                // Array mutation on state counts as a write.
                if let ExprKind::Member(target, m) = &callee.kind {
                    if matches!(m.name.as_str(), "push" | "pop")
                        && let Some(var) = self.scope().written_state(target).map(str::to_string)
                    {
                        self.write(&var, fact);
                    }
                    return fact;
                }
                let ExprKind::Ident(name) = &callee.kind else {
                    return fact;
                };
                let Some(g) = self.model.function_named(name) else {
                    return fact;
                };
                let Some(body) = &g.body else { return fact };
                if self.inlined.len() > 4 || self.inlined.contains(&(g as *const FunctionDef)) {
                    return fact;
                }
                self.inlined.push(g);
                self.scopes.push(Scope::new(self.model, g));
                self.returns.push(Vec::new());
                let end = self.block(body, fact);
                let returned = self.returns.pop().unwrap_or_default();
                self.scopes.pop();
                self.inlined.pop();
                returned.into_iter().fold(end, Fact::join)
            }
        }
    }
}

fn is_revert_call(e: &Expr) -> bool {
    matches!(&e.kind, ExprKind::Call(f, _) if matches!(&f.kind, ExprKind::Ident(n) if n == "revert"))
}

/// Whether a modifier is a reentrancy guard: by name, or a mutex set before `_`.
fn is_guard(m: &FunctionDef, model: &ContractModel<'_>) -> bool {
    let name = m
        .name
        .as_ref()
        .map(|n| n.name.to_ascii_lowercase())
        .unwrap_or_default();
    if name.contains("reentran") || name.contains("mutex") || name == "lock" || name == "locked" {
        return true;
    }
    let Some(body) = &m.body else { return false };
    let before: Vec<&Stmt> = body
        .stmts
        .iter()
        .take_while(|s| !matches!(s.kind, StmtKind::Placeholder))
        .collect();
    sets_checked_flag(&before, model)
}

/// Whether `stmts` check a state variable and then assign it: the mutex pattern
/// `require(!locked); locked = true;`.
fn sets_checked_flag(stmts: &[&Stmt], model: &ContractModel<'_>) -> bool {
    let checked: Vec<&str> = stmts
        .iter()
        .flat_map(|s| stmt_exprs(s))
        .filter_map(check_condition)
        .chain(stmts.iter().filter_map(|s| match &s.kind {
            StmtKind::If(c, _, _) => Some(c),
            _ => None,
        }))
        .flat_map(|c| {
            let mut names = Vec::new();
            walk_expr(c, &mut |x| {
                if let ExprKind::Ident(n) = &x.kind
                    && model.state_vars.contains_key(n)
                {
                    names.push(n.as_str());
                }
            });
            names
        })
        .collect();
    stmts.iter().flat_map(|s| stmt_exprs(s)).any(|e| {
        matches!(&e.kind, ExprKind::Assign(_, lhs, _) if root_name(lhs).is_some_and(|n| checked.contains(&n)))
    })
}

/// Whether a function body opens with an inline mutex (checks and sets a state flag first).
fn has_inline_mutex(body: &Block, model: &ContractModel<'_>) -> bool {
    let prefix: Vec<&Stmt> = body
        .stmts
        .iter()
        .take_while(|s| match &s.kind {
            StmtKind::Expr(e) => {
                check_condition(e).is_some()
                    || matches!(&e.kind, ExprKind::Assign("=", _, rhs) if matches!(rhs.kind, ExprKind::Bool(_) | ExprKind::Number(_)))
            }
            _ => false,
        })
        .collect();
    sets_checked_flag(&prefix, model)
}

/// Reports state writes that may follow an external call in each entry point.
pub(super) fn detect(ctx: &mut Ctx<'_>) {
    let model = ctx.model;
    let mut reported = BTreeMap::new();
    for f in ctx.own_functions() {
        if !is_entry_point(f) || matches!(f.mutability, Mutability::View | Mutability::Pure) {
            continue;
        }
        let mods = resolved_modifiers(model, f);
        // Guards inherited from imported bases (OpenZeppelin's nonReentrant) are known by name.
        let guard_name = |n: &str| {
            let n = n.to_ascii_lowercase();
            n.contains("reentran") || n.contains("mutex") || n == "lock" || n == "locked"
        };
        if mods.iter().any(|m| is_guard(m, model))
            || f.modifiers.iter().any(|m| guard_name(&m.name.name))
        {
            continue;
        }
        let Some(body) = &f.body else { continue };
        if has_inline_mutex(body, model) {
            continue;
        }
        let mut chain: Vec<&Block> = mods.iter().filter_map(|m| m.body.as_ref()).collect();
        chain.push(body);
        let mut w = Walker {
            model,
            scopes: vec![Scope::new(model, f)],
            chain,
            level: 0,
            returns: vec![Vec::new()],
            inlined: vec![f as *const FunctionDef],
            found: BTreeMap::new(),
            steps: WALK_BUDGET,
        };
        let first = w.chain[0];
        w.block(
            first,
            Fact {
                live: true,
                call: None,
            },
        );
        for (span, (var, value)) in w.found {
            reported.entry(span).or_insert((var, value, f));
        }
    }
    for (span, (var, value, f)) in reported {
        let rule = if value {
            &REENTRANCY_ETH
        } else {
            &REENTRANCY_CALL
        };
        // Cross-function reentrancy: other entry points that read the stale variable.
        let others: Vec<String> = model
            .functions
            .iter()
            .filter(|g| is_entry_point(g) && !std::ptr::eq(**g, f))
            .filter(|g| {
                g.body.as_ref().is_some_and(|b| {
                    all_exprs(b)
                        .iter()
                        .any(|x| matches!(&x.kind, ExprKind::Ident(n) if *n == var))
                })
            })
            .map(|g| format!("`{}`", super::function_label(g)))
            .take(3)
            .collect();
        let also = if others.is_empty() {
            String::new()
        } else {
            format!(" (also readable stale through {})", others.join(", "))
        };
        ctx.report(
            rule,
            span,
            Some(f),
            format!(
                "external call here can re-enter `{}` before state variable `{var}` is updated{also}",
                super::function_label(f)
            ),
        );
    }
}
