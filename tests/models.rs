//! The execution models: identical results across models and settings, NumPy as the oracle,
//! bounded memory for `chunked`, clean failures when a worker process dies.

mod common;
use common::Project;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A colmean rule set over a small matrix, with the given models.
fn colmean(p: &Project, models: &[&str], extra: &str) {
    let rules =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/matrix.rhai")).unwrap();
    p.file("rules/matrix.rhai", &rules);
    let list = models
        .iter()
        .map(|m| format!("\"{m}\""))
        .collect::<Vec<_>>()
        .join(", ");
    p.file(
        "wf/colmean.rhai",
        &format!(
            r#"import "../rules/matrix" as matrix;
let cfg = config(#{{ rows: 10007, threads: 2, procs: 2, block: 1000 }});
let t = matrix::colmean_rules(#{{ prefix: "cm", data: "data/m.npy", rows: cfg.rows, cols: 5, seed: 7,
    block: cfg.block, threads: cfg.threads, procs: cfg.procs, ranks: 2, models: [{list}] }});
rule("all", #{{ input: t }});
{extra}"#
        ),
    );
}

fn numpy() -> Option<PathBuf> {
    let py = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/pyenv/bin/python"
    ));
    if py.exists() {
        Some(py)
    } else {
        eprintln!(
            "!!! SKIPPING the NumPy comparison: run `bash scripts/setup-tests.sh` to create target/pyenv"
        );
        None
    }
}

#[test]
fn every_model_and_setting_gives_bitwise_identical_means_that_match_numpy() {
    let p = Project::new();
    colmean(&p, &["chunked", "thread", "process", "hybrid"], "");
    p.run(&["wf/colmean.rhai", "-j2"]).code(0);
    let table = p.read("results/cm.csv");
    let reference = p.read("results/cm/chunked.csv");
    // Other thread/process counts and a single core must not change a bit.
    for settings in [["threads=1", "procs=1"], ["threads=3", "procs=3"]] {
        let run = p.run(&[
            "wf/colmean.rhai",
            "-j1",
            "-F",
            "--config",
            settings[0],
            "--config",
            settings[1],
        ]);
        run.code(0);
        for m in ["chunked", "thread", "process", "hybrid"] {
            assert_eq!(
                p.read(&format!("results/cm/{m}.csv")),
                reference,
                "{m} with {settings:?}"
            );
        }
    }
    assert_eq!(p.read("results/cm.csv"), table);
    if let Some(py) = numpy() {
        let out = std::process::Command::new(py)
            .current_dir(p.path())
            .args([
                "-c",
                "import numpy as np\nm = np.load('data/m.npy')\nassert m.shape == (10007, 5), m.shape\nprint('\\n'.join(repr(float(x)) for x in m.mean(axis=0)))",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let numpy: Vec<f64> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        let ours: Vec<f64> = reference.lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(ours.len(), numpy.len());
        for (a, b) in ours.iter().zip(&numpy) {
            assert!((a - b).abs() <= 1e-12, "flowrun {a} vs numpy {b}");
        }
    }
}

fn peak_mib(stderr: &str) -> u64 {
    let at = stderr
        .find("peak memory ")
        .expect("peak memory in -v output");
    stderr[at + 12..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn chunked_peak_memory_stays_flat_when_the_input_grows_tenfold() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
let cfg = config(#{ rows: 1000 });
rule("data", #{ output: "m.npy", run: |job| write_random_npy(job.output[0], cfg.rows, 8, 1) });
rule("means", #{
    input: "m.npy", output: "means.csv", model: "chunked", chunk: 4096, threads: 2,
    map: |job, rows| rows.col_sums(),
    reduce: |acc, s| acc + s,
    finish: |job, s| write_csv(job.output[0], s / npy_info(job.input[0]).rows),
});
"#,
    );
    let mut peaks = Vec::new();
    for rows in ["200000", "2000000"] {
        p.run(&[
            "wf.rhai",
            "m.npy",
            "-F",
            "--config",
            &format!("rows={rows}"),
        ])
        .code(0);
        let run = p.run(&["wf.rhai", "means.csv", "-F", "-v"]).code(0);
        peaks.push(peak_mib(&run.stderr));
    }
    // 12.8 MB vs 128 MB of input, chunks of 256 KiB: the peak may not grow with the input.
    assert!(
        peaks[1] <= peaks[0] + 16,
        "peak memory grew with the input: {peaks:?} MiB"
    );
}

#[test]
fn chunked_memory_stays_bounded_while_a_slow_first_chunk_holds_up_the_fold() {
    // `map` returns the whole chunk, and the first chunk is slow: results of later chunks
    // wait for it in the reorder buffer, which must not grow to the whole 64 MB file.
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("data", #{ output: "m.npy", run: |job| write_random_npy(job.output[0], 1000000, 8, 3) });
rule("count", #{
    input: "m.npy", output: "rows.txt", model: "chunked", chunk: 4096, threads: 2,
    map: |job, rows| {
        if rows.get(0, 0) == read_rows(job.input[0], 0, 1).get(0, 0) {
            let n = 0;
            for k in 0..300000 { n += 1; }
        }
        rows
    },
    reduce: |acc, rows| acc + rows.rows,
    init: 0,
    finish: |job, n| write_text(job.output[0], `${n}`),
});
"#,
    );
    p.run(&["wf.rhai", "m.npy"]).code(0);
    let run = p.run(&["wf.rhai", "rows.txt", "-v"]).code(0);
    assert_eq!(p.read("rows.txt"), "1000000");
    let peak = peak_mib(&run.stderr);
    assert!(peak < 48, "peak memory {peak} MiB for 64 MB of input");
}

#[test]
fn chunks_a_map_keeps_are_not_overwritten_by_later_blocks() {
    // Workers reuse their block buffers; a chunk the script holds on to must keep its rows.
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
rule("data", #{ output: "m.npy", run: |job| write_random_npy(job.output[0], 10007, 3, 5) });
rule("keep", #{
    input: "m.npy", output: "same.txt", model: "chunked", chunk: 1000, threads: 2,
    map: |job, rows| rows,
    finish: |job, blocks| {
        let start = 0;
        let same = blocks.len() == 11;
        for b in blocks {
            same = same && b == read_rows(job.input[0], start, b.rows);
            start += b.rows;
        }
        write_text(job.output[0], `${same && start == 10007}`);
    },
});
"#,
    );
    p.run(&["wf.rhai", "same.txt"]).code(0);
    assert_eq!(p.read("same.txt"), "true");
}

/// Writes `wf.rhai`: the rule spec `body` once per model (`t` thread, `p` process, `h` hybrid,
/// each making `<name>.txt`), and `all` needing the three.
fn same_rule_on_three_models(p: &Project, body: &str) {
    let rules: String = [("t", "thread"), ("p", "process"), ("h", "hybrid")]
        .iter()
        .map(|(name, model)| {
            format!(
                "rule(\"{name}\", #{{ output: \"{name}.txt\", model: \"{model}\", {body} }});\n"
            )
        })
        .collect();
    p.file(
        "wf.rhai",
        &format!("{rules}rule(\"all\", #{{ input: [\"t.txt\", \"p.txt\", \"h.txt\"] }});\n"),
    );
}

#[test]
fn native_values_cross_process_boundaries_intact() {
    let p = Project::new();
    same_rule_on_three_models(
        &p,
        r#"procs: 3, threads: 2,
    items: range(0, 17).collect(),
    map: |job, i| #{ v: vector([i, 0.1 * i, 1.0 / (i + 1)]), m: random_matrix(2, 2, i), s: `item ${i}` },
    reduce: |acc, x| #{ v: acc.v + x.v, m: acc.m + x.m, s: acc.s + x.s },
    finish: |job, r| write_text(job.output[0], `${r.v} ${r.m} ${r.s}`)"#,
    );
    p.run(&["wf.rhai"]).code(0);
    let t = p.read("t.txt");
    assert!(t.contains("item 0item 1"), "{t}");
    assert_eq!(p.read("p.txt"), t);
    assert_eq!(p.read("h.txt"), t);
}

#[test]
fn map_and_run_closures_on_many_threads_share_a_captured_table() {
    // A lookup in a captured table is a method call on a shared value, which Rhai refuses to a
    // second thread at the same moment ("Data race detected"): each thread uses its own copy,
    // also of the values a captured closure (`find`) captured.
    let p = Project::new();
    same_rule_on_three_models(
        &p,
        r#"procs: 2, threads: 2,
    items: range(0, 2000).collect(),
    map: |job, i| table.filter(|r| r.k == i % 50)[0].v,
    reduce: |a, b| a + b,
    finish: |job, total| write_text(job.output[0], `${total}`)"#,
    );
    let wf = format!(
        r#"let table = range(0, 50).collect().map(|i| #{{ k: i, v: i * 2 }});
let find = |i| table.filter(|r| r.k == i % 50)[0].v;
{}
rule("nested", #{{ output: "n.txt", model: "thread", threads: 2,
    items: range(0, 2000).collect(),
    map: |job, i| find.call(i),
    reduce: |a, b| a + b,
    finish: |job, total| write_text(job.output[0], `${{total}}`) }});
rule("one", #{{ output: "m/{{i}}.txt",
    run: |job| write_text(job.output[0], `${{table.filter(|r| r.k == job.wildcards.i.parse_int())[0].v}}`) }});
rule("many", #{{ input: expand("m/{{i}}.txt", #{{ i: range(0, 50).collect() }}), output: "m.txt",
    shell: "cat {{input}} > {{output}}" }});
"#,
        p.read("wf.rhai")
    );
    p.file("wf.rhai", &wf);
    p.run(&["wf.rhai", "-j2", "all", "m.txt", "n.txt"]).code(0);
    for model in ["t", "p", "h", "n"] {
        assert_eq!(p.read(&format!("{model}.txt")), "98000", "{model}");
    }
    assert_eq!(p.read("m/7.txt"), "14");
    assert!(p.read("m.txt").starts_with("02468101214"));
}

#[test]
fn many_small_items_are_batched_and_still_folded_in_item_order() {
    // Trivial items make the process models send growing batches; an order-sensitive
    // reduction shows every item still arrives in its place.
    let p = Project::new();
    same_rule_on_three_models(
        &p,
        r#"procs: 2, threads: 2,
    items: range(0, 5000).collect(),
    map: |job, i| i * 7 + 1,
    reduce: |acc, x| (acc * 31 + x) % 1000000007,
    init: 0,
    finish: |job, r| write_text(job.output[0], `${r}`)"#,
    );
    p.run(&["wf.rhai", "-j2"]).code(0);
    let expected = (0..5000_i64).fold(0_i64, |acc, i| (acc * 31 + i * 7 + 1) % 1_000_000_007);
    assert_eq!(p.read("t.txt"), expected.to_string());
    assert_eq!(p.read("p.txt"), expected.to_string());
    assert_eq!(p.read("h.txt"), expected.to_string());
}

#[test]
fn script_error_in_a_worker_fails_the_job_with_its_location() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("bad", #{ output: "x.txt", model: "process", procs: 2,
    items: [1, 2, 3],
    map: |job, i| if i == 2 { throw "no twos" } else { i },
    finish: |job, r| write_text(job.output[0], "x") });
"#,
    );
    p.run(&["wf.rhai"])
        .code(1)
        .stderr_has("in worker process")
        .stderr_has("no twos")
        .stderr_has("wf.rhai:3:");
    assert!(!p.exists("x.txt"));
}

#[test]
fn a_bad_npy_header_fails_the_chunked_job_naming_the_file_and_the_fault() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("means", #{
    input: "m.npy", output: "means.csv", model: "chunked", chunk: 4096, threads: 2,
    map: |job, rows| rows.col_sums(),
    reduce: |acc, s| acc + s,
    finish: |job, s| write_csv(job.output[0], s),
});
"#,
    );
    let header = |version: u8, dict: &str| {
        let mut bytes = b"\x93NUMPY".to_vec();
        bytes.extend([version, 0]);
        bytes.extend((dict.len() as u16).to_le_bytes());
        bytes.extend(dict.as_bytes());
        bytes
    };
    let cases: [(Vec<u8>, &str); 5] = [
        (
            b"PK\x03\x04 a zip archive".to_vec(),
            "cannot read `m.npy`: not a .npy file (it does not start with \\x93NUMPY)",
        ),
        (
            b"\x93NUMPY".to_vec(),
            "cannot read `m.npy`: the .npy header is cut short",
        ),
        (
            header(4, "{}"),
            "cannot read `m.npy`: unsupported .npy format version 4.0",
        ),
        (
            header(
                1,
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), ",
            ),
            "cannot read `m.npy`: bad .npy header: expected a value, found the end",
        ),
        (
            header(1, "{'descr': '<f8', 'shape': (2, 2), }"),
            "cannot read `m.npy`: the .npy header has no valid `fortran_order`",
        ),
    ];
    for (bytes, message) in cases {
        std::fs::write(p.path().join("m.npy"), bytes).unwrap();
        p.run(&["wf.rhai"]).code(1).stderr_has(message);
        assert!(!p.exists("means.csv"));
    }
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let after = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
        if after.split(' ').nth(1).and_then(|s| s.parse::<u32>().ok()) == Some(pid) {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_killed_worker_fails_the_job_without_hanging_or_orphans() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"rule("slow", #{ output: "x.txt", model: "process", procs: 2,
    items: range(0, 4).collect(),
    map: |job, i| { let n = 0; for k in 0..200000000 { n += 1; } n },
    finish: |job, r| write_text(job.output[0], "x") });
"#,
    );
    let bg = p.spawn(&["wf.rhai"]);
    let start = Instant::now();
    let workers = loop {
        let w = children_of(bg.pid() as u32);
        if w.len() == 2 || start.elapsed() > Duration::from_secs(30) {
            break w;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(workers.len(), 2, "workers did not start");
    std::thread::sleep(Duration::from_millis(300));
    let _ = std::process::Command::new("kill")
        .args(["-9", &workers[0].to_string()])
        .status();
    let out = bg.finish(Duration::from_secs(60));
    let stderr = out.stderr;
    assert_eq!(out.code, 1, "{stderr}");
    assert!(stderr.contains("died: killed by signal 9"), "{stderr}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !std::path::Path::new(&format!("/proc/{}", workers[1])).exists(),
        "a worker was left behind"
    );
}
