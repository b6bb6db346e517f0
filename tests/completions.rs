//! `flowrun --completions bash|zsh|fish` (issue 16, item 5): each script is sourced into its
//! real shell, which then asks the real `flowrun` binary (on `PATH`) for completions of rule
//! names, targets, options and option values of the workflow in the current directory.
//! Bash and fish complete for real (`_clap_complete_flowrun` with `COMP_WORDS` set, `complete
//! -C`); zsh's completion system needs a terminal, so its two builtins the script calls
//! (`compdef`, `_describe`) are replaced by functions that print what they were given.

mod common;
use common::{Project, Run};
use std::process::Command;

/// A workflow with a rule per kind of target, and a `print` that must not reach the terminal.
const WORKFLOW: &str = r#"
rule("all", #{ input: ["a.txt", "b/x.txt"] });
rule("a", #{ output: "a.txt", shell: "echo > {output}" });
rule("bx", #{ output: "b/{n}.txt", shell: "echo > {output}" });
print("noise from the workflow");
"#;

/// Runs `script` with `shell` (and its no-startup-files flag) in the project, with the binary
/// under test first on `PATH`.
fn shell(p: &Project, shell: &str, flag: &str, script: &str) -> Run {
    let mut cmd = Command::new(shell);
    cmd.current_dir(p.path())
        .args([flag, "-c", script])
        .env("PATH", common::path_with_bin())
        .env("XDG_CONFIG_HOME", p.path().join(".no-user-config"))
        .env("NO_COLOR", "1")
        .env_remove("FLOWRUN_COMPLETE");
    common::run_bounded(cmd)
}

/// Bash: `comp WORD...` completes the last word as bash would and prints the candidates.
fn bash(p: &Project, lines: &str) -> Run {
    let script = format!(
        r#"source <(flowrun --completions bash) || exit 9
comp() {{
    COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${{#COMP_LINE}}
    COMPREPLY=()
    _clap_complete_flowrun flowrun "${{COMP_WORDS[-1]}}" "${{COMP_WORDS[-2]}}"
    printf '%s\n' "${{COMPREPLY[@]}}"; echo ---
}}
{lines}"#
    );
    shell(p, "bash", "--norc", &script).code(0)
}

/// The candidate groups a script printed, split at `---` lines.
fn groups(run: &Run) -> Vec<Vec<String>> {
    run.stdout
        .split("---\n")
        .map(|g| g.lines().map(str::to_string).collect())
        .collect()
}

#[test]
fn bash_completes_rule_names_and_targets_of_the_workflow_here() {
    let p = Project::new();
    p.file("Flowfile.rhai", WORKFLOW);
    let run = bash(
        &p,
        "complete -p flowrun\ncomp flowrun ''\ncomp flowrun a.txt b\ncomp flowrun -n a",
    );
    assert!(
        run.stdout.starts_with("complete ")
            && run.stdout.contains(" -F _clap_complete_flowrun flowrun\n"),
        "{}",
        run.stdout
    );
    let got = groups(&run);
    // An empty word: rules in declaration order, then the files they make, then the files
    // here and the options.
    assert_eq!(
        got[0][1..6],
        ["all", "a", "bx", "a.txt", "b/x.txt"],
        "{got:?}"
    );
    assert!(got[0].iter().any(|c| c == "Flowfile.rhai"), "{got:?}");
    assert!(got[0].iter().any(|c| c == "--dry-run"), "{got:?}");
    assert_eq!(got[1], ["bx", "b/x.txt"]);
    // A prefix after an option: the rule, its file and what is on disk.
    assert_eq!(got[2], ["all", "a", "a.txt"]);
    // Completing evaluated the workflow, whose `print` stayed out of the terminal.
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[test]
fn bash_completes_options_and_their_values() {
    let p = Project::new();
    p.file("Flowfile.rhai", WORKFLOW);
    let run = bash(
        &p,
        "comp flowrun --prog\ncomp flowrun --progress ''\ncomp flowrun --on-change r\ncomp flowrun --completions ''\ncomp flowrun -R a",
    );
    let got = groups(&run);
    assert_eq!(got[0], ["--progress"]);
    assert_eq!(got[1], ["auto", "bar", "lines"]);
    assert_eq!(got[2], ["restart"]);
    assert_eq!(got[3], ["bash", "zsh", "fish"]);
    // -R and --until take a rule or a file of the workflow.
    assert_eq!(got[4], ["all", "a", "a.txt"]);
}

#[test]
fn bash_completion_without_a_workflow_or_with_a_broken_one_offers_files_and_is_quiet() {
    let p = Project::new();
    p.file("data.csv", "1\n").file("wf.rhai", WORKFLOW);
    let run = bash(
        &p,
        "comp flowrun d\ncomp flowrun w\ncomp flowrun --configfile d",
    );
    assert_eq!(
        groups(&run)[..3],
        [vec!["data.csv"], vec!["wf.rhai"], vec!["data.csv"]]
    );
    p.file("Flowfile.rhai", "rule(\"oops\", #{ output: });\n");
    let run = bash(&p, "comp flowrun d\ncomp flowrun --dry");
    assert_eq!(groups(&run)[..2], [vec!["data.csv"], vec!["--dry-run"]]);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[test]
fn fish_completes_targets_with_descriptions() {
    let p = Project::new();
    p.file("Flowfile.rhai", WORKFLOW);
    let run = shell(
        &p,
        "fish",
        "--no-config",
        "flowrun --completions fish | source; complete -C 'flowrun a.txt b'; echo ---; \
         complete -C 'flowrun --progress '",
    )
    .code(0);
    let got = groups(&run);
    assert_eq!(got[0], ["bx\trule", "b/x.txt\tmade by bx"]);
    assert_eq!(
        got[1],
        [
            "auto\tWhen stderr is a terminal (and `TERM` is not `dumb`)",
            "bar\tAlways, even into a pipe",
            "lines\tNever: one line per job event"
        ]
    );
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[test]
fn zsh_registers_for_flowrun_and_completes_targets() {
    let p = Project::new();
    p.file("Flowfile.rhai", WORKFLOW);
    let run = shell(
        &p,
        "zsh",
        "-f",
        r#"compdef() { print -r -- "compdef $*"; }
_describe() { print -rl -- "${(@P)3}"; }
source <(flowrun --completions zsh) || exit 9
words=(flowrun a.txt b); CURRENT=3; _clap_dynamic_completer_flowrun; echo ---
words=(flowrun -j 2 --until b); CURRENT=5; _clap_dynamic_completer_flowrun"#,
    )
    .code(0);
    let got = groups(&run);
    assert_eq!(
        got[0],
        [
            "compdef _clap_dynamic_completer_flowrun flowrun",
            "bx:rule",
            "b/x.txt:made by bx"
        ]
    );
    // `--until` (like `-R`) takes a rule or a file.
    assert_eq!(got[1], ["bx:rule", "b/x.txt:made by bx"]);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[test]
fn completions_for_an_unknown_shell_is_a_command_line_error() {
    let p = Project::new();
    p.run(&["--completions", "tcsh"])
        .code(2)
        .stderr_has("error: invalid value 'tcsh' for '--completions <SHELL>'")
        .stderr_has("[possible values: bash, zsh, fish]");
}
