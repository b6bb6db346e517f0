//! The example workflows in `workflows/` run as shipped, on small configs, and give the same
//! results under every model and setting they support.

mod common;
use common::{Project, Run};
use std::path::Path;

/// Copies the repository's `workflows/` and `rules/` into the project, as a user's clone has.
fn with_examples() -> Project {
    let p = Project::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["workflows", "rules"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "rhai") {
                let name = format!("{dir}/{}", entry.file_name().to_string_lossy());
                p.file(&name, &std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    p
}

/// Runs flowrun with `args` plus one `--config` per setting.
fn run(p: &Project, args: &[&str], config: &[&str]) -> Run {
    let mut all: Vec<&str> = args.to_vec();
    for c in config {
        all.extend(["--config", c]);
    }
    p.run(&all)
}

#[test]
fn pi_process_gives_the_same_digits_on_processes_threads_and_hybrid() {
    let p = with_examples();
    let small = ["samples=120000", "batch=10000"];
    run(&p, &["workflows/pi_process.rhai", "-j2"], &small).code(0);
    let reference = p.read("results/pi.txt");
    let pi: f64 = reference
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("pi "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no estimate in {reference:?}"));
    assert!((pi - std::f64::consts::PI).abs() < 0.05, "{reference}");
    assert!(reference.contains("samples 120000\n"), "{reference}");
    for settings in [
        ["model=thread", "threads=2"],
        ["model=thread", "threads=1"],
        ["model=hybrid", "procs=2"],
        ["model=process", "procs=3"],
    ] {
        let config = [small[0], small[1], settings[0], settings[1]];
        run(&p, &["workflows/pi_process.rhai", "-j2", "-F"], &config).code(0);
        assert_eq!(p.read("results/pi.txt"), reference, "{settings:?}");
    }
}

#[test]
fn wordcount_counts_every_text_file_the_same_on_threads_and_hybrid() {
    let p = with_examples();
    run(&p, &["workflows/wordcount.rhai"], &[])
        .code(2)
        .stderr_has("no text files: put some in texts/");
    p.file("texts/a.txt", "The cat sat.\nThe dog sat, too!\n");
    p.file("texts/b.txt", "a dog; A CAT (the cat)\n");
    p.file("texts/sub/ignored.md", "not a text file: cat cat cat\n");
    p.file("texts/c.txt", "\"Quoted\" words: it's well-known.\n");
    run(&p, &["workflows/wordcount.rhai", "-j2"], &[]).code(0);
    let counts = p.read("results/wordcount.tsv");
    assert_eq!(
        counts,
        "cat\t3\nthe\t3\na\t2\ndog\t2\nsat\t2\nit's\t1\nquoted\t1\ntoo\t1\nwell-known\t1\nwords\t1\n"
    );
    assert_eq!(
        p.read("results/wordcount_files.tsv"),
        "texts/a.txt\t7\ntexts/b.txt\t6\ntexts/c.txt\t4\n"
    );
    for settings in [["model=hybrid", "threads=2"], ["model=thread", "threads=1"]] {
        run(&p, &["workflows/wordcount.rhai", "-j2", "-F"], &settings).code(0);
        assert_eq!(p.read("results/wordcount.tsv"), counts, "{settings:?}");
    }
    // A new text file is a new input: the counts are made again and include it.
    p.file("texts/d.txt", "zebra\n");
    let again = run(&p, &["workflows/wordcount.rhai"], &[]).code(0);
    assert_eq!(again.ran()[0], "wordcount", "{}", again.stderr);
    assert!(p.read("results/wordcount.tsv").ends_with("zebra\t1\n"));
}

/// `column,min,max,mean,rows` lines of results/stats.csv, parsed.
fn stats(p: &Project) -> Vec<(f64, f64, f64, u64)> {
    p.read("results/stats.csv")
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 5, "{l}");
            let x = |i: usize| f[i].parse::<f64>().unwrap();
            (x(1), x(2), x(3), f[4].parse().unwrap())
        })
        .collect()
}

#[test]
fn stats_chunked_streams_csv_and_raw_files_with_exact_extremes() {
    let p = with_examples();
    // 10,000 rows × 3 columns with known extremes, as CSV (with a header) and as raw f64.
    let rows = 10_000;
    let value = |r: usize, c: usize| ((r * 7919 + c * 104_729) % 10_007) as f64 / 8.0 - 600.0;
    let mut csv = String::from("a,b,c\n");
    let mut raw = Vec::new();
    for r in 0..rows {
        let line: Vec<String> = (0..3).map(|c| value(r, c).to_string()).collect();
        csv.push_str(&line.join(","));
        csv.push('\n');
        for c in 0..3 {
            raw.extend_from_slice(&value(r, c).to_le_bytes());
        }
    }
    p.file("in/table.csv", &csv);
    std::fs::write(p.path().join("in/table.f64"), raw).unwrap();

    let base = ["data=in/table.csv", "chunk=1000", "threads=2"];
    run(&p, &["workflows/stats_chunked.rhai", "-j2"], &base).code(0);
    let got = stats(&p);
    assert_eq!(got.len(), 3);
    for (c, (min, max, mean, n)) in got.iter().enumerate() {
        let col: Vec<f64> = (0..rows).map(|r| value(r, c)).collect();
        let lo = col.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = col.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let avg = col.iter().sum::<f64>() / rows as f64;
        assert_eq!((*min, *max, *n), (lo, hi, rows as u64), "column {c}");
        assert!((mean - avg).abs() < 1e-9, "column {c}: {mean} vs {avg}");
    }
    let reference = p.read("results/stats.csv");
    // The thread count never changes a bit; the raw file with its columns declared neither.
    let one_thread = ["data=in/table.csv", "chunk=1000", "threads=1"];
    run(&p, &["workflows/stats_chunked.rhai", "-F"], &one_thread).code(0);
    assert_eq!(p.read("results/stats.csv"), reference);
    let raw = ["data=in/table.f64", "cols=3", "chunk=1000", "threads=3"];
    run(&p, &["workflows/stats_chunked.rhai", "-F", "-j3"], &raw).code(0);
    assert_eq!(p.read("results/stats.csv"), reference);
}

#[test]
fn stats_chunked_makes_its_demo_data_when_given_none() {
    let p = with_examples();
    run(&p, &["workflows/stats_chunked.rhai"], &["rows=5000"]).code(0);
    let got = stats(&p);
    assert_eq!(got.len(), 4);
    for (min, max, _, n) in got {
        assert!((-100.0..=100.0).contains(&min) && min < max && max <= 100.0);
        assert_eq!(n, 5000);
    }
    assert!(p.exists("data/stats_demo.f64"));
}

#[test]
fn colmean_runs_end_to_end_on_every_local_model() {
    let p = with_examples();
    let config = [
        "rows=30000",
        "block=4096",
        "models=[chunked,thread,process,hybrid]",
    ];
    let out = run(&p, &["workflows/colmean.rhai", "-j2"], &config).code(0);
    for job in ["colmean_data", "colmean_chunked", "colmean_check"] {
        assert!(out.ran().iter().any(|j| j == job), "{job}: {}", out.stderr);
    }
    let reference = p.read("results/colmean/chunked.csv");
    assert_eq!(reference.lines().count(), 16);
    for m in ["thread", "process", "hybrid"] {
        assert_eq!(
            p.read(&format!("results/colmean/{m}.csv")),
            reference,
            "{m}"
        );
    }
    let table = p.read("results/colmean.csv");
    assert!(
        table.starts_with("column,mean,two_pass_mean,abs_diff\n"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 17, "{table}");
    // Nothing is outdated afterwards.
    let again = run(&p, &["workflows/colmean.rhai", "-j2"], &config).code(0);
    assert!(again.ran().is_empty(), "{}", again.stderr);
}

#[test]
fn every_workflow_in_the_model_pages_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut ran = 0;
    for page in ["README", "thread", "process", "hybrid", "chunked"] {
        let text = std::fs::read_to_string(root.join(format!("docs/models/{page}.md"))).unwrap();
        for (n, block) in text.split("```rhai\n").skip(1).enumerate() {
            let code = block.split("```").next().unwrap();
            let p = Project::new();
            p.file("wf.rhai", code);
            let run = p.run(&["wf.rhai", "-j2"]);
            assert_eq!(
                run.code, 0,
                "docs/models/{page}.md, example {n}:\n{code}\n--- stderr\n{}",
                run.stderr
            );
            assert!(!run.ran().is_empty(), "{page} example {n} ran nothing");
            ran += 1;
        }
    }
    assert!(ran >= 6, "only {ran} examples found");
}
