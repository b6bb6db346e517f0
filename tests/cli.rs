//! The everyday command line (issue 16, item 5): a workflow found without being named, and
//! profiles that set default flags. Each test runs the real binary in a temp directory.

mod common;
use common::Project;

/// A workflow of two independent files; `all` makes both.
const TWO: &str = r#"
rule("all", #{ input: ["a.txt", "b.txt"] });
rule("a", #{ output: "a.txt", shell: "echo a > {output}" });
rule("b", #{ output: "b.txt", shell: "echo b > {output}" });
"#;

// ---------------------------------------------------------------------------------------------
// Discovery

#[test]
fn flowrun_alone_runs_flowfile_rhai_and_says_so() {
    let p = Project::new();
    p.file("Flowfile.rhai", TWO);
    p.run(&[])
        .code(0)
        .stderr_has("workflow: Flowfile.rhai\n")
        .stderr_has("done: 3 ran");
    assert_eq!(p.read("a.txt"), "a\n");
    // -q leaves the line out, with every other message.
    p.run(&["-q", "-F"]).code(0).stderr_lacks("workflow:");
}

#[test]
fn a_named_workflow_is_not_announced() {
    let p = Project::new();
    p.file("Flowfile.rhai", TWO).file("other.rhai", TWO);
    p.run(&["other.rhai"]).code(0).stderr_lacks("workflow:");
}

#[test]
fn workflow_dir_is_looked_in_second() {
    let p = Project::new();
    p.file("workflow/Flowfile.rhai", TWO);
    p.run(&["-n"])
        .code(0)
        .stderr_has("workflow: workflow/Flowfile.rhai\n")
        .stdout_has("job a\n");
    // The top-level file wins when both exist.
    p.file(
        "Flowfile.rhai",
        r#"rule("top", #{ output: "top.txt", shell: "echo > {output}" });"#,
    );
    let run = p
        .run(&["-n"])
        .code(0)
        .stderr_has("workflow: Flowfile.rhai\n");
    assert_eq!(run.planned(), ["top"]);
}

#[test]
fn a_first_argument_without_rhai_is_a_target_of_the_discovered_workflow() {
    let p = Project::new();
    p.file("Flowfile.rhai", TWO);
    let run = p.run(&["b.txt"]).code(0);
    assert_eq!(run.ran(), ["b"]);
    assert!(!p.exists("a.txt"));
    // A rule name works the same way.
    let run = p.run(&["a", "-q"]).code(0);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert!(p.exists("a.txt"));
}

#[test]
fn discovery_looks_in_the_directory_of_dash_d() {
    let p = Project::new();
    p.file("sub/Flowfile.rhai", TWO);
    p.run(&["-d", "sub", "a.txt"])
        .code(0)
        .stderr_has("workflow: Flowfile.rhai\n");
    assert!(p.exists("sub/a.txt"));
    assert!(!p.exists("sub/b.txt"));
}

#[test]
fn no_workflow_found_names_the_places_looked() {
    let p = Project::new();
    let dir = p.path().canonicalize().unwrap();
    p.run(&[])
        .workflow_error()
        .stderr_has(&format!(
            "error: no workflow file given, and none found: looked for `Flowfile.rhai` and \
             `workflow/Flowfile.rhai` in `{}`\n",
            p.path().display()
        ))
        .stderr_has("hint: name the workflow: `flowrun FILE.rhai [TARGETS]` or `flowrun -s FILE [TARGETS]`, or create `Flowfile.rhai`");
    assert!(!p.exists(".flowrun"));
    // With -d, the directory named is the one looked in.
    std::fs::create_dir(dir.join("sub")).unwrap();
    p.run(&["-d", "sub", "x.txt"])
        .workflow_error()
        .stderr_has(&format!("in `{}`", p.path().join("sub").display()));
}

#[test]
fn a_workflow_without_the_rhai_ending_is_taken_as_a_target_with_a_hint() {
    let p = Project::new();
    p.file("pipeline", TWO);
    p.run(&["pipeline"])
        .workflow_error()
        .stderr_has("error: no workflow file given, and none found")
        .stderr_has(
            "hint: `pipeline` was taken as a target because it does not end in `.rhai`; to \
             run it as the workflow, use `flowrun -s pipeline`",
        );
    // -s names it; every argument is then a target.
    let run = p
        .run(&["-s", "pipeline", "b"])
        .code(0)
        .stderr_lacks("workflow:");
    assert_eq!(run.ran(), ["b"]);
}

#[test]
fn with_dash_s_a_target_may_end_in_rhai() {
    let p = Project::new();
    p.file(
        "make.rhai",
        r#"rule("gen", #{ output: "gen.rhai", shell: "echo '// made' > {output}" });"#,
    );
    p.run(&["-s", "make.rhai", "gen.rhai"]).code(0);
    assert_eq!(p.read("gen.rhai"), "// made\n");
    // After a named workflow, too.
    std::fs::remove_file(p.path().join("gen.rhai")).unwrap();
    p.run(&["make.rhai", "gen.rhai"]).code(0);
    assert!(p.exists("gen.rhai"));
}

#[test]
fn a_named_workflow_that_does_not_exist_is_not_replaced_by_discovery() {
    let p = Project::new();
    p.file("Flowfile.rhai", TWO);
    p.run(&["nope.rhai"])
        .workflow_error()
        .stderr_has("workflow file `")
        .stderr_has("nope.rhai` does not exist");
    assert!(!p.exists("a.txt"));
}

// ---------------------------------------------------------------------------------------------
// Profiles

#[test]
fn a_profile_beside_the_workflow_sets_default_flags() {
    let p = Project::new();
    p.file("Flowfile.rhai", TWO)
        .file("flowrun.toml", "dry-run = true\nuntil = [\"a\"]\n");
    let run = p.run(&[]).code(0);
    assert_eq!(run.planned(), ["a"]);
    assert!(!p.exists("a.txt"));
    // -v says which profile applied and what it added.
    p.run(&["-v"])
        .code(0)
        .stderr_has("profile: flowrun.toml adds --dry-run --until=a\n");
}

#[test]
fn the_command_line_wins_over_a_profile_and_replaces_its_lists() {
    let p = Project::new();
    p.file("Flowfile.rhai", TWO)
        .file("flowrun.toml", "dry-run = true\nuntil = [\"a\"]\n");
    let run = p.run(&["--until", "b", "-v"]).code(0);
    assert_eq!(run.planned(), ["b"]);
    assert!(
        run.stderr
            .contains("profile: flowrun.toml adds --dry-run\n"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_profile_option_that_conflicts_with_the_command_line_is_dropped() {
    let p = Project::new();
    p.file("Flowfile.rhai", TWO)
        .file("flowrun.toml", "quiet = true\n");
    p.run(&[]).code(0).stderr_lacks("Running");
    p.run(&["-v", "-F"])
        .code(0)
        .stderr_has("Running")
        .stderr_has("profile: flowrun.toml adds nothing (the command line sets all it sets)\n");
}

#[test]
fn a_table_in_a_profile_gives_name_value_pairs() {
    let p = Project::new();
    p.file(
        "Flowfile.rhai",
        r#"rule("big", #{ output: "big.txt", resources: #{ mem_mb: 500 }, shell: "echo > {output}" });"#,
    )
    .file("flowrun.toml", "resources = { mem_mb = 100 }\n");
    p.run(&["-v"])
        .code(1)
        .stderr_has("profile: flowrun.toml adds --resources=mem_mb=100\n")
        .stderr_has("mem_mb");
    assert!(!p.exists("big.txt"));
    p.run(&["--resources", "mem_mb=1000"]).code(0);
    assert!(p.exists("big.txt"));
}

#[test]
fn the_user_profile_applies_and_the_workflow_profile_wins_per_key() {
    let p = Project::new();
    let home = tempfile::tempdir().unwrap();
    let user = home.path().join("flowrun/flowrun.toml");
    std::fs::create_dir_all(user.parent().unwrap()).unwrap();
    std::fs::write(&user, "dry-run = true\nuntil = [\"a\"]\n").unwrap();
    p.file("Flowfile.rhai", TWO);
    let with_user = |args: &[&str]| {
        let mut cmd = p.cmd(args);
        cmd.env("XDG_CONFIG_HOME", home.path());
        common::run_bounded(cmd)
    };
    let run = with_user(&["-v"]).code(0).stderr_has(&format!(
        "profile: {} adds --dry-run --until=a\n",
        user.display()
    ));
    assert_eq!(run.planned(), ["a"]);
    p.file("flowrun.toml", "until = [\"b\"]\n");
    let run = with_user(&["-v"])
        .code(0)
        .stderr_has(&format!("profile: {} adds --dry-run\n", user.display()))
        .stderr_has("profile: flowrun.toml adds --until=b\n");
    assert_eq!(run.planned(), ["b"]);
}

#[test]
fn the_profile_is_found_beside_a_named_workflow_elsewhere() {
    let p = Project::new();
    p.file("project/wf.rhai", TWO)
        .file("project/flowrun.toml", "dry-run = true\n");
    let run = p.run(&["project/wf.rhai", "-v"]).code(0);
    assert!(
        run.stderr
            .contains("profile: project/flowrun.toml adds --dry-run\n"),
        "{}",
        run.stderr
    );
    assert_eq!(run.planned(), ["a", "b", "all"]);
}

/// Runs `flowrun` with `profile` as `flowrun.toml` and expects a clean error.
fn bad_profile(profile: &str) -> common::Run {
    let p = Project::new();
    p.file("Flowfile.rhai", TWO).file("flowrun.toml", profile);
    let run = p.run(&[]).workflow_error();
    assert!(!p.exists("a.txt"));
    run
}

#[test]
fn an_unknown_profile_key_names_the_file_and_the_near_key() {
    bad_profile("corse = 2\n")
        .stderr_has("error: unknown key `corse` in profile `")
        .stderr_has("flowrun.toml`\n")
        .stderr_has("hint: did you mean `cores`?");
    bad_profile("rerun_triggers = \"mtime\"\n").stderr_has("hint: did you mean `rerun-triggers`?");
    bad_profile("zzzzzz = 1\n")
        .stderr_has("hint: a key is a long option without its dashes, e.g. `cores = 4`");
}

#[test]
fn a_bad_profile_value_names_the_key_and_the_file() {
    bad_profile("cores = \"many\"\n")
        .stderr_has("error: `cores` in profile `")
        .stderr_has("flowrun.toml`: invalid value 'many' for '--cores <N>'");
    bad_profile("keep-going = 1\n")
        .stderr_has("error: `keep-going` in profile `")
        .stderr_has("this option is a flag: write `true` or `false`");
    bad_profile("cores = [1, 2]\n")
        .stderr_has("error: `cores` in profile `")
        .stderr_has("cannot be used multiple times");
    bad_profile("resources = { mem_mb = [1] }\n")
        .stderr_has("lists and tables cannot be nested here");
}

#[test]
fn options_that_cannot_be_in_a_profile_say_why() {
    bad_profile("directory = \"elsewhere\"\n")
        .stderr_has("error: `directory` cannot be set in a profile (`")
        .stderr_has("the profile beside the workflow is found after `-d` is applied");
    bad_profile("workflow = \"x.rhai\"\n")
        .stderr_has("error: `workflow` cannot be set in a profile");
}

#[test]
fn a_profile_that_is_not_toml_is_an_error() {
    bad_profile("cores = 2\nkeep-going =\n")
        .stderr_has("error: cannot parse profile `")
        .stderr_has("flowrun.toml`: line 2: ");
}

#[test]
fn conflicting_profile_settings_are_an_error() {
    bad_profile("quiet = true\nverbose = true\n")
        .stderr_has("error: the profiles' settings do not fit together: the argument '--quiet' cannot be used with '--verbose'");
}

// ---------------------------------------------------------------------------------------------
// The man page

#[test]
fn the_man_page_lists_every_option_of_help_and_renders() {
    // An empty directory: printing the manual needs no workflow.
    let p = Project::new();
    let page = p.run(&["--man"]).code(0).stdout;
    assert!(page.contains(".TH flowrun 1 "), "{page}");
    let help = p.run(&["--help"]).code(0).stdout;
    let longs: Vec<&str> = help
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .collect();
    assert!(longs.len() > 30, "{longs:?}");
    for long in longs {
        let roff = format!("\\fB\\-\\-{}\\fR", long.replace('-', "\\-"));
        assert!(page.contains(&roff), "the man page lacks --{long}");
    }
    // man itself renders it, with what --help has no room for.
    let mut man = std::process::Command::new("bash");
    man.args(["-c", "flowrun --man | man --nj --nh -l -"])
        .current_dir(p.path())
        .env("PATH", common::path_with_bin())
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat");
    let shown = common::run_bounded(man).code(0);
    assert!(shown.stderr.is_empty(), "{}", shown.stderr);
    let words = shown
        .stdout
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for text in [
        "flowrun - A fast, reproducible workflow runner with Rhai workflow files",
        "Without a workflow file, flowrun runs Flowfile.rhai",
        "--completions <SHELL>",
        "130 interrupted (Ctrl-C or SIGTERM)",
    ] {
        assert!(words.contains(text), "{text:?} in\n{}", shown.stdout);
    }
}

#[test]
fn a_profile_may_set_the_cache_dir_but_not_clean() {
    let p = Project::new();
    p.file("Flowfile.rhai", TWO)
        .file("flowrun.toml", "cache-dir = \"cache\"\ncache-all = true\n");
    p.run(&["-v"])
        .code(0)
        .stderr_has("profile: flowrun.toml adds --cache-all --cache-dir=cache\n");
    assert!(p.path().join("cache").is_dir());
    bad_profile("clean = true\n")
        .stderr_has("error: `clean` cannot be set in a profile (`")
        .stderr_has("it deletes outputs: give it when you mean it");
}

// ---------------------------------------------------------------------------------------------
// Discovery against Snakemake's

/// Runs the Snakemake of `target/pyenv` in `dir` with `args` (bounded), or `None` with a loud
/// message when it is not installed (`bash scripts/setup-tests.sh` installs it).
fn snakemake(dir: &std::path::Path, args: &[&str]) -> Option<common::Run> {
    let bin = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/pyenv/bin/snakemake"
    ));
    if !bin.exists() {
        eprintln!(
            "!!! SKIPPING the Snakemake comparison: {} is missing; run `bash scripts/setup-tests.sh`",
            bin.display()
        );
        return None;
    }
    let mut cmd = std::process::Command::new(bin);
    cmd.args(["--cores", "1", "--nocolor"])
        .args(args)
        .current_dir(dir);
    Some(common::run_bounded(cmd))
}

/// The same layouts for both tools: a workflow at the top and one under `workflow/`, each
/// making its own file. Both run the top one, then (once it is gone) the nested one, and both
/// fail when neither is there.
#[test]
fn discovery_finds_what_snakemake_finds() {
    let smk = Project::new();
    let fr = Project::new();
    let snake_rule = |out: &str| {
        format!("rule make:\n    output: \"{out}\"\n    shell: \"echo {out} > {{output}}\"\n")
    };
    let flow_rule = |out: &str| {
        format!(r#"rule("make", #{{ output: "{out}", shell: "echo {out} > {{output}}" }});"#)
    };
    smk.file("Snakefile", &snake_rule("top.txt"))
        .file("workflow/Snakefile", &snake_rule("nested.txt"));
    fr.file("Flowfile.rhai", &flow_rule("top.txt"))
        .file("workflow/Flowfile.rhai", &flow_rule("nested.txt"));
    let Some(run) = snakemake(smk.path(), &[]) else {
        return;
    };
    run.code(0);
    fr.run(&[]).code(0).stderr_has("workflow: Flowfile.rhai\n");
    for p in [&smk, &fr] {
        assert!(p.exists("top.txt") && !p.exists("nested.txt"));
    }
    smk.remove("Snakefile");
    fr.remove("Flowfile.rhai");
    snakemake(smk.path(), &[]).unwrap().code(0);
    fr.run(&[])
        .code(0)
        .stderr_has("workflow: workflow/Flowfile.rhai\n");
    for p in [&smk, &fr] {
        assert_eq!(p.read("nested.txt"), "nested.txt\n");
    }
    smk.remove("workflow/Snakefile");
    fr.remove("workflow/Flowfile.rhai");
    let missed = snakemake(smk.path(), &[]).unwrap();
    assert_ne!(missed.code, 0);
    assert!(
        missed.stderr.contains("No Snakefile found"),
        "{}",
        missed.stderr
    );
    fr.run(&[])
        .workflow_error()
        .stderr_has("no workflow file given, and none found");
}
