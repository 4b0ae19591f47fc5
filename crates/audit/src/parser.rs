//! Hand-written recursive-descent parser (Pratt for expressions) for Solidity 0.4–0.8.
//!
//! Errors are recovered at contract-member level: a function that does not parse is skipped
//! as a balanced block and the rest of the contract is still analysed.

use crate::{
    ast::*,
    lexer::{LexError, Token, TokenKind, tokenize},
    span::Span,
};

/// Deepest nesting of statements and expressions the parser accepts.
pub(crate) const MAX_DEPTH: usize = 200;
/// Deepest expression tree parsed: nesting plus the links of chains such as `a.b.c`,
/// `a + b + c` or `T[][]`, which the parser builds in a loop but which make a tree as deep as
/// they are long (and every later walk over it recursive). The links of one whole expression
/// count together, so at most this many make one expression.
pub(crate) const MAX_TREE_DEPTH: usize = 1000;

/// A syntax problem with its position.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    /// What is wrong.
    pub message: String,
    /// Where.
    pub span: Span,
}

/// Marker that an error was recorded and parsing of the current item should stop.
#[derive(Debug)]
struct Fail;

type PResult<T> = Result<T, Fail>;

/// Operator spellings as `'static` strings for the tree.
const OPS: &[&str] = &[
    ">>>=", "<<=", ">>=", ">>>", "**", "==", "!=", "<=", ">=", "&&", "||", "++", "--", "+=", "-=",
    "*=", "/=", "%=", "|=", "&=", "^=", "<<", ">>", "=", "+", "-", "*", "/", "%", "!", "~", "&",
    "|", "^", "<", ">", "delete",
];

const ELEMENTARY: &[&str] = &[
    "address", "bool", "string", "var", "byte", "bytes", "fixed", "ufixed",
];
const UNITS: &[&str] = &[
    "wei", "gwei", "szabo", "finney", "ether", "seconds", "minutes", "hours", "days", "weeks",
    "years",
];
const STATEMENT_WORDS: &[&str] = &[
    "return",
    "if",
    "while",
    "for",
    "do",
    "emit",
    "throw",
    "break",
    "continue",
    "delete",
    "new",
    "true",
    "false",
    "assembly",
    "unchecked",
    "try",
    "revert",
];

fn static_op(text: &str) -> &'static str {
    OPS.iter().find(|o| **o == text).copied().unwrap_or("?")
}

fn is_elementary(word: &str) -> bool {
    ELEMENTARY.contains(&word)
        || ["uint", "int", "bytes", "fixed", "ufixed"].iter().any(|p| {
            word.strip_prefix(p).is_some_and(|rest| {
                !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit() || b == b'x')
            })
        })
}

/// Stack given to parsing and analysis threads: nesting up to [`MAX_DEPTH`] needs more than the
/// 2 MiB of a default thread in unoptimised builds. Untouched stack pages cost nothing.
pub(crate) const ANALYSIS_STACK_BYTES: usize = 256 * 1024 * 1024;

/// Runs `work` on a thread with a stack large enough for [`MAX_DEPTH`] nesting.
pub(crate) fn with_deep_stack<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    let work = std::sync::Mutex::new(Some(work));
    let take = || work.lock().ok().and_then(|mut w| w.take());
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .stack_size(ANALYSIS_STACK_BYTES)
            .spawn_scoped(scope, || take().map(|w| w()));
        match spawned {
            Ok(handle) => match handle.join() {
                Ok(Some(out)) => out,
                Ok(None) => std::panic::resume_unwind(Box::new("analysis work was taken twice")),
                Err(payload) => std::panic::resume_unwind(payload),
            },
            // No thread could be made: run here, with the caller's stack.
            Err(_) => match take() {
                Some(w) => w(),
                None => std::panic::resume_unwind(Box::new("analysis work was taken twice")),
            },
        }
    })
}

/// Parses `src`; always returns a (possibly partial) tree and the syntax errors met.
pub fn parse(src: &str) -> (SourceUnit, Vec<SyntaxError>) {
    with_deep_stack(|| parse_here(src))
}

/// [`parse`] on the current thread's stack.
pub(crate) fn parse_here(src: &str) -> (SourceUnit, Vec<SyntaxError>) {
    let (toks, lex_error) = tokenize(src);
    let mut parser = Parser::new(src, toks);
    let unit = parser.source_unit();
    let mut errors = parser.errors;
    if let Some(LexError { message, span }) = lex_error {
        errors.push(SyntaxError { message, span });
    }
    (unit, errors)
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    /// For each `{`/`(`/`[` token, the index of its closing token (or the end).
    closing: Vec<usize>,
    pos: usize,
    depth: usize,
    /// Chain links since the outermost chain began (see [`MAX_TREE_DEPTH`]).
    links: usize,
    /// Chains open: links count from 0 again when the outermost one begins.
    chains: usize,
    errors: Vec<SyntaxError>,
    contract_name: String,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, toks: Vec<Token>) -> Self {
        let mut closing = vec![0; toks.len()];
        let mut stack: Vec<(usize, &str)> = Vec::new();
        let last = toks.len().saturating_sub(1);
        for (i, t) in toks.iter().enumerate() {
            if t.kind != TokenKind::Punct {
                continue;
            }
            let text = &src[t.span.start..t.span.end];
            match text {
                "{" | "(" | "[" => stack.push((i, text)),
                "}" | ")" | "]" => {
                    let open = match text {
                        "}" => "{",
                        ")" => "(",
                        _ => "[",
                    };
                    // Unwind unbalanced openers of another kind: they close at the end.
                    while let Some((j, o)) = stack.pop() {
                        if o == open {
                            closing[j] = i;
                            break;
                        }
                        closing[j] = last;
                    }
                }
                _ => {}
            }
        }
        for (j, _) in stack {
            closing[j] = last;
        }
        Self {
            src,
            toks,
            closing,
            pos: 0,
            depth: 0,
            links: 0,
            chains: 0,
            errors: Vec::new(),
            contract_name: String::new(),
        }
    }

    // ---- token helpers -------------------------------------------------------------------

    fn tok(&self, ahead: usize) -> Token {
        let i = (self.pos + ahead).min(self.toks.len() - 1);
        self.toks[i]
    }

    fn text_at(&self, ahead: usize) -> &'a str {
        let t = self.tok(ahead);
        &self.src[t.span.start..t.span.end]
    }

    fn text(&self) -> &'a str {
        self.text_at(0)
    }

    fn span(&self) -> Span {
        self.tok(0).span
    }

    fn prev_end(&self) -> usize {
        if self.pos == 0 {
            0
        } else {
            self.toks[(self.pos - 1).min(self.toks.len() - 1)].span.end
        }
    }

    fn at_eof(&self) -> bool {
        self.tok(0).kind == TokenKind::Eof
    }

    fn is(&self, text: &str) -> bool {
        let t = self.tok(0);
        t.kind != TokenKind::Eof && t.kind != TokenKind::Str && self.text() == text
    }

    fn is_at(&self, ahead: usize, text: &str) -> bool {
        let t = self.tok(ahead);
        t.kind != TokenKind::Eof && t.kind != TokenKind::Str && self.text_at(ahead) == text
    }

    fn bump(&mut self) {
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
    }

    fn eat(&mut self, text: &str) -> bool {
        if self.is(text) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn error<T>(&mut self, message: impl Into<String>) -> PResult<T> {
        let found = if self.at_eof() {
            "end of file".to_string()
        } else {
            format!("`{}`", self.text())
        };
        self.errors.push(SyntaxError {
            message: format!("{}, found {found}", message.into()),
            span: self.span(),
        });
        Err(Fail)
    }

    fn expect(&mut self, text: &str) -> PResult<()> {
        if self.eat(text) {
            Ok(())
        } else {
            self.error(format!("expected `{text}`"))
        }
    }

    fn ident(&mut self) -> PResult<Ident> {
        let t = self.tok(0);
        if t.kind == TokenKind::Ident {
            self.bump();
            Ok(Ident {
                name: self.src[t.span.start..t.span.end].to_string(),
                span: t.span,
            })
        } else {
            self.error("expected a name")
        }
    }

    /// Runs a loop that wraps its result in one more node per turn (`a.b.c`, `a + b + c`,
    /// `T[][]`). Every link made while the outermost chain is open counts, whichever sub-tree it
    /// is in: no path through the tree can then be longer than the links plus the nesting.
    fn chain<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        if self.chains == 0 {
            self.links = 0;
        }
        self.chains += 1;
        let r = f(self);
        self.chains -= 1;
        if self.chains == 0 {
            self.links = 0;
        }
        r
    }

    /// One more link of a chain, refused when the tree would get deeper than
    /// [`MAX_TREE_DEPTH`].
    fn link(&mut self) -> PResult<()> {
        self.links += 1;
        self.within_tree_depth()
    }

    /// Refuses to go on once nesting and chain links reach [`MAX_TREE_DEPTH`].
    fn within_tree_depth(&mut self) -> PResult<()> {
        if self.depth + self.links >= MAX_TREE_DEPTH {
            return self.error(format!(
                "an expression deeper than {MAX_TREE_DEPTH} levels is not supported"
            ));
        }
        Ok(())
    }

    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        self.within_tree_depth()?;
        if self.depth >= MAX_DEPTH {
            return self.error(format!(
                "nesting deeper than {MAX_DEPTH} levels is not supported"
            ));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// Jumps past the group opened at the current token.
    fn skip_group(&mut self) {
        let close = self.closing[self.pos.min(self.closing.len() - 1)];
        self.pos = close.max(self.pos);
        self.bump();
    }

    /// Skips one item: up to a `;` or a balanced `{…}`, stopping before an unmatched `}`.
    fn skip_item(&mut self) {
        let start = self.pos;
        while !self.at_eof() {
            match self.text() {
                ";" if self.tok(0).kind == TokenKind::Punct => {
                    self.bump();
                    return;
                }
                "{" if self.tok(0).kind == TokenKind::Punct => {
                    self.skip_group();
                    return;
                }
                "(" | "[" if self.tok(0).kind == TokenKind::Punct => self.skip_group(),
                "}" if self.tok(0).kind == TokenKind::Punct => {
                    if self.pos == start {
                        self.bump();
                    }
                    return;
                }
                _ => self.bump(),
            }
        }
    }

    // ---- top level -----------------------------------------------------------------------

    fn source_unit(&mut self) -> SourceUnit {
        let mut unit = SourceUnit::default();
        while !self.at_eof() {
            let start = self.pos;
            let ok = match self.text() {
                "pragma" => {
                    self.bump();
                    let t = self.tok(0);
                    if t.kind == TokenKind::PragmaBody {
                        unit.pragmas.push((
                            self.src[t.span.start..t.span.end].trim().to_string(),
                            t.span,
                        ));
                        self.bump();
                    }
                    self.expect(";")
                }
                "import" => {
                    let span = self.span();
                    while !self.at_eof() && !self.is(";") {
                        let t = self.tok(0);
                        if t.kind == TokenKind::Str {
                            let raw = &self.src[t.span.start..t.span.end];
                            unit.imports.push((
                                raw.trim_matches(|c| c == '"' || c == '\'').to_string(),
                                span,
                            ));
                        }
                        self.bump();
                    }
                    self.expect(";")
                }
                "contract" | "interface" | "library" | "abstract" => match self.contract() {
                    Ok(c) => {
                        unit.contracts.push(c);
                        Ok(())
                    }
                    Err(Fail) => Err(Fail),
                },
                "function" => match self.function() {
                    Ok(f) => {
                        unit.free_functions.push(f);
                        Ok(())
                    }
                    Err(Fail) => Err(Fail),
                },
                "struct" | "enum" | "error" | "event" | "type" | "using" => {
                    self.skip_item();
                    Ok(())
                }
                ";" => {
                    self.bump();
                    Ok(())
                }
                _ if self.tok(0).kind == TokenKind::Ident => {
                    // File-level constants (0.7.4+).
                    self.skip_item();
                    Ok(())
                }
                _ => {
                    self.error("expected `contract`, `interface`, `library`, `pragma` or `import`")
                }
            };
            if ok.is_err() {
                self.pos = start;
                self.skip_item();
                if self.pos == start {
                    self.bump();
                }
            }
        }
        unit
    }

    fn contract(&mut self) -> PResult<ContractDef> {
        let start = self.span();
        let mut kind = match self.text() {
            "interface" => ContractKind::Interface,
            "library" => ContractKind::Library,
            _ => ContractKind::Contract,
        };
        if self.eat("abstract") {
            kind = ContractKind::Abstract;
        }
        self.bump();
        let name = self.ident()?;
        self.contract_name = name.name.clone();
        let mut bases = Vec::new();
        if self.eat("is") {
            loop {
                let mut base = self.ident()?;
                while self.eat(".") {
                    base = self.ident()?;
                }
                if self.is("(") {
                    self.skip_group();
                }
                bases.push(base);
                if !self.eat(",") {
                    break;
                }
            }
        }
        if !self.is("{") {
            return self.error("expected `{` to open the contract body");
        }
        let close = self.closing[self.pos];
        self.bump();
        let mut c = ContractDef {
            kind,
            name,
            bases,
            state_vars: Vec::new(),
            functions: Vec::new(),
            modifiers: Vec::new(),
            events: Vec::new(),
            structs: Vec::new(),
            using: Vec::new(),
            span: start,
        };
        while self.pos < close && !self.at_eof() {
            let part_start = self.pos;
            if self.contract_part(&mut c).is_err() {
                self.pos = part_start;
                self.skip_item();
                if self.pos == part_start {
                    self.bump();
                }
            }
        }
        self.pos = close;
        c.span = start.to(self.span());
        if !self.eat("}") {
            self.errors.push(SyntaxError {
                message: "contract body is not closed with `}`".into(),
                span: c.name.span,
            });
        }
        Ok(c)
    }

    fn contract_part(&mut self, c: &mut ContractDef) -> PResult<()> {
        match self.text() {
            "function" | "constructor" | "fallback" | "receive" => {
                let f = self.function()?;
                c.functions.push(f);
            }
            "modifier" => {
                let m = self.function()?;
                c.modifiers.push(m);
            }
            "event" => {
                self.bump();
                c.events.push(self.ident()?);
                self.skip_item();
            }
            "struct" => {
                self.bump();
                c.structs.push(self.ident()?);
                self.skip_item();
            }
            "using" => {
                self.bump();
                c.using.push(self.ident()?);
                self.skip_item();
            }
            "enum" | "error" | "type" => self.skip_item(),
            ";" => self.bump(),
            _ => {
                let v = self.state_var()?;
                c.state_vars.push(v);
            }
        }
        Ok(())
    }

    fn state_var(&mut self) -> PResult<VarDecl> {
        let start = self.span();
        let ty = self.type_name()?;
        let mut constant = false;
        let mut visibility = None;
        loop {
            match self.text() {
                "public" => visibility = Some(Visibility::Public),
                "private" => visibility = Some(Visibility::Private),
                "internal" => visibility = Some(Visibility::Internal),
                "constant" | "immutable" => constant = true,
                "override" => {
                    self.bump();
                    if self.is("(") {
                        self.skip_group();
                    }
                    continue;
                }
                _ => break,
            }
            self.bump();
        }
        let name = self.ident()?;
        let init = if self.eat("=") {
            Some(self.expr()?)
        } else {
            None
        };
        self.expect(";")?;
        Ok(VarDecl {
            ty,
            name,
            constant,
            visibility,
            init,
            span: start.to(Span::new(start.end, self.prev_end())),
        })
    }

    fn function(&mut self) -> PResult<FunctionDef> {
        let start = self.span();
        let keyword = self.text();
        self.bump();
        let mut kind = match keyword {
            "constructor" => FunctionKind::Constructor,
            "fallback" => FunctionKind::Fallback,
            "receive" => FunctionKind::Receive,
            "modifier" => FunctionKind::Modifier,
            _ => FunctionKind::Function,
        };
        let mut name = None;
        if self.tok(0).kind == TokenKind::Ident {
            let n = self.ident()?;
            if kind == FunctionKind::Function && n.name == self.contract_name {
                kind = FunctionKind::Constructor;
            }
            name = Some(n);
        } else if kind == FunctionKind::Function {
            kind = FunctionKind::Fallback;
        }
        let params = if self.is("(") {
            self.params()?
        } else {
            Vec::new()
        };
        let header = start.to(Span::new(start.end, self.prev_end()));
        let mut f = FunctionDef {
            kind,
            name,
            params,
            returns: Vec::new(),
            visibility: None,
            mutability: Mutability::NonPayable,
            modifiers: Vec::new(),
            body: None,
            span: start,
            header,
        };
        loop {
            match self.text() {
                "{" | ";" => break,
                "public" => f.visibility = Some(Visibility::Public),
                "external" => f.visibility = Some(Visibility::External),
                "internal" => f.visibility = Some(Visibility::Internal),
                "private" => f.visibility = Some(Visibility::Private),
                "pure" => f.mutability = Mutability::Pure,
                "view" | "constant" => f.mutability = Mutability::View,
                "payable" => f.mutability = Mutability::Payable,
                "virtual" => {}
                "returns" => {
                    self.bump();
                    f.returns = self.params()?;
                    continue;
                }
                "override" => {
                    self.bump();
                    if self.is("(") {
                        self.skip_group();
                    }
                    continue;
                }
                _ if self.tok(0).kind == TokenKind::Ident => {
                    let mut mname = self.ident()?;
                    while self.eat(".") {
                        mname = self.ident()?;
                    }
                    let args = if self.is("(") {
                        self.call_args()?
                    } else {
                        Vec::new()
                    };
                    f.modifiers.push(ModifierCall { name: mname, args });
                    continue;
                }
                _ => return self.error("expected `{`, `;` or a function attribute"),
            }
            self.bump();
        }
        if self.is("{") {
            f.body = Some(self.block()?);
        } else {
            self.expect(";")?;
        }
        f.span = start.to(Span::new(start.end, self.prev_end()));
        Ok(f)
    }

    fn params(&mut self) -> PResult<Vec<Param>> {
        self.expect("(")?;
        let mut params = Vec::new();
        while !self.is(")") {
            let ty = self.type_name()?;
            let mut name = None;
            while self.tok(0).kind == TokenKind::Ident && !self.is(",") {
                let word = self.text();
                if matches!(
                    word,
                    "memory" | "storage" | "calldata" | "indexed" | "payable"
                ) {
                    self.bump();
                    continue;
                }
                name = Some(self.ident()?);
                break;
            }
            params.push(Param { ty, name });
            if !self.eat(",") {
                break;
            }
        }
        self.expect(")")?;
        Ok(params)
    }

    fn type_name(&mut self) -> PResult<TypeName> {
        self.nested(|p| {
            let mut ty = if p.eat("mapping") {
                p.expect("(")?;
                let key = p.type_name()?;
                if p.tok(0).kind == TokenKind::Ident {
                    p.bump();
                }
                p.expect("=>")?;
                let value = p.type_name()?;
                if p.tok(0).kind == TokenKind::Ident {
                    p.bump();
                }
                p.expect(")")?;
                TypeName::Mapping(Box::new(key), Box::new(value))
            } else if p.is("function") {
                p.bump();
                if p.is("(") {
                    p.skip_group();
                }
                while matches!(
                    p.text(),
                    "internal"
                        | "external"
                        | "pure"
                        | "view"
                        | "payable"
                        | "constant"
                        | "public"
                        | "private"
                ) {
                    p.bump();
                }
                if p.eat("returns") && p.is("(") {
                    p.skip_group();
                }
                TypeName::Function
            } else {
                let first = p.ident()?;
                if is_elementary(&first.name) {
                    if first.name == "address" {
                        p.eat("payable");
                    }
                    TypeName::Elementary(first.name)
                } else {
                    let mut path = first.name;
                    while p.is(".") && p.tok(1).kind == TokenKind::Ident {
                        p.bump();
                        path.push('.');
                        path.push_str(p.text());
                        p.bump();
                    }
                    TypeName::User(path)
                }
            };
            p.chain(|p| {
                while p.is("[") {
                    p.bump();
                    let fixed = !p.is("]");
                    if fixed {
                        p.expr()?;
                    }
                    p.expect("]")?;
                    p.link()?;
                    ty = TypeName::Array(Box::new(ty), fixed);
                }
                Ok(ty)
            })
        })
    }

    // ---- statements ----------------------------------------------------------------------

    fn block(&mut self) -> PResult<Block> {
        let start = self.span();
        self.expect("{")?;
        let mut stmts = Vec::new();
        while !self.is("}") {
            if self.at_eof() {
                return self.error("expected `}` to close the block");
            }
            stmts.push(self.statement()?);
        }
        self.bump();
        Ok(Block {
            stmts,
            span: start.to(Span::new(start.end, self.prev_end())),
        })
    }

    fn statement(&mut self) -> PResult<Stmt> {
        self.nested(|p| {
            let start = p.span();
            let kind = p.statement_kind()?;
            Ok(Stmt {
                kind,
                span: start.to(Span::new(start.end, p.prev_end())),
            })
        })
    }

    fn statement_kind(&mut self) -> PResult<StmtKind> {
        let word = if self.tok(0).kind == TokenKind::Str {
            ""
        } else {
            self.text()
        };
        match word {
            "{" => return Ok(StmtKind::Block(self.block()?)),
            ";" => {
                self.bump();
                return Ok(StmtKind::Jump);
            }
            "if" => {
                self.bump();
                self.expect("(")?;
                let cond = self.expr()?;
                self.expect(")")?;
                let then = Box::new(self.statement()?);
                let els = if self.eat("else") {
                    Some(Box::new(self.statement()?))
                } else {
                    None
                };
                return Ok(StmtKind::If(cond, then, els));
            }
            "while" => {
                self.bump();
                self.expect("(")?;
                let cond = self.expr()?;
                self.expect(")")?;
                return Ok(StmtKind::While(cond, Box::new(self.statement()?)));
            }
            "do" => {
                self.bump();
                let body = Box::new(self.statement()?);
                self.expect("while")?;
                self.expect("(")?;
                let cond = self.expr()?;
                self.expect(")")?;
                self.expect(";")?;
                return Ok(StmtKind::DoWhile(body, cond));
            }
            "for" => {
                self.bump();
                self.expect("(")?;
                let init = if self.eat(";") {
                    None
                } else {
                    Some(Box::new(self.statement()?))
                };
                let cond = if self.is(";") {
                    None
                } else {
                    Some(self.expr()?)
                };
                self.expect(";")?;
                let post = if self.is(")") {
                    None
                } else {
                    Some(self.expr()?)
                };
                self.expect(")")?;
                return Ok(StmtKind::For(init, cond, post, Box::new(self.statement()?)));
            }
            "return" => {
                self.bump();
                let e = if self.is(";") {
                    None
                } else {
                    Some(self.expr()?)
                };
                self.expect(";")?;
                return Ok(StmtKind::Return(e));
            }
            "break" | "continue" => {
                self.bump();
                self.expect(";")?;
                return Ok(StmtKind::Jump);
            }
            "throw" => {
                self.bump();
                self.expect(";")?;
                return Ok(StmtKind::Throw);
            }
            "emit" => {
                self.bump();
                let e = self.expr()?;
                self.expect(";")?;
                return Ok(StmtKind::Emit(e));
            }
            "revert" if self.tok(1).kind == TokenKind::Ident => {
                self.bump();
                let e = self.expr()?;
                self.expect(";")?;
                return Ok(StmtKind::Revert(e));
            }
            "_" if self.is_at(1, ";") => {
                self.bump();
                self.bump();
                return Ok(StmtKind::Placeholder);
            }
            "unchecked" if self.is_at(1, "{") => {
                self.bump();
                return Ok(StmtKind::Unchecked(self.block()?));
            }
            "assembly" => return self.assembly(),
            "try" => {
                self.bump();
                let call = self.expr()?;
                let mut blocks = Vec::new();
                if self.eat("returns") {
                    self.params()?;
                }
                blocks.push(self.block()?);
                while self.eat("catch") {
                    if self.tok(0).kind == TokenKind::Ident {
                        self.bump();
                    }
                    if self.is("(") {
                        self.params()?;
                    }
                    blocks.push(self.block()?);
                }
                return Ok(StmtKind::Try(call, blocks));
            }
            "var" => {
                self.bump();
                let vars = if self.is("(") {
                    self.bump();
                    let mut vars = Vec::new();
                    while !self.is(")") {
                        if self.is(",") {
                            vars.push(None);
                        } else {
                            let name = self.ident()?;
                            vars.push(Some(LocalVar {
                                ty: TypeName::Elementary("var".into()),
                                location: None,
                                name,
                            }));
                        }
                        if !self.eat(",") {
                            break;
                        }
                    }
                    self.expect(")")?;
                    vars
                } else {
                    let name = self.ident()?;
                    vec![Some(LocalVar {
                        ty: TypeName::Elementary("var".into()),
                        location: None,
                        name,
                    })]
                };
                let init = if self.eat("=") {
                    Some(self.expr()?)
                } else {
                    None
                };
                self.expect(";")?;
                return Ok(StmtKind::VarDecl(vars, init));
            }
            _ => {}
        }
        if self.looks_like_tuple_decl() {
            self.bump();
            let mut vars = Vec::new();
            while !self.is(")") {
                if self.is(",") {
                    vars.push(None);
                } else {
                    vars.push(Some(self.local_var()?));
                }
                if !self.eat(",") {
                    break;
                }
            }
            self.expect(")")?;
            self.expect("=")?;
            let init = Some(self.expr()?);
            self.expect(";")?;
            return Ok(StmtKind::VarDecl(vars, init));
        }
        if self.looks_like_decl() {
            let var = self.local_var()?;
            let init = if self.eat("=") {
                Some(self.expr()?)
            } else {
                None
            };
            self.expect(";")?;
            return Ok(StmtKind::VarDecl(vec![Some(var)], init));
        }
        let e = self.expr()?;
        self.expect(";")?;
        Ok(StmtKind::Expr(e))
    }

    fn local_var(&mut self) -> PResult<LocalVar> {
        let ty = self.type_name()?;
        let location = match self.text() {
            "storage" => Some(Location::Storage),
            "memory" => Some(Location::Memory),
            "calldata" => Some(Location::Calldata),
            _ => None,
        };
        if location.is_some() {
            self.bump();
        }
        let name = self.ident()?;
        Ok(LocalVar { ty, location, name })
    }

    /// Token index after a plausible type starting at `i`, without recording errors.
    fn scan_type(&self, mut i: usize) -> Option<usize> {
        let text = |i: usize| -> &str {
            let t = self.toks[i.min(self.toks.len() - 1)];
            if t.kind == TokenKind::Str {
                ""
            } else {
                &self.src[t.span.start..t.span.end]
            }
        };
        let kind = |i: usize| self.toks[i.min(self.toks.len() - 1)].kind;
        if text(i) == "mapping" {
            if text(i + 1) != "(" {
                return None;
            }
            i = self.closing[(i + 1).min(self.closing.len() - 1)] + 1;
        } else {
            if kind(i) != TokenKind::Ident || STATEMENT_WORDS.contains(&text(i)) {
                return None;
            }
            i += 1;
            if text(i - 1) == "address" && text(i) == "payable" {
                i += 1;
            }
            while text(i) == "." && kind(i + 1) == TokenKind::Ident {
                i += 2;
            }
        }
        while text(i) == "[" {
            i = self.closing[i.min(self.closing.len() - 1)] + 1;
        }
        Some(i)
    }

    fn looks_like_decl(&self) -> bool {
        let Some(i) = self.scan_type(self.pos) else {
            return false;
        };
        let t = self.toks[i.min(self.toks.len() - 1)];
        if t.kind != TokenKind::Ident {
            return false;
        }
        let word = &self.src[t.span.start..t.span.end];
        if matches!(word, "memory" | "storage" | "calldata") {
            return true;
        }
        let next = self.toks[(i + 1).min(self.toks.len() - 1)];
        let next_text = &self.src[next.span.start..next.span.end];
        next.kind == TokenKind::Punct && matches!(next_text, "=" | ";")
    }

    fn looks_like_tuple_decl(&self) -> bool {
        if !self.is("(") {
            return false;
        }
        let close = self.closing[self.pos];
        let after = self.toks[(close + 1).min(self.toks.len() - 1)];
        if &self.src[after.span.start..after.span.end] != "=" {
            return false;
        }
        let mut i = self.pos + 1;
        let mut typed = false;
        while i < close {
            let t = self.toks[i];
            if &self.src[t.span.start..t.span.end] == "," {
                i += 1;
                continue;
            }
            let Some(j) = self.scan_type(i) else {
                return false;
            };
            let mut j = j;
            let w = self.toks[j.min(self.toks.len() - 1)];
            if matches!(
                &self.src[w.span.start..w.span.end],
                "memory" | "storage" | "calldata"
            ) {
                j += 1;
            }
            if self.toks[j.min(self.toks.len() - 1)].kind != TokenKind::Ident {
                return false;
            }
            typed = true;
            i = j + 1;
        }
        typed
    }

    fn assembly(&mut self) -> PResult<StmtKind> {
        self.bump();
        if self.tok(0).kind == TokenKind::Str {
            self.bump();
        }
        if self.is("(") {
            self.skip_group();
        }
        if !self.is("{") {
            return self.error("expected `{` after `assembly`");
        }
        let close = self.closing[self.pos];
        let words = self.toks[self.pos..close.min(self.toks.len())]
            .iter()
            .filter(|t| t.kind == TokenKind::Ident)
            .map(|t| Ident {
                name: self.src[t.span.start..t.span.end].to_string(),
                span: t.span,
            })
            .collect();
        self.skip_group();
        Ok(StmtKind::Assembly(words))
    }

    // ---- expressions ---------------------------------------------------------------------

    fn expr(&mut self) -> PResult<Expr> {
        self.expr_bp(0)
    }

    fn binary_power(op: &str) -> Option<(u8, u8)> {
        Some(match op {
            "||" => (3, 4),
            "&&" => (5, 6),
            "==" | "!=" => (7, 8),
            "<" | ">" | "<=" | ">=" => (9, 10),
            "|" => (11, 12),
            "^" => (13, 14),
            "&" => (15, 16),
            "<<" | ">>" | ">>>" => (17, 18),
            "+" | "-" => (19, 20),
            "*" | "/" | "%" => (21, 22),
            "**" => (24, 23),
            _ => return None,
        })
    }

    fn expr_bp(&mut self, min_bp: u8) -> PResult<Expr> {
        self.nested(|p| {
            p.chain(|p| {
                let mut lhs = p.unary()?;
                loop {
                    if p.tok(0).kind != TokenKind::Punct {
                        break;
                    }
                    let op = p.text();
                    if matches!(
                        op,
                        "=" | "+="
                            | "-="
                            | "*="
                            | "/="
                            | "%="
                            | "|="
                            | "&="
                            | "^="
                            | "<<="
                            | ">>="
                            | ">>>="
                    ) {
                        if min_bp > 1 {
                            break;
                        }
                        p.bump();
                        let rhs = p.expr_bp(1)?;
                        let span = lhs.span.to(rhs.span);
                        p.link()?;
                        lhs = Expr {
                            kind: ExprKind::Assign(static_op(op), Box::new(lhs), Box::new(rhs)),
                            span,
                        };
                        continue;
                    }
                    if op == "?" {
                        if min_bp > 2 {
                            break;
                        }
                        p.bump();
                        let a = p.expr_bp(0)?;
                        p.expect(":")?;
                        let b = p.expr_bp(2)?;
                        let span = lhs.span.to(b.span);
                        p.link()?;
                        lhs = Expr {
                            kind: ExprKind::Ternary(Box::new(lhs), Box::new(a), Box::new(b)),
                            span,
                        };
                        continue;
                    }
                    let Some((l_bp, r_bp)) = Self::binary_power(op) else {
                        break;
                    };
                    if l_bp < min_bp {
                        break;
                    }
                    p.bump();
                    let rhs = p.expr_bp(r_bp)?;
                    let span = lhs.span.to(rhs.span);
                    p.link()?;
                    lhs = Expr {
                        kind: ExprKind::Binary(static_op(op), Box::new(lhs), Box::new(rhs)),
                        span,
                    };
                }
                Ok(lhs)
            })
        })
    }

    fn unary(&mut self) -> PResult<Expr> {
        let start = self.span();
        let op = self.text();
        let is_prefix = (self.tok(0).kind == TokenKind::Punct
            && matches!(op, "!" | "~" | "-" | "+" | "++" | "--"))
            || (op == "delete" && self.tok(0).kind == TokenKind::Ident);
        if is_prefix {
            self.bump();
            let operand = self.nested(|p| p.unary())?;
            let span = start.to(operand.span);
            return Ok(Expr {
                kind: ExprKind::Unary(static_op(op), Box::new(operand)),
                span,
            });
        }
        if op == "new" && self.tok(0).kind == TokenKind::Ident {
            self.bump();
            let ty = self.type_name()?;
            let e = Expr {
                kind: ExprKind::New(ty),
                span: start.to(Span::new(start.end, self.prev_end())),
            };
            return self.postfix(e);
        }
        let e = self.primary()?;
        self.postfix(e)
    }

    fn postfix(&mut self, e: Expr) -> PResult<Expr> {
        self.chain(|p| p.postfix_links(e))
    }

    fn postfix_links(&mut self, mut e: Expr) -> PResult<Expr> {
        loop {
            if self.tok(0).kind != TokenKind::Punct {
                break;
            }
            match self.text() {
                "." => {
                    self.bump();
                    let name = self.ident()?;
                    let span = e.span.to(name.span);
                    self.link()?;
                    e = Expr {
                        kind: ExprKind::Member(Box::new(e), name),
                        span,
                    };
                }
                "[" => {
                    self.bump();
                    let index = if self.is("]") || self.is(":") {
                        None
                    } else {
                        Some(Box::new(self.expr()?))
                    };
                    if self.eat(":") && !self.is("]") {
                        self.expr()?;
                    }
                    self.expect("]")?;
                    let span = e.span.to(Span::new(e.span.end, self.prev_end()));
                    self.link()?;
                    e = Expr {
                        kind: ExprKind::Index(Box::new(e), index),
                        span,
                    };
                }
                "(" => {
                    let args = self.call_args()?;
                    let span = e.span.to(Span::new(e.span.end, self.prev_end()));
                    self.link()?;
                    e = Expr {
                        kind: ExprKind::Call(Box::new(e), args),
                        span,
                    };
                }
                "{" if self.tok(1).kind == TokenKind::Ident && self.is_at(2, ":") => {
                    self.bump();
                    let mut options = Vec::new();
                    while !self.is("}") {
                        let name = self.ident()?;
                        self.expect(":")?;
                        options.push((name, self.expr()?));
                        if !self.eat(",") {
                            break;
                        }
                    }
                    self.expect("}")?;
                    let span = e.span.to(Span::new(e.span.end, self.prev_end()));
                    self.link()?;
                    e = Expr {
                        kind: ExprKind::CallOptions(Box::new(e), options),
                        span,
                    };
                }
                "++" | "--" => {
                    let op = static_op(self.text());
                    self.bump();
                    let span = e.span.to(Span::new(e.span.end, self.prev_end()));
                    self.link()?;
                    e = Expr {
                        kind: ExprKind::Unary(op, Box::new(e)),
                        span,
                    };
                }
                _ => break,
            }
        }
        Ok(e)
    }

    fn call_args(&mut self) -> PResult<Vec<Expr>> {
        self.expect("(")?;
        let mut args = Vec::new();
        if self.eat("{") {
            while !self.is("}") {
                self.ident()?;
                self.expect(":")?;
                args.push(self.expr()?);
                if !self.eat(",") {
                    break;
                }
            }
            self.expect("}")?;
        } else {
            while !self.is(")") {
                args.push(self.expr()?);
                if !self.eat(",") {
                    break;
                }
            }
        }
        self.expect(")")?;
        Ok(args)
    }

    fn primary(&mut self) -> PResult<Expr> {
        let t = self.tok(0);
        let start = t.span;
        match t.kind {
            TokenKind::Number => {
                self.bump();
                let mut span = start;
                if self.tok(0).kind == TokenKind::Ident && UNITS.contains(&self.text()) {
                    span = span.to(self.span());
                    self.bump();
                }
                Ok(Expr {
                    kind: ExprKind::Number(self.src[span.start..span.end].to_string()),
                    span,
                })
            }
            TokenKind::Str => {
                let mut span = start;
                while self.tok(0).kind == TokenKind::Str {
                    span = span.to(self.span());
                    self.bump();
                }
                Ok(Expr {
                    kind: ExprKind::Str,
                    span,
                })
            }
            TokenKind::Ident => {
                let word = self.text();
                match word {
                    "true" | "false" => {
                        self.bump();
                        Ok(Expr {
                            kind: ExprKind::Bool(word == "true"),
                            span: start,
                        })
                    }
                    "mapping" | "function" => {
                        let ty = self.type_name()?;
                        Ok(Expr {
                            kind: ExprKind::Type(ty),
                            span: start.to(Span::new(start.end, self.prev_end())),
                        })
                    }
                    _ if STATEMENT_WORDS.contains(&word) && word != "revert" => {
                        self.error("expected an expression")
                    }
                    _ => {
                        self.bump();
                        // `address payable` in expression position (casts).
                        if word == "address" && self.is("payable") {
                            self.bump();
                        }
                        if is_elementary(word) && self.is("[") && self.is_at(1, "]") {
                            self.bump();
                            self.bump();
                            let ty =
                                TypeName::Array(Box::new(TypeName::Elementary(word.into())), false);
                            return Ok(Expr {
                                kind: ExprKind::Type(ty),
                                span: start.to(Span::new(start.end, self.prev_end())),
                            });
                        }
                        Ok(Expr {
                            kind: ExprKind::Ident(word.to_string()),
                            span: start,
                        })
                    }
                }
            }
            TokenKind::Punct => match self.text() {
                "(" => {
                    self.bump();
                    let mut items = Vec::new();
                    let mut commas = false;
                    while !self.is(")") {
                        if self.is(",") {
                            items.push(None);
                        } else {
                            items.push(Some(self.expr()?));
                        }
                        if !self.eat(",") {
                            break;
                        }
                        commas = true;
                        if self.is(")") {
                            items.push(None);
                        }
                    }
                    self.expect(")")?;
                    let span = start.to(Span::new(start.end, self.prev_end()));
                    if !commas
                        && items.len() == 1
                        && let Some(Some(inner)) = items.pop()
                    {
                        return Ok(Expr {
                            kind: inner.kind,
                            span,
                        });
                    }
                    Ok(Expr {
                        kind: ExprKind::Tuple(items),
                        span,
                    })
                }
                "[" => {
                    self.bump();
                    let mut items = Vec::new();
                    while !self.is("]") {
                        items.push(self.expr()?);
                        if !self.eat(",") {
                            break;
                        }
                    }
                    self.expect("]")?;
                    Ok(Expr {
                        kind: ExprKind::Array(items),
                        span: start.to(Span::new(start.end, self.prev_end())),
                    })
                }
                _ => self.error("expected an expression"),
            },
            _ => self.error("expected an expression"),
        }
    }
}
