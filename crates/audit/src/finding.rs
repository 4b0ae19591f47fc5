//! Findings, their categories (DASP-10), severities and the catalogue of rules.

use serde::{Deserialize, Serialize};

use crate::span::Span;

/// DASP-10 vulnerability categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Re-entering a contract before its state is updated.
    Reentrancy,
    /// Missing or broken authorisation.
    AccessControl,
    /// Integer overflow/underflow and precision loss.
    Arithmetic,
    /// Ignored results of low-level calls.
    UncheckedCalls,
    /// Ways to block a contract from working.
    DenialOfService,
    /// Predictable randomness from block data.
    BadRandomness,
    /// Transaction-ordering dependence.
    FrontRunning,
    /// Decisions that depend on a miner-chosen timestamp.
    TimeManipulation,
    /// Missing calldata length checks.
    ShortAddress,
    /// Everything else (storage pointers, shadowing, locked ether, delegatecall).
    Other,
}

impl Category {
    /// All categories in report order.
    pub const ALL: [Category; 10] = [
        Category::Reentrancy,
        Category::AccessControl,
        Category::Arithmetic,
        Category::UncheckedCalls,
        Category::DenialOfService,
        Category::BadRandomness,
        Category::FrontRunning,
        Category::TimeManipulation,
        Category::ShortAddress,
        Category::Other,
    ];

    /// The kebab-case name used in JSON, SARIF and the corpus manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Reentrancy => "reentrancy",
            Category::AccessControl => "access-control",
            Category::Arithmetic => "arithmetic",
            Category::UncheckedCalls => "unchecked-calls",
            Category::DenialOfService => "denial-of-service",
            Category::BadRandomness => "bad-randomness",
            Category::FrontRunning => "front-running",
            Category::TimeManipulation => "time-manipulation",
            Category::ShortAddress => "short-address",
            Category::Other => "other",
        }
    }

    /// Parses the kebab-case name.
    pub fn parse(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; not a vulnerability by itself.
    Info,
    /// Unlikely or limited impact.
    Low,
    /// Exploitable under conditions.
    Medium,
    /// Funds or control can be taken.
    High,
}

impl Severity {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// How sure the detector is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// A heuristic match.
    Low,
    /// A likely match.
    Medium,
    /// A precise match.
    High,
}

/// One detector rule: what it looks for and how it is rated.
#[derive(Debug, Serialize)]
pub struct Rule {
    /// Stable identifier (SARIF `ruleId`).
    pub id: &'static str,
    /// DASP-10 category.
    pub category: Category,
    /// Severity of its findings.
    pub severity: Severity,
    /// Confidence of its findings.
    pub confidence: Confidence,
    /// One-line description.
    pub title: &'static str,
    /// What to do about it.
    pub help: &'static str,
}

macro_rules! rules {
    ($($name:ident = $id:literal, $cat:ident, $sev:ident, $conf:ident, $title:literal, $help:literal;)*) => {
        $(
            #[doc = $title]
            pub static $name: Rule = Rule {
                id: $id,
                category: Category::$cat,
                severity: Severity::$sev,
                confidence: Confidence::$conf,
                title: $title,
                help: $help,
            };
        )*
        /// Every rule, in catalogue order.
        pub static RULES: &[&Rule] = &[$(&$name),*];
    };
}

rules! {
    REENTRANCY_ETH = "reentrancy-eth", Reentrancy, High, Medium,
        "State is written after a call that forwards gas and ether",
        "Update state before the call (checks-effects-interactions) or add a reentrancy guard.";
    REENTRANCY_CALL = "reentrancy-external", Reentrancy, Medium, Medium,
        "State is written after a call into another contract",
        "Update state before the call (checks-effects-interactions) or add a reentrancy guard.";
    UNPROTECTED_SELFDESTRUCT = "unprotected-selfdestruct", AccessControl, High, High,
        "Anyone can destroy the contract",
        "Restrict the function to an authorised caller, or remove selfdestruct.";
    UNPROTECTED_WITHDRAWAL = "unprotected-ether-withdrawal", AccessControl, High, Medium,
        "Anyone can send the contract's ether to an address of their choice",
        "Check msg.sender against an owner or the payee's own recorded balance.";
    UNPROTECTED_OWNER = "unprotected-owner-change", AccessControl, High, Medium,
        "Anyone can change who controls the contract",
        "Restrict the function (onlyOwner), make it a real constructor, or guard initialisation.";
    TX_ORIGIN = "tx-origin-auth", AccessControl, Medium, High,
        "Authorisation uses tx.origin",
        "Compare msg.sender instead; tx.origin is the original signer, not the caller.";
    ARBITRARY_STORAGE = "arbitrary-storage-write", AccessControl, High, Medium,
        "Anyone can write to arbitrary storage slots",
        "Never let callers shrink an array length or choose a storage slot.";
    INTEGER_OVERFLOW = "integer-overflow", Arithmetic, High, Medium,
        "Unchecked arithmetic on caller-controlled values can wrap around",
        "Use Solidity 0.8 checked arithmetic, SafeMath, or check bounds before the operation.";
    DIVIDE_BEFORE_MULTIPLY = "divide-before-multiply", Arithmetic, Low, High,
        "Division before multiplication loses precision",
        "Multiply first, then divide.";
    UNCHECKED_CALL = "unchecked-low-level-call", UncheckedCalls, Medium, High,
        "The result of a low-level call is ignored",
        "Check the returned success flag (require(ok)) or use transfer.";
    CALL_IN_LOOP = "dos-call-in-loop", DenialOfService, Medium, Medium,
        "A call that can fail is made inside a loop",
        "Let each recipient withdraw separately (pull payments).";
    UNBOUNDED_LOOP = "dos-unbounded-loop", DenialOfService, Medium, Medium,
        "A loop runs over a storage array anyone can grow",
        "Bound the work per transaction (pagination) or avoid iterating storage.";
    DOS_PUSH_PAYMENT = "dos-push-payment", DenialOfService, High, Medium,
        "A required payment to a stored address blocks progress if that address rejects ether",
        "Record the refund and let the recipient withdraw it.";
    WEAK_RANDOMNESS = "weak-randomness", BadRandomness, High, Medium,
        "Randomness derived from block data that miners and callers can predict",
        "Use a commit-reveal scheme or a verifiable randomness oracle.";
    TIMESTAMP_DECISION = "timestamp-decision", TimeManipulation, Medium, Medium,
        "A payout or exact match depends on the block timestamp",
        "Do not let a timestamp decide value; allow for miner drift of several seconds.";
    APPROVE_RACE = "erc20-approve-race", FrontRunning, Low, High,
        "approve() overwrites an allowance and can be front-run",
        "Require the allowance to be zero first, or offer increaseAllowance/decreaseAllowance.";
    REVEALED_SECRET = "front-running-secret", FrontRunning, Medium, Medium,
        "A secret is submitted in clear text and can be copied from the mempool",
        "Use commit-reveal bound to msg.sender.";
    PRICE_RACE = "front-running-price", FrontRunning, Medium, Low,
        "A purchase uses a price the owner can change while it is pending",
        "Let buyers pass the price they expect and check it.";
    SHORT_ADDRESS = "short-address", ShortAddress, Low, Medium,
        "Token transfer without a calldata length check on a compiler older than 0.5",
        "Compile with 0.5 or later, or check msg.data.length.";
    UNINITIALISED_STORAGE = "uninitialised-storage-pointer", Other, High, High,
        "A local storage pointer without initialiser points at slot 0",
        "Declare it memory, or initialise it with a storage reference.";
    SHADOWED_STATE = "shadowed-state-variable", Other, Medium, High,
        "A state variable shadows one inherited from a base contract",
        "Rename the variable, or assign the inherited one in the constructor.";
    LOCKED_ETHER = "locked-ether", Other, Medium, High,
        "The contract accepts ether but has no way to send it out",
        "Add a withdrawal function or remove payable.";
    CONTROLLED_DELEGATECALL = "controlled-delegatecall", Other, High, Medium,
        "delegatecall to an address the caller chooses",
        "Only delegatecall to trusted, fixed implementations.";
}

/// One reported problem.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The rule that matched.
    pub rule: &'static Rule,
    /// Where.
    pub span: Span,
    /// What exactly, in words.
    pub message: String,
    /// Contract in which it was found.
    pub contract: String,
    /// Function in which it was found, if any.
    pub function: Option<String>,
    /// A plain-language explanation written by a language model (`hibana audit --explain`);
    /// never used to decide findings.
    pub explanation: Option<Explanation>,
}

/// A generated explanation of a finding, labelled with the model that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The model (or subnet) that wrote it.
    pub model: String,
    /// The explanation and suggested fix.
    pub text: String,
}
