//! Bad input never panics or hangs: binary, empty, huge, deeply nested, unterminated.

use hibana_audit::{MAX_FILE_BYTES, analyse_bytes, analyse_source, parser::parse};
use proptest::prelude::*;

#[test]
fn binary_file_is_rejected_with_a_clear_error() {
    let r = analyse_bytes("x.sol", &[0x7f, b'E', b'L', b'F', 0, 1, 2, 0xff]);
    assert_eq!(r.errors.len(), 1);
    assert!(
        r.errors[0].message.contains("binary"),
        "{}",
        r.errors[0].message
    );
    let r = analyse_bytes("x.sol", &[0xff, 0xfe, b'a']);
    assert!(r.errors[0].message.contains("UTF-8"));
}

#[test]
fn empty_and_oversized_files_are_errors() {
    assert!(
        analyse_bytes("e.sol", b"").errors[0]
            .message
            .contains("empty")
    );
    assert!(
        analyse_bytes("e.sol", b"  \n\t ").errors[0]
            .message
            .contains("empty")
    );
    let big = vec![b' '; MAX_FILE_BYTES + 1];
    assert!(
        analyse_bytes("big.sol", &big).errors[0]
            .message
            .contains("limit")
    );
}

#[test]
fn deep_nesting_is_capped_not_a_stack_overflow() {
    let depth = 100_000;
    let src = format!(
        "contract A {{ function f() public {{ uint x = {}1{}; }} }}",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    let (unit, errors) = parse(&src);
    assert_eq!(unit.contracts.len(), 1);
    assert!(
        errors.iter().any(|e| e.message.contains("nesting deeper")),
        "{errors:?}"
    );
    let blocks = format!(
        "contract A {{ function f() public {}{} }}",
        "{".repeat(depth),
        "}".repeat(depth)
    );
    assert!(!parse(&blocks).1.is_empty());
    let unary = format!(
        "contract A {{ function f() public {{ uint x = {}1; }} }}",
        "-".repeat(depth)
    );
    assert!(!parse(&unary).1.is_empty());
}

/// Chains the parser builds in a loop (`x.a.a…`, `f()()…`, `1 + 1 + …`) still make trees as
/// deep as they are long: past 1,000 links they are an error, not a stack overflow later.
#[test]
fn long_chains_are_capped_not_a_stack_overflow() {
    let long = [
        format!("x{}", ".a".repeat(200_000)),
        format!("f{}", "()".repeat(200_000)),
        format!("1{}", " + 1".repeat(100_000)),
        // Chains inside chains: each under the cap, together far over it.
        format!("x{} {}", ".a".repeat(990), "+ 1 ".repeat(990)),
        format!("{}x{}", "(".repeat(150), ").a.a.a.a.a.a.a.a".repeat(150)),
        format!("new uint{}(1)", "[]".repeat(200_000)),
    ];
    for chain in long {
        let src = format!("contract A {{ function k() public {{ uint y = {chain}; }} }}");
        let r = analyse_source("c.sol", &src);
        assert!(
            r.errors
                .iter()
                .any(|e| e.message.contains("deeper than 1000")),
            "{:?}",
            r.errors
        );
    }
    let fine = format!(
        "contract A {{ function k() public {{ uint y = 1{}; x{}; }} }}",
        " + 1".repeat(500),
        ".a".repeat(500)
    );
    let r = analyse_source("c.sol", &fine);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[test]
fn unterminated_comment_and_string_are_reported() {
    let r = analyse_source("c.sol", "pragma solidity ^0.8.0;\ncontract A { /* open");
    assert!(
        r.errors
            .iter()
            .any(|e| e.message.contains("unterminated block comment"))
    );
    let r = analyse_source("s.sol", "contract A { string s = \"open; }");
    assert!(
        r.errors
            .iter()
            .any(|e| e.message.contains("unterminated string"))
    );
}

#[test]
fn unknown_pragma_is_an_error() {
    let r = analyse_source("p.sol", "pragma whatever 1;\ncontract A {}");
    assert!(
        r.errors
            .iter()
            .any(|e| e.message.contains("unknown pragma `whatever`"))
    );
}

#[test]
fn a_broken_function_does_not_hide_the_rest_of_the_contract() {
    let src = "pragma solidity ^0.4.24;
contract A {
    function broken() public { uint x = ; }
    function kill() public { selfdestruct(msg.sender); }
}";
    let r = analyse_source("b.sol", src);
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert_eq!(r.position(r.errors[0].span.map_or(0, |s| s.start)).0, 3);
    assert!(
        r.findings
            .iter()
            .any(|f| f.rule.id == "unprotected-selfdestruct")
    );
}

#[test]
fn legacy_and_modern_syntax_parse_without_errors() {
    let src = r#"
pragma solidity >=0.4.0 <0.9.0;
pragma experimental ABIEncoderV2;
import "./Other.sol";
import {A as B} from "x.sol";
library L { function add(uint a, uint b) internal pure returns (uint) { return a + b; } }
interface I { function f(uint) external returns (bool); }
contract Old {
    uint constant X = 2 years + 1 ether;
    struct S { uint a; mapping(address => uint) m; }
    event E(address indexed who, uint v);
    function Old() { var (a, b) = (1, 2); if (a > b) throw; }
    function c() constant returns (bytes32) { return sha3(msg.sender, now); }
    function () payable { msg.sender.call.value(1)(); suicide(msg.sender); }
}
abstract contract New is Old, I {
    using L for uint;
    uint[] public xs;
    mapping(address => mapping(address => uint)) public allow;
    error Bad(uint code);
    modifier m(uint v) virtual { require(v > 0, "v"); _; }
    constructor() payable {}
    receive() external payable {}
    fallback() external {}
    function g(uint[] calldata a, address payable to) external override(I) m(1) returns (uint s, bool) {
        unchecked { s = a.length ** 2; }
        (bool ok, ) = to.call{value: 1, gas: 5000}(abi.encodeWithSignature("f()"));
        (uint p, , uint q) = (1, 2, 3);
        S storage st = ss[0];
        uint[] memory tmp = new uint[](3);
        tmp[0] = p > q ? p : q;
        for (uint i; i < a.length; ++i) { if (i == 2) continue; else break; }
        do { s--; } while (s > 10);
        try I(to).f(1) returns (bool r) { emit E(to, r ? 1 : 0); } catch Error(string memory) { revert Bad(1); } catch { revert(); }
        assembly { let x := sload(0) sstore(0, add(x, 1)) }
        delete xs;
        xs.push(uint(keccak256(abi.encodePacked(block.timestamp))) % 10);
        payable(msg.sender).transfer(address(this).balance);
        return (s, ok);
    }
    S[] ss;
}
"#;
    let (unit, errors) = parse(src);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(unit.contracts.len(), 4);
    assert_eq!(unit.imports.len(), 2);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = analyse_bytes("fuzz.sol", &bytes);
    }

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,512}") {
        let _ = analyse_source("fuzz.sol", &s);
    }

    #[test]
    fn solidity_like_token_soup_never_panics(
        words in proptest::collection::vec(
            prop_oneof![
                Just("contract"), Just("function"), Just("{"), Just("}"), Just("("), Just(")"),
                Just(";"), Just("if"), Just("else"), Just("x"), Just("="), Just("+="), Just("msg.sender"),
                Just(".call.value(1)()"), Just("modifier"), Just("_"), Just("returns"), Just("uint"),
                Just("mapping"), Just("=>"), Just("["), Just("]"), Just("assembly"), Just("\""),
                Just("/*"), Just("pragma"), Just("for"), Just("while"), Just("1"), Just(","), Just("?"), Just(":"),
                Just("is"), Just("new"), Just("delete"), Just("throw"), Just("var"), Just("unchecked"), Just("try"),
            ],
            0..200,
        )
    ) {
        let src = words.join(" ");
        let _ = analyse_source("soup.sol", &src);
    }
}

/// Hostile shapes that could make analysis exponential or quadratic must finish quickly.
#[test]
fn pathological_structure_stays_fast() {
    use std::time::{Duration, Instant};
    let budget = Duration::from_secs(20);

    // Deeply nested loops: walked twice each by the path analysis.
    let depth = 90;
    let mut body = String::from("x.call.value(1)(); n = 1;");
    for _ in 0..depth {
        body = format!("for (uint i = 0; i < 3; i++) {{ {body} }}");
    }
    let src = format!(
        "pragma solidity ^0.4.24; contract A {{ uint n; address x; function f() public {{ {body} }} }}"
    );
    let start = Instant::now();
    let r = analyse_source("loops.sol", &src);
    assert!(
        start.elapsed() < budget,
        "nested loops took {:?}",
        start.elapsed()
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);

    // Helpers that call helpers many times: inlining must be bounded.
    let mut src = String::from("pragma solidity ^0.4.24; contract B { uint n; address x;\n");
    src.push_str("function h0() internal { x.call.value(1)(); n = 1; }\n");
    for level in 1..6 {
        let calls = format!("h{}();", level - 1).repeat(200);
        src.push_str(&format!("function h{level}() internal {{ {calls} }}\n"));
    }
    src.push_str("function f() public { h5(); } }");
    let start = Instant::now();
    analyse_source("calls.sol", &src);
    assert!(
        start.elapsed() < budget,
        "call fan-out took {:?}",
        start.elapsed()
    );

    // Diamond-shaped inheritance: linearisation must be memoised.
    let mut src = String::from(
        "pragma solidity ^0.5.0; contract C0 { uint a; }\ncontract C1 is C0 { uint b; }\n",
    );
    for i in 2..400 {
        src.push_str(&format!(
            "contract C{i} is C{}, C{} {{ function f{i}() public payable {{}} }}\n",
            i - 2,
            i - 1
        ));
    }
    let start = Instant::now();
    analyse_source("diamond.sol", &src);
    assert!(
        start.elapsed() < budget,
        "inheritance took {:?}",
        start.elapsed()
    );

    // Many statements and conditions in one function.
    let mut body = String::new();
    for i in 0..5000 {
        body.push_str(&format!("require(a{i} < b); s -= a{i}; t = u * a{i}; "));
    }
    let src = format!(
        "pragma solidity ^0.4.24; contract D {{ uint s; uint t; uint u; function f(uint b) public {{ {body} }} }}"
    );
    let start = Instant::now();
    analyse_source("long.sol", &src);
    assert!(
        start.elapsed() < budget,
        "long function took {:?}",
        start.elapsed()
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    let src = "pragma solidity ^0.4.24;\ncontract A {\n    string s = \"ééé\"; function k() public { selfdestruct(msg.sender); }\n}";
    let r = analyse_source("u.sol", src);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule.id == "unprotected-selfdestruct")
        .expect("finding");
    let (line, column) = r.position(f.span.start);
    assert_eq!(line, 3);
    let third = src.lines().nth(2).expect("third line");
    let byte = third.find("selfdestruct").expect("call on the line");
    // Three two-byte characters precede the call: bytes and characters differ by three.
    assert_eq!(column, third[..byte].chars().count() + 1);
    assert_eq!(column + 3, byte + 1);
}
