//! Snakemake's own test cases, ported (issue 17): each directory under
//! `tests/snakemake_cases/` holds one case of Snakemake's `tests/` directory as it is there (its
//! `Snakefile`, rule files, inputs and `expected-results/`), the same workflow written for
//! flowrun (`Flowfile.rhai`, and `.rhai` rule files for its includes), and, when Snakemake's
//! `tests.py` passes targets, a `targets` file with one per line.
//!
//! Each case is copied into two temporary directories (without `expected-results/`); flowrun
//! runs in one and Snakemake (when installed) in the other, and every file of
//! `expected-results/` must come out byte for byte in both, as Snakemake's own harness checks.
//! A case Snakemake's harness expects to fail has a `fails` file instead, holding flowrun's
//! error text: both tools must then fail, flowrun with that error.
//! All cases run and every failure is reported together. `docs/snakemake.md` lists the cases and
//! what was needed to port each.

mod common;
use common::{run_snakemake, Project, Run};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The cases, by directory name: a new directory must be added here, so none is skipped by
/// accident.
const CASES: &[&str] = &[
    "test02",
    "test03",
    "test04",
    "test06",
    "test07",
    "test08",
    "test09",
    "test10",
    "test11",
    "test12",
    "test13",
    "test_ancient_dag",
    "test_bash",
    "test_conditional",
    "test_default_target",
    "test_dup_out_patterns",
    "test_format_wildcards",
    "test_github_issue1882",
    "test_github_issue2142",
    "test_globwildcards",
    "test_issue381",
    "test_keyword_list",
    "test_log_input",
    "test_long_shell",
    "test_match_by_wildcard_names",
    "test_multiext",
    "test_multiple_includes",
    "test_rule_defined_in_for_loop",
    "test_ruledeps",
    "test_solver",
    "test_spaces_in_fnames",
    "test_temp",
    "test_temp_and_all_input",
    "test_temp_expand",
    "test_touch",
    "test_wildcard_count_ambiguity",
];

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snakemake_cases")
}

/// Copies `from` into `to`, leaving out `expected-results/`.
fn copy_case(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from).min_depth(1) {
        let entry = entry.expect("walk case");
        let rel = entry.path().strip_prefix(from).expect("inside case");
        if rel.starts_with("expected-results") {
            continue;
        }
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

/// What differs from what `case` expects in `dir` after `tool` ran (`run`), in words.
fn compare(case: &Path, dir: &Path, tool: &str, run: &Run) -> Vec<String> {
    let expected = case.join("expected-results");
    let mut problems = Vec::new();
    if let Ok(error) = std::fs::read_to_string(case.join("fails")) {
        let error = error.trim_end();
        if run.code == 0 {
            problems.push(format!(
                "{tool} succeeded where it should refuse the workflow"
            ));
        } else if tool == "flowrun" && !run.stderr.contains(error) {
            problems.push(format!(
                "flowrun exited with {} without the error {error:?}\n{}",
                run.code, run.stderr
            ));
        }
        return problems;
    }
    if run.code != 0 {
        problems.push(format!("{tool} exited with {}\n{}", run.code, run.stderr));
    }
    for entry in walkdir::WalkDir::new(&expected).sort_by_file_name() {
        let entry = entry.expect("walk expected");
        // A `.gitkeep` only keeps an empty `expected-results/` in git: the case checks success.
        if !entry.file_type().is_file() || entry.file_name() == ".gitkeep" {
            continue;
        }
        let rel = entry.path().strip_prefix(&expected).expect("inside");
        let want = std::fs::read(entry.path()).expect("read expected");
        match std::fs::read(dir.join(rel)) {
            Ok(got) if got == want => {}
            Ok(got) => problems.push(format!(
                "{tool}: `{}` is {:?}, expected {:?}",
                rel.display(),
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            )),
            Err(e) => problems.push(format!("{tool}: `{}` missing: {e}", rel.display())),
        }
    }
    problems
}

fn targets(case: &Path) -> Vec<String> {
    std::fs::read_to_string(case.join("targets"))
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

#[test]
fn the_case_list_matches_the_directories() {
    let mut found: Vec<String> = std::fs::read_dir(cases_dir())
        .expect("tests/snakemake_cases")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    assert_eq!(found, CASES);
}

/// Runs one case in both tools; what went wrong, if anything.
fn run_case(name: &str) -> Option<String> {
    let case = cases_dir().join(name);
    let targets = targets(&case);
    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();

    let fr = Project::new();
    copy_case(&case, fr.path());
    let mut args = vec!["Flowfile.rhai", "-j", "1"];
    args.extend(&targets);
    let run = fr.run(&args);
    let mut problems = compare(&case, fr.path(), "flowrun", &run);

    let sm = Project::new();
    copy_case(&case, sm.path());
    if let Some(run) = run_snakemake(sm.path(), &targets) {
        problems.extend(compare(&case, sm.path(), "snakemake", &run));
    }
    (!problems.is_empty()).then(|| format!("--- {name}\n{}", problems.join("\n")))
}

#[test]
fn every_ported_case_gives_snakemakes_expected_results_in_both_tools() {
    // Cases wait on processes most of the time: a few at once, whatever the cores.
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                while let Some(name) = CASES.get(next.fetch_add(1, Ordering::SeqCst)) {
                    if let Some(failure) = run_case(name) {
                        failures.lock().expect("failures").push(failure);
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().expect("failures");
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}
