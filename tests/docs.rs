//! The `console` examples in `docs/` are run, and must print what the docs say they print, so a
//! stale sentence fails CI instead of reaching a user (issue 12, item 6).
//!
//! # The format
//!
//! A ```` ```console ```` block holds commands, each on a line starting with `$ `, each followed
//! by the output it is expected to print. Hidden HTML comments set the stage; a reader of the
//! rendered page sees none of them. Each is alone on its line, outside code blocks:
//!
//! - `<!-- sandbox: empty -->` or `<!-- sandbox: tutorial -->` starts a fresh temporary
//!   directory, empty or holding what a reader of the guide starts with: `workflows/tutorial/`
//!   without the outputs its `.gitignore` lists and without `.flowrun/`. The sandbox lasts until
//!   the next `sandbox:` directive or the end of the page, so later examples build on earlier
//!   ones, as a tutorial does. Every command runs in the sandbox; an example before the page's
//!   first `sandbox:` directive is an error.
//! - `<!-- file: NAME -->` writes the next fenced code block (whatever its language) to `NAME` in
//!   the sandbox, creating directories. In a `tutorial` sandbox, when `workflows/tutorial/NAME`
//!   exists, the block must also equal that file, so the guide and the files it says are in
//!   `workflows/tutorial/` cannot drift apart.
//! - `<!-- $ COMMAND -->` runs a hidden setup command in the sandbox; it must exit with 0. Its
//!   output is not compared.
//! - `<!-- unordered -->` before a `console` block: its jobs run at the same time, so the lines of
//!   each command's output may come in any order, and the done-count `k` of `[k/N]` depends on
//!   which job finishes first: lines are compared in any order, and `k` is not compared.
//!
//! Any other `<!-- ... -->` line is an error, so a misspelt directive cannot silently disable a
//! check.
//!
//! # How a command runs
//!
//! With `bash -c COMMAND` in the sandbox, stdin from `/dev/null`, and stdout and stderr on one
//! pipe, as `COMMAND 2>&1` would: the output is what a terminal user sees, stderr and stdout
//! interleaved as they were written. `flowrun` is the binary under test (its directory comes first
//! on `PATH`); the environment is made deterministic: `NO_COLOR=1`, `COLUMNS=100` (without a
//! terminal, clap wraps `--help` at `COLUMNS`, 100 if unset; on a terminal, at its width),
//! `LC_ALL=C`, no `FLOWRUN_*` variable (clap shows their values in `--help`) or
//! `CLICOLOR_FORCE`, and `XDG_CONFIG_HOME` in a directory that does not exist (so no user
//! profile applies). Neither stdin, stdout nor stderr is a terminal, so
//! flowrun prints plain lines without the live status line. The exit status is not compared (an
//! error's message is); it is shown when the output differs. A command that runs longer than
//! [`TIMEOUT`] is killed with its process group and fails the test.
//!
//! # Comparing
//!
//! Before comparing, both the expected and the actual output are normalised: every duration
//! `D.Ds` becomes `0.0s` and every `peak memory N MiB` becomes `peak memory 0 MiB` (the docs show
//! realistic numbers), and the sandbox's absolute path in the actual output becomes `/path/to`.
//! Then [snapbox] compares them, with its wildcards: `[..]` in an expected line matches any text
//! within the line, and `...` alone on a line matches any number of lines.
//!
//! # Why not trycmd
//!
//! trycmd runs `console` blocks in markdown, but it splits each command into words and runs one
//! program, with no shell: the docs' commands use `&&`, `>>`, `touch`, `sed -i` and `cat`, and the
//! tutorial needs hidden setup, files written from the page's own `rhai` blocks and a sandbox
//! that lives across sections. So this file parses the small directive format itself and leaves
//! the comparison and the diff to snapbox, trycmd's own engine.

use regex::Regex;
use snapbox::report::Palette;
use snapbox::{Assert, Data};
use std::fmt::Write as _;
use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// How long one command may run before it is killed and the test fails.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The pages whose examples are checked; `every_page_with_examples_is_checked` keeps the list
/// complete.
const CHECKED: &[&str] = &[
    "docs/guide.md",
    "docs/cli.md",
    "docs/language.md",
    "docs/staleness.md",
    "docs/snakemake.md",
    "docs/scripts.md",
    "docs/report.md",
];

#[test]
fn guide_examples_print_what_they_say() {
    check("docs/guide.md");
}

#[test]
fn cli_examples_print_what_they_say() {
    check("docs/cli.md");
}

#[test]
fn language_examples_print_what_they_say() {
    check("docs/language.md");
}

#[test]
fn staleness_examples_print_what_they_say() {
    check("docs/staleness.md");
}

#[test]
fn snakemake_examples_print_what_they_say() {
    check("docs/snakemake.md");
}

#[test]
fn scripts_examples_print_what_they_say() {
    check("docs/scripts.md");
}

#[test]
fn report_examples_print_what_they_say() {
    check("docs/report.md");
}

/// A page with a `console` block or a directive that no test above checks is an error.
#[test]
fn every_page_with_examples_is_checked() {
    let mut pages = Vec::new();
    markdown_files(&root().join("docs"), &mut pages);
    let mut unchecked = Vec::new();
    for page in pages {
        let text = std::fs::read_to_string(&page).unwrap();
        let rel = page
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let has_examples = text
            .lines()
            .any(|l| l.trim_end() == "```console" || directive(l).is_some());
        if has_examples && !CHECKED.contains(&rel.as_str()) {
            unchecked.push(rel);
        }
    }
    assert!(
        unchecked.is_empty(),
        "these pages have examples, but no test in tests/docs.rs runs them: {unchecked:?}"
    );
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            markdown_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// What a sandbox starts with.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Seed {
    Empty,
    Tutorial,
}

/// One thing to do, in page order; `line` is the 1-based line in the page.
#[derive(Debug)]
enum Step {
    Sandbox {
        seed: Seed,
    },
    File {
        line: usize,
        name: String,
        text: String,
    },
    Setup {
        line: usize,
        command: String,
    },
    Console {
        unordered: bool,
        commands: Vec<Example>,
    },
}

/// A `$ command` line of a `console` block and the output below it.
#[derive(Debug)]
struct Example {
    line: usize,
    command: String,
    expected: String,
}

/// The text of a `<!-- ... -->` line, trimmed.
fn directive(line: &str) -> Option<&str> {
    let inner = line.trim_end().strip_prefix("<!--")?.strip_suffix("-->")?;
    Some(inner.trim())
}

/// Reads a page into steps; an error names the line.
fn parse(text: &str) -> Result<Vec<Step>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut steps = Vec::new();
    let mut pending_file: Option<(usize, String)> = None;
    let mut pending_unordered: Option<usize> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let no = i + 1;
        if let Some(info) = line.strip_prefix("```") {
            let end = (i + 1..lines.len())
                .find(|&j| lines[j].trim_end() == "```")
                .ok_or_else(|| format!("{no}: this code block is never closed"))?;
            let body = &lines[i + 1..end];
            let console = info.trim() == "console";
            if let Some((line, name)) = pending_file.take() {
                let mut text = body.join("\n");
                text.push('\n');
                steps.push(Step::File { line, name, text });
            } else if console {
                steps.push(Step::Console {
                    unordered: pending_unordered.take().is_some(),
                    commands: parse_console(body, no + 1)?,
                });
            }
            if let Some(at) = pending_unordered {
                return Err(format!(
                    "{at}: `unordered` must come right before a console block"
                ));
            }
            i = end + 1;
            continue;
        }
        if let Some((at, _)) = &pending_file {
            if !line.trim().is_empty() {
                return Err(format!("{at}: `file:` must be followed by a code block"));
            }
        }
        if let Some(d) = directive(line) {
            if let Some(seed) = d.strip_prefix("sandbox:") {
                let seed = match seed.trim() {
                    "empty" => Seed::Empty,
                    "tutorial" => Seed::Tutorial,
                    other => return Err(format!("{no}: unknown sandbox `{other}`")),
                };
                steps.push(Step::Sandbox { seed });
            } else if let Some(name) = d.strip_prefix("file:") {
                pending_file = Some((no, name.trim().to_string()));
            } else if let Some(command) = d.strip_prefix("$ ") {
                let command = command.to_string();
                steps.push(Step::Setup { line: no, command });
            } else if d == "unordered" {
                pending_unordered = Some(no);
            } else {
                return Err(format!("{no}: unknown directive `<!-- {d} -->`"));
            }
        }
        i += 1;
    }
    match (pending_file, pending_unordered) {
        (Some((at, _)), _) => Err(format!("{at}: `file:` must be followed by a code block")),
        (_, Some(at)) => Err(format!(
            "{at}: `unordered` must come before a console block"
        )),
        _ => Ok(steps),
    }
}

/// Splits a `console` block whose first line is line `first` into commands and their output.
fn parse_console(body: &[&str], first: usize) -> Result<Vec<Example>, String> {
    let mut examples: Vec<Example> = Vec::new();
    for (k, line) in body.iter().enumerate() {
        if let Some(command) = line.strip_prefix("$ ") {
            examples.push(Example {
                line: first + k,
                command: command.to_string(),
                expected: String::new(),
            });
        } else if let Some(example) = examples.last_mut() {
            example.expected.push_str(line);
            example.expected.push('\n');
        } else {
            return Err(format!(
                "{}: output before the first `$ ` command",
                first + k
            ));
        }
    }
    Ok(examples)
}

/// A temporary directory the commands of a page run in.
struct Sandbox {
    dir: tempfile::TempDir,
    seed: Seed,
}

impl Sandbox {
    fn new(seed: Seed) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        if seed == Seed::Tutorial {
            let tutorial = root().join("workflows/tutorial");
            let ignored = std::fs::read_to_string(tutorial.join(".gitignore")).unwrap_or_default();
            let mut skip: Vec<&str> = ignored
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.trim().trim_matches('/'))
                .filter(|l| !l.is_empty())
                .collect();
            skip.push(".flowrun");
            copy_tree(&tutorial, dir.path(), &skip);
        }
        Self { dir, seed }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Copies `from` into `to`, leaving out the top-level entries named in `skip`.
fn copy_tree(from: &Path, to: &Path, skip: &[&str]) {
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name();
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        let target = to.join(&name);
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target, &[]);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// What a command printed, stdout and stderr together, and how it ended.
struct Printed {
    text: String,
    status: ExitStatus,
}

/// Runs `command` with bash in `dir`, as described at the top of this file.
fn run(dir: &Path, command: &str) -> Result<Printed, String> {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_flowrun")).parent().unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin_dir.to_path_buf()];
    paths.extend(std::env::split_paths(&path));
    let (mut reader, writer) = std::io::pipe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(command)
        .current_dir(dir)
        .env("PATH", std::env::join_paths(paths).unwrap())
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env("LC_ALL", "C")
        .env_remove("CLICOLOR_FORCE")
        .env("XDG_CONFIG_HOME", dir.join(".no-user-config"))
        .stdin(Stdio::null())
        .stdout(writer.try_clone().map_err(|e| e.to_string())?)
        .stderr(writer)
        .process_group(0);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("FLOWRUN_") {
            cmd.env_remove(name);
        }
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot start bash: {e}"))?;
    drop(cmd); // closes this process's copies of the pipe's writing end
    let printed = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = Arc::clone(&printed);
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        let _ = tx.send(());
    });
    let deadline = Instant::now() + TIMEOUT;
    let timed_out = |child: &mut std::process::Child| {
        let group = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
        let so_far = String::from_utf8_lossy(&printed.lock().unwrap()).into_owned();
        Err(format!(
            "did not end within {TIMEOUT:?} (it, or a process it started, kept its output \
             open), so its process group was killed; it had printed:\n{so_far}"
        ))
    };
    // The pipe reaches its end when the command and everything it started have closed it.
    if rx.recv_timeout(TIMEOUT).is_err() {
        return timed_out(&mut child);
    }
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => return timed_out(&mut child),
        }
    };
    let bytes = std::mem::take(&mut *printed.lock().unwrap());
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Ok(Printed { text, status })
}

/// Replaces what legitimately varies between runs, on both sides of a comparison.
fn normalise(text: &str, unordered: bool) -> String {
    static DURATION: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b\d+\.\d+s\b").unwrap());
    static MEMORY: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"peak memory \d+ MiB").unwrap());
    static DONE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\[\d+/(\d+)\]").unwrap());
    let text = DURATION.replace_all(text, "0.0s");
    let text = MEMORY.replace_all(&text, "peak memory 0 MiB");
    if unordered {
        DONE.replace_all(&text, "[_/$1]").into_owned()
    } else {
        text.into_owned()
    }
}

/// The diff between `expected` and `actual` (called `name` in it), or `None` when they match.
fn differs(expected: Data, actual: &str, name: &str) -> Option<String> {
    Assert::new()
        .palette(Palette::plain())
        .try_eq(Some(&name), Data::text(actual), expected)
        .err()
        .map(|e| e.to_string())
}

/// Runs every example of `page` and fails with all the differences found.
fn check(page: &str) {
    let start = Instant::now();
    let text = std::fs::read_to_string(root().join(page)).unwrap();
    let steps = parse(&text).unwrap_or_else(|e| panic!("{page}:{e}"));
    let mut failures = Vec::new();
    let mut sandbox: Option<Sandbox> = None;
    let mut ran = 0;
    for step in &steps {
        if let Step::Sandbox { seed } = step {
            sandbox = Some(Sandbox::new(*seed));
            continue;
        }
        let Some(sandbox) = &sandbox else {
            panic!("{page}: an example comes before the first `<!-- sandbox: ... -->`");
        };
        match step {
            Step::Sandbox { .. } => unreachable!(),
            Step::File { line, name, text } => {
                let path = sandbox.path().join(name);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, text).unwrap();
                let shipped = root().join("workflows/tutorial").join(name);
                if sandbox.seed == Seed::Tutorial && shipped.exists() {
                    let shipped = std::fs::read_to_string(&shipped).unwrap();
                    if let Some(diff) = differs(Data::text(shipped).raw(), text, "the page's block")
                    {
                        failures.push(format!(
                            "{page}:{line}: the block for `{name}` differs from \
                             workflows/tutorial/{name} (expected):\n{diff}"
                        ));
                    }
                }
            }
            Step::Setup { line, command } => {
                ran += 1;
                match run(sandbox.path(), command) {
                    Ok(p) if p.status.success() => {}
                    Ok(p) => failures.push(format!(
                        "{page}:{line}: hidden setup `{command}` failed ({}):\n{}",
                        p.status, p.text
                    )),
                    Err(why) => failures.push(format!("{page}:{line}: `{command}`: {why}")),
                }
            }
            Step::Console {
                unordered,
                commands,
            } => {
                for example in commands {
                    ran += 1;
                    let Example {
                        line,
                        command,
                        expected,
                    } = example;
                    let printed = match run(sandbox.path(), command) {
                        Ok(printed) => printed,
                        Err(why) => {
                            failures.push(format!("{page}:{line}: `$ {command}`: {why}"));
                            continue;
                        }
                    };
                    let dir = sandbox.path().to_string_lossy();
                    let actual = normalise(&printed.text.replace(&*dir, "/path/to"), *unordered);
                    let mut want = Data::text(normalise(expected, *unordered));
                    if *unordered {
                        want = want.unordered();
                    }
                    if let Some(diff) = differs(want, &actual, "printed") {
                        let mut msg = format!(
                            "{page}:{line}: `$ {command}` ({}) printed something else",
                            printed.status
                        );
                        if *unordered {
                            msg.push_str(" (lines compared in any order, `[k/N]` without `k`)");
                        }
                        let _ = write!(msg, ":\n{diff}");
                        failures.push(msg);
                    }
                }
            }
        }
    }
    eprintln!("{page}: {ran} commands in {:.1?}", start.elapsed());
    assert!(ran > 0, "{page} is checked but has no example to run");
    assert!(
        failures.is_empty(),
        "{page}: {} of {ran} commands do not do what the page says \
         (the rules are at the top of tests/docs.rs):\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}
