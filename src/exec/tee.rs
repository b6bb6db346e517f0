//! A child's output passed on line by line to where it belongs (the job's log, else flowrun's
//! standard error) while its last lines are kept, so a failure can say what the program said:
//! which MPI rank died, or where the interpreter stopped a script.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// Lines kept for error messages.
const TAIL_LINES: usize = 200;

/// Where output goes, and its last lines.
#[derive(Clone)]
pub(crate) struct Tee {
    log: Option<Arc<Mutex<std::fs::File>>>,
    tail: Arc<Mutex<VecDeque<String>>>,
    done: mpsc::Sender<()>,
}

/// The receiving end: how many streams are forwarded, and the signal each sends at its end.
pub(crate) struct Ends {
    streams: usize,
    done: mpsc::Receiver<()>,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Tee {
    /// Output to `log` (appended, its folder made) if given, else to flowrun's stderr.
    pub(crate) fn new(log: Option<&str>) -> (Tee, Ends) {
        let log = log.and_then(|l| {
            let p = Path::new(l);
            if let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                let _ = std::fs::create_dir_all(parent);
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
                .map(|f| Arc::new(Mutex::new(f)))
        });
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (done, ends) = mpsc::channel();
        let tee = Tee {
            log,
            tail: tail.clone(),
            done,
        };
        let ends = Ends {
            streams: 0,
            done: ends,
            tail,
        };
        (tee, ends)
    }

    fn line(&self, line: &str) {
        match &self.log {
            Some(f) => {
                if let Ok(mut f) = f.lock() {
                    let _ = writeln!(f, "{line}");
                }
            }
            None => eprintln!("{line}"),
        }
        if let Ok(mut t) = self.tail.lock() {
            if t.len() == TAIL_LINES {
                t.pop_front();
            }
            t.push_back(line.to_string());
        }
    }

    /// Passes on what `pipe` says, on a thread of its own, until it closes.
    pub(crate) fn forward(&self, pipe: impl Read + Send + 'static, ends: &mut Ends) {
        ends.streams += 1;
        let tee = self.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(pipe);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => tee.line(String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r'])),
                }
            }
            let _ = tee.done.send(());
        });
    }
}

impl Ends {
    /// Waits until every stream has closed, at most `limit` each (a process left behind may
    /// hold one open), then gives the last lines.
    pub(crate) fn finish(self, limit: Duration) -> VecDeque<String> {
        for _ in 0..self.streams {
            if self.done.recv_timeout(limit).is_err() {
                break;
            }
        }
        self.tail.lock().map(|t| t.clone()).unwrap_or_default()
    }
}
