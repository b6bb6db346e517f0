//! The HTML report opened in a real browser: headless Chromium (Debian's `chromium`, which
//! `scripts/setup-tests.sh` installs) loads the page of a real run from its file, with the
//! network switched off as far as flags allow, and must draw it (a screenshot with the run's
//! plot in it), parse it (the DOM holds the result table's cells and the plot as a `data:`
//! image) and log no console error. Chromium runs in a process group of its own, killed after
//! [`LIMIT`], so no helper process outlives a test.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{assert_group_gone, Project};

/// The longest a browser may take for one page.
const LIMIT: Duration = Duration::from_secs(60);

/// The plot's two colours: a PNG of 120 × 60 pixels, magenta on the left, blue on the right,
/// written by the workflow's Python script with the standard library only.
const MAGENTA: [u8; 3] = [200, 30, 160];
const PLOT: &str = r#"import struct, zlib
import flowrun

job = flowrun.job()
w, h = 120, 60
row = b"\x00" + bytes([200, 30, 160]) * (w // 2) + bytes([20, 120, 220]) * (w // 2)

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * h)) + chunk(b"IEND", b"")
open(job.output[0], "wb").write(png)
"#;

const WORKFLOW: &str = r#"
rule("all", #{ input: ["plots/plot.png", "tables/a.tsv", "notes.txt"] });
rule("plot", #{
    output: report("plots/plot.png", #{ caption: "Two colours.", category: "Figures" }),
    script: "scripts/plot.py",
});
rule("count", #{
    output: report("tables/{s}.tsv", "Counts of {s}."),
    shell: "printf 'gene\tcount\nBRCA2\t17\nTP53\t4\n' > {output}",
});
rule("notes", #{ input: "tables/a.tsv", output: report("notes.txt"), shell: "echo 'all good' > {output}" });
"#;

/// Debian's Chromium; the test fails (it never skips) where it is missing.
fn chromium() -> &'static str {
    let found = Command::new("chromium")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "no `chromium` on PATH: run `bash scripts/setup-tests.sh`, which installs it"
    );
    "chromium"
}

/// Opens `page` in headless Chromium with `what` (`--dump-dom`, `--screenshot=...`), its
/// console logged to stderr; kills its whole process group after [`LIMIT`] or once it exits.
fn browse(page: &Path, what: &[&str], profile: &Path) -> Output {
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
        // No name resolves: a page that tried to fetch anything from the network could not.
        "--host-resolver-rules=MAP * ~NOTFOUND",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(what)
    .arg(format!("file://{}", page.display()))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let child = cmd.spawn().expect("start chromium");
    let group = child.id() as i32;
    let killer = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        while start.elapsed() < LIMIT {
            if nix::sys::signal::killpg(nix::unistd::Pid::from_raw(group), None).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        common::kill_groups(&[group]);
    });
    let out = child.wait_with_output().expect("chromium's output");
    // Helpers that outlive the browser process are ended with it.
    common::kill_groups(&[group]);
    assert_group_gone(group);
    let _ = killer.join();
    assert!(
        out.status.success(),
        "chromium failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The console messages Chromium logged (`INFO:CONSOLE` lines).
fn console(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_report_opens_offline_in_a_browser_with_its_results_drawn() {
    let p = Project::new();
    p.file("wf.rhai", WORKFLOW)
        .file("scripts/plot.py", PLOT)
        .file("out/.keep", "");
    p.run(&["wf.rhai", "--report", "out/report.html"]).code(0);
    let page = p.path().join("out/report.html");
    let profile = tempfile::tempdir().unwrap();

    // The check for console errors catches one: a page with a failing script logs it.
    p.file(
        "broken.html",
        "<p>x</p><script>undefinedFunction();</script>",
    );
    let broken = browse(
        &p.path().join("broken.html"),
        &["--dump-dom"],
        profile.path(),
    );
    assert!(
        console(&broken)
            .iter()
            .any(|l| l.contains("Uncaught ReferenceError")),
        "the console error of a broken page was not seen:\n{}",
        String::from_utf8_lossy(&broken.stderr)
    );

    let dom = browse(&page, &["--dump-dom"], profile.path());
    assert_eq!(console(&dom), Vec::<String>::new(), "console messages");
    let dom = String::from_utf8_lossy(&dom.stdout);
    for cell in [
        "<th>gene</th>",
        "<td>BRCA2</td>",
        "<td>17</td>",
        "Counts of a.",
        "Two colours.",
        "all good",
    ] {
        assert!(dom.contains(cell), "{cell} is not in the DOM:\n{dom}");
    }
    assert!(
        dom.contains("<img alt=\"plots/plot.png\" src=\"data:image/png;base64,iVBORw0KGgo"),
        "no plot as a data: image in the DOM"
    );
    assert!(dom.contains("<svg class=\"rulegraph\""), "no rule graph");
    // Nothing in the page loads from elsewhere: every image is inline, no style sheet or
    // link points at the network.
    for fetch in ["src=\"http", "href=\"http", "url(http", "<link", "<iframe"] {
        assert!(!dom.contains(fetch), "the page holds {fetch}");
    }
    assert!(dom.matches(" src=\"").count() == dom.matches(" src=\"data:").count());
    assert!(!dom.contains("<script"), "the report has no scripts");

    let shot = p.path().join("shot.png");
    browse(
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,1600",
        ],
        profile.path(),
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&shot).expect("a screenshot"),
    ));
    let mut reader = decoder.read_info().expect("a PNG screenshot");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut pixels).expect("its pixels");
    assert_eq!((info.width, info.height), (1200, 1600));
    let step = info.color_type.samples();
    let mut colours = std::collections::HashSet::new();
    let mut magenta = 0;
    for px in pixels[..info.buffer_size()].chunks(step) {
        colours.insert([px[0], px[1], px[2]]);
        magenta += usize::from(px[..3] == MAGENTA);
    }
    assert!(
        colours.len() > 20,
        "a nearly blank page: {} colours",
        colours.len()
    );
    // The plot's magenta half, 60 × 60 pixels, was decoded from its data: URI and drawn.
    assert!(
        magenta >= 3000,
        "the plot is not on the screen: {magenta} magenta pixels"
    );
}
