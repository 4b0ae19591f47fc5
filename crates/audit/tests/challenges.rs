//! The auditor against generated challenges: planted flaws must be found, clean code left alone.

use std::collections::BTreeSet;

use hibana_audit::{
    Category, analyse_source,
    challenge::{self, Reported},
    evaluate::Score,
};

fn reported(c: &challenge::Challenge) -> Vec<Reported> {
    let report = analyse_source(&c.path, &c.source);
    assert!(
        report.errors.is_empty(),
        "challenge {} does not parse: {:?}\n{}",
        c.seed,
        report.errors,
        c.source
    );
    report
        .findings
        .iter()
        .map(|f| (f.rule.category, report.position(f.span.start).0))
        .collect()
}

#[test]
fn the_auditor_finds_planted_flaws_with_few_false_alarms() {
    let mut total = Score::default();
    let mut categories = BTreeSet::new();
    let mut versions = BTreeSet::new();
    let mut clean = 0;
    let mut failures = Vec::new();
    for seed in 0..400 {
        let c = challenge::generate(seed);
        categories.extend(c.planted.iter().map(|p| p.category));
        versions.insert(c.source.lines().next().unwrap_or_default().to_string());
        if c.planted.is_empty() {
            clean += 1;
        }
        let cmp = challenge::score(&c.planted, &reported(&c));
        total.true_positives += cmp.score.true_positives;
        total.false_positives += cmp.score.false_positives;
        total.false_negatives += cmp.score.false_negatives;
        if !cmp.extra.is_empty() || !cmp.missed.is_empty() {
            failures.push(format!(
                "seed {seed}: extra {:?}, missed {:?}",
                cmp.extra,
                cmp.missed
                    .iter()
                    .map(|p| (p.category, p.line, p.flaw.as_str()))
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert_eq!(categories.len(), Category::ALL.len(), "{categories:?}");
    assert!(versions.len() >= 6, "{versions:?}");
    assert!(clean >= 20, "only {clean} clean challenges");
    let (p, r) = (total.precision_permille(), total.recall_permille());
    println!("{total:?}: precision {p}‰, recall {r}‰");
    for f in failures.iter().take(30) {
        println!("{f}");
    }
    assert!(
        p >= 970 && r >= 970,
        "precision {p}‰, recall {r}‰ on generated challenges:\n{}",
        failures.join("\n")
    );
}

#[test]
fn a_silent_or_noisy_auditor_scores_low() {
    let c = (0..50)
        .map(challenge::generate)
        .find(|c| c.planted.len() >= 2)
        .expect("a challenge with two flaws");
    let silent = challenge::score(&c.planted, &[]);
    assert_eq!(challenge::f1(&silent.score), 0.0);
    // Flagging every line with every category finds everything but is mostly noise.
    let lines = c.source.lines().count();
    let noise: Vec<Reported> = (1..=lines)
        .flat_map(|l| Category::ALL.map(|cat| (cat, l)))
        .collect();
    let noisy = challenge::score(&c.planted, &noise);
    assert_eq!(noisy.score.false_negatives, 0);
    assert!(challenge::f1(&noisy.score) < 0.05);
    let perfect: Vec<Reported> = c.planted.iter().map(|p| (p.category, p.line)).collect();
    assert_eq!(
        challenge::f1(&challenge::score(&c.planted, &perfect).score),
        1.0
    );
}

#[test]
fn a_report_read_back_from_json_has_the_same_findings() {
    for seed in 0..40 {
        let c = challenge::generate(seed);
        let report = analyse_source(&c.path, &c.source);
        let doc = hibana_audit::report::json_value(std::slice::from_ref(&report));
        let back = hibana_audit::report::from_json(&c.path, &c.source, &doc["files"][0]).unwrap();
        let key = |r: &hibana_audit::FileReport| -> Vec<_> {
            r.findings
                .iter()
                .map(|f| (f.rule.id, f.span, f.message.clone(), f.function.clone()))
                .collect()
        };
        assert_eq!(key(&back), key(&report), "seed {seed}");
        assert_eq!(back.contracts, report.contracts);
    }
    let garbage = serde_json::json!({"findings": [{"category": "nonsense", "line": 1}]});
    assert!(hibana_audit::report::from_json("x.sol", "contract A {}", &garbage).is_err());
}
