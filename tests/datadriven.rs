//! Data-driven workflows (DESIGN.md §8, issue 13), through the real binary: functions of the
//! wildcards for `input`, `params`, `log`, `threads` and `resources`, what their results and
//! their code do to reruns, and the errors they raise.

mod common;
use common::{lines, Project};

// ---------------------------------------------------------------------------------------------
// Functions of the wildcards

/// Two samples whose FASTQ file and adapter come from a table, not from a pattern.
fn sheet_project() -> Project {
    let p = Project::new();
    p.file("data/reads_a.fq", "a1\na2\n")
        .file("data/reads_b.fq", "b1\n")
        .file("data/extra_b.fq", "b2\n")
        .file(
            "wf.rhai",
            r#"
let sheet = #{
    a: #{ fastq: ["data/reads_a.fq"], adapter: "AAA" },
    b: #{ fastq: ["data/reads_b.fq", "data/extra_b.fq"], adapter: "CCC" },
};
rule("all", #{ input: expand("trimmed/{s}.fq", #{ s: sheet.keys() }) });
rule("trim", #{
    input: |w| sheet[w.s].fastq,
    output: "trimmed/{s}.fq",
    params: #{ adapter: |w| sheet[w.s].adapter, fixed: 1 },
    shell: "echo {params.adapter} {params.fixed} > {output}; cat {input} >> {output}",
});
"#,
        );
    p
}

#[test]
fn an_input_function_reads_a_sample_sheet_and_a_params_entry_is_computed_per_job() {
    let p = sheet_project();
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("trimmed/a.fq"), "AAA 1\na1\na2\n");
    assert_eq!(p.read("trimmed/b.fq"), "CCC 1\nb1\nb2\n");
    let dry = p.run(&["wf.rhai", "-n"]).code(0);
    assert!(dry.planned().is_empty(), "{}", dry.stdout);
}

#[test]
fn a_function_result_that_changes_reruns_only_the_jobs_it_gives_something_new() {
    let p = sheet_project();
    p.run(&["wf.rhai"]).code(0);
    // b's adapter changes: its params changed; a is untouched.
    let wf = p.read("wf.rhai").replace("\"CCC\"", "\"GGG\"");
    p.file("wf.rhai", &wf);
    let dry = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(dry.planned(), ["trim[s=b]", "all"]);
    assert_eq!(dry.reasons("trim[s=b]"), ["the rule's params changed"]);
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("trimmed/b.fq"), "GGG 1\nb1\nb2\n");
    // a's files change: its set of inputs changed.
    p.file("data/more_a.fq", "a3\n");
    let wf = p.read("wf.rhai").replace(
        "fastq: [\"data/reads_a.fq\"]",
        "fastq: [\"data/reads_a.fq\", \"data/more_a.fq\"]",
    );
    p.file("wf.rhai", &wf);
    let dry = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(dry.planned(), ["trim[s=a]", "all"]);
    assert_eq!(
        dry.reasons("trim[s=a]"),
        ["the set of inputs changed (added `data/more_a.fq`)"]
    );
    // The content of an input a function gave is tracked like any input's.
    p.run(&["wf.rhai"]).code(0);
    p.file("data/extra_b.fq", "B2\n");
    let dry = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(dry.planned(), ["trim[s=b]", "all"]);
    assert_eq!(
        dry.reasons("trim[s=b]"),
        ["input `data/extra_b.fq` changed"]
    );
}

#[test]
fn adding_a_sample_to_the_sheet_a_function_captures_runs_the_new_job_only() {
    let p = sheet_project();
    p.run(&["wf.rhai"]).code(0);
    p.file("data/reads_c.fq", "c1\n");
    let wf = p.read("wf.rhai").replace(
        "let sheet = #{",
        "let sheet = #{\n    c: #{ fastq: [\"data/reads_c.fq\"], adapter: \"TTT\" },",
    );
    p.file("wf.rhai", &wf);
    let dry = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(dry.planned(), ["trim[s=c]", "all"]);
}

#[test]
fn editing_a_function_or_a_helper_it_calls_is_a_code_change_of_its_rule() {
    let p = Project::new();
    p.file("x.txt", "x\n").file(
        "wf.rhai",
        r#"
fn source_of(s) { s + ".txt" }
rule("all", #{ input: ["out/x.txt", "other.txt"] });
rule("copy", #{ input: |w| source_of(w.s), output: "out/{s}.txt", shell: "cp {input} {output}" });
rule("other", #{ output: "other.txt", shell: "echo o > {output}" });
"#,
    );
    p.run(&["wf.rhai"]).code(0);
    // Layout only: nothing reruns.
    let wf = p
        .read("wf.rhai")
        .replace("|w| source_of(w.s)", "|w|\n     source_of(w.s)");
    p.file("wf.rhai", &wf);
    assert!(p.run(&["wf.rhai", "-n"]).code(0).planned().is_empty());
    // The helper the function calls.
    let wf = p
        .read("wf.rhai")
        .replace("s + \".txt\"", "\"\" + s + \".txt\"");
    p.file("wf.rhai", &wf);
    let dry = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(dry.planned(), ["copy[s=x]", "all"]);
    assert_eq!(dry.reasons("copy[s=x]"), ["the rule's code changed"]);
}

#[test]
fn functions_give_named_inputs_logs_threads_resources_and_whole_params() {
    let p = Project::new();
    p.file("r1.txt", "R1\n").file("r2.txt", "R2\n").file("ref.txt", "REF\n").file(
        "wf.rhai",
        r#"
rule("all", #{ input: ["out/one.txt", "out/two.txt"] });
rule("work", #{
    input: #{ reads: |w| [#{ one: "r1.txt", two: "r2.txt" }[w.n]], reference: "ref.txt" },
    output: "out/{n}.txt",
    log: |w| "logs/" + w.n + ".log",
    params: |w| #{ label: "n" + w.n },
    threads: |w| if w.n == "one" { 1 } else { 2 },
    resources: #{ mem_mb: |w| if w.n == "one" { 100 } else { 200 } },
    wildcard_constraints: #{ n: "one|two" },
    shell: "echo {params.label} {threads} {resources.mem_mb} {input.reads} {input.reference} > {output}; echo logged > {log}",
});
"#,
    );
    p.run(&["wf.rhai", "-j", "2"]).code(0);
    assert_eq!(p.read("out/one.txt"), "none 1 100 r1.txt ref.txt\n");
    assert_eq!(p.read("out/two.txt"), "ntwo 2 200 r2.txt ref.txt\n");
    assert_eq!(p.read("logs/two.log"), "logged\n");
}

#[test]
fn the_rule_list_says_an_input_is_a_function() {
    let p = sheet_project();
    p.run(&["wf.rhai", "--list"]).code(0).stdout_has(
        "trim (shell)\n    input:  a function of the wildcards\n    output: trimmed/{s}.fq\n",
    );
}

#[test]
fn a_run_closure_sees_what_the_functions_gave_its_job() {
    let p = Project::new();
    p.file("in_a.txt", "A").file(
        "wf.rhai",
        r#"
rule("r", #{
    input: |w| "in_" + w.x + ".txt",
    output: "out_{x}.txt",
    params: #{ tag: |w| w.x.to_upper() },
    threads: |w| 2,
    run: |job| write_text(job.output[0], `${read_text(job.input[0])} ${job.params.tag} ${job.threads}`),
});
"#,
    );
    p.run(&["wf.rhai", "out_a.txt", "-j", "2"]).code(0);
    assert_eq!(p.read("out_a.txt"), "A A 2");
}

#[test]
fn each_function_runs_once_per_job_however_many_jobs_need_it() {
    let p = Project::new();
    p.file("src.txt", "s\n").file(
        "wf.rhai",
        r#"
rule("all", #{ input: ["x1.txt", "x2.txt", "x3.txt"] });
rule("fan", #{ input: "mid_a.txt", output: "x{i}.txt", shell: "cp {input} {output}" });
rule("mid", #{
    input: |w| { print(`called mid ${w.m}`); "src.txt" },
    output: "mid_{m}.txt",
    shell: "cp {input} {output}",
});
"#,
    );
    let dry = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(
        dry.stderr.matches("called mid a").count(),
        1,
        "{}",
        dry.stderr
    );
}

/// 300 samples: enough jobs at once for the planner to call their functions on every core.
fn many_samples(p: &Project, n: usize) {
    let mut sheet = String::from("sample\tfastq\n");
    for i in 0..n {
        sheet.push_str(&format!("s{i}\tdata/s{i}.fq\n"));
        p.file(&format!("data/s{i}.fq"), &format!("{i}\n"));
    }
    p.file("samples.tsv", &sheet);
}

#[test]
fn functions_of_many_jobs_sharing_a_captured_sheet_run_without_a_data_race() {
    // `samples.filter(...)` uses the captured sheet mutably (a method call): Rhai refuses two
    // threads doing that at once on one value, so each thread calls with its own copy.
    let p = Project::new();
    many_samples(&p, 300);
    p.file(
        "wf.rhai",
        r#"
let samples = read_table("samples.tsv");
rule("all", #{ input: expand("out/{s}.txt", #{ s: samples.map(|r| r.sample) }) });
rule("copy", #{
    input: |w| samples.filter(|r| r.sample == w.s)[0].fastq,
    params: #{ n: |w| lookup(samples, #{ sample: w.s }, "fastq").len },
    output: "out/{s}.txt",
    shell: "cat {input} > {output}; echo {params.n} >> {output}",
});
"#,
    );
    p.run(&["wf.rhai", "-j2", "-q"]).code(0);
    assert_eq!(p.read("out/s7.txt"), "7\n10\n");
    assert_eq!(p.read("out/s299.txt"), "299\n12\n");
}

#[test]
fn functions_run_on_every_core_give_their_errors_in_the_graph_s_order() {
    // The functions capture nothing, so 300 of them run at once; three fail.
    let p = Project::new();
    many_samples(&p, 300);
    let mut list = String::new();
    for i in 0..300 {
        list.push_str(&format!("\"s{i}\", "));
    }
    p.file(
        "wf.rhai",
        &format!(
            r#"
rule("all", #{{ input: expand("out/{{s}}.txt", #{{ s: [{list}] }}) }});
rule("copy", #{{
    input: |w| if w.s == "s250" || w.s == "s3" || w.s == "s120" {{ throw `no ${{w.s}}` }} else {{ `data/${{w.s}}.fq` }},
    output: "out/{{s}}.txt",
    shell: "cat {{input}} > {{output}}",
}});
"#
        ),
    );
    for _ in 0..3 {
        let run = p.run(&["wf.rhai", "-n"]).workflow_error();
        let failed: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(
            failed,
            [
                "error: rule `copy`, job copy[s=s3]: the `input` function failed: no s3",
                "error: rule `copy`, job copy[s=s120]: the `input` function failed: no s120",
                "error: rule `copy`, job copy[s=s250]: the `input` function failed: no s250",
            ],
            "{}",
            run.stderr
        );
    }
    p.file(
        "wf.rhai",
        &p.read("wf.rhai")
            .replace("throw `no ${w.s}`", "`data/${w.s}.fq`"),
    );
    p.run(&["wf.rhai", "-q"]).code(0);
    assert_eq!(p.read("out/s120.txt"), "120\n");
}

#[test]
fn a_function_in_an_imported_rule_file_can_call_that_file_s_functions() {
    let p = Project::new();
    p.file("in/q.txt", "Q\n")
        .file(
            "rules/lib.rhai",
            r#"
fn where_is(s) { "in/" + s + ".txt" }
fn copy_rules(prefix) {
    rule(prefix + "copy", #{ input: |w| where_is(w.s), output: "out/{s}.txt", shell: "cp {input} {output}" });
}
"#,
        )
        .file(
            "workflows/wf.rhai",
            "import \"../rules/lib\" as lib;\nlib::copy_rules(\"x_\");\n",
        );
    p.run(&["workflows/wf.rhai", "out/q.txt"]).code(0);
    assert_eq!(p.read("out/q.txt"), "Q\n");
}

// ---------------------------------------------------------------------------------------------
// Errors in functions

fn error_of(rule: &str) -> common::Run {
    let p = Project::new();
    p.file("a.txt", "a\n").file(
        "wf.rhai",
        &format!("rule(\"all\", #{{ input: \"out/a.txt\" }});\n{rule}\n"),
    );
    p.run(&["wf.rhai", "-n"]).workflow_error()
}

#[test]
fn an_error_inside_a_function_names_rule_job_key_and_place() {
    error_of(
        "let sheet = #{ b: \"b.txt\" };\nrule(\"r\", #{\n    input: |w| sheet[w.s],\n    output: \"out/{s}.txt\",\n    shell: \"cp {input} {output}\",\n});",
    )
    .stderr_has("error: rule `r`, job r[s=a]: the `input` function failed: Property not found: a")
    .stderr_has("--> wf.rhai:4:22");
}

#[test]
fn a_function_giving_the_wrong_type_says_what_the_key_takes() {
    error_of("rule(\"r\", #{ input: |w| 42, output: \"out/{s}.txt\", shell: \"x\" });")
        .stderr_has("error: rule `r`, job r[s=a]: the `input` function must give a path, an array of paths or a map of named paths, not an integer")
        .stderr_has("--> wf.rhai:2:1");
    error_of(
        "rule(\"r\", #{ input: #{ x: |w| #{ y: 1 } }, output: \"out/{s}.txt\", shell: \"x\" });",
    )
    .stderr_has("the `input` function must give a path, an array of paths, not a map");
    error_of("rule(\"r\", #{ output: \"out/{s}.txt\", threads: |w| \"2\", shell: \"x\" });")
        .stderr_has(
        "error: rule `r`, job r[s=a]: the `threads` function must give an integer, not a string",
    );
    error_of("rule(\"r\", #{ output: \"out/{s}.txt\", threads: |w| 0, shell: \"x\" });")
        .stderr_has("the `threads` function must give at least 1, not 0");
    error_of("rule(\"r\", #{ output: \"out/{s}.txt\", params: |w| 3, shell: \"x\" });")
        .stderr_has("the `params` function must give a map, not `3`");
    error_of(
        "rule(\"r\", #{ output: \"out/{s}.txt\", params: #{ f: |w| temp(\"x\") }, shell: \"x\" });",
    )
    .stderr_has("the `params.f` function cannot hold a marked path; params must be plain data");
    error_of(
        "rule(\"r\", #{ output: \"out/{s}.txt\", resources: #{ mem_mb: |w| -1 }, shell: \"x\" });",
    )
    .stderr_has("the `resources.mem_mb` function must give a non-negative integer, not an integer");
    error_of("rule(\"r\", #{ output: \"out/{s}.txt\", resources: |w| [1], shell: \"x\" });")
        .stderr_has("the `resources` function must give a map of integers, not an array");
    error_of("rule(\"r\", #{ input: |w| \" \", output: \"out/{s}.txt\", shell: \"x\" });")
        .stderr_has("the `input` function gave an empty path");
}

#[test]
fn a_function_takes_the_wildcards_only() {
    error_of("rule(\"r\", #{ output: \"out/{s}.txt\", threads: || 2, shell: \"x\" });").stderr_has(
        "error: rule `r`: `threads` must be a function of the job's wildcards and, if it grows with retries, the attempt: `|w| ...` or `|w, attempt| ...`",
    );
    error_of("rule(\"r\", #{ input: #{ a: |w, x| 2 }, output: \"out/{s}.txt\", shell: \"x\" });")
        .stderr_has("error: rule `r`: `input.a` must be a function of one argument");
    // params may take the job's files, by these names only.
    for bad in ["|w, out| 1", "|w, input, output, x| 1", "|| 1"] {
        error_of(&format!(
            "rule(\"r\", #{{ params: #{{ p: {bad} }}, output: \"out/{{s}}.txt\", shell: \"x\" }});"
        ))
        .stderr_has("error: rule `r`: `params.p` must be a function of the job's wildcards and, if it needs them, the job's files")
        .stderr_has("`|w, output| ...`");
    }
}

#[test]
fn params_functions_take_the_job_s_inputs_and_outputs_by_name() {
    // Snakemake's `params: prefix=lambda wildcards, output: output[0][:-4]`.
    let p = Project::new();
    p.file("a.txt", "x\n").file(
        "wf.rhai",
        r#"
rule("all", #{ input: "out/a.bam" });
rule("map", #{
    input: #{ reads: "{s}.txt" },
    output: #{ bam: "out/{s}.bam" },
    params: #{
        prefix: |w, output| output.bam.sub_string(0, output.bam.len - 4),
        both: |w, output, input| `${input.reads}:${output[0]}:${w.s}`,
    },
    shell: "echo {params.prefix} {params.both} > {output}",
});
"#,
    );
    p.run(&["wf.rhai", "-q"]).code(0);
    assert_eq!(p.read("out/a.bam"), "out/a a.txt:out/a.bam:a\n");
    // What they give decides reruns as params do.
    let dry = p.run(&["wf.rhai", "-n"]).code(0);
    assert!(dry.planned().is_empty(), "{}", dry.stdout);
    p.file("wf.rhai", &p.read("wf.rhai").replace("len - 4", "len - 3"));
    let dry = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(dry.planned(), ["map[s=a]", "all"]);
}

#[test]
fn an_output_cannot_be_a_function() {
    error_of("rule(\"r\", #{ output: |w| \"out/a.txt\", shell: \"x\" });").stderr_has(
        "error: rule `r`: `output` cannot be a function: outputs are patterns, so that flowrun can tell which rule makes a file",
    );
}

#[test]
fn a_function_may_read_but_not_write() {
    error_of("rule(\"r\", #{ input: |w| { write_text(\"b.txt\", \"x\"); \"a.txt\" }, output: \"out/{s}.txt\", shell: \"x\" });")
        .stderr_has("the `input` function failed: `write_text` is not allowed while the workflow is being defined")
        .stderr_has("--> wf.rhai:2:27");
    let p = Project::new();
    p.file("list.txt", "a.txt\n").file("a.txt", "A\n").file(
        "wf.rhai",
        "rule(\"r\", #{ input: |w| read_lines(\"list.txt\"), output: \"out.txt\", shell: \"cat {input} > {output}\" });\n",
    );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("out.txt"), "A\n");
}

#[test]
fn a_missing_file_a_function_names_is_reported_against_the_job() {
    error_of("rule(\"r\", #{ input: |w| \"nope/\" + w.s + \".txt\", output: \"out/{s}.txt\", shell: \"x\" });")
        .stderr_has("missing input `nope/a.txt`, needed by r[s=a], and no rule makes it");
}

// ---------------------------------------------------------------------------------------------
// Sample sheets: read_table and lookup

#[test]
fn a_tsv_sample_sheet_drives_input_and_params_functions() {
    let p = Project::new();
    p.file(
        "config/samples.tsv",
        "# sample sheet\nsample\tfastq\tadapter\nA\tdata/A.fq\tAC GT\n\nB\tdata/B.fq\tTTT\n",
    )
    .file("data/A.fq", "a\n")
    .file("data/B.fq", "b\n")
    .file(
        "wf.rhai",
        r#"
let samples = read_table("config/samples.tsv");
rule("all", #{ input: expand("trimmed/{s}.fq", #{ s: samples.map(|r| r.sample) }) });
rule("trim", #{
    input: |w| samples.filter(|r| r.sample == w.s)[0].fastq,
    output: "trimmed/{s}.fq",
    params: #{ adapter: |w| lookup(samples, #{ sample: w.s }, "adapter") },
    shell: "echo '{params.adapter}' | cat - {input} > {output}",
});
"#,
    );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("trimmed/A.fq"), "AC GT\na\n");
    assert_eq!(p.read("trimmed/B.fq"), "TTT\nb\n");
    // A new row runs the new sample's job, and nothing that was made before.
    p.file("data/C.fq", "c\n");
    let sheet = p.read("config/samples.tsv") + "C\tdata/C.fq\tGGG\n";
    p.file("config/samples.tsv", &sheet);
    let dry = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(dry.planned(), ["trim[s=C]", "all"]);
}

#[test]
fn read_table_handles_quoted_csv_and_a_separator_option() {
    let p = Project::new();
    p.file("s.csv", "name,note\nx,\"a, \"\"quoted\"\" note\"\n")
        .file("s.txt", "name;n\ny;2\n")
        .file(
            "wf.rhai",
            r#"
let a = read_table("s.csv");
let b = read_table("s.txt", #{ sep: ";" });
rule("r", #{ output: "out.txt", params: #{ note: a[0].note, n: b[0].n.parse_int() + 1 },
    run: |job| write_text(job.output[0], `${job.params.note}|${job.params.n}`) });
"#,
        );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("out.txt"), "a, \"quoted\" note|3");
}

fn table_error(sheet: &str, script: &str) -> common::Run {
    let p = Project::new();
    p.file("s.csv", sheet).file(
        "wf.rhai",
        &format!("let t = read_table(\"s.csv\");\n{script}\nrule(\"r\", #{{ output: \"o\", shell: \"touch {{output}}\" }});\n"),
    );
    p.run(&["wf.rhai", "-n"]).workflow_error()
}

#[test]
fn read_table_errors_name_the_file_and_line() {
    table_error("a,b\n1,2\n3\n", "")
        .stderr_has("error: read_table: `s.csv` line 3 has 1 field(s), but the header has 2")
        .stderr_has("--> wf.rhai:1:9");
    table_error("# c\na,a\n", "")
        .stderr_has("read_table: `s.csv` line 2: the header names column `a` twice");
    table_error("", "").stderr_has("read_table: `s.csv` has no header row");
    let p = Project::new();
    p.file("wf.rhai", "let t = read_table(\"nope.tsv\");\n");
    p.run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("read_table: cannot read `nope.tsv`: No such file or directory");
    table_error("a\n1\n", "let x = read_table(\"s.csv\", #{ sep: \"ab\" });")
        .stderr_has("read_table: `sep` must be one ASCII character");
    table_error("a\n1\n", "let x = read_table(\"s.csv\", #{ sap: \",\" });")
        .stderr_has("read_table: unknown option `sap`; the option is `sep`");
}

#[test]
fn lookup_errors_say_what_matched() {
    table_error("s,f\na,1\na,2\n", "lookup(t, #{ s: \"b\" }, \"f\");")
        .stderr_has("error: lookup: no row has s = b")
        .stderr_has("--> wf.rhai:2:1");
    table_error("s,f\na,1\na,2\n", "lookup(t, #{ s: \"a\" }, \"f\");")
        .stderr_has("error: lookup: 2 rows have s = a; add a column to the query to pick one");
    table_error("s,f\na,1\n", "lookup(t, #{ s: \"a\" }, \"g\");")
        .stderr_has("error: lookup: the table has no column `g`; its columns are `f`, `s`");
    // A default stands in for a missing row only, not for two rows or a mistyped column.
    table_error("s,f\na,1\na,2\n", "lookup(t, #{ s: \"a\" }, \"f\", \"-\");")
        .stderr_has("error: lookup: 2 rows have s = a; add a column to the query to pick one");
    table_error("s,f\na,1\n", "lookup(t, #{ s: \"a\" }, \"g\", \"-\");")
        .stderr_has("error: lookup: the table has no column `g`; its columns are `f`, `s`");
}

#[test]
fn expand_zip_pairs_sample_and_unit_columns_of_a_sheet() {
    // Snakemake's `expand("...", zip, sample=..., unit=...)` over a units sheet.
    let p = Project::new();
    p.file("units.tsv", "sample\tunit\na\t1\na\t2\nb\t1\n").file(
        "wf.rhai",
        r#"
let units = read_table("units.tsv");
rule("all", #{ input: expand("out/{s}-{u}.txt", #{ s: units.map(|r| r.sample), u: units.map(|r| r.unit) }, "zip") });
rule("one", #{ output: "out/{s}-{u}.txt", shell: "echo {wildcards} > {output}" });
"#,
    );
    let dry = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(
        dry.planned(),
        ["one[s=a,u=1]", "one[s=a,u=2]", "one[s=b,u=1]", "all"]
    );
    p.file("units.tsv", "sample\tunit\na\t1\n");
    p.file(
        "wf.rhai",
        &p.read("wf.rhai")
            .replace("u: units.map(|r| r.unit)", "u: [\"1\", \"2\"]"),
    );
    p.run(&["wf.rhai", "-n"])
        .workflow_error()
        .stderr_has("error: expand: with \"zip\", the value lists must be as long as each other: `s` has 1, `u` has 2")
        .stderr_has("--> wf.rhai:3:");
}

#[test]
fn lookup_with_a_default_gives_it_when_no_row_matches() {
    // Snakemake's `lookup(..., default=...)`.
    let p = Project::new();
    p.file("s.tsv", "sample\tadapter\na\tAAA\nb\tCCC\n").file(
        "wf.rhai",
        r#"
let sheet = read_table("s.tsv");
rule("all", #{ input: ["out/a.txt", "out/z.txt"] });
rule("trim", #{
    params: #{ adapter: |w| lookup(sheet, #{ sample: w.s }, "adapter", "none") },
    output: "out/{s}.txt",
    shell: "echo {params.adapter} > {output}",
});
"#,
    );
    p.run(&["wf.rhai", "-q"]).code(0);
    assert_eq!(p.read("out/a.txt"), "AAA\n");
    assert_eq!(p.read("out/z.txt"), "none\n");
}

// ---------------------------------------------------------------------------------------------
// directory() outputs

fn directory_project(split: &str) -> Project {
    let p = Project::new();
    p.file("in.txt", "l1\nl2\nl3\nl4\nl5\n").file(
        "wf.rhai",
        &format!(
            r#"
rule("all", #{{ input: "count.txt" }});
rule("split", #{{ input: "in.txt", output: {split}, shell: "mkdir -p {{output}}/sub && head -n 4 {{input}} | split -l 2 - {{output}}/sub/p_" }});
rule("count", #{{ input: "parts", output: "count.txt", shell: "ls {{input}}/sub | wc -l > {{output}}; cat {{input}}/sub/* | wc -l >> {{output}}" }});
"#
        ),
    );
    p
}

#[test]
fn a_change_inside_a_directory_reruns_its_consumers() {
    let p = directory_project("directory(\"parts\")");
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("count.txt"), "2\n4\n");
    assert!(p.run(&["wf.rhai", "-n"]).code(0).planned().is_empty());
    // A file inside rewritten by hand: the consumer sees its input changed.
    p.file("parts/sub/p_ab", "x\n");
    let dry = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(dry.planned(), ["count", "all"]);
    assert_eq!(dry.reasons("count"), ["input `parts` changed"]);
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("count.txt"), "2\n3\n");
    // A file added inside.
    p.file("parts/sub/p_zz", "y\n");
    assert_eq!(
        p.run(&["wf.rhai", "-n"]).code(0).planned(),
        ["count", "all"]
    );
    p.run(&["wf.rhai"]).code(0);
    // Touched without a change: nothing reruns.
    p.touch("parts/sub/p_aa");
    assert!(p.run(&["wf.rhai", "-n"]).code(0).planned().is_empty());
}

#[test]
fn a_directory_remade_identical_cuts_its_consumers_off() {
    let p = directory_project("directory(\"parts\")");
    p.run(&["wf.rhai"]).code(0);
    // Line 5 is not in the directory: split reruns, its directory comes out the same.
    p.file("in.txt", "l1\nl2\nl3\nl4\nCHANGED\n");
    let run = p.run(&["wf.rhai"]).code(0);
    // As for files: `all` (no work) still passes, `count` is skipped.
    assert_eq!(run.ran(), ["split", "all"]);
    run.stderr_has("Skipped [2/3] count: its inputs were remade byte-identical")
        .stderr_has("2 ran, 1 skipped (inputs unchanged)");
    // A change that reaches the directory reruns the consumer.
    p.file("in.txt", "l1\nCHANGED\nl3\nl4\n");
    let run = p.run(&["wf.rhai"]).code(0);
    assert_eq!(run.ran(), ["split", "count", "all"]);
}

#[test]
fn a_plain_directory_output_keeps_hashing_as_nothing() {
    // Without `directory()`, a directory is what it was before: a change inside is not seen
    // (so upgrading flowrun reruns nothing for workflows that never declared one).
    let p = directory_project("\"parts\"");
    p.run(&["wf.rhai"]).code(0);
    p.file("parts/sub/p_ab", "x\n");
    assert!(p.run(&["wf.rhai", "-n"]).code(0).planned().is_empty());
}

#[test]
fn a_failed_job_removes_its_whole_directory() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("d", #{ output: directory("out"), shell: "mkdir -p {output}/deep && touch {output}/deep/f && exit 3" });"#,
    );
    p.run(&["wf.rhai"])
        .code(1)
        .stderr_has("its outputs were removed");
    assert!(!p.exists("out"));
    p.run(&["wf.rhai", "--keep-incomplete"]).code(1);
    assert!(p.exists("out/deep/f"));
}

#[test]
fn temp_and_protected_apply_to_directories() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("all", #{ input: ["n.txt", "kept"] });
rule("scratch", #{ output: temp(directory("scratch")), shell: "mkdir -p {output}/a && echo 1 > {output}/a/x" });
rule("n", #{ input: "scratch", output: "n.txt", shell: "cat {input}/a/x > {output}" });
rule("kept", #{ output: directory(protected("kept")), shell: "mkdir -p {output}/a && echo 2 > {output}/a/y" });
"#,
    );
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("n.txt"), "1\n");
    assert!(
        !p.exists("scratch"),
        "a spent temporary directory is removed"
    );
    for inside in ["kept", "kept/a", "kept/a/y"] {
        let meta = std::fs::metadata(p.path().join(inside)).unwrap();
        assert!(meta.permissions().readonly(), "{inside} is not read-only");
    }
    // Nothing to do, and the deleted temp directory is not remade.
    assert!(p.run(&["wf.rhai", "-n"]).code(0).planned().is_empty());
    let run = p.run(&["wf.rhai", "-R", "kept"]).code(1);
    run.stderr_has("output `kept` is protected");
}

#[test]
fn directory_takes_paths_only() {
    error_of("rule(\"r\", #{ output: directory(3), shell: \"x\" });")
        .stderr_has("directory() takes a path string or an array of them");
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

/// The issue's example: samples split into an unknown number of chunks, counted, gathered.
const CHECKPOINT_WF: &str = r#"
let samples = read_table("samples.tsv");
rule("all", #{ input: expand("summary/{s}.txt", #{ s: samples.map(|r| r.sample) }) });
rule("trim", #{
    input: |w| lookup(samples, #{ sample: w.s }, "fastq"),
    output: "trimmed/{s}.fq",
    shell: "cp {input} {output}",
});
rule("split", #{
    input: "trimmed/{s}.fq",
    output: directory("chunks/{s}"),
    checkpoint: true,
    shell: "mkdir -p {output} && split -l 4 {input} {output}/part_",
});
rule("count", #{ input: "chunks/{s}/part_{i}", output: "counts/{s}/{i}.txt", shell: "wc -l < {input} > {output}" });
rule("gather", #{
    input: |w| {
        let dir = checkpoint_output("split", w);
        expand("counts/{s}/{i}.txt", #{ s: w.s, i: glob_wildcards(dir + "/part_{i}").i })
    },
    output: "summary/{s}.txt",
    shell: "cat {input} > {output}",
});
"#;

fn checkpoint_project() -> Project {
    let p = Project::new();
    p.file("samples.tsv", "sample\tfastq\nA\tdata/A.fq\nB\tdata/B.fq\n")
        .file("data/A.fq", &lines(10))
        .file("data/B.fq", &lines(5))
        .file("wf.rhai", CHECKPOINT_WF);
    p
}

#[test]
fn a_dry_run_shows_the_jobs_after_a_checkpoint_as_pending_until_it_has_run() {
    let p = checkpoint_project();
    let dry = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(
        dry.planned(),
        [
            "trim[s=A]",
            "split[s=A]",
            "trim[s=B]",
            "split[s=B]",
            "gather[s=A] (pending)",
            "gather[s=B] (pending)",
            "all (pending)"
        ]
    );
    dry.stdout_has("job gather[s=A] (pending)\n    waits:  for checkpoint split[s=A]\n")
        .stdout_has("    4  total\n    3  pending: planned once their checkpoints have run, so more jobs may follow\n");
    p.run(&["wf.rhai", "--summary"])
        .code(0)
        .stdout_has("pending")
        .stdout_has("waits for checkpoint split[s=B]");
    p.run(&["wf.rhai", "--dag"])
        .code(0)
        .stdout_has("[label=\"gather[s=A]\", style=\"rounded,dotted\"]");
}

#[test]
fn a_run_plans_the_jobs_after_a_checkpoint_once_it_has_run() {
    let p = checkpoint_project();
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    run.stderr_has("done: 12 ran");
    assert_eq!(p.read("summary/A.txt"), "4\n4\n2\n");
    assert_eq!(p.read("summary/B.txt"), "4\n1\n");
    // Once recorded, the whole plan is known: nothing to do, and no pending job.
    let dry = p.run(&["wf.rhai", "-n"]).code(0);
    dry.stdout_has("nothing to be done");
    // A checkpoint whose outputs change runs exactly the new and changed jobs.
    p.file("data/A.fq", &lines(13));
    let dry = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(dry.planned()[..2], ["trim[s=A]", "split[s=A]"]);
    assert!(dry
        .planned()
        .iter()
        .skip(2)
        .all(|j| j.ends_with("(pending)")));
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(
        run.ran(),
        [
            "trim[s=A]",
            "split[s=A]",
            "count[i=ac,s=A]",
            "count[i=ad,s=A]",
            "gather[s=A]",
            "all"
        ]
    );
    assert_eq!(p.read("summary/A.txt"), "4\n4\n4\n1\n");
    // A checkpoint remade identical changes nothing downstream.
    p.touch("data/B.fq");
    let run = p.run(&["wf.rhai", "-R", "trim", "-j", "1"]).code(0);
    assert!(
        run.ran().contains(&"split[s=B]".to_string()),
        "{}",
        run.stderr
    );
    let again = p.run(&["wf.rhai", "-n"]).code(0);
    again.stdout_has("nothing to be done");
}

#[test]
fn a_file_edited_inside_a_checkpoint_s_directory_reruns_the_job_reading_it() {
    // The planner takes the stats of the files inside a checkpoint's directory from the walk
    // that makes the directory's own stat; an edit must still be seen through them.
    let p = checkpoint_project();
    p.run(&["wf.rhai", "-j", "1"]).code(0);
    p.file("chunks/A/part_ab", "99\n");
    let dry = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(dry.planned(), ["count[i=ab,s=A]", "gather[s=A]", "all"]);
    assert_eq!(
        dry.reasons("count[i=ab,s=A]"),
        ["input `chunks/A/part_ab` changed"]
    );
    p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(p.read("summary/A.txt"), "4\n1\n2\n");
    p.run(&["wf.rhai", "-n"])
        .code(0)
        .stdout_has("nothing to be done");
}

#[test]
fn forcing_reruns_a_checkpoint_and_everything_after_it_once() {
    let p = checkpoint_project();
    p.run(&["wf.rhai"]).code(0);
    let run = p.run(&["wf.rhai", "-R", "split", "-j", "1"]).code(0);
    let mut ran = run.ran_sorted();
    ran.dedup();
    assert_eq!(
        ran.len(),
        run.ran().len(),
        "a job ran twice: {:?}",
        run.ran()
    );
    assert_eq!(
        run.ran_sorted(),
        [
            "all",
            "count[i=aa,s=A]",
            "count[i=aa,s=B]",
            "count[i=ab,s=A]",
            "count[i=ab,s=B]",
            "count[i=ac,s=A]",
            "gather[s=A]",
            "gather[s=B]",
            "split[s=A]",
            "split[s=B]"
        ]
    );
    let run = p.run(&["wf.rhai", "-F", "-j", "1"]).code(0);
    run.stderr_has("done: 12 ran");
}

#[test]
fn until_a_checkpoint_stops_before_what_waits_for_it() {
    let p = checkpoint_project();
    let run = p.run(&["wf.rhai", "--until", "split", "-j", "1"]).code(0);
    assert_eq!(
        run.ran_sorted(),
        ["split[s=A]", "split[s=B]", "trim[s=A]", "trim[s=B]"]
    );
    assert!(!p.exists("counts"));
    // Now that the checkpoints have run, a dry run knows every job.
    let dry = p.run(&["wf.rhai", "-n"]).code(0);
    assert!(
        dry.planned().iter().all(|j| !j.contains("pending")),
        "{}",
        dry.stdout
    );
    assert_eq!(dry.planned().len(), 8);
}

#[test]
fn a_failed_checkpoint_leaves_its_readers_pending_and_says_so() {
    let p = checkpoint_project();
    p.file("data/B.fq", "");
    let wf = CHECKPOINT_WF.replace(
        "mkdir -p {output} && split",
        "test -s {input} && mkdir -p {output} && split",
    );
    p.file("wf.rhai", &wf);
    let run = p.run(&["wf.rhai", "-k", "-j", "1"]).code(1);
    run.stderr_has("Failed [4/4] split[s=B]")
        .stderr_has("1 failed")
        .stderr_has("pending (their checkpoints did not run)")
        .stderr_lacks("warning");
    assert_eq!(p.read("summary/A.txt"), "4\n4\n2\n");
    assert!(!p.exists("summary/B.txt"));
}

/// Two checkpoints in a chain: parts of a file, then lines of each part.
const CHAIN_WF: &str = r#"
rule("all", #{ input: "total.txt" });
rule("split", #{ input: "in.txt", output: directory("parts"), checkpoint: true,
    shell: "mkdir -p {output} && split -l 3 {input} {output}/p_" });
rule("explode", #{ input: "parts/p_{i}", output: directory("lines/{i}"), checkpoint: true,
    shell: "mkdir -p {output} && split -l 1 {input} {output}/l_" });
rule("square", #{ input: "lines/{i}/l_{j}", output: "sq/{i}/{j}.txt", shell: "awk '{{print $1*$1}}' {input} > {output}" });
rule("per_part", #{
    input: |w| {
        let d = checkpoint_output("explode", w);
        expand("sq/{i}/{j}.txt", #{ i: w.i, j: glob_wildcards(d + "/l_{j}").j })
    },
    output: "part_sum/{i}.txt",
    shell: "cat /dev/null {input} | awk '{{s+=$1}} END {{print s+0}}' > {output}",
});
rule("total", #{
    input: |w| {
        let d = checkpoint_output("split", w);
        expand("part_sum/{i}.txt", #{ i: glob_wildcards(d + "/p_{i}").i })
    },
    output: "total.txt",
    shell: "cat /dev/null {input} | awk '{{s+=$1}} END {{print s+0}}' > {output}",
});
"#;

#[test]
fn a_chain_of_checkpoints_is_planned_pass_by_pass() {
    let p = Project::new();
    p.file("in.txt", &lines(6)).file("wf.rhai", CHAIN_WF);
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    run.stderr_has("done: 13 ran");
    assert_eq!(p.read("total.txt"), "91\n");
    assert!(p.run(&["wf.rhai", "-n"]).code(0).planned().is_empty());
    // Zero chunks: the aggregate gathers nothing.
    p.file("in.txt", "");
    p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(p.read("total.txt"), "0\n");
    assert!(p.run(&["wf.rhai", "-n"]).code(0).planned().is_empty());
}

#[test]
fn a_checkpoint_in_a_chain_making_a_part_fewer_drops_the_whole_branch() {
    let p = Project::new();
    p.file("in.txt", &lines(6)).file("wf.rhai", CHAIN_WF);
    p.run(&["wf.rhai", "-j", "1"]).code(0);
    p.file("in.txt", &lines(3));
    let run = p.run(&["wf.rhai", "-j", "1"]).code(0);
    assert_eq!(run.ran(), ["split", "total", "all"]);
    let dropped: Vec<&str> = run
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("  Dropped "))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(
        dropped,
        [
            "per_part[i=ab]",
            "square[i=ab,j=aa]",
            "square[i=ab,j=ab]",
            "square[i=ab,j=ac]",
            "explode[i=ab]"
        ],
        "{}",
        run.stderr
    );
    run.stderr_has(
        "Dropped explode[i=ab]: checkpoint split no longer leads to it; removed `lines/ab`",
    );
    for gone in ["lines/ab", "sq/ab", "part_sum/ab.txt"] {
        assert!(!p.exists(gone), "{gone} is left");
    }
    assert_eq!(p.read("total.txt"), "14\n");
    assert!(p.run(&["wf.rhai", "-n"]).code(0).planned().is_empty());
}

#[test]
fn checkpoint_output_errors_say_what_is_wrong() {
    let run = |script: &str| {
        let p = Project::new();
        p.file("wf.rhai", script);
        p.run(&["wf.rhai", "-n"]).workflow_error()
    };
    run("rule(\"c\", #{ output: directory(\"d/{s}\"), checkpoint: true, shell: \"mkdir {output}\" });\nlet x = checkpoint_output(\"c\", #{ s: \"a\" });")
        .stderr_has("error: checkpoint_output: call it inside a function of the wildcards");
    run("rule(\"c\", #{ output: \"d/{s}\", shell: \"x\" });\nrule(\"r\", #{ input: |w| checkpoint_output(\"c\", w), output: \"o/{s}\", shell: \"x\" });\nrule(\"all\", #{ input: \"o/a\" });")
        .stderr_has("error: rule `r`, job r[s=a]: the `input` function failed: checkpoint_output: rule `c` is not a checkpoint; give it `checkpoint: true`");
    run("rule(\"c\", #{ output: \"d/{s}\", checkpoint: true, shell: \"x\" });\nrule(\"r\", #{ input: |w| checkpoint_output(\"cc\", w), output: \"o/{s}\", shell: \"x\" });\nrule(\"all\", #{ input: \"o/a\" });")
        .stderr_has("checkpoint_output: no rule `cc`; did you mean `c`?");
    run("rule(\"c\", #{ output: \"d/{t}\", checkpoint: true, shell: \"x\" });\nrule(\"r\", #{ input: |w| checkpoint_output(\"c\", w), output: \"o/{s}\", shell: \"x\" });\nrule(\"all\", #{ input: \"o/a\" });")
        .stderr_has("checkpoint_output: the output `d/{t}` of rule `c` needs wildcard `t`, which the map given lacks");
    run("rule(\"c\", #{ output: \"d\", checkpoint: 1, shell: \"x\" });")
        .stderr_has("rule `c`: `checkpoint` must be `true` or `false`, not an integer");
}

// ---------------------------------------------------------------------------------------------
// Results remembered between runs (`.flowrun/functions`)

/// Each sample's reads are listed in a file of its own, which the input function reads, and
/// its extra reads are whatever lies in a folder, which the function lists. Every call prints.
fn listing_project() -> Project {
    let p = Project::new();
    p.file("lists/a.txt", "in/a1.txt\n")
        .file("lists/b.txt", "in/b1.txt\n")
        .file("in/a1.txt", "a1\n")
        .file("in/a2.txt", "a2\n")
        .file("in/b1.txt", "b1\n")
        .file("extra/a/x.txt", "ax\n")
        .file(
            "wf.rhai",
            r#"
rule("all", #{ input: ["out/a.txt", "out/b.txt"] });
rule("cat", #{
    input: |w| {
        print(`called cat ${w.s}`);
        let extra = glob_wildcards(`extra/${w.s}/{f}.txt`).f.map(|f| `extra/${w.s}/${f}.txt`);
        read_lines(`lists/${w.s}.txt`) + extra
    },
    output: "out/{s}.txt",
    shell: "cat {input} > {output}",
});
"#,
        );
    p
}

fn calls(run: &common::Run) -> Vec<String> {
    let mut called: Vec<String> = run
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("called "))
        .map(str::to_string)
        .collect();
    called.sort();
    called
}

#[test]
fn a_function_is_called_again_only_when_a_file_it_read_or_a_folder_it_listed_changes() {
    let p = listing_project();
    let first = p.run(&["wf.rhai", "-v"]).code(0);
    assert_eq!(calls(&first), ["cat a", "cat b"], "{}", first.stderr);
    assert!(
        first.stderr.contains(
            "functions of the wildcards: 0 results remembered from the last run, 2 calls"
        ),
        "{}",
        first.stderr
    );
    assert!(p.exists(".flowrun/functions"));
    let again = p.run(&["wf.rhai", "-v"]).code(0);
    assert!(calls(&again).is_empty(), "{}", again.stderr);
    assert!(
        again.stderr.contains(
            "functions of the wildcards: 2 results remembered from the last run, 0 calls"
        ),
        "{}",
        again.stderr
    );
    assert!(again.ran().is_empty());
    // A file the function read changes: only that job's function runs again, and its job.
    p.file("lists/a.txt", "in/a1.txt\nin/a2.txt\n");
    let read = p.run(&["wf.rhai"]).code(0);
    assert_eq!(calls(&read), ["cat a"], "{}", read.stderr);
    assert_eq!(read.ran(), ["cat[s=a]", "all"]);
    assert_eq!(p.read("out/a.txt"), "a1\na2\nax\n");
    // A file appears in a folder the function listed (one that did not exist counts too).
    p.file("extra/b/y.txt", "by\n");
    let listed = p.run(&["wf.rhai"]).code(0);
    assert_eq!(calls(&listed), ["cat b"], "{}", listed.stderr);
    assert_eq!(p.read("out/b.txt"), "b1\nby\n");
    // A file goes from a listed folder.
    std::fs::remove_file(p.path().join("extra/a/x.txt")).unwrap();
    let gone = p.run(&["wf.rhai"]).code(0);
    assert_eq!(calls(&gone), ["cat a"], "{}", gone.stderr);
    assert_eq!(p.read("out/a.txt"), "a1\na2\n");
    // Rewriting a listed file's content is not a change of the listing.
    p.file("extra/b/y.txt", "by, longer\n");
    let rewritten = p.run(&["wf.rhai", "-n"]).code(0);
    assert!(calls(&rewritten).is_empty(), "{}", rewritten.stderr);
    assert_eq!(rewritten.planned(), ["cat[s=b]", "all"]);
}

#[test]
fn an_edit_of_the_workflow_or_its_config_calls_every_function_again() {
    let p = listing_project();
    p.run(&["wf.rhai"]).code(0);
    let wf = p.read("wf.rhai") + "// a comment\n";
    p.file("wf.rhai", &wf);
    assert_eq!(calls(&p.run(&["wf.rhai"]).code(0)), ["cat a", "cat b"]);
    assert!(calls(&p.run(&["wf.rhai"]).code(0)).is_empty());
    let configured = p.run(&["wf.rhai", "--config", "x=1"]).code(0);
    assert_eq!(calls(&configured), ["cat a", "cat b"]);
}

#[test]
fn a_dry_run_uses_remembered_results_and_writes_none() {
    let p = listing_project();
    let dry = p.run(&["wf.rhai", "-n"]).code(0);
    assert_eq!(calls(&dry), ["cat a", "cat b"]);
    assert!(!p.exists(".flowrun/functions"), "a dry run wrote the file");
    p.run(&["wf.rhai"]).code(0);
    let dry = p.run(&["wf.rhai", "-n"]).code(0);
    assert!(calls(&dry).is_empty(), "{}", dry.stderr);
}

#[test]
fn a_damaged_file_of_remembered_results_is_ignored_and_replaced() {
    let p = listing_project();
    p.run(&["wf.rhai"]).code(0);
    p.file(".flowrun/functions", "not what flowrun wrote");
    let run = p.run(&["wf.rhai"]).code(0);
    assert_eq!(calls(&run), ["cat a", "cat b"], "{}", run.stderr);
    assert!(run.ran().is_empty(), "{}", run.stderr);
    assert!(calls(&p.run(&["wf.rhai"]).code(0)).is_empty());
}

#[test]
fn a_function_that_failed_is_called_again_on_the_next_run() {
    let p = listing_project();
    std::fs::remove_file(p.path().join("lists/b.txt")).unwrap();
    let failed = p.run(&["wf.rhai"]).code(2);
    assert!(failed.stderr.contains("lists/b.txt"), "{}", failed.stderr);
    let again = p.run(&["wf.rhai"]).code(2);
    assert_eq!(calls(&again), ["cat a", "cat b"], "{}", again.stderr);
    p.file("lists/b.txt", "in/b1.txt\n");
    p.run(&["wf.rhai"]).code(0);
    assert_eq!(p.read("out/b.txt"), "b1\n");
}

#[test]
fn a_result_that_read_a_folder_with_a_name_not_in_utf8_is_not_remembered_and_nothing_fails() {
    use std::os::unix::ffi::OsStrExt;
    let p = Project::new();
    p.file("raw/a.txt", "a\n").file(
        "wf.rhai",
        r#"
rule("all", #{
    input: |w| { print("called all"); glob_wildcards("raw/{f}.txt").f.map(|f| `raw/${f}.txt`) },
});
"#,
    );
    let odd = p
        .path()
        .join("raw")
        .join(std::ffi::OsStr::from_bytes(b"sub\xff"));
    std::fs::create_dir(&odd).unwrap();
    for _ in 0..2 {
        let run = p.run(&["wf.rhai"]).code(0);
        assert_eq!(calls(&run), ["all"], "{}", run.stderr);
        assert!(!run.stderr.contains("cannot remember"), "{}", run.stderr);
    }
}
