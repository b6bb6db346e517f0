//! The shared result cache (`--cache-dir`, `cache: true`): two clones sharing one cache, the
//! second computing nothing; damaged entries evicted; misses explained; LRU eviction.

mod common;

use common::Project;
use std::path::Path;

/// A workflow whose jobs count their runs in `count` (outside the working directory, so the
/// two clones share it).
fn workflow(count: &Path) -> String {
    format!(
        r#"
rule("all", #{{ input: ["up/a.txt", "up/b.txt"] }});
rule("upper", #{{
    input: "in/{{s}}.txt",
    output: "up/{{s}}.txt",
    cache: true,
    params: #{{ count: "{}" }},
    shell: "echo {{wildcards.s}} >> {{params.count}}; tr a-z A-Z < {{input}} > {{output}}",
}});
"#,
        count.display()
    )
}

fn clone(wf: &str) -> Project {
    let p = Project::new();
    p.file("wf.rhai", wf)
        .file("in/a.txt", "alpha\n")
        .file("in/b.txt", "beta\n");
    p
}

/// A cache and a run counter outside every clone, and the workflow that uses them.
struct Shared {
    _dir: tempfile::TempDir,
    cache: std::path::PathBuf,
    count: std::path::PathBuf,
    wf: String,
}

impl Shared {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("count");
        Self {
            cache: dir.path().join("cache"),
            wf: workflow(&count),
            count,
            _dir: dir,
        }
    }
}

fn runs(count: &Path) -> usize {
    std::fs::read_to_string(count).map_or(0, |t| t.lines().count())
}

#[test]
fn a_second_clone_restores_everything_and_computes_nothing() {
    let shared = Shared::new();
    let (cache, count, wf) = (&shared.cache, &shared.count, &shared.wf);
    let cache_arg = cache.to_str().unwrap();
    let first = clone(wf);
    first.run(&["--cache-dir", cache_arg, "wf.rhai"]).code(0);
    assert_eq!(runs(count), 2);
    let second = clone(wf);
    let run = second
        .run(&["-v", "--cache-dir", cache_arg, "wf.rhai"])
        .code(0)
        .stderr_has("Restored upper[s=a] from the cache")
        .stderr_has("done: 1 ran, 2 restored from the cache");
    assert_eq!(runs(count), 2, "nothing was computed again: {}", run.stderr);
    assert_eq!(second.read("up/a.txt"), "ALPHA\n");
    assert_eq!(second.read("up/b.txt"), "BETA\n");
    // The restored outputs are recorded like made ones.
    second
        .run(&["--cache-dir", cache_arg, "wf.rhai"])
        .code(0)
        .stderr_has("nothing to be done");
    // The environment variable works as the flag does.
    let third = clone(wf);
    let mut cmd = third.cmd(&["wf.rhai"]);
    cmd.env("FLOWRUN_CACHE_DIR", cache);
    common::run_bounded(cmd).code(0);
    assert_eq!(runs(count), 2);
}

#[test]
fn a_changed_input_misses_and_the_miss_is_explained() {
    let shared = Shared::new();
    let (cache, count, wf) = (&shared.cache, &shared.count, &shared.wf);
    let cache_arg = cache.to_str().unwrap();
    clone(wf)
        .run(&["--cache-dir", cache_arg, "wf.rhai"])
        .code(0);
    let second = clone(wf);
    second.file("in/a.txt", "ALPHA CHANGED\n");
    let hit = second
        .run(&[
            "--cache-dir",
            cache_arg,
            "--explain-cache",
            "upper[s=b]",
            "wf.rhai",
        ])
        .code(0);
    assert!(
        hit.stdout.starts_with("hit: upper[s=b] would be restored"),
        "{}",
        hit.stdout
    );
    let miss = second
        .run(&[
            "--cache-dir",
            cache_arg,
            "--explain-cache",
            "upper[s=a]",
            "wf.rhai",
        ])
        .code(0);
    assert!(
        miss.stdout.contains("miss: upper[s=a]")
            && miss.stdout.contains("input `in/a.txt` differs"),
        "{}",
        miss.stdout
    );
    second.run(&["--cache-dir", cache_arg, "wf.rhai"]).code(0);
    assert_eq!(runs(count), 3, "only the changed job ran");
    second
        .run(&[
            "--cache-dir",
            cache_arg,
            "--explain-cache",
            "upper[s=x]",
            "wf.rhai",
        ])
        .workflow_error()
        .stderr_has("`--explain-cache upper[s=x]`: no job of that label in this run")
        .stderr_has("did you mean `upper[s=a]`");
}

#[test]
fn a_damaged_entry_is_reported_evicted_and_recomputed() {
    let shared = Shared::new();
    let (cache, count, wf) = (&shared.cache, &shared.count, &shared.wf);
    let cache_arg = cache.to_str().unwrap();
    clone(wf)
        .run(&["--cache-dir", cache_arg, "wf.rhai"])
        .code(0);
    // Damage every stored copy.
    for entry in walkdir::WalkDir::new(cache) {
        let entry = entry.unwrap();
        if entry.file_name() == "0" {
            std::fs::write(entry.path(), "poison\n").unwrap();
        }
    }
    let second = clone(wf);
    second
        .run(&["--cache-dir", cache_arg, "wf.rhai"])
        .code(0)
        .stderr_has("holds a damaged copy of `up/a.txt`; it was evicted");
    assert_eq!(
        second.read("up/a.txt"),
        "ALPHA\n",
        "poison never reaches an output"
    );
    assert_eq!(runs(count), 4);
    // Recomputing published a sound entry again.
    clone(wf)
        .run(&["--cache-dir", cache_arg, "wf.rhai"])
        .code(0);
    assert_eq!(runs(count), 4);
}

#[test]
fn max_size_evicts_least_recently_used_entries() {
    let shared = Shared::new();
    let (cache, count, wf) = (&shared.cache, &shared.count, &shared.wf);
    let cache_arg = cache.to_str().unwrap();
    clone(wf)
        .run(&["--cache-dir", cache_arg, "--cache-max-size", "1", "wf.rhai"])
        .code(0);
    let manifests = walkdir::WalkDir::new(cache)
        .into_iter()
        .filter(|e| e.as_ref().unwrap().file_name() == "manifest.json")
        .count();
    assert_eq!(manifests, 0, "a 1-byte cache keeps nothing");
    clone(wf)
        .run(&["--cache-dir", cache_arg, "wf.rhai"])
        .code(0);
    assert_eq!(runs(count), 4);
}

#[test]
fn two_runs_fill_one_cache_at_once() {
    let shared = Shared::new();
    let (cache, count, wf) = (&shared.cache, &shared.count, &shared.wf);
    let cache_arg = cache.to_str().unwrap();
    let (a, b) = (clone(wf), clone(wf));
    let ta = a.spawn(&["--cache-dir", cache_arg, "wf.rhai"]);
    let tb = b.spawn(&["--cache-dir", cache_arg, "wf.rhai"]);
    ta.finish(std::time::Duration::from_secs(60)).code(0);
    tb.finish(std::time::Duration::from_secs(60)).code(0);
    assert_eq!(a.read("up/a.txt"), b.read("up/a.txt"));
    let third = clone(wf);
    let before = runs(count);
    third.run(&["--cache-dir", cache_arg, "wf.rhai"]).code(0);
    assert_eq!(
        runs(count),
        before,
        "the cache is sound after concurrent publishing"
    );
    assert!(
        !walkdir::WalkDir::new(cache.join("v1/tmp"))
            .into_iter()
            .skip(1)
            .any(|_| true),
        "no half-built entry is left"
    );
}

#[test]
fn cache_options_without_a_cache_are_an_error() {
    let p = clone(&workflow(Path::new("/dev/null")));
    p.run(&["--cache-all", "wf.rhai"])
        .workflow_error()
        .stderr_has("--cache-all, --cache-max-size and --explain-cache need a cache")
        .stderr_has("hint: give one with `--cache-dir DIR` or `FLOWRUN_CACHE_DIR`");
    p.run(&["--cache-dir", "c", "--cache-max-size", "lots", "wf.rhai"])
        .workflow_error()
        .stderr_has("--cache-max-size `lots` is not a size such as 500M or 10G");
}

#[test]
fn a_job_reading_a_directory_is_cached_by_the_directory_s_manifest() {
    let shared = Shared::new();
    let cache_arg = shared.cache.to_str().unwrap();
    // `split` is a checkpoint making a directory; `sum` reads the whole directory.
    let wf = format!(
        r#"
rule("split", #{{ input: "in.txt", output: directory("parts"), checkpoint: true,
    shell: "mkdir -p {{output}} && split -l 2 {{input}} {{output}}/p_" }});
rule("sum", #{{ input: "parts", output: "sum.txt", cache: true, params: #{{ count: "{}" }},
    shell: "echo sum >> {{params.count}}; cat {{input}}/* | wc -l > {{output}}" }});
"#,
        shared.count.display()
    );
    let project = |content: &str| {
        let p = Project::new();
        p.file("wf.rhai", &wf).file("in.txt", content);
        p
    };
    project("1\n2\n3\n")
        .run(&["--cache-dir", cache_arg, "wf.rhai", "sum.txt"])
        .code(0);
    assert_eq!(runs(&shared.count), 1);
    // A second clone: the directory is remade the same, so `sum` is restored.
    let second = project("1\n2\n3\n");
    second
        .run(&["-v", "--cache-dir", cache_arg, "wf.rhai", "sum.txt"])
        .code(0)
        .stderr_has("Restored sum from the cache");
    assert_eq!(runs(&shared.count), 1);
    assert_eq!(second.read("sum.txt"), "3\n");
    // One more file inside the directory: a miss that names the directory.
    let third = project("1\n2\n3\n4\n5\n");
    third
        .run(&["--cache-dir", cache_arg, "wf.rhai", "parts"])
        .code(0);
    let explained = third
        .run(&[
            "--cache-dir",
            cache_arg,
            "--explain-cache",
            "sum",
            "wf.rhai",
            "sum.txt",
        ])
        .code(0);
    assert!(
        explained.stdout.contains("miss: sum")
            && explained.stdout.contains("input `parts` differs"),
        "{}",
        explained.stdout
    );
    third
        .run(&["--cache-dir", cache_arg, "wf.rhai", "sum.txt"])
        .code(0);
    assert_eq!(runs(&shared.count), 2);
    assert_eq!(third.read("sum.txt"), "5\n");
}
