//! The `async` model end to end: the real flowrun binary against a small HTTP server started by
//! each test on 127.0.0.1, which counts how many requests it holds at once. Concurrency is
//! checked by that count, not by timing; the few timing checks are generous sanity bounds.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{kill_groups, live_stats_in_group, run_bounded, Background, Project, Run};

// ---------------------------------------------------------------------------------------------
// The test server

#[derive(Default)]
struct Stats {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    total: AtomicUsize,
    /// Item numbers in the order they were answered.
    answered: Mutex<Vec<usize>>,
    /// Wakes held requests ([`Stats::wake`]) when a request arrives or is answered.
    lock: Mutex<()>,
    changed: Condvar,
}

impl Stats {
    fn wake(&self) {
        let _g = self.lock.lock().unwrap();
        self.changed.notify_all();
    }
}

/// How the server answers.
#[derive(Clone)]
struct Behaviour {
    /// Hold every request until this many have been in flight at once (or `hold_max` passed),
    /// so the peak the client can reach is observed whatever the machine's speed.
    hold_until: usize,
    /// Hold item 0 until this many others have been answered (or `hold_max` passed).
    hold_first_until_answered: usize,
    hold_max: Duration,
    /// Then answer after this delay (given the item number, when the path has one).
    delay: fn(Option<usize>) -> Duration,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            hold_until: 0,
            hold_first_until_answered: 0,
            hold_max: Duration::from_secs(10),
            delay: |_| Duration::ZERO,
        }
    }
}

/// An HTTP/1.1 server on 127.0.0.1 (keep-alive, one thread per connection), stopped on drop.
///
/// Paths: `/item/N` → `item N`, `/page-N.txt` → `page N`, `/missing/...` → 404, `/bin` → three
/// bytes that are not UTF-8.
struct Server {
    port: u16,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    fn start(behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (stats.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            let mut conns = Vec::new();
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (st, sp, b) = (st.clone(), sp.clone(), behaviour.clone());
                conns.push(std::thread::spawn(move || serve(conn, &st, &sp, &b)));
            }
            for c in conns {
                let _ = c.join();
            }
        });
        Server {
            port,
            stats,
            stop,
            accept: Some(accept),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn max_in_flight(&self) -> usize {
        self.stats.max_in_flight.load(Ordering::SeqCst)
    }

    fn total(&self) -> usize {
        self.stats.total.load(Ordering::SeqCst)
    }

    fn answered(&self) -> Vec<usize> {
        self.stats.answered.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.stats.wake();
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wakes `accept`
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn item_of(path: &str, prefix: &str, suffix: &str) -> Option<usize> {
    path.strip_prefix(prefix)?
        .strip_suffix(suffix)?
        .parse()
        .ok()
}

fn serve(conn: TcpStream, stats: &Stats, stop: &AtomicBool, b: &Behaviour) {
    // A connection idle this long is closed (flowrun's pool keeps some open until it exits).
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut writer = conn;
    loop {
        let mut request_line = String::new();
        match reader.read_line(&mut request_line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            let mut header = String::new();
            match reader.read_line(&mut header) {
                Ok(0) | Err(_) => return,
                Ok(_) if header == "\r\n" || header == "\n" => break,
                Ok(_) => {}
            }
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_string();
        stats.total.fetch_add(1, Ordering::SeqCst);
        let now = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        stats.max_in_flight.fetch_max(now, Ordering::SeqCst);
        stats.wake();
        let item = item_of(&path, "/item/", "").or_else(|| item_of(&path, "/page-", ".txt"));
        let held = || {
            stats.max_in_flight.load(Ordering::SeqCst) < b.hold_until
                || (item == Some(0)
                    && stats.answered.lock().unwrap().len() < b.hold_first_until_answered)
        };
        let start = Instant::now();
        let mut g = stats.lock.lock().unwrap();
        while held() && start.elapsed() < b.hold_max && !stop.load(Ordering::SeqCst) {
            g = stats
                .changed
                .wait_timeout(g, Duration::from_millis(50))
                .unwrap()
                .0;
        }
        drop(g);
        std::thread::sleep((b.delay)(item));
        let (status, body): (&str, Vec<u8>) = if path == "/bin" {
            ("200 OK", vec![0xff, 0x00, 0x80])
        } else if path.starts_with("/missing/") {
            ("404 Not Found", b"not found\n".to_vec())
        } else if let Some(i) = item_of(&path, "/item/", "") {
            ("200 OK", format!("item {i}\n").into_bytes())
        } else if let Some(i) = item_of(&path, "/page-", ".txt") {
            ("200 OK", format!("page {i}\n").into_bytes())
        } else {
            ("404 Not Found", b"not found\n".to_vec())
        };
        // Counted out before answering: the client cannot send a request in this one's place
        // before it has the answer, so the count never exceeds what the client really has open.
        stats.in_flight.fetch_sub(1, Ordering::SeqCst);
        stats.answered.lock().unwrap().extend(item);
        stats.wake();
        // One write: a separate small write for the body would wait for a delayed ACK.
        let mut response = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\ncontent-type: text/plain\r\nx-path: {path}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(&body);
        if writer.write_all(&response).is_err() {
            return;
        }
        let _ = writer.flush();
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// A workflow with one map/reduce rule writing `out.txt`; `model` comes from `--config`.
fn map_workflow(items: &str, map: &str, finish: &str, extra: &str) -> String {
    format!(
        r#"
let cfg = config(#{{ model: "async", concurrency: 10, base: "" }});
rule("all", #{{
    output: "out.txt",
    model: cfg.model,
    concurrency: cfg.concurrency,
    threads: 3,
    params: #{{ base: cfg.base }},
    items: {items},
    map: {map},
    {extra}
    finish: {finish},
}});
"#
    )
}

/// Runs flowrun like [`Project::run`], but with no HTTP proxy from the environment, so requests
/// reach the test server on 127.0.0.1 directly.
fn run(p: &Project, args: &[&str]) -> Run {
    run_bounded(direct(p.cmd(args)))
}

/// Runs `file` with [`run`], giving it each of `config` with `--config`.
fn run_configured(p: &Project, file: &str, config: &[String]) -> Run {
    let mut args = vec![file];
    for c in config {
        args.extend(["--config", c]);
    }
    run(p, &args)
}

fn direct(mut c: std::process::Command) -> std::process::Command {
    for v in [
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ] {
        c.env_remove(v);
    }
    c
}

/// An `items` closure giving 0..n.
fn seq(n: usize) -> String {
    format!("|job| {{ let a = []; for i in 0..{n} {{ a.push(i); }} a }}")
}

/// A workflow that fetches `/item/i` for every item and writes one line per response.
fn fetch_items(n: usize) -> String {
    map_workflow(
        &seq(n),
        r#"|job, i| http_get(`${job.params.base}/item/${i}`)"#,
        r#"|job, rs| {
            let lines = [];
            for r in rs { lines.push(`${r.status} ${r.headers["x-path"]} ${r.body.split("\n")[0]}`); }
            write_lines(job.output[0], lines);
        }"#,
        "",
    )
}

trait TrimEnd {
    fn lines_of(&self) -> Vec<String>;
}

impl TrimEnd for String {
    fn lines_of(&self) -> Vec<String> {
        self.lines().map(str::to_string).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn server_sees_exactly_concurrency_requests_in_flight() {
    for concurrency in [3usize, 8] {
        let server = Server::start(Behaviour {
            hold_until: concurrency,
            delay: |_| Duration::from_millis(20),
            ..Behaviour::default()
        });
        let p = Project::new();
        let n = concurrency * 5;
        p.file("wf.rhai", &fetch_items(n));
        run_configured(
            &p,
            "wf.rhai",
            &[
                format!("base={}", server.url()),
                format!("concurrency={concurrency}"),
            ],
        )
        .code(0);
        assert_eq!(
            server.max_in_flight(),
            concurrency,
            "the server should see exactly `concurrency` requests at once"
        );
        assert_eq!(server.total(), n);
        let expected: Vec<String> = (0..n).map(|i| format!("200 /item/{i} item {i}")).collect();
        assert_eq!(p.read("out.txt").lines_of(), expected);
    }
}

#[test]
fn a_slow_item_does_not_hold_back_the_window() {
    // Item 0 is answered only once every other item has been: the later items must pass it
    // through the window, their results waiting until item 0's is in.
    let n = 12;
    let server = Server::start(Behaviour {
        hold_first_until_answered: n - 1,
        ..Behaviour::default()
    });
    let p = Project::new();
    p.file("wf.rhai", &fetch_items(n));
    run_configured(
        &p,
        "wf.rhai",
        &[format!("base={}", server.url()), "concurrency=3".into()],
    )
    .code(0);
    let answered = server.answered();
    assert_eq!(
        answered.last(),
        Some(&0),
        "the finished items did not free their places while item 0 waited: {answered:?}"
    );
    assert!(
        server.max_in_flight() <= 3,
        "more than `concurrency` in flight"
    );
    let expected: Vec<String> = (0..n).map(|i| format!("200 /item/{i} item {i}")).collect();
    assert_eq!(p.read("out.txt").lines_of(), expected);
}

#[test]
fn results_are_in_item_order_and_identical_to_the_thread_model() {
    // Later items answer sooner, so responses arrive roughly in reverse order.
    let server = Server::start(Behaviour {
        delay: |i| Duration::from_millis(3 * (40 - i.unwrap_or(0).min(40)) as u64),
        ..Behaviour::default()
    });
    let wf = map_workflow(
        &seq(40),
        r#"|job, i| if i % 10 == 3 { http_get(`${job.params.base}/missing/${i}`) }
                   else if i % 10 == 7 { i * 100 }
                   else { http_get(`${job.params.base}/item/${i}`, #{ headers: #{ "x-test": i } }) }"#,
        r#"|job, acc| write_text(job.output[0], acc)"#,
        r#"init: "",
    reduce: |acc, r| {
        if type_of(r) == "i64" { acc + `plain ${r}` + "\n" }
        else { acc + `${r.status} ${r.headers["x-path"]} ${r.body}` }
    },"#,
    );
    let mut outputs = Vec::new();
    for (model, concurrency) in [
        ("async", 7),
        ("async", 1),
        ("async", 40),
        ("thread", 1),
        ("process", 1),
    ] {
        let p = Project::new();
        p.file("wf.rhai", &wf);
        run_configured(
            &p,
            "wf.rhai",
            &[
                format!("base={}", server.url()),
                format!("model={model}"),
                format!("concurrency={concurrency}"),
            ],
        )
        .code(0);
        outputs.push((model, concurrency, p.read("out.txt")));
    }
    let first = &outputs[0].2;
    let lines = first.lines_of();
    assert_eq!(lines.len(), 40, "{first}");
    assert_eq!(lines[0], "200 /item/0 item 0");
    assert_eq!(lines[3], "404 /missing/3 not found");
    assert_eq!(lines[7], "plain 700");
    assert_eq!(lines[39], "200 /item/39 item 39");
    for (model, concurrency, out) in &outputs[1..] {
        assert_eq!(
            out, first,
            "model {model} with concurrency {concurrency} differs"
        );
    }
}

#[test]
fn a_thousand_sleeps_overlap() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        &map_workflow(
            &seq(1000),
            "|job, i| sleep_ms(50)",
            r#"|job, rs| write_text(job.output[0], `${rs.len()} ${rs.filter(|r| r == ()).len()}`)"#,
            "",
        ),
    );
    let start = Instant::now();
    run(&p, &["wf.rhai", "--config", "concurrency=100"]).code(0);
    let took = start.elapsed();
    assert_eq!(p.read("out.txt"), "1000 1000");
    // Serial would be 50 s; the floor is 10 waves × 50 ms = 0.5 s. Only a sanity bound.
    assert!(
        took < Duration::from_secs(20),
        "1000 × sleep_ms(50) at concurrency 100 took {took:?}"
    );
    eprintln!("1000 x sleep_ms(50), concurrency 100: {took:?} (flowrun start to end)");
}

#[test]
fn subprocesses_run_concurrently_and_report_status_and_output() {
    let p = Project::new();
    std::fs::create_dir_all(p.path().join("started")).unwrap();
    // Each command marks itself started, then waits (bounded, 10 s) until all four have
    // started: every one sees 4 only if the four really run at the same time.
    let wait_all = r#"touch started/$1; n=0; while [ "$(ls started | wc -l)" -lt 4 ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done; echo "item $1 saw $(ls started | wc -l)"; echo "to stderr $1" >&2; exit $1"#;
    p.file(
        "wf.rhai",
        &map_workflow(
            "[0, 1, 2, 3, 4]",
            &format!(
                r#"|job, i| if i == 4 {{ command("printf 'shell %s' \"$((6 * 7))\"") }} else {{ command(["sh", "-c", {wait_all:?}, "sh", i]) }}"#
            ),
            r#"|job, rs| {
                let lines = [];
                for r in rs { lines.push(`${r.status}|${r.stdout.split("\n")[0]}|${r.stderr.split("\n")[0]}`); }
                write_lines(job.output[0], lines);
            }"#,
            "",
        ),
    );
    run(&p, &["wf.rhai", "--config", "concurrency=4"]).code(0);
    assert_eq!(
        p.read("out.txt").lines_of(),
        [
            "0|item 0 saw 4|to stderr 0",
            "1|item 1 saw 4|to stderr 1",
            "2|item 2 saw 4|to stderr 2",
            "3|item 3 saw 4|to stderr 3",
            "0|shell 42|",
        ]
    );
}

#[test]
fn files_and_binary_bodies() {
    let server = Server::start(Behaviour::default());
    let p = Project::new();
    p.file("data/a.txt", "alpha\n").file("data/b.txt", "beta\n");
    std::fs::write(p.path().join("data/c.bin"), [0u8, 0xff, 7]).unwrap();
    p.file(
        "wf.rhai",
        &map_workflow(
            r#"["data/a.txt", "data/b.txt", "data/c.bin", "bin"]"#,
            r#"|job, x| if x == "bin" { http_get(`${job.params.base}/bin`, #{ binary: true }) }
                       else if x.ends_with(".bin") { read_file_async(x, #{ binary: true }) }
                       else { read_file_async(x) }"#,
            r#"|job, rs| write_lines(job.output[0], [rs[0], rs[1], rs[2].len(), rs[2][1], rs[3].status, rs[3].body_blob.len(), rs[3].body_blob[0]])"#,
            "",
        ),
    );
    run(
        &p,
        &["wf.rhai", "--config", &format!("base={}", server.url())],
    )
    .code(0);
    assert_eq!(p.read("out.txt"), "alpha\n\nbeta\n\n3\n255\n200\n3\n255\n");
}

#[test]
fn a_failing_request_fails_the_job_with_a_clear_message() {
    let server = Server::start(Behaviour::default());
    // A port nothing listens on: bind one, then close it.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cases: [(&str, &[&str]); 5] = [
        (
            "http_get(`http://127.0.0.1:CLOSED/x`)",
            &["item 2: GET http://127.0.0.1:CLOSED/x: cannot connect", "Connection refused"],
        ),
        (
            r#"command(["flowrun-no-such-program", "--flag"])"#,
            &["item 2: command `flowrun-no-such-program --flag`: cannot start `flowrun-no-such-program`: command not found"],
        ),
        (
            r#"read_file_async("no/such/file.txt")"#,
            &["item 2: read_file_async `no/such/file.txt`: cannot read: No such file or directory"],
        ),
        (
            "http_get(`BASE/bin`)",
            &["item 2: GET BASE/bin: the response body is not UTF-8 text", "binary: true"],
        ),
        (
            r#"command("sleep 30", #{ timeout_ms: 200 })"#,
            &["item 2: command `sleep 30`: timed out after 200 ms (the command was killed)"],
        ),
    ];
    for (request, messages) in cases {
        let request = request
            .replace("CLOSED", &closed.to_string())
            .replace("BASE", &server.url());
        let p = Project::new();
        p.file(
            "wf.rhai",
            &map_workflow(
                "[0, 1, 2, 3, 4]",
                &format!("|job, i| if i == 2 {{ {request} }} else {{ sleep_ms(1) }}"),
                r#"|job, rs| write_text(job.output[0], "done")"#,
                "",
            ),
        );
        let start = Instant::now();
        let mut run = run(&p, &["wf.rhai"]).code(1);
        assert!(start.elapsed() < Duration::from_secs(20));
        for m in messages {
            let m = m
                .replace("CLOSED", &closed.to_string())
                .replace("BASE", &server.url());
            run = run.stderr_has(&m);
        }
        assert!(!p.exists("out.txt"));
    }
}

#[test]
fn building_requests_at_definition_time_does_nothing() {
    let p = Project::new();
    p.file(
        "wf.rhai",
        r#"
let req = command("touch made-at-definition-time");
let s = `${req}`;
rule("all", #{ output: "out.txt", model: "async", items: [1], map: |job, i| sleep_ms(1),
               finish: |job, r| write_text(job.output[0], "ok") });
"#,
    );
    run(&p, &["wf.rhai", "-n"]).code(0);
    run(&p, &["wf.rhai"]).code(0);
    assert!(!p.exists("made-at-definition-time"));
    assert_eq!(p.read("out.txt"), "ok");
}

#[test]
fn ctrl_c_ends_with_130_and_leaves_no_child_processes() {
    interrupt_leaves_nothing("async", 3);
}

#[test]
fn ctrl_c_under_the_process_model_also_kills_the_commands_of_workers() {
    // Two worker processes (the default `procs`), each blocked in one command.
    interrupt_leaves_nothing("process", 2);
}

/// Starts a run whose commands sleep, interrupts it once `running` commands have started, and
/// checks the exit code and that no process of theirs is left.
fn interrupt_leaves_nothing(model: &str, running: usize) {
    let p = Project::new();
    std::fs::create_dir_all(p.path().join("pids")).unwrap();
    // Each command records its process group (field 5 of /proc/$$/stat) and starts a grandchild.
    p.file(
        "wf.rhai",
        &map_workflow(
            &seq(8),
            r#"|job, i| command(["sh", "-c", "cut -d' ' -f5 /proc/$$/stat > pids/$1.tmp && mv pids/$1.tmp pids/$1; sleep 60; echo never", "sh", i])"#,
            r#"|job, rs| write_text(job.output[0], "done")"#,
            "",
        ),
    );
    let bg = Background::start(direct(p.cmd(&[
        "wf.rhai",
        "--config",
        &format!("model={model}"),
        "--config",
        &format!("concurrency={running}"),
    ])));
    let pids_dir = p.path().join("pids");
    let start = Instant::now();
    let count = || {
        std::fs::read_dir(&pids_dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
                    .count()
            })
            .unwrap_or(0)
    };
    while count() < running && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(count(), running, "{running} commands should be running");
    std::thread::sleep(Duration::from_millis(100));
    bg.signal(nix::sys::signal::Signal::SIGINT);
    let out = bg.finish(Duration::from_secs(60));
    let stderr = out.stderr;
    assert_eq!(out.code, 130, "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(!p.exists("out.txt"));
    let groups: Vec<i32> = std::fs::read_dir(&pids_dir)
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    assert_eq!(
        groups.len(),
        running,
        "no new command may start after Ctrl-C"
    );
    // SIGKILL is immediate, but give the kernel a moment to tear the processes down.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<String> = groups
            .iter()
            .flat_map(|g| live_stats_in_group(*g))
            .map(|(_, stat)| stat)
            .collect();
        if left.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            kill_groups(&groups);
            panic!("processes left behind after Ctrl-C:\n{}", left.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn fetch_example_workflow_runs_against_a_local_server() {
    let server = Server::start(Behaviour {
        hold_until: 6,
        delay: |_| Duration::from_millis(10),
        ..Behaviour::default()
    });
    let p = Project::new();
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/fetch.rhai"),
    )
    .unwrap();
    p.file("workflows/fetch.rhai", &example);
    run_configured(
        &p,
        "workflows/fetch.rhai",
        &[
            format!("base_url={}", server.url()),
            "pages=30".into(),
            "concurrency=6".into(),
        ],
    )
    .code(0);
    assert_eq!(server.max_in_flight(), 6);
    assert_eq!(server.total(), 30);
    assert_eq!(
        p.read("results/fetch/summary.txt"),
        "pages: 30\nok: 30\nnot ok: 0\nbytes: 231\n"
    );
    let table = p.read("results/fetch/pages.tsv");
    let lines = table.lines_of();
    assert_eq!(lines.len(), 31);
    assert_eq!(lines[0], "url\tstatus\tbytes\tfirst_line");
    for (i, line) in lines[1..].iter().enumerate() {
        let n = i + 1;
        assert_eq!(
            *line,
            format!(
                "{}/page-{n}.txt\t200\t{}\tpage {n}",
                server.url(),
                format!("page {n}\n").len()
            )
        );
    }
}

#[test]
fn docs_example_runs() {
    // The first ```rhai block of docs/models/async.md must run as it is.
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/models/async.md"),
    )
    .unwrap();
    let start = doc.find("```rhai\n").expect("a rhai example") + "```rhai\n".len();
    let end = start + doc[start..].find("```").unwrap();
    let p = Project::new();
    p.file("workflow.rhai", &doc[start..end]);
    p.file("data/a.txt", "one\ntwo\n")
        .file("data/b.txt", "three\n")
        .file("data/c.txt", "four\nfive\nsix\n");
    run(&p, &["workflow.rhai"]).code(0);
    assert_eq!(
        p.read("results/lines.txt"),
        "data/a.txt 2\ndata/b.txt 1\ndata/c.txt 3\ntotal 6\n"
    );
    // `cksum` prints "CRC SIZE PATH" for each file, in item order.
    let sums = p.read("results/cksum.txt");
    let paths: Vec<&str> = sums.lines().filter_map(|l| l.split(' ').nth(2)).collect();
    assert_eq!(paths, ["data/a.txt", "data/b.txt", "data/c.txt"], "{sums}");
}
