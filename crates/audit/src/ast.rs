//! Syntax tree of a Solidity source unit, every node carrying its byte span.

use crate::span::Span;

/// A name with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    /// The name as written.
    pub name: String,
    /// Where it is written.
    pub span: Span,
}

/// One parsed file.
#[derive(Debug, Clone, Default)]
pub struct SourceUnit {
    /// `pragma` directives as raw text (`solidity ^0.4.24`).
    pub pragmas: Vec<(String, Span)>,
    /// Imported paths.
    pub imports: Vec<(String, Span)>,
    /// Contracts, interfaces and libraries in source order.
    pub contracts: Vec<ContractDef>,
    /// Free functions (0.7+), kept for the call graph.
    pub free_functions: Vec<FunctionDef>,
}

/// What kind of contract-like definition a [`ContractDef`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractKind {
    /// `contract`.
    Contract,
    /// `abstract contract`.
    Abstract,
    /// `interface`.
    Interface,
    /// `library`.
    Library,
}

/// A contract, interface or library.
#[derive(Debug, Clone)]
pub struct ContractDef {
    /// Which keyword introduced it.
    pub kind: ContractKind,
    /// Its name.
    pub name: Ident,
    /// Direct base contracts in declaration order.
    pub bases: Vec<Ident>,
    /// State variables.
    pub state_vars: Vec<VarDecl>,
    /// Functions, constructors, fallback and receive functions.
    pub functions: Vec<FunctionDef>,
    /// Modifiers.
    pub modifiers: Vec<FunctionDef>,
    /// Events.
    pub events: Vec<Ident>,
    /// Struct type names.
    pub structs: Vec<Ident>,
    /// `using X for Y` library names.
    pub using: Vec<Ident>,
    /// The whole definition.
    pub span: Span,
}

/// Function visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// `public` (the default for functions before 0.5).
    Public,
    /// `external`.
    External,
    /// `internal`.
    Internal,
    /// `private`.
    Private,
}

/// Function state mutability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    /// `pure`.
    Pure,
    /// `view` or legacy `constant`.
    View,
    /// `payable`.
    Payable,
    /// None written.
    NonPayable,
}

/// What kind of callable a [`FunctionDef`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    /// A named function.
    Function,
    /// `constructor` or a legacy function named after its contract.
    Constructor,
    /// `fallback` or the unnamed legacy fallback.
    Fallback,
    /// `receive`.
    Receive,
    /// A modifier.
    Modifier,
}

/// A function, constructor or modifier.
#[derive(Debug, Clone)]
pub struct FunctionDef {
    /// Kind of callable.
    pub kind: FunctionKind,
    /// Name, absent for legacy fallbacks and constructors.
    pub name: Option<Ident>,
    /// Parameters.
    pub params: Vec<Param>,
    /// Return parameters.
    pub returns: Vec<Param>,
    /// Visibility as written.
    pub visibility: Option<Visibility>,
    /// Mutability.
    pub mutability: Mutability,
    /// Modifier invocations (may include base constructor calls).
    pub modifiers: Vec<ModifierCall>,
    /// Body, absent for declarations.
    pub body: Option<Block>,
    /// The whole definition.
    pub span: Span,
    /// The header (`function name(...)`), where findings about the function point.
    pub header: Span,
}

/// A modifier invocation on a function.
#[derive(Debug, Clone)]
pub struct ModifierCall {
    /// Modifier name.
    pub name: Ident,
    /// Arguments.
    pub args: Vec<Expr>,
}

/// A parameter or return value.
#[derive(Debug, Clone)]
pub struct Param {
    /// Its type.
    pub ty: TypeName,
    /// Its name, if any.
    pub name: Option<Ident>,
}

/// A storage location keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// `storage`.
    Storage,
    /// `memory`.
    Memory,
    /// `calldata`.
    Calldata,
}

/// A type as written.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeName {
    /// `uint256`, `address payable`, `var`, …
    Elementary(String),
    /// A contract, struct or enum name, possibly dotted.
    User(String),
    /// `mapping(K => V)`.
    Mapping(Box<TypeName>, Box<TypeName>),
    /// `T[]` or `T[n]`; the flag says whether the length is fixed.
    Array(Box<TypeName>, bool),
    /// A function type.
    Function,
}

/// A state variable declaration.
#[derive(Debug, Clone)]
pub struct VarDecl {
    /// Its type.
    pub ty: TypeName,
    /// Its name.
    pub name: Ident,
    /// `constant` or `immutable`.
    pub constant: bool,
    /// Declared visibility.
    pub visibility: Option<Visibility>,
    /// Initial value.
    pub init: Option<Expr>,
    /// The whole declaration.
    pub span: Span,
}

/// A local variable in a declaration statement.
#[derive(Debug, Clone)]
pub struct LocalVar {
    /// Its type.
    pub ty: TypeName,
    /// Its storage location, if written.
    pub location: Option<Location>,
    /// Its name.
    pub name: Ident,
}

/// A `{ … }` block.
#[derive(Debug, Clone)]
pub struct Block {
    /// Statements in order.
    pub stmts: Vec<Stmt>,
    /// The braces and contents.
    pub span: Span,
}

/// A statement.
#[derive(Debug, Clone)]
pub struct Stmt {
    /// What it is.
    pub kind: StmtKind,
    /// Where it is.
    pub span: Span,
}

/// The kinds of statement.
#[derive(Debug, Clone)]
pub enum StmtKind {
    /// A nested block.
    Block(Block),
    /// `unchecked { … }`.
    Unchecked(Block),
    /// Local variable declaration; `None` slots are skipped tuple members.
    VarDecl(Vec<Option<LocalVar>>, Option<Expr>),
    /// An expression evaluated for its effects.
    Expr(Expr),
    /// `if (c) a else b`.
    If(Expr, Box<Stmt>, Option<Box<Stmt>>),
    /// `while (c) body`.
    While(Expr, Box<Stmt>),
    /// `do body while (c);`.
    DoWhile(Box<Stmt>, Expr),
    /// `for (init; cond; post) body`.
    For(Option<Box<Stmt>>, Option<Expr>, Option<Expr>, Box<Stmt>),
    /// `return e;`.
    Return(Option<Expr>),
    /// `emit E(...)`.
    Emit(Expr),
    /// `revert E(...)` with a custom error.
    Revert(Expr),
    /// `try e returns (...) { } catch { }`: the call and the blocks.
    Try(Expr, Vec<Block>),
    /// Inline assembly, skipped as a balanced block; the words used inside are recorded.
    Assembly(Vec<Ident>),
    /// `_;` in a modifier.
    Placeholder,
    /// `throw;`.
    Throw,
    /// `break`, `continue` or `;`.
    Jump,
}

/// An expression.
#[derive(Debug, Clone)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it is.
    pub span: Span,
}

/// The kinds of expression.
#[derive(Debug, Clone)]
pub enum ExprKind {
    /// A name (including `this`, `msg`, elementary type names used as casts).
    Ident(String),
    /// A number with an optional unit (`1 ether`, `2 years`).
    Number(String),
    /// A string or hex literal.
    Str,
    /// `true` or `false`.
    Bool(bool),
    /// `e.name`.
    Member(Box<Expr>, Ident),
    /// `e[i]`, `e[]` or a slice.
    Index(Box<Expr>, Option<Box<Expr>>),
    /// `f(args)` or `f({name: value})`.
    Call(Box<Expr>, Vec<Expr>),
    /// `f{value: v, gas: g}`.
    CallOptions(Box<Expr>, Vec<(Ident, Expr)>),
    /// Prefix or postfix unary operator (`!`, `-`, `++`, `delete`, …).
    Unary(&'static str, Box<Expr>),
    /// Binary operator.
    Binary(&'static str, Box<Expr>, Box<Expr>),
    /// Assignment, plain or compound (`=`, `+=`, …).
    Assign(&'static str, Box<Expr>, Box<Expr>),
    /// `c ? a : b`.
    Ternary(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `new T`.
    New(TypeName),
    /// `(a, , b)`.
    Tuple(Vec<Option<Expr>>),
    /// `[a, b]`.
    Array(Vec<Expr>),
    /// A type in expression position (`uint[]`, `mapping(...)`).
    Type(TypeName),
}
