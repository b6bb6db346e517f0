//! Upgrading flowrun reruns nothing: stores written by every earlier store format (checked in
//! under `tests/fixtures/store-vN`, made by the flowrun of that format) are migrated forward in
//! place, and the run finds nothing to do. A store from a newer flowrun is refused untouched.

mod common;

use common::Project;
use rusqlite::Connection;
use std::path::Path;

/// Copies a fixture directory (workflow, inputs, outputs, `.flowrun/store.db`) into a project.
fn from_fixture(name: &str) -> Project {
    let p = Project::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    for entry in walkdir::WalkDir::new(&src) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(&src).unwrap();
        let to = p.path().join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
    p
}

fn user_version(p: &Project) -> i64 {
    let conn = Connection::open(p.path().join(".flowrun/store.db")).unwrap();
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

#[test]
fn a_version_1_store_is_migrated_and_nothing_reruns() {
    upgrade_reruns_nothing(1);
}

#[test]
fn a_version_2_store_is_migrated_and_nothing_reruns() {
    upgrade_reruns_nothing(2);
}

/// The fixture of store format `version` is upgraded in place; nothing reruns until an input
/// changes, and then exactly its chain does.
fn upgrade_reruns_nothing(version: i64) {
    let p = from_fixture(&format!("store-v{version}"));
    assert_eq!(user_version(&p), version);
    // A dry run reads the old store without changing it.
    let dry = p.run(&["-n", "Flowfile.rhai"]).code(0);
    assert_eq!(
        dry.stdout,
        "nothing to be done: every output is up to date\n"
    );
    assert_eq!(user_version(&p), version);
    let total = p.read("total.txt");
    p.run(&["Flowfile.rhai"])
        .code(0)
        .stderr_has("nothing to be done: every output is up to date");
    assert_eq!(user_version(&p), flowrun::graph::store::FORMAT_VERSION);
    assert_eq!(p.read("total.txt"), total);
    assert!(
        !p.exists(&format!(".flowrun/store.db.v{version}.bak")),
        "the backup is removed"
    );
    // The records still judge: an input edit reruns exactly its chain (the protected total
    // removed by hand, as flowrun asks).
    p.file("data/b.txt", "10\n20\n30\n");
    std::fs::remove_file(p.path().join("total.txt")).unwrap();
    let run = p.run(&["Flowfile.rhai"]).code(0);
    assert_eq!(
        run.ran_sorted(),
        ["all", "scale[s=b]", "sort[s=b]", "total"],
        "{}",
        run.stderr
    );
}

#[test]
fn a_store_from_a_newer_flowrun_is_refused_and_left_untouched() {
    let p = from_fixture("store-v1");
    {
        let conn = Connection::open(p.path().join(".flowrun/store.db")).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let before = std::fs::read(p.path().join(".flowrun/store.db")).unwrap();
    for args in [&["Flowfile.rhai"][..], &["-n", "Flowfile.rhai"]] {
        p.run(args)
            .workflow_error()
            .stderr_has(
                "was written by a newer flowrun (store format 99; this flowrun reads formats up to",
            )
            .stderr_has("it was left untouched")
            .stderr_has("hint: run the newer flowrun here, or move `.flowrun/` away");
    }
    let after = std::fs::read(p.path().join(".flowrun/store.db")).unwrap();
    assert!(after == before, "the store changed");
    assert_eq!(p.read("total.txt"), "108.0\n");
}

#[test]
fn durations_are_kept_and_shown_by_summary_verbose() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("a", #{ output: "a.txt", shell: "sleep 0.3; echo a > {output}" });"#,
    );
    p.run(&["wf.rhai"]).code(0);
    let plain = p.run(&["--summary", "wf.rhai"]).code(0);
    assert!(!plain.stdout.contains("took"), "{}", plain.stdout);
    let verbose = p.run(&["--summary", "-v", "wf.rhai"]).code(0);
    let lines: Vec<&str> = verbose.stdout.lines().collect();
    assert!(
        lines[0].contains("made") && lines[0].contains("took"),
        "{}",
        verbose.stdout
    );
    assert!(lines[1].starts_with("a.txt"), "{}", verbose.stdout);
    assert!(lines[1].contains("Z  "), "a UTC time: {}", verbose.stdout);
    assert!(
        lines[1].contains(" 0.3s") || lines[1].contains(" 0.4s"),
        "{}",
        verbose.stdout
    );
}
