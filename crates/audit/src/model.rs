//! Semantic model over the syntax tree: linearised inheritance, visible state variables,
//! functions and modifiers, and per-function facts (locals, calls, writes) for the detectors.

use std::collections::{BTreeMap, BTreeSet};

use crate::{ast::*, span::Span};

/// Compiler version as (major, minor, patch).
pub(crate) type Version = (u32, u32, u32);

/// The lowest compiler version a `pragma solidity` admits, if one is written.
pub(crate) fn min_version(pragmas: &[(String, Span)]) -> Option<Version> {
    let text = pragmas
        .iter()
        .find_map(|(p, _)| p.strip_prefix("solidity"))?;
    // Take the first version number that is not behind `<`.
    let mut rest = text;
    while let Some(pos) = rest.find(|c: char| c.is_ascii_digit()) {
        let before = rest[..pos].trim_end();
        let tail = &rest[pos..];
        let len = tail
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(tail.len());
        let number = &tail[..len];
        rest = &tail[len..];
        if before.ends_with('<') {
            continue;
        }
        let mut parts = number.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        return Some((
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        ));
    }
    None
}

/// C3 linearisations of every contract of one file, most derived first.
/// Unknown bases are skipped; an inconsistent hierarchy falls back to a best-effort order.
pub(crate) fn linearise_all(unit: &SourceUnit) -> BTreeMap<String, Vec<&ContractDef>> {
    let by_name: BTreeMap<&str, &ContractDef> = unit
        .contracts
        .iter()
        .map(|c| (c.name.name.as_str(), c))
        .collect();
    let mut memo: BTreeMap<String, Vec<&ContractDef>> = BTreeMap::new();
    for c in &unit.contracts {
        linearise_one(c, &by_name, &mut memo, 0);
    }
    memo
}

/// Most distinct ancestors of one contract.
const MAX_ANCESTRY: usize = 128;
/// Most entries in the base linearisations of one contract, repeats included (a contract
/// with many bases that share their ancestry repeats it once per base).
const MAX_ANCESTRY_ENTRIES: usize = 4096;

fn linearise_one<'a>(
    c: &'a ContractDef,
    by_name: &BTreeMap<&str, &'a ContractDef>,
    memo: &mut BTreeMap<String, Vec<&'a ContractDef>>,
    depth: usize,
) -> Vec<&'a ContractDef> {
    if let Some(done) = memo.get(&c.name.name) {
        return done.clone();
    }
    // Cycles and absurd depths get no bases; memoising keeps diamonds linear.
    memo.insert(c.name.name.clone(), vec![c]);
    if depth > 64 {
        return vec![c];
    }
    let bases: Vec<&'a ContractDef> = c
        .bases
        .iter()
        .rev()
        .filter_map(|b| by_name.get(b.name.as_str()).copied())
        .filter(|b| !std::ptr::eq(*b, c))
        .collect();
    // Solidity lists bases from "most base-like" to "most derived": merge in reverse.
    let mut seqs: Vec<Vec<&'a ContractDef>> = bases
        .iter()
        .map(|b| linearise_one(b, by_name, memo, depth + 1))
        .collect();
    seqs.push(bases);
    // The merge below is cubic in the number of ancestors: a hierarchy far beyond any real
    // contract's (a deep chain, or thousands of bases) is treated like a cycle (no bases)
    // rather than analysed for hours.
    let total: usize = seqs.iter().map(Vec::len).sum();
    let distinct = seqs
        .iter()
        .flatten()
        .map(|b| std::ptr::from_ref::<ContractDef>(*b))
        .collect::<std::collections::HashSet<_>>()
        .len();
    if distinct > MAX_ANCESTRY || total > MAX_ANCESTRY_ENTRIES {
        return vec![c];
    }
    let mut out = vec![c];
    loop {
        seqs.retain(|s| !s.is_empty());
        let Some(first) = seqs.first() else { break };
        let fallback = first[0];
        let head = seqs
            .iter()
            .map(|s| s[0])
            .find(|head| {
                !seqs
                    .iter()
                    .any(|s| s[1..].iter().any(|x| std::ptr::eq(*x, *head)))
            })
            .unwrap_or(fallback);
        if !out.iter().any(|x| std::ptr::eq(*x, head)) {
            out.push(head);
        }
        for s in &mut seqs {
            s.retain(|x| !std::ptr::eq(*x, head));
        }
    }
    memo.insert(c.name.name.clone(), out.clone());
    out
}

/// Type names declared anywhere in one file.
pub(crate) struct FileTypes<'a> {
    structs: BTreeSet<String>,
    libraries: BTreeSet<String>,
    linear: BTreeMap<String, Vec<&'a ContractDef>>,
}

impl<'a> FileTypes<'a> {
    /// Collects the struct and library names and the linearisations of `unit`.
    pub(crate) fn new(unit: &'a SourceUnit) -> Self {
        let structs = unit
            .contracts
            .iter()
            .flat_map(|c| c.structs.iter().map(|s| s.name.clone()))
            .collect();
        let libraries = unit
            .contracts
            .iter()
            .filter(|c| c.kind == ContractKind::Library)
            .map(|c| c.name.name.clone())
            .collect();
        Self {
            structs,
            libraries,
            linear: linearise_all(unit),
        }
    }
}

/// One contract with everything it inherits.
pub(crate) struct ContractModel<'a> {
    /// The contract itself.
    pub(crate) def: &'a ContractDef,
    /// C3 linearisation, the contract first.
    pub(crate) linear: Vec<&'a ContractDef>,
    /// State variables visible in the contract by name (most derived wins).
    pub(crate) state_vars: BTreeMap<String, &'a VarDecl>,
    /// Functions callable on the contract (overridden ones removed).
    pub(crate) functions: Vec<&'a FunctionDef>,
    /// Modifiers by name (most derived wins).
    pub(crate) modifiers: BTreeMap<String, &'a FunctionDef>,
    /// Struct names declared anywhere in the file.
    pub(crate) structs: &'a BTreeSet<String>,
    /// Library names declared in the file.
    pub(crate) libraries: &'a BTreeSet<String>,
    /// Lowest compiler version of the file.
    pub(crate) version: Option<Version>,
    /// Functions and modifiers that check the caller (filled in by the detectors).
    pub(crate) sender_checkers: BTreeSet<*const FunctionDef>,
}

impl<'a> ContractModel<'a> {
    /// Builds the model of `def` within `unit`.
    pub(crate) fn new(
        def: &'a ContractDef,
        version: Option<Version>,
        types: &'a FileTypes<'a>,
    ) -> Self {
        let linear = types
            .linear
            .get(&def.name.name)
            .cloned()
            .unwrap_or_else(|| vec![def]);
        let mut state_vars = BTreeMap::new();
        let mut modifiers = BTreeMap::new();
        let mut functions: Vec<&'a FunctionDef> = Vec::new();
        let mut seen = BTreeSet::new();
        for c in &linear {
            for v in &c.state_vars {
                state_vars.entry(v.name.name.clone()).or_insert(v);
            }
            for m in &c.modifiers {
                if let Some(n) = &m.name {
                    modifiers.entry(n.name.clone()).or_insert(m);
                }
            }
            for f in &c.functions {
                let is_own = std::ptr::eq(*c, def);
                if f.kind == FunctionKind::Constructor && !is_own {
                    continue;
                }
                let key = (
                    f.kind as u8,
                    f.name.as_ref().map(|n| n.name.clone()),
                    f.params.len(),
                );
                if seen.insert(key) {
                    functions.push(f);
                }
            }
        }
        Self {
            def,
            linear,
            state_vars,
            functions,
            modifiers,
            structs: &types.structs,
            libraries: &types.libraries,
            version,
            sender_checkers: BTreeSet::new(),
        }
    }

    /// Whether the file compiles with checked arithmetic by default (0.8+).
    pub(crate) fn checked_arithmetic(&self) -> bool {
        self.version.is_none_or(|v| v >= (0, 8, 0))
    }

    /// Functions (own and inherited) with the given name.
    pub(crate) fn function_named(&self, name: &str) -> Option<&'a FunctionDef> {
        self.functions.iter().copied().find(|f| {
            f.name.as_ref().is_some_and(|n| n.name == name) && f.kind != FunctionKind::Constructor
        })
    }

    /// Whether a state variable has a contract-like (callable) type.
    pub(crate) fn is_contract_type(&self, ty: &TypeName) -> bool {
        match ty {
            TypeName::User(n) => {
                !self.structs.contains(n) && !self.libraries.contains(n) && !n.contains('.')
            }
            _ => false,
        }
    }
}

/// Whether a function can be called from outside the contract.
pub(crate) fn is_entry_point(f: &FunctionDef) -> bool {
    !matches!(
        f.visibility,
        Some(Visibility::Internal | Visibility::Private)
    ) && matches!(
        f.kind,
        FunctionKind::Function | FunctionKind::Fallback | FunctionKind::Receive
    )
}

/// Calls `visit` on every statement of `block`, depth first, in source order.
pub(crate) fn walk_stmts<'a>(block: &'a Block, visit: &mut dyn FnMut(&'a Stmt)) {
    for s in &block.stmts {
        walk_stmt(s, visit);
    }
}

fn walk_stmt<'a>(s: &'a Stmt, visit: &mut dyn FnMut(&'a Stmt)) {
    visit(s);
    match &s.kind {
        StmtKind::Block(b) | StmtKind::Unchecked(b) => walk_stmts(b, visit),
        StmtKind::If(_, a, b) => {
            walk_stmt(a, visit);
            if let Some(b) = b {
                walk_stmt(b, visit);
            }
        }
        StmtKind::While(_, b) | StmtKind::DoWhile(b, _) => walk_stmt(b, visit),
        StmtKind::For(init, _, _, body) => {
            if let Some(i) = init {
                walk_stmt(i, visit);
            }
            walk_stmt(body, visit);
        }
        StmtKind::Try(_, blocks) => {
            for b in blocks {
                walk_stmts(b, visit);
            }
        }
        _ => {}
    }
}

/// The expressions directly held by a statement (not those of nested statements).
pub(crate) fn stmt_exprs(s: &Stmt) -> Vec<&Expr> {
    match &s.kind {
        StmtKind::VarDecl(_, Some(e))
        | StmtKind::Expr(e)
        | StmtKind::If(e, _, _)
        | StmtKind::While(e, _)
        | StmtKind::DoWhile(_, e)
        | StmtKind::Return(Some(e))
        | StmtKind::Emit(e)
        | StmtKind::Revert(e)
        | StmtKind::Try(e, _) => vec![e],
        StmtKind::For(_, c, p, _) => c.iter().chain(p.iter()).collect(),
        _ => Vec::new(),
    }
}

/// Calls `visit` on `e` and every sub-expression, parents first.
pub(crate) fn walk_expr<'a>(e: &'a Expr, visit: &mut dyn FnMut(&'a Expr)) {
    visit(e);
    match &e.kind {
        ExprKind::Member(a, _) | ExprKind::Unary(_, a) => walk_expr(a, visit),
        ExprKind::Index(a, i) => {
            walk_expr(a, visit);
            if let Some(i) = i {
                walk_expr(i, visit);
            }
        }
        ExprKind::Call(f, args) => {
            walk_expr(f, visit);
            for a in args {
                walk_expr(a, visit);
            }
        }
        ExprKind::CallOptions(f, opts) => {
            walk_expr(f, visit);
            for (_, a) in opts {
                walk_expr(a, visit);
            }
        }
        ExprKind::Binary(_, a, b) | ExprKind::Assign(_, a, b) => {
            walk_expr(a, visit);
            walk_expr(b, visit);
        }
        ExprKind::Ternary(a, b, c) => {
            walk_expr(a, visit);
            walk_expr(b, visit);
            walk_expr(c, visit);
        }
        ExprKind::Tuple(items) => {
            for i in items.iter().flatten() {
                walk_expr(i, visit);
            }
        }
        ExprKind::Array(items) => {
            for i in items {
                walk_expr(i, visit);
            }
        }
        _ => {}
    }
}

/// Every expression in a block, including nested statements.
pub(crate) fn all_exprs(block: &Block) -> Vec<&Expr> {
    let mut out = Vec::new();
    walk_stmts(block, &mut |s| {
        for e in stmt_exprs(s) {
            walk_expr(e, &mut |x| out.push(x));
        }
    });
    out
}

/// Whether `e` mentions the name `name` anywhere.
pub(crate) fn mentions(e: &Expr, pred: &dyn Fn(&Expr) -> bool) -> bool {
    let mut found = false;
    walk_expr(e, &mut |x| found |= pred(x));
    found
}

/// `a.b` with `a` a plain name: returns (a, b).
pub(crate) fn member_of_ident(e: &Expr) -> Option<(&str, &str)> {
    match &e.kind {
        ExprKind::Member(a, m) => match &a.kind {
            ExprKind::Ident(n) => Some((n.as_str(), m.name.as_str())),
            _ => None,
        },
        _ => None,
    }
}

/// Whether `e` is `msg.sender`.
pub(crate) fn is_msg_sender(e: &Expr) -> bool {
    member_of_ident(e) == Some(("msg", "sender"))
}

/// Whether `e` is `tx.origin`.
pub(crate) fn is_tx_origin(e: &Expr) -> bool {
    member_of_ident(e) == Some(("tx", "origin"))
}

/// Whether `e` reads the block timestamp (`now` or `block.timestamp`).
pub(crate) fn is_timestamp(e: &Expr) -> bool {
    matches!(&e.kind, ExprKind::Ident(n) if n == "now")
        || member_of_ident(e) == Some(("block", "timestamp"))
}

/// The name at the root of an lvalue (`a` in `a[i].b`).
pub(crate) fn root_name(e: &Expr) -> Option<&str> {
    match &e.kind {
        ExprKind::Ident(n) => Some(n),
        ExprKind::Member(a, _) | ExprKind::Index(a, _) => root_name(a),
        _ => None,
    }
}

/// A normalised text key of an expression for structural comparison.
pub(crate) fn key(src: &str, e: &Expr) -> String {
    src.get(e.span.start..e.span.end)
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// What a call expression does, as far as the detectors care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallKind {
    /// `call`, `delegatecall`, `callcode`, `staticcall` on an address.
    LowLevel(&'static str),
    /// `addr.transfer(v)` or `addr.send(v)`: ether with a 2300 gas stipend.
    Stipend(&'static str),
    /// A call of a function on another contract.
    External,
    /// A call of a function of this contract (or a library/builtin).
    Internal,
}

/// A classified call: its kind, target expression and whether it carries ether.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallSite<'a> {
    pub(crate) kind: CallKind,
    pub(crate) target: Option<&'a Expr>,
    pub(crate) sends_value: bool,
    pub(crate) value: Option<&'a Expr>,
}

/// Per-function typing context: which names are locals, parameters or state.
pub(crate) struct Scope<'a> {
    pub(crate) locals: BTreeMap<String, (TypeName, Option<Location>)>,
    pub(crate) params: BTreeSet<String>,
    pub(crate) model: &'a ContractModel<'a>,
}

impl<'a> Scope<'a> {
    /// Collects the parameters and locals of `f`.
    pub(crate) fn new(model: &'a ContractModel<'a>, f: &FunctionDef) -> Self {
        let mut locals = BTreeMap::new();
        let mut params = BTreeSet::new();
        for p in f.params.iter().chain(&f.returns) {
            if let Some(n) = &p.name {
                locals.insert(n.name.clone(), (p.ty.clone(), None));
            }
        }
        for p in &f.params {
            if let Some(n) = &p.name {
                params.insert(n.name.clone());
            }
        }
        if let Some(body) = &f.body {
            walk_stmts(body, &mut |s| {
                if let StmtKind::VarDecl(vars, _) = &s.kind {
                    for v in vars.iter().flatten() {
                        locals.insert(v.name.name.clone(), (v.ty.clone(), v.location));
                    }
                }
            });
        }
        Self {
            locals,
            params,
            model,
        }
    }

    /// Whether `name` refers to a state variable here.
    pub(crate) fn is_state(&self, name: &str) -> bool {
        match self.locals.get(name) {
            // Storage pointers alias state.
            Some((_, Some(Location::Storage))) => true,
            Some(_) => false,
            None => self.model.state_vars.contains_key(name),
        }
    }

    /// The declared type of a name.
    pub(crate) fn type_of(&self, name: &str) -> Option<&TypeName> {
        match self.locals.get(name) {
            Some((t, _)) => Some(t),
            None => self.model.state_vars.get(name).map(|v| &v.ty),
        }
    }

    /// Whether the lvalue `e` designates contract storage.
    pub(crate) fn writes_state(&self, e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Tuple(items) => items.iter().flatten().any(|i| self.writes_state(i)),
            _ => root_name(e).is_some_and(|n| self.is_state(n)),
        }
    }

    /// The state variable written by `e`, if any.
    pub(crate) fn written_state<'e>(&self, e: &'e Expr) -> Option<&'e str> {
        root_name(e).filter(|n| self.is_state(n))
    }

    /// Whether `e` evaluates to something with code we do not control (a contract instance).
    fn is_foreign(&self, e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Ident(n) => {
                if n == "this" || n == "super" || self.model.libraries.contains(n) {
                    return false;
                }
                match self.type_of(n) {
                    Some(t) => self.model.is_contract_type(t),
                    None => false,
                }
            }
            ExprKind::Call(f, args) if args.len() == 1 => match &f.kind {
                ExprKind::Ident(n) => {
                    n.chars().next().is_some_and(char::is_uppercase)
                        && !self.model.structs.contains(n)
                        && !self.model.libraries.contains(n)
                }
                _ => false,
            },
            ExprKind::Index(a, _) => match root_name(a).and_then(|n| self.type_of(n)) {
                Some(TypeName::Array(t, _)) | Some(TypeName::Mapping(_, t)) => {
                    self.model.is_contract_type(t)
                }
                _ => false,
            },
            ExprKind::Member(_, _) => false,
            _ => false,
        }
    }

    /// Classifies the call expression `e` (`ExprKind::Call`).
    pub(crate) fn classify<'e>(&self, e: &'e Expr) -> Option<CallSite<'e>> {
        let ExprKind::Call(callee, args) = &e.kind else {
            return None;
        };
        let mut callee: &'e Expr = callee;
        let mut value = None;
        loop {
            match &callee.kind {
                ExprKind::CallOptions(inner, opts) => {
                    value = value.or(opts.iter().find(|(n, _)| n.name == "value").map(|(_, v)| v));
                    callee = inner;
                }
                ExprKind::Call(inner, inner_args) => match &inner.kind {
                    ExprKind::Member(base, m) if m.name == "value" || m.name == "gas" => {
                        if m.name == "value" {
                            value = value.or(inner_args.first());
                        }
                        callee = base;
                    }
                    _ => break,
                },
                _ => break,
            }
        }
        let site = |kind, target| CallSite {
            kind,
            target,
            sends_value: value.is_some(),
            value,
        };
        match &callee.kind {
            ExprKind::Member(target, m) => {
                let t: &'e Expr = target;
                match m.name.as_str() {
                    "call" | "delegatecall" | "callcode" | "staticcall" => {
                        let kind = match m.name.as_str() {
                            "call" => "call",
                            "delegatecall" => "delegatecall",
                            "callcode" => "callcode",
                            _ => "staticcall",
                        };
                        Some(site(CallKind::LowLevel(kind), Some(t)))
                    }
                    "transfer" | "send" if args.len() == 1 && !self.is_foreign(t) => {
                        let kind = if m.name == "send" { "send" } else { "transfer" };
                        Some(CallSite {
                            kind: CallKind::Stipend(kind),
                            target: Some(t),
                            sends_value: true,
                            value: args.first(),
                        })
                    }
                    _ if self.is_foreign(t) => Some(site(CallKind::External, Some(t))),
                    _ => Some(site(CallKind::Internal, Some(t))),
                }
            }
            _ => Some(site(CallKind::Internal, None)),
        }
    }
}

/// Whether `e` is a condition check call (`require`/`assert`) and its condition.
pub(crate) fn check_condition(e: &Expr) -> Option<&Expr> {
    if let ExprKind::Call(f, args) = &e.kind
        && let ExprKind::Ident(n) = &f.kind
        && (n == "require" || n == "assert")
    {
        return args.first();
    }
    None
}

/// Every condition in a block: `if`/`while`/`for` conditions and `require`/`assert` arguments.
pub(crate) fn conditions(block: &Block) -> Vec<&Expr> {
    let mut out = Vec::new();
    walk_stmts(block, &mut |s| match &s.kind {
        StmtKind::If(c, _, _) | StmtKind::While(c, _) | StmtKind::DoWhile(_, c) => out.push(c),
        StmtKind::For(_, Some(c), _, _) => out.push(c),
        _ => {
            for e in stmt_exprs(s) {
                walk_expr(e, &mut |x| {
                    if let Some(c) = check_condition(x) {
                        out.push(c);
                    }
                    if let ExprKind::Ternary(c, _, _) = &x.kind {
                        out.push(c);
                    }
                });
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn names(unit: &SourceUnit, name: &str) -> Vec<String> {
        linearise_all(unit)
            .get(name)
            .map(|l| l.iter().map(|c| c.name.name.clone()).collect())
            .unwrap_or_default()
    }

    /// A chain of 3,000 contracts, each inheriting the one before: the first ones are
    /// linearised in full, one past the cap gets no bases (the merge is cubic otherwise).
    #[test]
    fn an_absurdly_deep_hierarchy_is_cut_at_the_cap() {
        let mut src = String::from("contract C0 {}\n");
        for i in 1..3000 {
            src.push_str(&format!("contract C{i} is C{} {{}}\n", i - 1));
        }
        let (unit, errors) = parse(&src);
        assert!(errors.is_empty(), "{errors:?}");
        let all = linearise_all(&unit);
        assert_eq!(all["C50"].len(), 51);
        assert_eq!(all["C50"].last().unwrap().name.name, "C0");
        assert!(all.values().all(|l| l.len() <= MAX_ANCESTRY + 1));
        // Past the cap a contract starts a new, bounded chain.
        let cut = all
            .iter()
            .filter(|(name, l)| l.len() == 1 && name.as_str() != "C0")
            .count();
        assert!(cut > 10, "{cut} contracts cut");
    }

    /// Many bases that share one long ancestry (a governor with its extensions) repeat it in
    /// every base's linearisation; that is not a reason to cut the contract.
    #[test]
    fn shared_ancestry_is_counted_once() {
        let mut src = String::from("contract B0 {}\n");
        for i in 1..12 {
            src.push_str(&format!("contract B{i} is B{} {{}}\n", i - 1));
        }
        let extensions: Vec<String> = (0..12).map(|i| format!("E{i}")).collect();
        for e in &extensions {
            src.push_str(&format!("contract {e} is B11 {{}}\n"));
        }
        src.push_str(&format!("contract G is {} {{}}\n", extensions.join(", ")));
        let (unit, errors) = parse(&src);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(linearise_all(&unit)["G"].len(), 1 + 12 + 12);
    }

    #[test]
    fn c3_linearisation_follows_solidity_order() {
        let (unit, errors) = parse(
            "contract A {} contract B is A {} contract C is A {} contract D is B, C {}
             contract X {} contract Y {} contract Z is X, Y {} contract W is Y, Z {}",
        );
        assert!(errors.is_empty());
        assert_eq!(names(&unit, "D"), ["D", "C", "B", "A"]);
        assert_eq!(names(&unit, "Z"), ["Z", "Y", "X"]);
        assert_eq!(names(&unit, "W"), ["W", "Z", "Y", "X"]);
    }

    #[test]
    fn inheritance_cycles_and_unknown_bases_do_not_loop() {
        let (unit, _) = parse("contract A is B {} contract B is A {} contract C is Missing, A {}");
        assert_eq!(names(&unit, "C"), ["C", "A", "B"]);
    }

    #[test]
    fn pragma_versions_give_the_lowest_admitted_compiler() {
        let v = |p: &str| min_version(&[(p.to_string(), Span::default())]);
        assert_eq!(v("solidity ^0.4.24"), Some((0, 4, 24)));
        assert_eq!(v("solidity >=0.4.22 <0.6.0"), Some((0, 4, 22)));
        assert_eq!(v("solidity <0.9.0 >=0.7.0"), Some((0, 7, 0)));
        assert_eq!(v("solidity 0.8.24"), Some((0, 8, 24)));
        assert_eq!(v("solidity ~0.5"), Some((0, 5, 0)));
        assert_eq!(v("experimental ABIEncoderV2"), None);
    }

    #[test]
    fn state_variables_and_overrides_come_from_the_most_derived_contract() {
        let (unit, _) = parse(
            "contract A { uint x; function f() public {} modifier m() { _; } }
             contract B is A { address x; function f() public {} }",
        );
        let types = FileTypes::new(&unit);
        let b = &unit.contracts[1];
        let model = ContractModel::new(b, Some((0, 5, 0)), &types);
        assert_eq!(
            model.state_vars.get("x").map(|v| v.ty.clone()),
            Some(TypeName::Elementary("address".into()))
        );
        assert_eq!(model.functions.len(), 1);
        assert!(std::ptr::eq(model.functions[0], &b.functions[0]));
        assert!(model.modifiers.contains_key("m"));
        assert!(!model.checked_arithmetic());
    }
}
