//! Audit challenges with known answers: a clean contract is generated from a seed and known
//! vulnerabilities are planted in some of its functions, so whoever generated it knows exactly
//! which findings a good auditor reports. Validators of an `audit` subnet send these to miners
//! and score the answers by precision and recall ([`score`]).
//!
//! Every challenge is assembled from features (a vault, an owner, payouts, a token, a payroll,
//! a lottery, a bonus, an allowance, a plugin hook); each feature is emitted either clean or
//! with one planted flaw of a DASP-10 category, in the syntax of a randomly chosen compiler
//! version from 0.4 to 0.8, with random names. A planted flaw records its line and the lines of
//! the function around it: an auditor that points anywhere inside that function with the right
//! category has found it, so auditors with other line conventions are scored fairly.

use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde::{Deserialize, Serialize};

use crate::{Category, evaluate::Score};

/// A generated contract and the findings it should produce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// The seed it was generated from.
    pub seed: u64,
    /// A file name for it.
    pub path: String,
    /// The Solidity source.
    pub source: String,
    /// The planted flaws, in line order.
    pub planted: Vec<Planted>,
}

/// One planted flaw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planted {
    /// Its category.
    pub category: Category,
    /// The 1-based line of the flawed statement or declaration.
    pub line: usize,
    /// First and last line of the function (or declaration) that holds it.
    pub region: (usize, usize),
    /// What was planted, in words.
    pub flaw: String,
}

/// A reported finding reduced to what scoring compares: category and 1-based line.
pub type Reported = (Category, usize);

/// The result of comparing reported findings with the planted ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// Counts of matched, extra and missed findings.
    pub score: Score,
    /// Reported findings that match nothing planted.
    pub extra: Vec<Reported>,
    /// Planted flaws nobody reported.
    pub missed: Vec<Planted>,
}

/// Compares reported findings with planted flaws. A finding matches an unmatched flaw of its
/// category whose region holds its line; findings on the flaw's own line are matched first.
pub fn score(planted: &[Planted], reported: &[Reported]) -> Comparison {
    let mut used = vec![false; reported.len()];
    let mut out = Comparison::default();
    let mut unmatched = Vec::new();
    // Exact lines first, so a second finding in the same function cannot take a flaw's place.
    for p in planted {
        let hit = reported
            .iter()
            .enumerate()
            .position(|(k, r)| !used[k] && r.0 == p.category && r.1 == p.line);
        match hit {
            Some(k) => {
                used[k] = true;
                out.score.true_positives += 1;
            }
            None => unmatched.push(p),
        }
    }
    for p in unmatched {
        let hit = reported.iter().enumerate().position(|(k, r)| {
            !used[k] && r.0 == p.category && (p.region.0..=p.region.1).contains(&r.1)
        });
        match hit {
            Some(k) => {
                used[k] = true;
                out.score.true_positives += 1;
            }
            None => {
                out.score.false_negatives += 1;
                out.missed.push(p.clone());
            }
        }
    }
    for (k, r) in reported.iter().enumerate() {
        if !used[k] {
            out.score.false_positives += 1;
            out.extra.push(*r);
        }
    }
    out
}

/// F1 of a score in [0, 1]: 1 when nothing was planted and nothing reported.
pub fn f1(score: &Score) -> f64 {
    let tp = score.true_positives as f64;
    let denominator = 2.0 * tp + score.false_positives as f64 + score.false_negatives as f64;
    if denominator == 0.0 {
        1.0
    } else {
        2.0 * tp / denominator
    }
}

/// Compiler versions a challenge can be written for.
const VERSIONS: [(u8, &str); 6] = [
    (4, "0.4.24"),
    (4, "0.4.26"),
    (5, "0.5.17"),
    (6, "0.6.12"),
    (7, "0.7.6"),
    (8, "0.8.19"),
];

/// Syntax that differs between compiler versions.
#[derive(Clone, Copy)]
struct Syntax {
    minor: u8,
}

impl Syntax {
    fn ctor(self) -> &'static str {
        if self.minor >= 7 {
            "constructor()"
        } else {
            "constructor() public"
        }
    }

    /// `msg.sender` as something that can receive ether.
    fn sender(self) -> &'static str {
        if self.minor >= 8 {
            "payable(msg.sender)"
        } else {
            "msg.sender"
        }
    }

    /// The type of an address parameter that receives ether.
    fn payable(self) -> &'static str {
        if self.minor >= 5 {
            "address payable"
        } else {
            "address"
        }
    }

    /// A stored address made able to receive ether.
    fn to_payable(self, e: &str) -> String {
        if self.minor >= 8 {
            format!("payable({e})")
        } else {
            e.to_string()
        }
    }

    /// Statements that send `amount` to `to` with a low-level call and check the result; the
    /// call is on the first line.
    fn checked_call(self, to: &str, amount: &str) -> Vec<String> {
        match self.minor {
            4 => vec![format!("require({to}.call.value({amount})());")],
            5 => vec![
                format!("(bool ok, ) = {to}.call.value({amount})(\"\");"),
                "require(ok);".into(),
            ],
            _ => vec![
                format!("(bool ok, ) = {to}.call{{value: {amount}}}(\"\");"),
                "require(ok);".into(),
            ],
        }
    }

    /// A low-level call whose result is dropped.
    fn bare_call(self, to: &str, amount: &str) -> String {
        match self.minor {
            4 => format!("{to}.call.value({amount})();"),
            5 => format!("{to}.call.value({amount})(\"\");"),
            _ => format!("{to}.call{{value: {amount}}}(\"\");"),
        }
    }

    /// The type of the owner: one that can receive ether where the compiler allows it.
    fn owner_type(self) -> &'static str {
        if (5..8).contains(&self.minor) {
            "address payable"
        } else {
            "address"
        }
    }

    fn bytes_param(self) -> &'static str {
        if self.minor >= 5 {
            "bytes memory"
        } else {
            "bytes"
        }
    }

    fn fallback(self) -> &'static str {
        if self.minor >= 6 {
            "receive() external payable {}"
        } else if self.minor == 5 {
            "function() external payable {}"
        } else {
            "function() public payable {}"
        }
    }
}

/// Source text being assembled, with the planted flaws found so far.
struct Emitter {
    lines: Vec<String>,
    planted: Vec<Planted>,
    /// Index into `planted` of the first flaw of the function being written, and its first line.
    open: Option<(usize, usize)>,
}

impl Emitter {
    fn line(&mut self, indent: usize, text: impl AsRef<str>) -> usize {
        self.lines
            .push(format!("{}{}", "    ".repeat(indent), text.as_ref()));
        self.lines.len()
    }

    fn blank(&mut self) {
        self.lines.push(String::new());
    }

    fn begin(&mut self, indent: usize, header: impl AsRef<str>) -> usize {
        let line = self.line(indent, header);
        self.open = Some((self.planted.len(), line));
        line
    }

    fn end(&mut self, indent: usize) {
        let last = self.line(indent, "}");
        if let Some((first_flaw, first_line)) = self.open.take() {
            for p in &mut self.planted[first_flaw..] {
                p.region = (first_line, last);
            }
        }
    }

    /// Writes a line holding a planted flaw.
    fn flaw(&mut self, indent: usize, text: impl AsRef<str>, category: Category, what: &str) {
        let line = self.line(indent, text);
        self.planted.push(Planted {
            category,
            line,
            region: (line, line),
            flaw: what.to_string(),
        });
    }

    /// Writes `lines`, the first of which holds a planted flaw when `flaw` is given.
    fn lines_flawed(&mut self, indent: usize, lines: &[String], flaw: Option<(Category, &str)>) {
        for (k, l) in lines.iter().enumerate() {
            match flaw {
                Some((category, what)) if k == 0 => self.flaw(indent, l, category, what),
                _ => {
                    self.line(indent, l);
                }
            }
        }
    }
}

/// Random names for one challenge, distinct from each other and from Solidity keywords.
struct Names {
    rng: StdRng,
    used: Vec<String>,
}

impl Names {
    fn pick(&mut self, options: &[&str]) -> String {
        let mut fresh: Vec<&str> = options
            .iter()
            .copied()
            .filter(|o| !self.used.iter().any(|u| u == o))
            .collect();
        if fresh.is_empty() {
            fresh = options.to_vec();
        }
        let base = fresh[self.rng.gen_range(0..fresh.len())];
        let mut name = base.to_string();
        let mut k = 2;
        while self.used.contains(&name) {
            name = format!("{base}{k}");
            k += 1;
        }
        self.used.push(name.clone());
        name
    }
}

/// The features a challenge is assembled from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feature {
    Vault,
    OwnerChange,
    Kill,
    OriginSweep,
    Rescue,
    Payout,
    Token,
    Fee,
    Payroll,
    Lottery,
    Bonus,
    Allowance,
    ShortAddress,
    Plugin,
    Shadow,
}

const FEATURES: [Feature; 15] = [
    Feature::Vault,
    Feature::OwnerChange,
    Feature::Kill,
    Feature::OriginSweep,
    Feature::Rescue,
    Feature::Payout,
    Feature::Token,
    Feature::Fee,
    Feature::Payroll,
    Feature::Lottery,
    Feature::Bonus,
    Feature::Allowance,
    Feature::ShortAddress,
    Feature::Plugin,
    Feature::Shadow,
];

/// Generates the challenge of a seed: the same seed always gives the same challenge.
pub fn generate(seed: u64) -> Challenge {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6869_6261_6e61_6175);
    let (minor, version) = VERSIONS[rng.gen_range(0..VERSIONS.len())];
    let syntax = Syntax { minor };
    let mut features = FEATURES.to_vec();
    features.shuffle(&mut rng);
    let count = rng.gen_range(3..=6);
    features.truncate(count);
    // Keep them in catalogue order so that related state is declared before use.
    features.sort_by_key(|f| FEATURES.iter().position(|x| x == f));
    // About one challenge in eight is entirely clean; the others plant one to three flaws.
    let clean_only = rng.gen_bool(0.125);
    let mut flawed: Vec<bool> = features.iter().map(|_| false).collect();
    if !clean_only {
        let n = rng.gen_range(1..=3usize).min(features.len());
        let mut order: Vec<usize> = (0..features.len()).collect();
        order.shuffle(&mut rng);
        for k in order.into_iter().take(n) {
            flawed[k] = true;
        }
    }
    let names = Names {
        rng: StdRng::seed_from_u64(rng.r#gen()),
        used: Vec::new(),
    };
    let mut b = Builder {
        s: syntax,
        e: Emitter {
            lines: Vec::new(),
            planted: Vec::new(),
            open: None,
        },
        n: names,
        rng,
    };
    b.write(version, &features, &flawed);
    let mut source = b.e.lines.join("\n");
    source.push('\n');
    let mut planted = b.e.planted;
    planted.sort_by_key(|p| p.line);
    Challenge {
        seed,
        path: format!("challenge-{seed:016x}.sol"),
        source,
        planted,
    }
}

struct Builder {
    s: Syntax,
    e: Emitter,
    n: Names,
    rng: StdRng,
}

impl Builder {
    fn write(&mut self, version: &str, features: &[Feature], flawed: &[bool]) {
        let has = |f: Feature| features.contains(&f);
        let flaw_of = |f: Feature| {
            features
                .iter()
                .position(|x| *x == f)
                .is_some_and(|k| flawed[k])
        };
        let s = self.s;
        let caret = if self.rng.gen_bool(0.5) { "^" } else { "" };
        self.e.line(0, format!("pragma solidity {caret}{version};"));
        self.e.blank();
        let base = self
            .n
            .pick(&["Owned", "Ownable", "Administered", "Governed", "Managed"]);
        let main = self.n.pick(&[
            "Treasury", "Vault", "Pool", "Registry", "Market", "Fund", "Exchange", "Club",
            "Escrow", "Reserve",
        ]);
        let modifier = self
            .n
            .pick(&["onlyOwner", "onlyAdmin", "ownerOnly", "restricted"]);
        // The base contract: an owner and its guard.
        self.e.line(0, format!("contract {base} {{"));
        self.e.line(1, format!("{} public owner;", s.owner_type()));
        self.e.blank();
        self.e.line(1, format!("{} {{", s.ctor()));
        self.e.line(2, "owner = msg.sender;");
        self.e.line(1, "}");
        self.e.blank();
        self.e.line(1, format!("modifier {modifier}() {{"));
        self.e.line(2, "require(msg.sender == owner);");
        self.e.line(2, "_;");
        self.e.line(1, "}");
        self.e.line(0, "}");
        self.e.blank();
        self.e.line(0, format!("contract {main} is {base} {{"));
        if has(Feature::Shadow) && flaw_of(Feature::Shadow) {
            self.e.flaw(
                1,
                format!("{} public owner;", s.owner_type()),
                Category::Other,
                "a state variable that shadows the inherited owner",
            );
        }
        let m = modifier.as_str();
        // Every contract holds ether through at least its fallback, and the owner can always
        // take it out, so no feature's absence leaves ether locked.
        self.e.line(1, s.fallback());
        self.e.blank();
        self.e.begin(
            1,
            format!("function withdrawFees(uint256 amount) public {m} {{"),
        );
        self.e
            .line(2, format!("{}.transfer(amount);", s.to_payable("owner")));
        self.e.end(1);
        for (k, f) in features.iter().enumerate() {
            if *f == Feature::Shadow {
                continue;
            }
            self.e.blank();
            self.feature(*f, flawed[k], m);
        }
        self.e.line(0, "}");
    }

    fn feature(&mut self, f: Feature, flawed: bool, m: &str) {
        let s = self.s;
        let e = &mut self.e;
        match f {
            Feature::Vault => {
                let bal = self.n.pick(&["balances", "deposits", "credit", "stakes"]);
                let dep = self.n.pick(&["deposit", "fund", "putIn", "stake"]);
                let wd = self.n.pick(&["withdraw", "cashOut", "takeOut", "redeem"]);
                e.line(1, format!("mapping(address => uint256) public {bal};"));
                e.blank();
                e.begin(1, format!("function {dep}() public payable {{"));
                e.line(2, format!("{bal}[msg.sender] += msg.value;"));
                e.end(1);
                e.blank();
                e.begin(1, format!("function {wd}() public {{"));
                e.line(2, format!("uint256 amount = {bal}[msg.sender];"));
                e.line(2, "require(amount > 0);");
                let call = s.checked_call("msg.sender", "amount");
                if flawed {
                    e.lines_flawed(
                        2,
                        &call,
                        Some((
                            Category::Reentrancy,
                            "ether sent before the balance is cleared",
                        )),
                    );
                    e.line(2, format!("{bal}[msg.sender] = 0;"));
                } else {
                    e.line(2, format!("{bal}[msg.sender] = 0;"));
                    e.lines_flawed(2, &call, None);
                }
                e.end(1);
            }
            Feature::OwnerChange => {
                let name =
                    self.n
                        .pick(&["changeOwner", "setOwner", "transferOwnership", "handOver"]);
                let guard = if flawed {
                    String::new()
                } else {
                    format!(" {m}")
                };
                e.begin(
                    1,
                    format!("function {name}({} next) public{guard} {{", s.owner_type()),
                );
                e.line(2, "require(next != address(0));");
                if flawed {
                    e.flaw(
                        2,
                        "owner = next;",
                        Category::AccessControl,
                        "anyone can make themselves the owner",
                    );
                } else {
                    e.line(2, "owner = next;");
                }
                e.end(1);
            }
            Feature::Kill => {
                let name = self.n.pick(&["close", "shutdown", "destroy", "retire"]);
                let guard = if flawed {
                    String::new()
                } else {
                    format!(" {m}")
                };
                e.begin(1, format!("function {name}() public{guard} {{"));
                if flawed {
                    e.flaw(
                        2,
                        format!("selfdestruct({});", s.sender()),
                        Category::AccessControl,
                        "anyone can destroy the contract",
                    );
                } else {
                    e.line(2, format!("selfdestruct({});", s.to_payable("owner")));
                }
                e.end(1);
            }
            Feature::OriginSweep => {
                let name = self.n.pick(&["sweep", "collect", "drain", "skim"]);
                let who = if flawed { "tx.origin" } else { "msg.sender" };
                e.begin(1, format!("function {name}({} to) public {{", s.payable()));
                let check = format!("require({who} == owner);");
                if flawed {
                    e.flaw(
                        2,
                        check,
                        Category::AccessControl,
                        "the owner check uses tx.origin",
                    );
                } else {
                    e.line(2, check);
                }
                e.line(2, "to.transfer(address(this).balance);");
                e.end(1);
            }
            Feature::Rescue => {
                let name = self
                    .n
                    .pick(&["rescue", "recover", "emergencyWithdraw", "evacuate"]);
                let guard = if flawed {
                    String::new()
                } else {
                    format!(" {m}")
                };
                e.begin(
                    1,
                    format!("function {name}({} to) public{guard} {{", s.payable()),
                );
                let send = "to.transfer(address(this).balance);";
                if flawed {
                    e.flaw(
                        2,
                        send,
                        Category::AccessControl,
                        "anyone can send the contract's ether anywhere",
                    );
                } else {
                    e.line(2, send);
                }
                e.end(1);
            }
            Feature::Payout => {
                let name = self.n.pick(&["pay", "payOut", "reward", "settle"]);
                let low_level = self.rng.gen_bool(0.5);
                e.begin(
                    1,
                    format!(
                        "function {name}({} to, uint256 amount) public {m} {{",
                        s.payable()
                    ),
                );
                match (flawed, low_level) {
                    (true, false) => e.flaw(
                        2,
                        "to.send(amount);",
                        Category::UncheckedCalls,
                        "the result of send is ignored",
                    ),
                    (true, true) => e.flaw(
                        2,
                        s.bare_call("to", "amount"),
                        Category::UncheckedCalls,
                        "the result of a low-level call is ignored",
                    ),
                    (false, false) => {
                        e.line(2, "require(to.send(amount));");
                    }
                    (false, true) => e.lines_flawed(2, &s.checked_call("to", "amount"), None),
                }
                e.end(1);
            }
            Feature::Token => {
                let map = self.n.pick(&["points", "tokens", "units", "shares"]);
                let name = self.n.pick(&["move", "give", "shift", "pass"]);
                e.line(1, format!("mapping(address => uint256) public {map};"));
                e.blank();
                e.begin(
                    1,
                    format!("function {name}(address to, uint256 amount) public {{"),
                );
                let sub = format!("{map}[msg.sender] -= amount;");
                let add = format!("{map}[to] += amount;");
                let what = "a balance can wrap around";
                match (s.minor >= 8, flawed) {
                    (false, true) => {
                        e.flaw(2, sub, Category::Arithmetic, what);
                        e.flaw(2, add, Category::Arithmetic, what);
                    }
                    (false, false) => {
                        e.line(2, format!("require({map}[msg.sender] >= amount);"));
                        e.line(2, format!("require({map}[to] + amount >= {map}[to]);"));
                        e.line(2, sub);
                        e.line(2, add);
                    }
                    (true, true) => {
                        e.line(2, "unchecked {");
                        e.flaw(3, sub, Category::Arithmetic, what);
                        e.line(2, "}");
                        e.line(2, add);
                    }
                    (true, false) => {
                        e.line(2, format!("require({map}[msg.sender] >= amount);"));
                        e.line(2, sub);
                        e.line(2, add);
                    }
                }
                e.end(1);
            }
            Feature::Fee => {
                let name = self.n.pick(&["feeFor", "commission", "cut", "levy"]);
                let bps = self.rng.gen_range(5..300u32);
                e.begin(
                    1,
                    format!("function {name}(uint256 amount) public pure returns (uint256) {{"),
                );
                if flawed {
                    e.flaw(
                        2,
                        format!("return amount / 10000 * {bps};"),
                        Category::Arithmetic,
                        "division before multiplication",
                    );
                } else {
                    e.line(2, format!("return amount * {bps} / 10000;"));
                }
                e.end(1);
            }
            Feature::Payroll => {
                let list = self.n.pick(&["members", "payees", "staff", "partners"]);
                let add = self.n.pick(&["addMember", "enrol", "hire", "admit"]);
                let run = self.n.pick(&["distribute", "payAll", "payday", "share"]);
                let ty = if s.minor >= 5 && s.minor < 8 {
                    "address payable[]"
                } else {
                    "address[]"
                };
                let param = if s.minor >= 5 && s.minor < 8 {
                    "address payable"
                } else {
                    "address"
                };
                e.line(1, format!("{ty} public {list};"));
                let owed = (!flawed).then(|| self.n.pick(&["owed", "pending", "due", "unpaid"]));
                if let Some(owed) = &owed {
                    e.line(1, format!("mapping(address => uint256) public {owed};"));
                }
                e.blank();
                e.begin(1, format!("function {add}({param} who) public {m} {{"));
                e.line(2, format!("{list}.push(who);"));
                e.end(1);
                e.blank();
                e.begin(1, format!("function {run}() public {m} {{"));
                e.line(2, format!("require({list}.length > 0);"));
                e.line(
                    2,
                    format!("uint256 each = address(this).balance / {list}.length;"),
                );
                e.line(2, format!("for (uint256 i = 0; i < {list}.length; i++) {{"));
                match &owed {
                    None => e.flaw(
                        3,
                        format!("{}.transfer(each);", s.to_payable(&format!("{list}[i]"))),
                        Category::DenialOfService,
                        "one payee that rejects ether blocks everyone's pay",
                    ),
                    Some(owed) => {
                        e.line(3, format!("{owed}[{list}[i]] += each;"));
                    }
                }
                e.line(2, "}");
                e.end(1);
                if let Some(owed) = &owed {
                    let claim = self.n.pick(&["claim", "collectPay", "withdrawPay"]);
                    e.blank();
                    e.begin(1, format!("function {claim}() public {{"));
                    e.line(2, format!("uint256 amount = {owed}[msg.sender];"));
                    e.line(2, format!("{owed}[msg.sender] = 0;"));
                    e.line(2, format!("{}.transfer(amount);", s.sender()));
                    e.end(1);
                }
            }
            Feature::Lottery => {
                let name = self.n.pick(&["play", "bet", "spin", "gamble"]);
                let odds = self.rng.gen_range(3..20u32);
                if flawed {
                    e.begin(1, format!("function {name}() public payable {{"));
                    e.line(2, "require(msg.value == 1 ether);");
                    e.flaw(
                        2,
                        format!(
                            "uint256 pick = uint256(keccak256(abi.encodePacked(block.timestamp, msg.sender))) % {odds};"
                        ),
                        Category::BadRandomness,
                        "the winning number comes from block data",
                    );
                    e.line(2, "if (pick == 0) {");
                    e.line(3, format!("{}.transfer(2 ether);", s.sender()));
                    e.line(2, "}");
                    e.end(1);
                } else {
                    // The owner draws with a number it committed to before the bets.
                    let winner = self.n.pick(&["winner", "champion", "lucky"]);
                    e.line(1, format!("address public {winner};"));
                    e.blank();
                    e.begin(
                        1,
                        format!("function {name}({} who) public {m} {{", s.payable()),
                    );
                    e.line(2, format!("{winner} = who;"));
                    e.line(2, "who.transfer(2 ether);");
                    e.end(1);
                }
            }
            Feature::Bonus => {
                let at = self
                    .n
                    .pick(&["bonusTime", "luckyTime", "prizeAt", "jackpotAt"]);
                let name = self.n.pick(&["claimBonus", "grabPrize", "takeBonus"]);
                e.line(1, format!("uint256 public {at};"));
                e.blank();
                e.begin(1, format!("function {name}() public {{"));
                if flawed {
                    e.flaw(
                        2,
                        format!("if (block.timestamp == {at}) {{"),
                        Category::TimeManipulation,
                        "an exact timestamp decides a payout",
                    );
                    e.line(3, format!("{at} = 0;"));
                    e.line(3, format!("{}.transfer(1 ether);", s.sender()));
                    e.line(2, "}");
                } else {
                    e.line(2, format!("require(msg.sender == owner && {at} > 0);"));
                    e.line(2, format!("{at} = 0;"));
                    e.line(2, format!("{}.transfer(1 ether);", s.to_payable("owner")));
                }
                e.end(1);
            }
            Feature::Allowance => {
                let map = self.n.pick(&["allowed", "allowances", "approvals"]);
                e.line(
                    1,
                    format!("mapping(address => mapping(address => uint256)) public {map};"),
                );
                e.line(
                    1,
                    "event Approval(address indexed holder, address indexed spender, uint256 value);",
                );
                e.blank();
                e.begin(
                    1,
                    "function approve(address spender, uint256 value) public returns (bool) {",
                );
                let set = format!("{map}[msg.sender][spender] = value;");
                if flawed {
                    e.flaw(
                        2,
                        set,
                        Category::FrontRunning,
                        "approve overwrites the allowance",
                    );
                } else {
                    e.line(
                        2,
                        format!("require(value == 0 || {map}[msg.sender][spender] == 0);"),
                    );
                    e.line(2, set);
                }
                e.line(2, "emit Approval(msg.sender, spender, value);");
                e.line(2, "return true;");
                e.end(1);
            }
            Feature::ShortAddress => {
                let map = self.n.pick(&["ledger", "holdings", "accounts"]);
                e.line(1, format!("mapping(address => uint256) public {map};"));
                e.blank();
                let header = "function transfer(address to, uint256 value) public returns (bool) {";
                // Only compilers before 0.5 let a short address through.
                let short = flawed && s.minor < 5;
                if short {
                    e.open = Some((e.planted.len(), e.lines.len() + 1));
                    e.flaw(
                        1,
                        header,
                        Category::ShortAddress,
                        "no calldata length check on an old compiler",
                    );
                } else {
                    e.begin(1, header);
                    if s.minor < 5 {
                        e.line(2, "require(msg.data.length >= 68);");
                    }
                }
                e.line(2, format!("require({map}[msg.sender] >= value);"));
                if s.minor < 8 {
                    e.line(2, format!("require({map}[to] + value >= {map}[to]);"));
                }
                e.line(2, format!("{map}[msg.sender] -= value;"));
                e.line(2, format!("{map}[to] += value;"));
                e.line(2, "return true;");
                e.end(1);
            }
            Feature::Plugin => {
                let name = self.n.pick(&["execute", "runPlugin", "forward", "hook"]);
                let bytes = s.bytes_param();
                if flawed {
                    e.begin(
                        1,
                        format!("function {name}(address target, {bytes} data) public {{"),
                    );
                    let call = if s.minor == 4 {
                        vec!["require(target.delegatecall(data));".to_string()]
                    } else {
                        vec![
                            "(bool ok, ) = target.delegatecall(data);".to_string(),
                            "require(ok);".to_string(),
                        ]
                    };
                    e.lines_flawed(
                        2,
                        &call,
                        Some((
                            Category::Other,
                            "delegatecall to an address the caller picks",
                        )),
                    );
                    e.end(1);
                } else {
                    let log = self.n.pick(&["Executed", "Forwarded", "Hooked"]);
                    e.line(1, format!("event {log}(address target, uint256 size);"));
                    e.blank();
                    e.begin(
                        1,
                        format!("function {name}(address target, {bytes} data) public {m} {{"),
                    );
                    e.line(2, format!("emit {log}(target, data.length);"));
                    e.end(1);
                }
            }
            Feature::Shadow => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_challenge() {
        assert_eq!(generate(42), generate(42));
        assert_ne!(generate(42).source, generate(43).source);
    }

    #[test]
    fn scoring_matches_inside_the_region_once() {
        let planted = vec![Planted {
            category: Category::Reentrancy,
            line: 12,
            region: (10, 16),
            flaw: String::new(),
        }];
        let exact = score(&planted, &[(Category::Reentrancy, 12)]);
        assert_eq!(exact.score.true_positives, 1);
        let nearby = score(
            &planted,
            &[(Category::Reentrancy, 10), (Category::Reentrancy, 14)],
        );
        assert_eq!(
            (nearby.score.true_positives, nearby.score.false_positives),
            (1, 1)
        );
        let wrong = score(
            &planted,
            &[(Category::Arithmetic, 12), (Category::Reentrancy, 30)],
        );
        assert_eq!(
            (
                wrong.score.true_positives,
                wrong.score.false_positives,
                wrong.score.false_negatives
            ),
            (0, 2, 1)
        );
        assert_eq!(f1(&wrong.score), 0.0);
        assert_eq!(f1(&Score::default()), 1.0);
    }
}
