//! Side by side with Slither: time, findings, precision and recall of hibana-audit and of Slither
//! on the same labelled files (`corpus/` and the held-out sets next to it, each with a
//! `manifest.json`).
//!
//! Run with `cargo bench -p hibana-audit --bench slither` (add `-- --verbose` for every file's
//! findings, `-- --filter TEXT` to keep the files whose path contains TEXT, `-- --no-slither` for
//! our numbers alone). Slither comes from `scripts/slither-setup.sh`, which installs it under
//! `${HIBANA_SLITHER_HOME:-$HOME/.cache/hibana-slither}` with `solc` wrappers over solc-js;
//! `HIBANA_SLITHER` may name another `slither` executable (then the wrappers are used when present,
//! otherwise the `solc` on `PATH`). Without Slither the benchmark prints how to install it and
//! still measures hibana-audit.
//!
//! Scoring. hibana-audit is scored exactly as `hibana audit --evaluate` does (same line, same
//! category; the totals are checked against `evaluate::evaluate`). Slither reports a finding as
//! a set of elements (the function, then the statements involved), so a Slither result *covers*
//! the lines of its statement elements in the analysed file, or, when it has none, the whole
//! source range of its first element (the function, variable or contract it names). An expected
//! finding is a true positive when a Slither result of the same category covers its line; a
//! Slither result is a false positive when it covers no expected finding of its category. A
//! looser variant, printed as one line, lets a result cover the whole of every function it names.
//! Only detectors in [`SLITHER_CATEGORIES`] are scored; the others are listed as not scored.
//! Slither's time includes its compile through solc-js (node, emscripten); the compile alone is
//! timed in a separate run of the same wrapper so it can be subtracted.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use hibana_audit::{
    Category, analyse_bytes,
    evaluate::{Score, evaluate, load_manifest},
};
use serde_json::Value;

/// Slither detectors (by `check` name) that report a DASP-10 category, as the corpus README
/// defines them. Detectors not listed (informational, optimisation, ERC conformance, missing
/// events or zero checks, ...) are not scored.
const SLITHER_CATEGORIES: &[(&str, Category)] = &[
    ("reentrancy-eth", Category::Reentrancy),
    ("reentrancy-no-eth", Category::Reentrancy),
    ("reentrancy-benign", Category::Reentrancy),
    ("reentrancy-balance", Category::Reentrancy),
    ("token-reentrancy", Category::Reentrancy),
    ("suicidal", Category::AccessControl),
    ("arbitrary-send-eth", Category::AccessControl),
    ("arbitrary-send-erc20", Category::AccessControl),
    ("arbitrary-send-erc20-permit", Category::AccessControl),
    ("tx-origin", Category::AccessControl),
    ("unprotected-upgrade", Category::AccessControl),
    ("protected-vars", Category::AccessControl),
    ("controlled-array-length", Category::AccessControl),
    ("divide-before-multiply", Category::Arithmetic),
    ("incorrect-exp", Category::Arithmetic),
    ("incorrect-shift", Category::Arithmetic),
    ("unchecked-lowlevel", Category::UncheckedCalls),
    ("unchecked-send", Category::UncheckedCalls),
    ("unchecked-transfer", Category::UncheckedCalls),
    ("unused-return", Category::UncheckedCalls),
    ("calls-loop", Category::DenialOfService),
    ("incorrect-equality", Category::DenialOfService),
    ("return-bomb", Category::DenialOfService),
    ("weak-prng", Category::BadRandomness),
    ("gelato-unprotected-randomness", Category::BadRandomness),
    ("timestamp", Category::TimeManipulation),
    ("uninitialized-storage", Category::Other),
    ("shadowing-state", Category::Other),
    ("shadowing-local", Category::Other),
    ("shadowing-abstract", Category::Other),
    ("locked-ether", Category::Other),
    ("controlled-delegatecall", Category::Other),
];

/// Longest a single Slither (or compiler) run may take before it is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// What the compiler wrapper is asked for, as crytic-compile asks for it.
const COMBINED_JSON: &str = "abi,ast,bin,bin-runtime,srcmap,srcmap-runtime,userdoc,devdoc,hashes";

fn slither_category(check: &str) -> Option<Category> {
    SLITHER_CATEGORIES
        .iter()
        .find(|(name, _)| *name == check)
        .map(|(_, c)| *c)
}

struct Options {
    verbose: bool,
    filter: Option<String>,
    slither: bool,
    rounds: usize,
}

fn options() -> Options {
    let mut o = Options {
        verbose: false,
        filter: None,
        slither: true,
        rounds: 20,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--verbose" | "-v" => o.verbose = true,
            "--no-slither" => o.slither = false,
            "--filter" => o.filter = args.next(),
            "--rounds" => o.rounds = args.next().and_then(|n| n.parse().ok()).unwrap_or(20),
            _ => {} // `cargo bench` passes `--bench`
        }
    }
    o.rounds = o.rounds.max(1);
    o
}

/// One labelled file.
struct Case {
    set: String,
    dir: PathBuf,
    rel: String,
    bytes: Vec<u8>,
    expected: Vec<(usize, Category)>,
    contracts: usize,
    ours: Vec<(usize, Category, &'static str)>,
}

impl Case {
    fn name(&self) -> String {
        format!("{}/{}", self.set, self.rel)
    }
}

/// `corpus/` first, then every other folder next to it that holds a manifest.
fn manifests() -> Vec<(String, PathBuf)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut sets: Vec<(String, PathBuf)> = fs::read_dir(&root)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.join("manifest.json").is_file())
                .filter_map(|p| {
                    let name = p.file_name()?.to_string_lossy().into_owned();
                    Some((name, p.join("manifest.json")))
                })
                .collect()
        })
        .unwrap_or_default();
    sets.sort_by_key(|(name, _)| (name != "corpus", name.clone()));
    sets
}

fn load_cases(filter: Option<&str>) -> Vec<Case> {
    let mut cases = Vec::new();
    for (set, manifest_path) in manifests() {
        let manifest = match load_manifest(&manifest_path) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("skipping {set}: {e}");
                continue;
            }
        };
        let dir = manifest_path
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf();
        for entry in manifest.files {
            let Ok(bytes) = fs::read(dir.join(&entry.path)) else {
                eprintln!("skipping {set}/{}: unreadable", entry.path);
                continue;
            };
            let case = Case {
                set: set.clone(),
                dir: dir.clone(),
                rel: entry.path.clone(),
                bytes,
                expected: entry
                    .expected
                    .iter()
                    .filter_map(|e| Some((e.line, Category::parse(&e.category)?)))
                    .collect(),
                contracts: 0,
                ours: Vec::new(),
            };
            if filter.is_none_or(|f| case.name().contains(f)) {
                cases.push(case);
            }
        }
    }
    cases
}

/// Per-category scores of one tool.
#[derive(Default)]
struct Scores(BTreeMap<Category, Score>);

impl Scores {
    fn get(&mut self, c: Category) -> &mut Score {
        self.0.entry(c).or_default()
    }

    fn overall(&self) -> Score {
        let mut t = Score::default();
        for s in self.0.values() {
            t.true_positives += s.true_positives;
            t.false_positives += s.false_positives;
            t.false_negatives += s.false_negatives;
        }
        t
    }
}

/// The rule of `hibana audit --evaluate`: a finding matches an expected one with the same line
/// and category, each expected finding at most once.
fn score_exact(
    expected: &[(usize, Category)],
    reported: &[(usize, Category)],
    scores: &mut Scores,
) {
    let mut left = expected.to_vec();
    for item in reported {
        if let Some(i) = left.iter().position(|e| e == item) {
            left.remove(i);
            scores.get(item.1).true_positives += 1;
        } else {
            scores.get(item.1).false_positives += 1;
        }
    }
    for (_, c) in left {
        scores.get(c).false_negatives += 1;
    }
}

/// The covering rule used for Slither (see the module documentation).
fn score_covering(
    expected: &[(usize, Category)],
    reported: &[(Vec<usize>, Category)],
    scores: &mut Scores,
) {
    for (lines, c) in reported {
        if !expected.iter().any(|(l, ec)| ec == c && lines.contains(l)) {
            scores.get(*c).false_positives += 1;
        }
    }
    for (l, c) in expected {
        if reported
            .iter()
            .any(|(lines, rc)| rc == c && lines.contains(l))
        {
            scores.get(*c).true_positives += 1;
        } else {
            scores.get(*c).false_negatives += 1;
        }
    }
}

fn percent(permille: usize) -> String {
    format!("{}.{}%", permille / 10, permille % 10)
}

/// Runs our analyser over every case once for the findings, then `rounds` times for the time.
fn run_ours(cases: &mut [Case], rounds: usize) -> Duration {
    for case in cases.iter_mut() {
        let report = analyse_bytes(&case.rel, &case.bytes);
        case.contracts = report.contracts;
        case.ours = report
            .findings
            .iter()
            .map(|f| (report.position(f.span.start).0, f.rule.category, f.rule.id))
            .collect();
    }
    let start = Instant::now();
    let mut sink = 0usize;
    for _ in 0..rounds {
        for case in cases.iter() {
            sink += analyse_bytes(&case.rel, &case.bytes).findings.len();
        }
    }
    std::hint::black_box(sink);
    start.elapsed() / rounds as u32
}

/// Where Slither and the compiler wrappers are.
struct SlitherSetup {
    slither: PathBuf,
    wrappers: Option<PathBuf>,
    openzeppelin: Option<PathBuf>,
    scratch: PathBuf,
}

fn slither_home() -> PathBuf {
    if let Some(h) = std::env::var_os("HIBANA_SLITHER_HOME") {
        return PathBuf::from(h);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/hibana-slither")
}

fn find_slither() -> Option<SlitherSetup> {
    let home = slither_home();
    let slither = match std::env::var_os("HIBANA_SLITHER") {
        Some(p) => PathBuf::from(p),
        None => home.join("venv/bin/slither"),
    };
    if !slither.is_file() {
        return None;
    }
    let wrappers = Some(home.join("bin")).filter(|p| p.is_dir());
    let openzeppelin = Some(home.join("solcjs/node_modules/@openzeppelin")).filter(|p| p.is_dir());
    let scratch = std::env::temp_dir().join(format!("hibana-slither-bench-{}", std::process::id()));
    fs::create_dir_all(&scratch).ok()?;
    Some(SlitherSetup {
        slither,
        wrappers,
        openzeppelin,
        scratch,
    })
}

/// The minor version named by the file's `pragma solidity`, e.g. 4 for `^0.4.24`.
fn pragma_minor(text: &str) -> Option<u32> {
    let at = text.find("pragma solidity")?;
    let rest = &text[at..];
    let rest = &rest[..rest.find(';')?];
    let v = rest.find("0.")?;
    let digits: String = rest[v + 2..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The wrapper `solc-0.MINOR.PATCH` with the highest patch for the file's pragma.
fn pick_wrapper(dir: &Path, text: &str) -> Option<(PathBuf, String)> {
    let minor = pragma_minor(text)?;
    let prefix = format!("solc-0.{minor}.");
    let mut best: Option<(u32, PathBuf, String)> = None;
    for e in fs::read_dir(dir).ok()?.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(patch) = name
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if best.as_ref().is_none_or(|(b, _, _)| patch > *b) {
            let version = name["solc-".len()..].to_string();
            best = Some((patch, e.path(), version));
        }
    }
    best.map(|(_, p, v)| (p, v))
}

/// Runs a command with stdout and stderr sent to files, killing it after [`RUN_TIMEOUT`].
/// Returns the wall time, whether it finished in time, stdout and stderr.
fn run_timed(mut cmd: Command, scratch: &Path) -> (Duration, bool, String, String) {
    let out_path = scratch.join("stdout");
    let err_path = scratch.join("stderr");
    let (Ok(out), Ok(err)) = (fs::File::create(&out_path), fs::File::create(&err_path)) else {
        return (
            Duration::ZERO,
            false,
            String::new(),
            "cannot create scratch files".into(),
        );
    };
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    let start = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return (
                Duration::ZERO,
                false,
                String::new(),
                format!("cannot start: {e}"),
            );
        }
    };
    let finished = loop {
        match child.try_wait() {
            Ok(Some(_)) => break true,
            Ok(None) if start.elapsed() < RUN_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(5))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break false;
            }
        }
    };
    let elapsed = start.elapsed();
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    (elapsed, finished, stdout, stderr)
}

/// One Slither result in the analysed file.
struct SlitherFinding {
    check: String,
    impact: String,
    category: Option<Category>,
    /// Lines it covers (see the module documentation).
    lines: Vec<usize>,
    /// Those lines and the whole of every function it names or whose statements it names.
    function_lines: Vec<usize>,
}

/// What Slither did with one file.
struct SlitherRun {
    solc: String,
    time: Duration,
    compile: Option<Duration>,
    error: Option<String>,
    findings: Vec<SlitherFinding>,
}

fn first_error_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.contains("Error") || l.contains("error"))
        .or_else(|| text.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("no output");
    line.chars().take(160).collect()
}

fn run_slither(setup: &SlitherSetup, case: &Case) -> SlitherRun {
    let text = String::from_utf8_lossy(&case.bytes);
    let wrapper = setup
        .wrappers
        .as_deref()
        .and_then(|d| pick_wrapper(d, &text));
    let remap = setup
        .openzeppelin
        .as_ref()
        .filter(|_| text.contains("@openzeppelin/"))
        .map(|p| format!("@openzeppelin/={}/", p.display()));

    // The compiler alone, as crytic-compile runs it, to separate compile time from analysis.
    let compile = wrapper.as_ref().map(|(w, _)| {
        let mut cmd = Command::new(w);
        cmd.current_dir(&case.dir);
        if let Some(r) = &remap {
            cmd.arg(r);
        }
        cmd.args([
            &case.rel,
            "--combined-json",
            COMBINED_JSON,
            "--allow-paths",
            ".",
        ]);
        run_timed(cmd, &setup.scratch).0
    });

    let mut cmd = Command::new(&setup.slither);
    cmd.current_dir(&case.dir)
        .arg(&case.rel)
        .args(["--disable-color", "--json", "-"]);
    if let Some((w, _)) = &wrapper {
        cmd.arg("--solc").arg(w);
    }
    if let Some(r) = &remap {
        cmd.args(["--solc-remaps", r]);
    }
    let (time, finished, stdout, stderr) = run_timed(cmd, &setup.scratch);
    let wrapper_path = wrapper.as_ref().map(|(w, _)| w.clone());
    let mut run = SlitherRun {
        solc: wrapper.map_or_else(|| "PATH".to_string(), |(_, v)| v),
        time,
        compile,
        error: None,
        findings: Vec::new(),
    };
    if !finished {
        run.error = Some(format!(
            "timed out or did not start: {}",
            first_error_line(&stderr)
        ));
        return run;
    }
    let json: Value = match serde_json::from_str(&stdout) {
        Ok(v) => v,
        Err(_) if stderr.trim().is_empty() => {
            // With `--json -` Slither prints nothing when compilation throws.
            run.error = Some(format!(
                "no JSON output; run `slither {} --solc {}` in {} to see why",
                case.rel,
                wrapper_path.map_or("solc".into(), |p| p.display().to_string()),
                case.dir.display()
            ));
            return run;
        }
        Err(_) => {
            run.error = Some(first_error_line(&stderr));
            return run;
        }
    };
    if json["success"] != Value::Bool(true) {
        let msg = json["error"].as_str().unwrap_or_default();
        run.error = Some(first_error_line(if msg.is_empty() { &stderr } else { msg }));
        return run;
    }
    let target = fs::canonicalize(case.dir.join(&case.rel)).ok();
    let in_file = |e: &Value| {
        e["source_mapping"]["filename_absolute"]
            .as_str()
            .and_then(|p| fs::canonicalize(p).ok())
            .is_some_and(|p| Some(p) == target)
    };
    let lines_of = |e: &Value| -> Vec<usize> {
        e["source_mapping"]["lines"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| l.as_u64())
                    .map(|l| l as usize)
                    .collect()
            })
            .unwrap_or_default()
    };
    let results = json["results"]["detectors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for r in &results {
        let elements: Vec<&Value> = r["elements"]
            .as_array()
            .map(|a| a.iter().filter(|e| in_file(e)).collect())
            .unwrap_or_default();
        let Some(first) = elements.first() else {
            continue; // about a dependency, or about the whole compilation (solc-version)
        };
        let mut lines: Vec<usize> = elements
            .iter()
            .filter(|e| e["type"] == "node")
            .flat_map(|e| lines_of(e))
            .collect();
        if lines.is_empty() {
            lines = lines_of(first);
        }
        lines.sort_unstable();
        lines.dedup();
        let mut function_lines = lines.clone();
        for e in &elements {
            let parent = &e["type_specific_fields"]["parent"];
            if e["type"] == "function" {
                function_lines.extend(lines_of(e));
            } else if e["type"] == "node" && parent["type"] == "function" && in_file(parent) {
                function_lines.extend(lines_of(parent));
            }
        }
        function_lines.sort_unstable();
        function_lines.dedup();
        let check = r["check"].as_str().unwrap_or("?").to_string();
        run.findings.push(SlitherFinding {
            category: slither_category(&check),
            impact: r["impact"].as_str().unwrap_or("?").to_string(),
            check,
            lines,
            function_lines,
        });
    }
    run
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn main() {
    let opts = options();
    let mut cases = load_cases(opts.filter.as_deref());
    if cases.is_empty() {
        println!("no labelled files found");
        return;
    }
    let contracts_total = |cases: &[Case]| cases.iter().map(|c| c.contracts).sum::<usize>();
    let ours_time = run_ours(&mut cases, opts.rounds);
    let contracts = contracts_total(&cases);

    let setup = if opts.slither { find_slither() } else { None };
    let mut slither_runs: Vec<Option<SlitherRun>> = Vec::new();
    if let Some(setup) = &setup {
        eprintln!(
            "running {} on {} files, one at a time ...",
            setup.slither.display(),
            cases.len()
        );
        for (i, case) in cases.iter().enumerate() {
            let run = run_slither(setup, case);
            eprintln!(
                "  [{}/{}] {} {:.2} s{}",
                i + 1,
                cases.len(),
                case.name(),
                run.time.as_secs_f64(),
                if run.error.is_some() { " (failed)" } else { "" }
            );
            slither_runs.push(Some(run));
        }
        let _ = fs::remove_dir_all(&setup.scratch);
    } else {
        slither_runs.resize_with(cases.len(), || None);
    }

    // Scores.
    let mut ours = Scores::default();
    let mut ours_covering = Scores::default();
    let mut theirs = Scores::default();
    let mut theirs_compiled = Scores::default();
    let mut theirs_by_function = Scores::default();
    let mut ours_on_compiled = Scores::default();
    let mut per_set: BTreeMap<String, (Scores, Scores)> = BTreeMap::new();
    let mut ignored: BTreeMap<(String, String), usize> = BTreeMap::new();
    // Scored detector -> (category, results, results covering a label).
    let mut detectors: BTreeMap<String, (Category, usize, usize)> = BTreeMap::new();
    for (case, run) in cases.iter().zip(&slither_runs) {
        let reported: Vec<(usize, Category)> = case.ours.iter().map(|(l, c, _)| (*l, *c)).collect();
        score_exact(&case.expected, &reported, &mut ours);
        let as_ranges: Vec<(Vec<usize>, Category)> =
            reported.iter().map(|(l, c)| (vec![*l], *c)).collect();
        score_covering(&case.expected, &as_ranges, &mut ours_covering);
        let set = per_set.entry(case.set.clone()).or_default();
        score_exact(&case.expected, &reported, &mut set.0);
        if let Some(run) = run {
            let mapped: Vec<(Vec<usize>, Category)> = run
                .findings
                .iter()
                .filter_map(|f| Some((f.lines.clone(), f.category?)))
                .collect();
            score_covering(&case.expected, &mapped, &mut theirs);
            let by_function: Vec<(Vec<usize>, Category)> = run
                .findings
                .iter()
                .filter_map(|f| Some((f.function_lines.clone(), f.category?)))
                .collect();
            score_covering(&case.expected, &by_function, &mut theirs_by_function);
            score_covering(&case.expected, &mapped, &mut set.1);
            if run.error.is_none() {
                score_covering(&case.expected, &mapped, &mut theirs_compiled);
                score_exact(&case.expected, &reported, &mut ours_on_compiled);
            }
            for f in &run.findings {
                let Some(c) = f.category else {
                    *ignored
                        .entry((f.impact.clone(), f.check.clone()))
                        .or_default() += 1;
                    continue;
                };
                let d = detectors.entry(f.check.clone()).or_insert((c, 0, 0));
                d.1 += 1;
                if case
                    .expected
                    .iter()
                    .any(|(l, ec)| *ec == c && f.lines.contains(l))
                {
                    d.2 += 1;
                }
            }
        }
    }

    // Check our scoring against `hibana audit --evaluate`.
    if opts.filter.is_none() {
        let mut reference = Score::default();
        for (_, manifest) in manifests() {
            if let Ok(e) = evaluate(&manifest) {
                reference.true_positives += e.overall.true_positives;
                reference.false_positives += e.overall.false_positives;
                reference.false_negatives += e.overall.false_negatives;
            }
        }
        if reference != ours.overall() {
            println!(
                "warning: the exact-rule totals differ from `hibana audit --evaluate` ({reference:?})"
            );
        }
    }

    let mut out = String::new();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let _ = writeln!(
        out,
        "hibana-audit vs Slither: {} files ({} contracts) from {} labelled sets, {threads} cores\n",
        cases.len(),
        contracts,
        per_set.len()
    );

    // Time.
    let _ = writeln!(
        out,
        "{:<34} {:>6} {:>10} {:>12} {:>10} {:>12}",
        "tool", "files", "contracts", "time (s)", "files/s", "contracts/s"
    );
    let row = |out: &mut String, name: &str, files: usize, n: usize, t: Duration| {
        let _ = writeln!(
            out,
            "{:<34} {:>6} {:>10} {:>12.4} {:>10.1} {:>12.1}",
            name,
            files,
            n,
            t.as_secs_f64(),
            rate(files, t),
            rate(n, t)
        );
    };
    row(
        &mut out,
        &format!("hibana-audit (1 thread, mean of {})", opts.rounds),
        cases.len(),
        contracts,
        ours_time,
    );
    let runs: Vec<(&Case, &SlitherRun)> = cases
        .iter()
        .zip(&slither_runs)
        .filter_map(|(c, r)| Some((c, r.as_ref()?)))
        .collect();
    if !runs.is_empty() {
        let total: Duration = runs.iter().map(|(_, r)| r.time).sum();
        row(
            &mut out,
            "slither (1 process per file)",
            runs.len(),
            contracts,
            total,
        );
        let compile: Duration = runs.iter().filter_map(|(_, r)| r.compile).sum();
        let timed = runs.iter().filter(|(_, r)| r.compile.is_some()).count();
        if timed == runs.len() {
            row(
                &mut out,
                "  solc-js compile alone (separate)",
                runs.len(),
                contracts,
                compile,
            );
            row(
                &mut out,
                "  slither less that compile",
                runs.len(),
                contracts,
                total.saturating_sub(compile),
            );
        }
        let ok: Vec<&(&Case, &SlitherRun)> =
            runs.iter().filter(|(_, r)| r.error.is_none()).collect();
        if ok.len() < runs.len() {
            let ok_time: Duration = ok.iter().map(|(_, r)| r.time).sum();
            let ok_contracts: usize = ok.iter().map(|(c, _)| c.contracts).sum();
            row(
                &mut out,
                "slither, compiled files only",
                ok.len(),
                ok_contracts,
                ok_time,
            );
        }
    }

    // Precision and recall.
    let _ = writeln!(
        out,
        "\n{:<18} {:>8} | {:>3} {:>3} {:>3} {:>7} {:>7} | {:>3} {:>3} {:>3} {:>7} {:>7}",
        "category",
        "expected",
        "tp",
        "fp",
        "fn",
        "prec",
        "recall",
        "tp",
        "fp",
        "fn",
        "prec",
        "recall"
    );
    let _ = writeln!(
        out,
        "{:<18} {:>8} | {:<35} | {:<35}",
        "", "", "hibana-audit (exact line)", "slither (covering, see notes)"
    );
    let cell = |s: Option<&Score>| match s {
        Some(s) => format!(
            "{:>3} {:>3} {:>3} {:>7} {:>7}",
            s.true_positives,
            s.false_positives,
            s.false_negatives,
            percent(s.precision_permille()),
            percent(s.recall_permille())
        ),
        None => format!("{:<35}", "  (not run)"),
    };
    let have_slither = !runs.is_empty();
    let line = |out: &mut String, name: &str, a: &Score, b: Option<&Score>| {
        let _ = writeln!(
            out,
            "{:<18} {:>8} | {} | {}",
            name,
            a.true_positives + a.false_negatives,
            cell(Some(a)),
            cell(b)
        );
    };
    for c in Category::ALL {
        let a = ours.0.get(&c).copied().unwrap_or_default();
        let b = theirs.0.get(&c).copied().unwrap_or_default();
        line(&mut out, c.as_str(), &a, have_slither.then_some(&b));
    }
    line(
        &mut out,
        "overall",
        &ours.overall(),
        have_slither.then(|| theirs.overall()).as_ref(),
    );
    // Slither has no front-running or short-address detector: the same totals without them.
    let without = |s: &Scores| {
        let mut t = Scores::default();
        for (c, score) in &s.0 {
            if !matches!(c, Category::FrontRunning | Category::ShortAddress) {
                *t.get(*c) = *score;
            }
        }
        t.overall()
    };
    line(
        &mut out,
        "overall w/o fr+sa",
        &without(&ours),
        have_slither.then(|| without(&theirs)).as_ref(),
    );
    for (set, (a, b)) in &per_set {
        line(
            &mut out,
            &format!("  {set}"),
            &a.overall(),
            have_slither.then(|| b.overall()).as_ref(),
        );
    }
    let all_compiled = runs.iter().all(|(_, r)| r.error.is_none());
    if have_slither && !all_compiled {
        line(
            &mut out,
            "compiled only",
            &ours_on_compiled.overall(),
            Some(&theirs_compiled.overall()),
        );
    }
    if have_slither {
        let c = ours_covering.overall();
        let f = theirs_by_function.overall();
        let _ = writeln!(
            out,
            "other rules, overall: hibana-audit under the covering rule {} / {}; \
             Slither when a result covers the whole functions it names \
             (tp {} fp {} fn {}) {} / {}",
            percent(c.precision_permille()),
            percent(c.recall_permille()),
            f.true_positives,
            f.false_positives,
            f.false_negatives,
            percent(f.precision_permille()),
            percent(f.recall_permille())
        );
    }

    if let Some(setup) = &setup {
        let failed: Vec<(&Case, &SlitherRun)> = runs
            .iter()
            .filter(|(_, r)| r.error.is_some())
            .copied()
            .collect();
        let _ = writeln!(
            out,
            "\nSlither failed on {} of {} files:",
            failed.len(),
            runs.len()
        );
        for (c, r) in &failed {
            let _ = writeln!(
                out,
                "  {} (solc {}): {}",
                c.name(),
                r.solc,
                r.error.as_deref().unwrap_or("")
            );
        }
        let _ = writeln!(
            out,
            "\nScored Slither detectors: results, of which cover a labelled finding"
        );
        for (check, (c, n, hit)) in &detectors {
            let _ = writeln!(
                out,
                "  {:<28} {:<18} {:>4} {:>4}",
                check,
                c.as_str(),
                n,
                hit
            );
        }
        let _ = writeln!(
            out,
            "\nSlither results not scored (no DASP category), by impact and detector:"
        );
        let mut text = String::new();
        for ((impact, check), n) in &ignored {
            let _ = write!(text, " {impact}:{check}×{n}");
        }
        let _ = writeln!(out, " {}", text.trim());
        let _ = writeln!(out, "(slither: {})", setup.slither.display());
    } else if opts.slither {
        let _ = writeln!(
            out,
            "\nSlither is not installed: run scripts/slither-setup.sh (installs it under {}), \
             or set HIBANA_SLITHER to a slither executable, then run this benchmark again.",
            slither_home().display()
        );
    }

    // Side by side, per file.
    let _ = writeln!(
        out,
        "\nPer file: expected | hibana-audit | slither (category:line[detector]){}",
        if opts.verbose {
            ""
        } else {
            "; only files where a tool differs from the labels (--verbose for all)"
        }
    );
    for (case, run) in cases.iter().zip(&slither_runs) {
        let mut exp = case.expected.clone();
        exp.sort();
        let exp_s: Vec<String> = exp
            .iter()
            .map(|(l, c)| format!("{}:{l}", c.as_str()))
            .collect();
        let mut ours_sorted: Vec<(usize, Category)> =
            case.ours.iter().map(|(l, c, _)| (*l, *c)).collect();
        ours_sorted.sort();
        let ours_s: Vec<String> = ours_sorted
            .iter()
            .map(|(l, c)| format!("{}:{l}", c.as_str()))
            .collect();
        let ours_differs = ours_sorted != exp;
        let (theirs_s, theirs_differs, extra) = match run {
            None => ("-".to_string(), false, String::new()),
            Some(r) if r.error.is_some() => (
                format!("FAILED: {}", r.error.as_deref().unwrap_or("")),
                true,
                String::new(),
            ),
            Some(r) => {
                let mut differs = false;
                let mut shown = Vec::new();
                let mut unscored = Vec::new();
                for f in &r.findings {
                    match f.category {
                        Some(c) => {
                            let hit = exp.iter().find(|(l, ec)| *ec == c && f.lines.contains(l));
                            differs |= hit.is_none();
                            let l = hit.map_or(f.lines.first().copied().unwrap_or(0), |h| h.0);
                            shown.push((l, format!("{}:{l}[{}]", c.as_str(), f.check)));
                        }
                        None => unscored.push(f.check.clone()),
                    }
                }
                for (l, c) in &exp {
                    let covered = r
                        .findings
                        .iter()
                        .any(|f| f.category == Some(*c) && f.lines.contains(l));
                    differs |= !covered;
                }
                shown.sort();
                unscored.sort();
                unscored.dedup();
                let s: Vec<String> = shown.into_iter().map(|(_, s)| s).collect();
                (s.join(" "), differs, unscored.join(","))
            }
        };
        if !opts.verbose && !ours_differs && !theirs_differs {
            continue;
        }
        let timing = run
            .as_ref()
            .map(|r| format!(" (solc {}, slither {:.2} s)", r.solc, r.time.as_secs_f64()))
            .unwrap_or_default();
        let _ = writeln!(out, "  {}{timing}", case.name());
        let _ = writeln!(out, "    expected: {}", exp_s.join(" "));
        let _ = writeln!(out, "    hibana:   {}", ours_s.join(" "));
        if run.is_some() {
            let _ = writeln!(out, "    slither:  {theirs_s}");
            if opts.verbose && !extra.is_empty() {
                let _ = writeln!(out, "    (not scored: {extra})");
            }
        }
    }
    print!("{out}");
}
