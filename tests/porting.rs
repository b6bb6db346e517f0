//! What a porter from Snakemake reaches for (issue 17): the default target (`default_target:
//! true`, imports never deciding it), wildcards in `params`, the `{rule}` and `{wildcards}`
//! placeholders, and the errors that name a Snakemake concept flowrun lacks.

mod common;
use common::workflow as project;

// ---------------------------------------------------------------------------------------------
// The default target

const RULE_FILE: &str = r#"
rule("helper", #{ output: "helper.txt", shell: "echo helper > {output}" });
"#;

#[test]
fn an_imported_rule_file_does_not_decide_the_default_target() {
    let p = project(
        r#"import "rules/extra" as extra;
rule("main", #{ output: "main.txt", shell: "echo main > {output}" });
"#,
    );
    p.file("rules/extra.rhai", RULE_FILE);
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(run.ran(), ["main"]);
    assert!(!p.exists("helper.txt"));
    // Still a target by name.
    let run = p.run(&["wf.rhai", "helper"]).code(0);
    assert_eq!(run.ran(), ["helper"]);
}

#[test]
fn default_target_true_wins_over_all_and_order() {
    let p = project(
        r#"
rule("all", #{ input: "a.txt" });
rule("a", #{ output: "a.txt", shell: "echo a > {output}" });
rule("b", #{ output: "b.txt", default_target: true, shell: "echo b > {output}" });
"#,
    );
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(run.ran(), ["b"]);
    assert!(!p.exists("a.txt"));
}

#[test]
fn two_default_targets_are_an_error() {
    let p = project(
        r#"
rule("a", #{ output: "a.txt", default_target: true, shell: "echo a > {output}" });
rule("b", #{ output: "b.txt", default_target: true, shell: "echo b > {output}" });
"#,
    );
    p.run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("error: rules `a` and `b` both say `default_target: true`; only one rule can be the default target")
        .stderr_has("wf.rhai:3");
    p.file(
        "wf.rhai",
        r#"rule("a", #{ output: "a.txt", default_target: 1, shell: "echo a > {output}" });"#,
    );
    p.run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("rule `a`: `default_target` must be `true` or `false`, not an integer");
}

// ---------------------------------------------------------------------------------------------
// Snakemake names flowrun lacks

#[test]
fn snakemake_rule_keys_name_the_concept_and_the_flowrun_way() {
    for (key, value, text) in [
        ("conda", "\"env.yaml\"", "`conda` is Snakemake's key for a conda environment per rule; flowrun has no conda yet: give the rule `software: #{ python: \"requirements.txt\" }`"),
        ("wrapper", "\"v1/bio/bwa\"", "`wrapper` is Snakemake's key for a wrapper from the Snakemake wrapper repository; flowrun has none"),
        ("group", "\"g\"", "`group` is Snakemake's key for job groups submitted together to a cluster; not supported yet"),
    ] {
        let p = project(&format!(
            "rule(\"a\", #{{ output: \"a.txt\", {key}: {value}, shell: \"touch {{output}}\" }});\n"
        ));
        p.run(&["wf.rhai", "-n"])
            .workflow_error()
            .stderr_has(&format!("rule `a`: unknown key `{key}`; {text}"))
            .stderr_lacks("the keys are");
    }
    // A plain typo still gets its suggestion.
    let p = project("rule(\"a\", #{ outptu: \"a.txt\" });\n");
    p.run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("unknown key `outptu`; did you mean `output`?");
}

#[test]
fn snakemake_functions_name_the_concept_and_the_flowrun_way() {
    for (call, text) in [
        ("pipe(\"x.fifo\")", "`pipe()` is Snakemake's named pipe between two jobs running at once; not supported yet: write a file (a `temp()` output) instead"),
        ("ruleorder(\"a\")", "`ruleorder()` is Snakemake's `ruleorder: a > b`; flowrun's is `rule_order([\"a\", \"b\"])`"),
        ("unpack(\"x\")", "`unpack()` is Snakemake's unpacking of an input function's dict"),
        ("ensure(\"x\")", "`ensure()` is Snakemake's output checks"),
    ] {
        let p = project(&format!(
            "rule(\"a\", #{{ output: {call}, shell: \"touch {{output}}\" }});\n"
        ));
        p.run(&["wf.rhai", "-n"])
            .workflow_error()
            .stderr_has(text)
            .stderr_has("wf.rhai:1")
            .stderr_lacks("Function not found");
    }
}

// ---------------------------------------------------------------------------------------------
// Wildcards in params, `{rule}` and `{wildcards}`

#[test]
fn params_strings_get_the_job_wildcards() {
    let p = project(
        r#"
rule("all", #{ input: ["res/a/1.txt", "res/b/2.txt"] });
rule("make", #{
    output: "res/{dir}/{n}.txt",
    params: #{ dir: "{dir}", both: ["d={dir}", "n={n}"], nested: #{ x: "{n}!" }, keep: "{{dir}} {other} {n", num: 3 },
    shell: "echo {params.dir} {params.both} {params.nested.x} '{params.keep}' {params.num} > {output}",
});
rule("closure", #{
    output: "res/{dir}/{n}.json",
    params: #{ dir: "{dir}/{n}" },
    run: |job| write_text(job.output[0], job.params.dir + "\n"),
});
"#,
    );
    p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(p.read("res/a/1.txt"), "a d=a n=1 1! {{dir}} {other} {n 3\n");
    p.run(&["wf.rhai", "res/b/5.json"]).code(0);
    assert_eq!(p.read("res/b/5.json"), "b/5\n");
    // Nothing reruns: what is recorded are the params as declared.
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert!(run.ran().is_empty(), "{}", run.stderr);
}

#[test]
fn rule_and_wildcards_placeholders() {
    let p = project(
        r#"
rule("greet", #{
    output: "out/{a}-{b}.txt",
    shell: "echo {rule} {wildcards} > {output}",
});
"#,
    );
    p.run(&["wf.rhai", "out/x-y.txt"]).code(0);
    assert_eq!(p.read("out/x-y.txt"), "greet a=x,b=y\n");
    p.file(
        "wf.rhai",
        r#"rule("greet", #{ output: "o.txt", shell: "echo {rule.name} > {output}" });"#,
    );
    p.run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("rule `greet`: shell: `{rule.name}` takes no name or index");
    p.file(
        "wf.rhai",
        r#"rule("greet", #{ output: "o.txt", shell: "echo {rul} > {output}" });"#,
    );
    p.run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("unknown placeholder `{rul}`; did you mean `rule`?");
}

// ---------------------------------------------------------------------------------------------
// touch(), ancient(), multiext(), message, duplicate outputs

#[test]
fn touch_outputs_are_made_by_flowrun_when_the_job_succeeds() {
    let p = project(
        r#"
rule("all", #{ input: "flags/done" });
rule("mark", #{ output: touch("flags/done"), shell: "echo working" });
rule("fail", #{ output: touch("flags/failed"), shell: "exit 3" });
"#,
    );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("flags/done"), "");
    let run = p.run(&["wf.rhai"]).code(0);
    assert!(run.ran().is_empty(), "{}", run.stderr);
    p.run(&["wf.rhai", "flags/failed"]).code(1);
    assert!(!p.exists("flags/failed"));
}

#[test]
fn an_ancient_input_never_makes_its_job_rerun() {
    let p = project(
        r#"
rule("copy", #{ input: [ancient("big.db"), "small.txt"], output: "out.txt", shell: "cat {input} > {output}" });
"#,
    );
    p.file("big.db", "db1\n").file("small.txt", "s1\n");
    p.run(&["wf.rhai"]).code(0);
    p.file("big.db", "db2, much newer\n");
    let run = p.run(&["wf.rhai"]).code(0);
    assert!(run.ran().is_empty(), "{}", run.stderr);
    let run = p.run(&["wf.rhai", "--rerun-triggers", "mtime"]).code(0);
    assert!(run.ran().is_empty(), "{}", run.stderr);
    // The other input still counts.
    p.file("small.txt", "s2\n");
    let run = p.run(&["wf.rhai"]).code(0);
    assert_eq!(run.ran(), ["copy"]);
    assert_eq!(p.read("out.txt"), "db2, much newer\ns2\n");
}

#[test]
fn touch_and_ancient_belong_to_outputs_and_inputs() {
    let p = project(r#"rule("a", #{ input: touch("x"), output: ancient("y"), shell: "true" });"#);
    p.run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("rule `a`: input `x`: `touch()` marks outputs")
        .stderr_has("rule `a`: output `y`: `ancient()` marks inputs");
}

#[test]
fn multiext_makes_one_path_per_extension() {
    let p = project(
        r#"
rule("index", #{
    input: "ref/{g}.fa",
    output: multiext("ref/{g}", ".amb", ".ann", ".bwt"),
    shell: "for f in {output}; do cp {input} $f; done",
});
"#,
    );
    p.file("ref/hg.fa", ">x\n");
    p.run(&["wf.rhai", "ref/hg.ann"]).code(0);
    for ext in ["amb", "ann", "bwt"] {
        assert_eq!(p.read(&format!("ref/hg.{ext}")), ">x\n");
    }
    p.file(
        "wf.rhai",
        r#"rule("a", #{ output: multiext("x", 1), shell: "true" });"#,
    );
    p.run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("multiext: the extensions must be strings");
}

#[test]
fn message_is_printed_when_the_job_starts() {
    let p = project(
        r#"
rule("greet", #{
    output: "out/{s}.txt",
    message: "Greeting {wildcards.s} into {output}",
    shell: "echo hi > {output}",
});
"#,
    );
    p.run(&["wf.rhai", "out/bob.txt"])
        .code(0)
        .stderr_has("Greeting bob into out/bob.txt");
    p.file(
        "wf.rhai",
        r#"rule("greet", #{ output: "o.txt", message: "for {wildcards.s}", shell: "true" });"#,
    );
    p.run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("rule `greet`: message: `{wildcards.s}`: the rule has no wildcard `s`");
}

#[test]
fn an_output_listed_twice_is_an_error() {
    let p = project(r#"rule("a", #{ output: ["{n}.txt", "{n}.txt"], shell: "true" });"#);
    p.run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("rule `a`: `{n}.txt` is listed twice among the outputs and logs; a rule makes each file once");
}

// ---------------------------------------------------------------------------------------------
// job.attempt, onstart / onsuccess / onerror

#[test]
fn job_attempt_counts_the_tries() {
    let p = project(
        r#"
rule("flaky", #{
    output: "x.txt",
    retries: 2,
    run: |job| {
        shell("echo " + job.attempt + " >> tries.txt");
        if job.attempt < 3 { throw "not yet"; }
        write_text(job.output[0], "made on attempt " + job.attempt + "\n");
    },
});
"#,
    );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("tries.txt"), "1\n2\n3\n");
    assert_eq!(p.read("x.txt"), "made on attempt 3\n");
}

/// A job that needs 3000 MB to succeed, asking for `attempt × 1000` and `attempt` threads.
const GROWING: &str = r#"
rule("grow", #{
    output: "out.txt",
    retries: 3,
    threads: |w, attempt| attempt,
    resources: #{ mem_mb: |w, attempt| attempt * 1000 },
    shell: "echo {resources.mem_mb} {threads} >> tries.txt; [ {resources.mem_mb} -ge 3000 ]; echo ok > {output}",
});
"#;

#[test]
fn retries_grow_threads_and_resources_by_a_function_of_the_attempt() {
    let p = project(GROWING);
    p.run(&["wf.rhai", "-j", "4", "--trace", "t.jsonl"])
        .code(0)
        .stderr_has("Retrying grow (1/3) after: the command exited with status 1; attempt 2 takes threads=2, mem_mb=2000")
        .stderr_has("Retrying grow (2/3) after: the command exited with status 1; attempt 3 takes threads=3, mem_mb=3000")
        .stderr_lacks("(3/3)");
    assert_eq!(p.read("tries.txt"), "1000 1\n2000 2\n3000 3\n");
    assert_eq!(p.read("out.txt"), "ok\n");
    let notes: Vec<String> = p
        .events("t.jsonl")
        .into_iter()
        .filter(|e| e["kind"] == "retrying")
        .map(|e| e["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[1].ends_with("attempt 3 takes threads=3, mem_mb=3000"),
        "{notes:?}"
    );
    // Threads beyond `-j` are scaled down to it, on every attempt as on the first.
    std::fs::remove_file(p.path().join("tries.txt")).unwrap();
    p.run(&["wf.rhai", "-j", "2", "-F"]).code(0);
    assert_eq!(p.read("tries.txt"), "1000 1\n2000 2\n3000 2\n");
}

#[test]
fn run_closures_see_the_threads_and_resources_of_their_attempt() {
    let p = project(
        r#"
rule("all", #{ input: ["a.txt", "b.txt"] });
rule("grow", #{
    output: "{n}.txt",
    retries: 1,
    threads: |w, attempt| if w.n == "a" { attempt } else { 1 },
    resources: |w, attempt| #{ mem_mb: attempt * 100, disk_mb: 5 },
    run: |job| {
        write_text(job.output[0], `${job.attempt} ${job.threads} ${job.resources.mem_mb} ${job.resources.disk_mb}`);
        if job.attempt < 2 { throw "not yet"; }
    },
});
"#,
    );
    p.run(&["wf.rhai", "-j", "2"]).code(0);
    assert_eq!(p.read("a.txt"), "2 2 200 5");
    assert_eq!(p.read("b.txt"), "2 1 200 5");
}

#[test]
fn a_retry_that_needs_more_than_resources_allow_fails_with_the_reason() {
    let p = project(GROWING);
    p.run(&["wf.rhai", "--resources", "mem_mb=2500"])
        .code(1)
        .stderr_has("Retrying grow (1/3)")
        .stderr_has("the command exited with status 1\n")
        .stderr_has("no retry: attempt 3 needs mem_mb=3000, more than --resources mem_mb=2500")
        .stderr_lacks("(2/3)");
    assert_eq!(p.read("tries.txt"), "1000 1\n2000 2\n");
    assert!(!p.exists("out.txt"));
}

#[test]
fn a_function_of_the_attempt_that_fails_on_a_retry_fails_the_job_with_the_reason() {
    project(
        r#"rule("grow", #{ output: "out.txt", retries: 1,
    threads: |w, attempt| if attempt == 1 { 1 } else { throw "no more" },
    shell: "exit 1" });
"#,
    )
    .run(&["wf.rhai"])
    .code(1)
    .stderr_has("the command exited with status 1\n")
    .stderr_has(
        "no retry: rule `grow`, job grow: the `threads` function failed: no more (at wf.rhai:2:56)",
    );
    // What the retry's resources give must still fit the command.
    project(
        r#"rule("grow", #{ output: "out.txt", retries: 1,
    resources: |w, attempt| if attempt == 1 { #{ mem_mb: 1, scratch_mb: 1 } } else { #{ mem_mb: 2 } },
    shell: "echo {resources.scratch_mb}; exit 1" });
"#,
    )
    .run(&["wf.rhai"])
    .code(1)
    .stderr_has("no retry: rule `grow`, job grow: shell: `{resources.scratch_mb}`: the rule has no resource `scratch_mb` (at wf.rhai:1:1)");
}

#[test]
fn a_retry_waits_until_its_grown_resources_are_free() {
    // `slow` holds 2000 of 3000 MB for a while; `grow` fails at once with 1000 and needs
    // 2000 for its retry, which therefore starts only when `slow` is done.
    let p = project(
        r#"
rule("all", #{ input: ["grow.txt", "slow.txt"] });
rule("grow", #{
    output: "grow.txt",
    retries: 1,
    resources: #{ mem_mb: |w, attempt| attempt * 1000 },
    shell: "echo grow {resources.mem_mb} >> order.txt; [ {resources.mem_mb} -ge 2000 ]; touch {output}",
});
rule("slow", #{
    output: "slow.txt",
    resources: #{ mem_mb: 2000 },
    shell: "echo slow starts >> order.txt; sleep 1; echo slow ends >> order.txt; touch {output}",
});
"#,
    );
    p.run(&["wf.rhai", "-j", "2", "--resources", "mem_mb=3000"])
        .code(0);
    let order = p.read("order.txt");
    let lines: Vec<&str> = order.lines().collect();
    assert_eq!(lines.len(), 4, "{order}");
    assert_eq!(&lines[2..], ["slow ends", "grow 2000"], "{order}");
}

#[test]
fn a_function_of_the_attempt_is_for_threads_and_resources_only() {
    project(r#"rule("r", #{ output: "o.txt", threads: |w, a, b| 1, shell: "x" });"#)
        .run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("rule `r`: `threads` must be a function of the job's wildcards and, if it grows with retries, the attempt: `|w| ...` or `|w, attempt| ...`");
    project(r#"rule("r", #{ output: "o.txt", params: #{ p: |w, attempt| 1 }, shell: "x" });"#)
        .run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("rule `r`: `params.p` must be a function of the job's wildcards and, if it needs them, the job's files, by these names: `|w| ...`, `|w, input| ...`, `|w, output| ...` or `|w, input, output| ...`");
}

const GROWING_SNAKEFILE: &str = r#"
rule grow:
    output: "out.txt"
    retries: 3
    threads: lambda wildcards, attempt: attempt
    resources: mem_mb=lambda wildcards, attempt: attempt * 1000
    shell: "echo {resources.mem_mb} {threads} >> tries.txt; [ {resources.mem_mb} -ge 3000 ]; echo ok > {output}"
"#;

#[test]
fn growing_retries_match_snakemake() {
    let fr = project(GROWING);
    fr.run(&["wf.rhai", "-j", "4"]).code(0);
    let sm = common::Project::new();
    sm.file("Snakefile", GROWING_SNAKEFILE);
    let Some(run) = common::run_snakemake(sm.path(), &["-c4"]) else {
        return;
    };
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(sm.read("tries.txt"), fr.read("tries.txt"));
    assert_eq!(sm.read("out.txt"), fr.read("out.txt"));
}

const HANDLERS: &str = r#"
onstart(|| shell("echo start >> events.txt"));
onsuccess(|| { shell("echo success >> events.txt"); print("all done"); });
onerror(|| shell("echo error >> events.txt"));
rule("a", #{ output: "a.txt", shell: "CMD" });
"#;

#[test]
fn handlers_run_around_a_run_not_at_definition_time() {
    let p = project(&HANDLERS.replace("CMD", "echo a > {output}"));
    p.run(&["wf.rhai", "-n"]).code(0);
    assert!(!p.exists("events.txt"), "a dry run ran a handler");
    p.run(&["wf.rhai"]).code(0).stderr_has("all done");
    assert_eq!(p.read("events.txt"), "start\nsuccess\n");
    // Nothing to do: no handler.
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("events.txt"), "start\nsuccess\n");
    p.file("wf.rhai", &HANDLERS.replace("CMD", "exit 4"));
    p.remove("a.txt");
    p.run(&["wf.rhai"]).code(1);
    assert_eq!(p.read("events.txt"), "start\nsuccess\nstart\nerror\n");
}

#[test]
fn a_failing_handler_is_a_workflow_error() {
    let p = project(
        r#"
onstart(|| shell("exit 7"));
rule("a", #{ output: "a.txt", shell: "echo a > {output}" });
"#,
    );
    p.run(&["wf.rhai"])
        .workflow_error()
        .stderr_has("shell: the command exited with status 7")
        .stderr_has("wf.rhai:2");
    assert!(!p.exists("a.txt"));
}

// ---------------------------------------------------------------------------------------------
// Logs as targets and inputs

#[test]
fn a_log_can_be_a_target_and_an_input() {
    let p = project(
        r#"
rule("all", #{ input: "summary.txt" });
rule("work", #{ output: "out/{s}.txt", log: "logs/{s}.log", shell: "echo working on {wildcards.s}; echo x > {output}" });
rule("summary", #{ input: ["logs/a.log", "out/b.txt"], output: "summary.txt", shell: "cat {input} > {output}" });
"#,
    );
    let run = p.run(&["wf.rhai", "logs/c.log"]).code(0);
    assert_eq!(run.ran(), ["work[s=c]"]);
    assert_eq!(p.read("logs/c.log"), "working on c\n");
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(
        run.ran_sorted(),
        ["all", "summary", "work[s=a]", "work[s=b]"]
    );
    assert_eq!(p.read("summary.txt"), "working on a\nx\n");
}

// ---------------------------------------------------------------------------------------------
// Found porting snakemake-workflows/rna-seq-star-deseq2

#[test]
fn a_named_input_list_is_indexed_as_in_snakemake() {
    let p = project(
        r#"
rule("fixed", #{ input: #{ reads: ["r1.fq", "r2.fq"] }, output: "fixed.txt",
    shell: "cat {input.reads[1]} {input.reads[0]} > {output}" });
rule("from_fn", #{ input: #{ reads: |w| ["r1.fq", "r2.fq"] }, output: "fn.txt",
    shell: "cat {input.reads[1]} > {output}" });
"#,
    );
    p.file("r1.fq", "one\n").file("r2.fq", "two\n");
    p.run(&["wf.rhai", "fixed.txt", "fn.txt"]).code(0);
    assert_eq!(p.read("fixed.txt"), "two\none\n");
    assert_eq!(p.read("fn.txt"), "two\n");
}

#[test]
fn an_index_past_a_named_list_is_an_error_at_load_or_for_the_job() {
    let p = project(
        r#"rule("a", #{ input: #{ reads: ["r1.fq"] }, output: "a.txt", shell: "cat {input.reads[1]} > {output}" });"#,
    );
    p.run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("error: rule `a`: shell: `{input.reads[1]}`: index 1 is out of range; the rule has 1 such file(s)");
    // A function decides the list per job: the job is named, before anything runs.
    p.file(
        "wf.rhai",
        r#"rule("a", #{ input: #{ reads: |w| ["r1.fq"] }, output: "{s}.txt", shell: "cat {input.reads[1]} > {output}" });"#,
    );
    p.file("r1.fq", "one\n");
    p.run(&["wf.rhai", "x.txt"])
        .workflow_error()
        .stderr_has("error: rule `a`, job a[s=x]: shell: `{input.reads[1]}`: index 1 is out of range; the rule has 1 such file(s)")
        .stderr_has("wf.rhai:1");
    assert!(!p.exists("x.txt"));
    p.file(
        "wf.rhai",
        r#"rule("a", #{ input: #{ reads: "r1.fq" }, output: "a.txt", params: #{ x: [1] }, shell: "echo {params.x[0]} > {output}" });"#,
    );
    p.run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("error: rule `a`: shell: `{params.x[0]}` cannot be indexed");
}

#[test]
fn config_of_a_path_is_snakemakes_configfile() {
    let p = project(
        r#"
let cfg = config("config/config.yaml");
rule("all", #{ output: "out.txt", params: #{ n: cfg.n, name: cfg.ref.name }, shell: "echo {params.n} {params.name} > {output}" });
"#,
    );
    p.file(
        "config/config.yaml",
        "n: 3\nref:\n  name: hg38\n  build: x\n",
    );
    p.file("over.yaml", "ref:\n  name: mm39\n");
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("out.txt"), "3 hg38\n");
    // `--configfile` and `--config` override the file, key by key.
    let over = ["wf.rhai", "--configfile", "over.yaml", "--config", "n=4"];
    let plan = p.run(&[&over[..], &["-n"]].concat()).code(0);
    assert_eq!(plan.reasons("all"), ["the rule's params changed"]);
    p.run(&over).code(0);
    assert_eq!(p.read("out.txt"), "4 mm39\n");
    p.file("config/config.yaml", "n: [oops\n");
    p.run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("config: cannot parse config file `config/config.yaml`")
        .stderr_has("wf.rhai:2");
    p.remove("config/config.yaml");
    p.run(&["wf.rhai", "-n"]).workflow_error().stderr_has(
        "config: cannot read config file `config/config.yaml`: No such file or directory",
    );
    p.file("config/config.txt", "n: 1\n");
    p.file("wf.rhai", r#"let cfg = config("config/config.txt");"#);
    p.run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("config: config file `config/config.txt` has an unknown extension; use .json, .toml, .yaml or .yml");
}
