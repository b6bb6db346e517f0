//! The `async` model: one OS thread driving a tokio current-thread runtime that keeps up to
//! `concurrency` I/O requests in flight (Python's asyncio, for many slow requests).
//!
//! `map` runs on this thread, one item after the other, as soon as the window has room for the
//! item. When it returns an [`IoRequest`] (built by `http_get`, `read_file_async`, `command` or
//! `sleep_ms`), the request is performed concurrently with the others in the window; any other
//! value is passed through as it is. A finished request frees its place in the window at once,
//! whatever the items before it are doing (`buffer_unordered`): with `buffered`, one slow item
//! would hold the places of all the finished ones behind it and the window would drain to it.
//! Results wait in a [`Reorder`] buffer until the ones before them are in, so the folder (and
//! `reduce`) sees them in item order, exactly as the `thread` model would.
//!
//! The runtime is shut down on a short-lived thread of its own: that closes the connections kept
//! alive (a few milliseconds for a hundred of them), which the job need not wait for before its
//! `finish`.
//!
//! Blocking work that has no async form on Linux (reading a file, resolving a host name) goes
//! to tokio's small blocking pool, as asyncio uses its thread executor. Subprocesses run in
//! their own process group, killed (the whole group) when their request is dropped — on an
//! error elsewhere, a timeout or Ctrl-C — so nothing is left behind.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::process::Stdio;
use std::time::Duration;

use futures_util::future::{self, Either};
use futures_util::stream::{self, StreamExt};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::Failure;
use crate::native::io::{self, CommandSpec, HttpGet, IoRequest, Program, Response};
use crate::rules::decl::MapReduceDecl;
use crate::script::{Folder, Runtime, Value};

/// How often the driver looks at the interrupt flag while requests are in flight.
const POLL: Duration = Duration::from_millis(20);
/// Most threads the blocking pool (file reads, DNS) may use.
const MAX_BLOCKING: usize = 32;
/// Longest wait for a TCP (and TLS) connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Maps `items`, performing the requests `map` returns with up to `concurrency` in flight, and
/// folds the results in item order.
pub fn map(
    runtime: &Runtime,
    mr: &MapReduceDecl,
    job: &Value,
    items: Vec<Value>,
    concurrency: u32,
    folder: &mut Folder<'_>,
) -> Result<(), Failure> {
    if items.is_empty() {
        return Ok(());
    }
    let window = (concurrency as usize).max(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(window.min(MAX_BLOCKING))
        .thread_name("flowrun-async-blocking")
        .build()
        .map_err(|e| Failure::Setup(format!("cannot start the async runtime: {e}")))?;
    // A job's `timeout` also ends the requests it waits on (their commands are killed as the
    // futures drop).
    let result = match crate::interrupt::deadline() {
        None => rt.block_on(drive(runtime, mr, job, items, window, folder)),
        Some(deadline) => rt.block_on(async {
            tokio::time::timeout_at(
                deadline.into(),
                drive(runtime, mr, job, items, window, folder),
            )
            .await
            .unwrap_or_else(|_| Err(Failure::Command("timed out".into())))
        }),
    };
    shut_down_aside(rt);
    result
}

/// Shuts the runtime down on a thread of its own, or here if no thread can be started. Either
/// way nothing waits for blocking-pool work (a slow file read) after an error or an interrupt.
fn shut_down_aside(rt: tokio::runtime::Runtime) {
    struct ShutDown(Option<tokio::runtime::Runtime>);
    impl Drop for ShutDown {
        fn drop(&mut self) {
            if let Some(rt) = self.0.take() {
                rt.shutdown_background();
            }
        }
    }
    let rt = ShutDown(Some(rt));
    // On failure the closure, and with it the runtime, is dropped right here.
    let _ = std::thread::Builder::new()
        .name("flowrun-async-shutdown".into())
        .spawn(move || drop(rt));
}

async fn drive(
    runtime: &Runtime,
    mr: &MapReduceDecl,
    job: &Value,
    items: Vec<Value>,
    window: usize,
    folder: &mut Folder<'_>,
) -> Result<(), Failure> {
    let client = client_builder()
        .build()
        .map_err(|e| Failure::Setup(format!("cannot set up the HTTP client: {e}")))?;
    let client = &client;
    let mut results = stream::iter(items.into_iter().enumerate())
        .map(|(i, item)| {
            // Called when the window has room: `map` runs here, in item order.
            let mapped = runtime.map(mr, job, item);
            async move {
                let value = async {
                    match io::take_request(mapped.map_err(Failure::Script)?.into_dynamic()) {
                        Err(plain) => Ok(Value::from_dynamic(plain)),
                        Ok(request) => perform(client, &request)
                            .await
                            .and_then(io::response_value)
                            .map(Value::from_dynamic)
                            .map_err(|e| Failure::Command(format!("item {i}: {request}: {e}"))),
                    }
                };
                (i, value.await)
            }
        })
        .buffer_unordered(window);
    let mut reorder = Reorder::default();
    let mut watch = InterruptWatch::new();
    while let Some((i, value)) = watch.until_interrupted(results.next()).await? {
        reorder.put(i, value);
        while let Some(value) = reorder.pop() {
            folder.push(value?)?;
        }
    }
    Ok(())
}

/// Puts results that finish in any order back into item order. It holds at most a window's
/// worth: slot `k` is item `next + k`.
struct Reorder<T> {
    /// The index of the next item to hand out.
    next: usize,
    /// Finished items (`Some`) and the places of those still running (`None`).
    slots: VecDeque<Option<T>>,
}

impl<T> Default for Reorder<T> {
    fn default() -> Self {
        Self {
            next: 0,
            slots: VecDeque::new(),
        }
    }
}

impl<T> Reorder<T> {
    /// Takes item `index` (not yet handed out).
    fn put(&mut self, index: usize, item: T) {
        let k = index - self.next;
        if k >= self.slots.len() {
            self.slots.resize_with(k + 1, || None);
        }
        self.slots[k] = Some(item);
    }

    /// The next item in order, if it is in.
    fn pop(&mut self) -> Option<T> {
        let item = self.slots.front_mut()?.take()?;
        self.slots.pop_front();
        self.next += 1;
        Some(item)
    }
}

/// Looks at the Ctrl-C/SIGTERM flag while requests are in flight: after each result, and every
/// [`POLL`] while none comes. One timer serves the whole run; a timeout per awaited result
/// would put a timer into tokio's wheel and take it out again for every item.
struct InterruptWatch(tokio::time::Interval);

impl InterruptWatch {
    fn new() -> Self {
        let start = tokio::time::Instant::now() + POLL;
        let mut tick = tokio::time::interval_at(start, POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self(tick)
    }

    /// Awaits `fut`, giving up (dropping it, which kills its subprocesses) on Ctrl-C/SIGTERM.
    async fn until_interrupted<F: Future>(&mut self, fut: F) -> Result<F::Output, Failure> {
        let mut fut = pin!(fut);
        loop {
            if crate::interrupt::requested() {
                return Err(Failure::Setup("interrupted".into()));
            }
            if let Either::Left((out, _)) = future::select(fut.as_mut(), pin!(self.0.tick())).await
            {
                return Ok(out);
            }
        }
    }
}

/// For the other models: performs a request `map` returned right away, on the calling thread
/// (blocking it), so a workflow gives the same results under every model; any other value is
/// returned as it is. `index` is the item's, for messages.
pub fn resolve_blocking(value: Value, index: usize) -> Result<Value, String> {
    let request = match io::take_request(value.into_dynamic()) {
        Err(plain) => return Ok(Value::from_dynamic(plain)),
        Ok(request) => request,
    };
    // No pooled connections: each call has its own short-lived runtime.
    static CLIENT: std::sync::OnceLock<Result<reqwest::Client, String>> =
        std::sync::OnceLock::new();
    let client = CLIENT
        .get_or_init(|| {
            client_builder()
                .pool_max_idle_per_host(0)
                .build()
                .map_err(|e| format!("cannot set up the HTTP client: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(1)
        .build()
        .map_err(|e| format!("cannot start an async runtime: {e}"))?;
    let out = rt.block_on(async {
        InterruptWatch::new()
            .until_interrupted(perform(client, &request))
            .await
    });
    rt.shutdown_background();
    match out {
        Err(_) => Err("interrupted".into()),
        Ok(r) => r
            .and_then(io::response_value)
            .map(Value::from_dynamic)
            .map_err(|e| format!("item {index}: {request}: {e}")),
    }
}

fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("flowrun/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        // reqwest's default policy retries only HTTP/2 and HTTP/3 refusals, protocols this build
        // does not speak, yet it copies every request (URI, headers) before sending in case it
        // has to. Saying so spares that copy; what is retried stays the same: nothing.
        .retry(reqwest::retry::never().max_retries_per_request(0))
}

/// Performs one request.
async fn perform(client: &reqwest::Client, request: &IoRequest) -> Result<Response, String> {
    match request {
        IoRequest::HttpGet(get) => http_get(client, get).await,
        IoRequest::ReadFile { path, binary } => tokio::fs::read(path)
            .await
            .map(|bytes| Response::File {
                bytes,
                binary: *binary,
            })
            .map_err(|e| format!("cannot read: {e}")),
        IoRequest::Command(spec) => run_command(spec).await,
        IoRequest::Sleep(d) => {
            tokio::time::sleep(*d).await;
            Ok(Response::Slept)
        }
    }
}

async fn http_get(client: &reqwest::Client, get: &HttpGet) -> Result<Response, String> {
    let mut builder = client.get(get.url.clone());
    for (k, v) in &get.headers {
        builder = builder.header(k, v);
    }
    if let Some(t) = get.timeout {
        builder = builder.timeout(t);
    }
    let mut response = builder
        .send()
        .await
        .map_err(|e| http_error(&e, get.timeout))?;
    let status = response.status().as_u16();
    let url = response.url().clone();
    let headers = std::mem::take(response.headers_mut());
    let body = response
        .bytes()
        .await
        .map_err(|e| http_error(&e, get.timeout))?
        // A copy of exactly the body's size: taking the `Bytes` over whole could keep hyper's
        // much larger read buffer alive with every result held.
        .to_vec();
    Ok(Response::Http {
        url,
        status,
        headers,
        body,
        binary: get.binary,
    })
}

/// Says what went wrong in words, followed by the causes (reqwest's own message repeats the URL,
/// which the caller already names).
fn http_error(e: &reqwest::Error, timeout: Option<Duration>) -> String {
    if e.is_timeout() {
        return match timeout {
            Some(t) => format!("timed out after {} ms", t.as_millis()),
            None => "timed out".to_string(),
        };
    }
    let what = if e.is_connect() {
        "cannot connect".to_string()
    } else if e.is_redirect() {
        "redirect failed".to_string()
    } else if e.is_body() || e.is_decode() {
        "failed while reading the response".to_string()
    } else {
        "request failed".to_string()
    };
    let mut causes: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !text.starts_with("client error (") && !causes.contains(&text) {
            causes.push(text);
        }
        source = s.source();
    }
    if causes.is_empty() {
        what
    } else {
        format!("{what}: {}", causes.join(": "))
    }
}

/// Kills a subprocess's whole process group unless it finished normally.
struct Group(Option<i32>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
}

async fn run_command(spec: &CommandSpec) -> Result<Response, String> {
    let mut command = match &spec.program {
        Program::Argv(argv) => {
            let mut c = tokio::process::Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
        Program::Shell(line) => {
            let mut c = tokio::process::Command::new("/bin/sh");
            c.arg("-c").arg(line);
            c
        }
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // In flowrun itself, each command leads its own process group, killed as a whole when its
    // request is dropped. In a worker process (`process`/`hybrid` models), commands stay in the
    // worker's group, which the parent kills with the worker, even when the worker is SIGKILLed.
    let own_group = !super::worker::in_worker();
    if own_group {
        command.process_group(0);
    }
    super::shell::die_with_parent(command.as_std_mut(), nix::sys::signal::Signal::SIGKILL);
    let child = command
        .spawn()
        .map_err(|e| match (&spec.program, e.kind()) {
            (Program::Argv(argv), std::io::ErrorKind::NotFound) => {
                format!("cannot start `{}`: command not found", argv[0])
            }
            _ => format!("cannot start: {e}"),
        })?;
    let mut group = Group(child.id().map(|p| p as i32).filter(|_| own_group));
    let output = match spec.timeout {
        None => child.wait_with_output().await,
        Some(t) => tokio::time::timeout(t, child.wait_with_output())
            .await
            .map_err(|_| {
                format!(
                    "timed out after {} ms (the command was killed)",
                    t.as_millis()
                )
            })?,
    }
    .map_err(|e| format!("waiting for the command: {e}"))?;
    group.0 = None;
    Ok(Response::Command {
        status: exit_code(output.status),
        stdout: output.stdout,
        stderr: output.stderr,
    })
}

/// The exit status, or 128 + the signal that ended the process (the shell's convention).
fn exit_code(status: std::process::ExitStatus) -> i64 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => i64::from(code),
        (None, Some(sig)) => 128 + i64::from(sig),
        _ => -1,
    }
}

#[cfg(test)]
mod tests {
    use super::Reorder;

    #[test]
    fn reorder_hands_out_items_in_index_order() {
        let mut r = Reorder::default();
        let mut put = |i, c| {
            r.put(i, c);
            std::iter::from_fn(|| r.pop()).collect::<String>()
        };
        assert_eq!(put(2, 'c'), "");
        assert_eq!(put(1, 'b'), "");
        assert_eq!(put(0, 'a'), "abc");
        assert_eq!(put(3, 'd'), "d");
        assert_eq!(put(5, 'f'), "");
        assert_eq!(put(4, 'e'), "ef");
        assert!(r.slots.is_empty());
    }
}
