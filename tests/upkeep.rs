//! `--accept`, `--list-changes`, `--clean` and `--clean-temp`: the store's upkeep, run on real
//! workflows.

mod common;

use common::Project;

const WF: &str = r#"
rule("all", #{ input: ["out/a.txt", "out/b.txt"] });
rule("copy", #{
    input: "in/{s}.txt",
    output: "mid/{s}.txt",
    shell: "cp {input} {output}",
});
rule("upper", #{
    input: "mid/{s}.txt",
    output: "out/{s}.txt",
    params: #{ tag: "x" },
    shell: "tr a-z A-Z < {input} > {output}; echo {params.tag} >> {output}",
});
"#;

fn project() -> Project {
    let p = Project::new();
    p.file("wf.rhai", WF)
        .file("in/a.txt", "aaa\n")
        .file("in/b.txt", "bbb\n");
    p.run(&["wf.rhai"]).code(0);
    p
}

#[test]
fn accept_records_code_and_params_changes_so_nothing_reruns() {
    let p = project();
    p.file(
        "wf.rhai",
        &WF.replace("cp {input} {output}", "cat {input} > {output}")
            .replace(r#"tag: "x""#, r#"tag: "y""#),
    );
    let dry = p.run(&["--accept", "-n", "wf.rhai"]).code(0);
    assert!(
        dry.stderr
            .contains("Would accept copy[s=a]: the rule's code changed"),
        "{}",
        dry.stderr
    );
    p.run(&["-n", "wf.rhai"])
        .code(0)
        .stdout_has("job copy[s=a]");
    let run = p.run(&["--accept", "wf.rhai"]).code(0);
    let stderr = &run.stderr;
    assert!(
        stderr.contains("Accepted copy[s=b]: the rule's code changed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Accepted upper[s=a]: the rule's params changed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("accepted: 4 job(s) (code 2, params 2), 0 refused"),
        "{stderr}"
    );
    p.run(&["wf.rhai"])
        .code(0)
        .stderr_has("nothing to be done: every output is up to date");
    // Outputs were not touched.
    assert_eq!(p.read("out/a.txt"), "AAA\nx\n");
    p.run(&["--accept", "wf.rhai"])
        .code(0)
        .stderr_has("nothing to accept: every output is up to date");
}

#[test]
fn accept_refuses_missing_outputs_and_says_so() {
    let p = project();
    p.remove("out/b.txt");
    p.file("in/a.txt", "AAA changed\n");
    let run = p.run(&["--accept", "wf.rhai"]).code(1);
    assert!(
        run.stderr
            .contains("Refused upper[s=b]: output `out/b.txt` is missing"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("Accepted copy[s=a]: input `in/a.txt` changed"),
        "{}",
        run.stderr
    );
    let ran = p.run(&["wf.rhai"]).code(0);
    assert_eq!(ran.ran_sorted(), ["all", "upper[s=b]"], "{}", ran.stderr);
}

#[test]
fn list_changes_prints_outputs_whose_record_disagrees() {
    let p = project();
    p.file("wf.rhai", &WF.replace(r#"tag: "x""#, r#"tag: "z""#));
    let params = p.run(&["--list-changes", "params", "wf.rhai"]).code(0);
    assert_eq!(params.stdout, "out/a.txt\nout/b.txt\n");
    let code = p.run(&["--list-changes", "code", "wf.rhai"]).code(0);
    assert_eq!(code.stdout, "");
    p.file("in/b.txt", "new\n");
    let content = p.run(&["--list-changes", "content", "wf.rhai"]).code(0);
    assert_eq!(content.stdout, "mid/b.txt\n");
    p.run(&["--list-changes", "cod", "wf.rhai"])
        .workflow_error()
        .stderr_has("invalid value 'cod' for '--list-changes <KIND>'")
        .stderr_has("[possible values: code, params, input, content]");
}

#[test]
fn clean_deletes_what_the_store_records_even_of_deleted_rules() {
    let p = project();
    p.file(
        "extra.rhai",
        r#"rule("e", #{ output: "gone/e.txt", shell: "echo e > {output}" });"#,
    );
    p.run(&["extra.rhai"]).code(0);
    p.file("notmine.txt", "keep me\n");
    // The rule that made gone/e.txt no longer exists in wf.rhai; the store remembers it.
    let dry = p.run(&["--clean", "-n", "wf.rhai"]).code(0);
    assert_eq!(
        dry.stdout,
        "gone/e.txt\nmid/a.txt\nmid/b.txt\nout/a.txt\nout/b.txt\n"
    );
    assert!(p.exists("out/a.txt"), "-n deletes nothing");
    let run = p.run(&["--clean", "wf.rhai"]).code(0);
    assert!(run.stderr.contains("deleted 5 file(s)"), "{}", run.stderr);
    for f in ["gone/e.txt", "mid/a.txt", "out/b.txt"] {
        assert!(!p.exists(f), "{f} is deleted");
    }
    assert!(!p.exists("gone"), "emptied directories are removed");
    assert!(p.exists("in/a.txt") && p.exists("notmine.txt"));
    // The records went with the files: a dry run plans everything again.
    p.run(&["-n", "wf.rhai"])
        .code(0)
        .stdout_has("output `out/a.txt` is missing");
}

#[test]
fn clean_with_targets_keeps_to_their_jobs_and_protected_outputs_need_force() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("p", #{ output: protected("p.txt"), shell: "echo p > {output}" });
rule("q", #{ output: "q.txt", shell: "echo q > {output}" });
"#,
    );
    p.run(&["wf.rhai", "p.txt", "q.txt"]).code(0);
    let run = p.run(&["--clean", "wf.rhai", "p"]).code(0);
    assert!(
        run.stderr
            .contains("Kept p.txt (protected; -F deletes it too)"),
        "{}",
        run.stderr
    );
    assert!(p.exists("p.txt") && p.exists("q.txt"));
    p.run(&["--clean", "-F", "wf.rhai", "p"])
        .code(0)
        .stderr_has("Deleted p.txt");
    assert!(!p.exists("p.txt") && p.exists("q.txt"));
}

#[test]
fn clean_temp_deletes_temporary_outputs_left_behind() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: ["final.txt"] });
rule("t", #{ output: temp("t.txt"), shell: "echo t > {output}" });
rule("f", #{ input: "t.txt", output: "final.txt", shell: "false" });
"#,
    );
    p.run(&["wf.rhai"]).code(1);
    assert!(p.exists("t.txt"), "the failed consumer left the temp file");
    p.run(&["--clean-temp", "-n", "wf.rhai"])
        .code(0)
        .stdout_has("t.txt");
    assert!(p.exists("t.txt"));
    p.run(&["--clean-temp", "wf.rhai"])
        .code(0)
        .stderr_has("Deleted t.txt");
    assert!(!p.exists("t.txt"));
}
