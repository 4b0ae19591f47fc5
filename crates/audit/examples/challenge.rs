//! Prints the audit challenge of a seed and what was planted in it: `cargo run -p hibana-audit --example challenge -- SEED`.

fn main() {
    let seed = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let c = hibana_audit::challenge::generate(seed);
    for (k, line) in c.source.lines().enumerate() {
        println!("{:3} {line}", k + 1);
    }
    for p in &c.planted {
        println!(
            "planted: {:?} line {} in {:?}: {}",
            p.category, p.line, p.region, p.flaw
        );
    }
}
