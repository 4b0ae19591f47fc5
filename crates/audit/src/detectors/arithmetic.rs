//! Arithmetic: wrapping `+ - *` on caller-controlled values before 0.8 (or in `unchecked`)
//! without a dominating bounds check, and division before multiplication.

use std::collections::BTreeSet;

use super::{Ctx, is_protected, tainted_names};
use crate::{
    ast::*,
    finding::{DIVIDE_BEFORE_MULTIPLY, INTEGER_OVERFLOW},
    model::*,
    span::Span,
};

/// How many earlier conditions are searched for a bounds check.
const MAX_GUARDS: usize = 64;

fn is_comparison(op: &str) -> bool {
    matches!(op, "<" | ">" | "<=" | ">=" | "==" | "!=")
}

/// Whether `e` mentions a sub-expression with text key `k`.
fn has_key(src: &str, e: &Expr, k: &str) -> bool {
    mentions(e, &|x| key(src, x) == k)
}

/// Comparisons inside a condition.
fn comparisons(c: &Expr) -> Vec<&Expr> {
    let mut out = Vec::new();
    walk_expr(c, &mut |x| {
        if let ExprKind::Binary(op, _, _) = &x.kind
            && is_comparison(op)
        {
            out.push(x);
        }
    });
    out
}

struct Walk<'a, 'c> {
    src: &'c str,
    scope: &'c Scope<'c>,
    tainted: &'c BTreeSet<String>,
    checked_default: bool,
    seen: Vec<&'a Expr>,
    all_conditions: Vec<&'a Expr>,
    hits: Vec<(Span, String)>,
}

impl<'a> Walk<'a, '_> {
    /// Whether the value of `e` (not merely a mapping key or array index in it) is caller-controlled.
    fn user(&self, e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Index(base, _) => self.user(base),
            ExprKind::Member(base, _) => self.user(base),
            ExprKind::Ident(n) => self.scope.params.contains(n) || self.tainted.contains(n),
            ExprKind::Binary(_, a, b) => self.user(a) || self.user(b),
            ExprKind::Unary(_, a) => self.user(a),
            ExprKind::Call(_, args) => args.iter().any(|a| self.user(a)),
            ExprKind::Ternary(_, a, b) => self.user(a) || self.user(b),
            ExprKind::Tuple(items) => items.iter().flatten().any(|a| self.user(a)),
            _ => false,
        }
    }

    fn earlier_compares(&self, keys: &[String]) -> bool {
        // The nearest conditions are the ones that guard; a bound keeps hostile input linear.
        self.seen
            .iter()
            .rev()
            .take(MAX_GUARDS)
            .flat_map(|c| comparisons(c))
            .any(|cmp| keys.iter().all(|k| has_key(self.src, cmp, k)))
    }

    /// Checks one operation `lhs op rhs` whose result goes to `target` (if a local).
    fn operation(
        &mut self,
        op: &str,
        lhs: &Expr,
        rhs: &Expr,
        span: Span,
        target_local: Option<&str>,
    ) {
        if !matches!(op, "+" | "-" | "*") || !(self.user(lhs) || self.user(rhs)) {
            return;
        }
        let (kl, kr) = (key(self.src, lhs), key(self.src, rhs));
        let safe = match op {
            "-" => self.earlier_compares(&[kl.clone(), kr.clone()]),
            _ => {
                let operand = if self.user(rhs) {
                    kr.clone()
                } else {
                    kl.clone()
                };
                self.earlier_compares(&[operand])
            }
        };
        // A post-check of the result against an operand (`c = a + b; require(c >= a)`).
        let post_checked = target_local.is_some_and(|t| {
            self.all_conditions
                .iter()
                .flat_map(|c| comparisons(c))
                .any(|cmp| {
                    mentions(cmp, &|x| matches!(&x.kind, ExprKind::Ident(n) if n == t))
                        && (has_key(self.src, cmp, &kl) || has_key(self.src, cmp, &kr))
                })
        });
        if !safe && !post_checked {
            let what = match op {
                "-" => "underflow",
                "*" => "overflow (multiplication)",
                _ => "overflow",
            };
            self.hits.push((
                span,
                format!(
                    "`{}` can {what}: operands come from the caller and are not bounds-checked",
                    &self.src[span.start..span.end]
                ),
            ));
        }
    }

    fn expr_stmt(&mut self, e: &'a Expr) {
        match &e.kind {
            ExprKind::Assign(op, lhs, rhs) => {
                let local = match &lhs.kind {
                    ExprKind::Ident(n) if self.scope.locals.contains_key(n) => Some(n.as_str()),
                    _ => None,
                };
                match *op {
                    "+=" | "-=" | "*=" => self.operation(&op[..1], lhs, rhs, e.span, local),
                    "=" => {
                        if let ExprKind::Binary(bop, a, b) = &rhs.kind {
                            self.operation(bop, a, b, rhs.span, local);
                        }
                    }
                    _ => {}
                }
            }
            _ => {
                if let Some(c) = check_condition(e) {
                    self.condition(c);
                }
            }
        }
    }

    fn condition(&mut self, c: &'a Expr) {
        for cmp in comparisons(c) {
            if let ExprKind::Binary(_, l, r) = &cmp.kind {
                for (side, other) in [(l, r), (r, l)] {
                    match &side.kind {
                        ExprKind::Binary("-", a, b) => self.operation("-", a, b, side.span, None),
                        // `x * y == v` overflows silently; `a * b / a == b` style checks divide.
                        ExprKind::Binary("*", a, b) => {
                            let (ka, kb) = (key(self.src, a), key(self.src, b));
                            let idiom =
                                has_key(self.src, other, &ka) || has_key(self.src, other, &kb);
                            if !idiom {
                                self.operation("*", a, b, side.span, None);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    fn block(&mut self, b: &'a Block, unchecked: bool) {
        for s in &b.stmts {
            self.stmt(s, unchecked);
        }
    }

    fn stmt(&mut self, s: &'a Stmt, unchecked: bool) {
        let active = unchecked || !self.checked_default;
        match &s.kind {
            StmtKind::Block(b) => self.block(b, unchecked),
            StmtKind::Unchecked(b) => self.block(b, true),
            StmtKind::Expr(e) => {
                if active {
                    self.expr_stmt(e);
                }
                if let Some(c) = check_condition(e) {
                    self.seen.push(c);
                }
            }
            StmtKind::VarDecl(vars, Some(init)) => {
                if active && let ExprKind::Binary(op, a, b) = &init.kind {
                    let local = vars
                        .first()
                        .and_then(|v| v.as_ref())
                        .map(|v| v.name.name.as_str());
                    self.operation(op, a, b, init.span, local);
                }
            }
            StmtKind::If(c, a, b) => {
                if active {
                    self.condition(c);
                }
                self.seen.push(c);
                self.stmt(a, unchecked);
                if let Some(b) = b {
                    self.stmt(b, unchecked);
                }
            }
            StmtKind::While(c, body) | StmtKind::DoWhile(body, c) => {
                self.seen.push(c);
                self.stmt(body, unchecked);
            }
            StmtKind::For(init, c, post, body) => {
                if let Some(i) = init {
                    self.stmt(i, unchecked);
                }
                if let Some(c) = c {
                    self.seen.push(c);
                }
                self.stmt(body, unchecked);
                if let (Some(p), true) = (post, active) {
                    self.expr_stmt(p);
                }
            }
            StmtKind::Try(_, blocks) => {
                for b in blocks {
                    self.block(b, unchecked);
                }
            }
            _ => {}
        }
    }
}

/// Reports unchecked arithmetic and precision loss.
pub(super) fn detect(ctx: &mut Ctx<'_>) {
    let model = ctx.model;
    if model.def.kind == ContractKind::Library {
        return;
    }
    let mut hits = Vec::new();
    let mut precision = Vec::new();
    for f in ctx.own_functions() {
        let Some(body) = &f.body else { continue };
        for e in all_exprs(body) {
            if let ExprKind::Binary("*", l, r) = &e.kind
                && (matches!(l.kind, ExprKind::Binary("/", _, _))
                    || matches!(r.kind, ExprKind::Binary("/", _, _)))
            {
                precision.push((e.span, f));
            }
        }
        // Constructors run once, with arguments the deployer chose.
        if matches!(f.mutability, Mutability::View | Mutability::Pure)
            || f.kind == FunctionKind::Constructor
            || is_protected(model, f)
        {
            continue;
        }
        let scope = Scope::new(model, f);
        let tainted = tainted_names(
            &scope,
            body,
            &|x| matches!(&x.kind, ExprKind::Ident(n) if scope.params.contains(n)),
        );
        let mut w = Walk {
            src: ctx.src,
            scope: &scope,
            tainted: &tainted,
            checked_default: model.checked_arithmetic(),
            seen: Vec::new(),
            all_conditions: conditions(body),
            hits: Vec::new(),
        };
        // Conditions in modifiers run first.
        for m in super::resolved_modifiers(model, f) {
            if let Some(b) = &m.body {
                w.seen.extend(conditions(b));
            }
        }
        w.block(body, false);
        hits.extend(w.hits.into_iter().map(|(s, m)| (s, m, f)));
    }
    for (span, msg, f) in hits {
        ctx.report(&INTEGER_OVERFLOW, span, Some(f), msg);
    }
    for (span, f) in precision {
        ctx.report(
            &DIVIDE_BEFORE_MULTIPLY,
            span,
            Some(f),
            "the division truncates before the multiplication".into(),
        );
    }
}
