//! I/O requests for the `async` execution model: `http_get`, `read_file_async`, `command` and
//! `sleep_ms`.
//!
//! A constructor only *describes* an operation (an [`IoRequest`], Rhai type `IoRequest`): nothing
//! is fetched, read or run when it is built, so building requests at definition time is
//! harmless. A rule's `map` returns one, and the `async` model ([`crate::exec`]'s
//! `asynchronous` module) performs it on its tokio runtime, then hands the [`Response`] back to
//! the script as a plain value ([`response_value`]).
//!
//! Everything a request holds is plain Rust data, so the executor needs no Rhai types.

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderMap;
use rhai::{Array, Dynamic, Engine, Map, INT};

use super::errors::{runtime, Res};

/// One I/O operation, described (Rhai type `IoRequest`).
#[derive(Clone, Debug, PartialEq)]
pub enum IoRequest {
    /// An HTTP(S) GET.
    HttpGet(HttpGet),
    /// Reading a whole file.
    ReadFile {
        path: String,
        /// Give a blob instead of a string.
        binary: bool,
    },
    /// Running a subprocess to completion, capturing its output.
    Command(CommandSpec),
    /// Waiting.
    Sleep(Duration),
}

/// An HTTP GET request.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpGet {
    /// Parsed once, where `http_get` checks it, and handed to the client as it is.
    pub url: reqwest::Url,
    /// The URL as the script wrote it, kept for messages only when parsing normalised it
    /// (`http://h` → `http://h/`); usually the two are the same text.
    pub written: Option<String>,
    /// Extra request headers, in the order given (sorted by name).
    pub headers: Vec<(String, String)>,
    /// The whole request, body included, must finish within this time.
    pub timeout: Option<Duration>,
    /// Give the body as a blob (`body_blob`) instead of a string (`body`).
    pub binary: bool,
}

/// How a subprocess is started.
#[derive(Clone, Debug, PartialEq)]
pub enum Program {
    /// A program and its arguments, run directly (no shell).
    Argv(Vec<String>),
    /// A command line run by `/bin/sh -c`.
    Shell(String),
}

/// A subprocess request.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandSpec {
    pub program: Program,
    /// The process (and everything it started) is killed after this time.
    pub timeout: Option<Duration>,
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Program::Argv(argv) => write!(f, "`{}`", argv.join(" ")),
            Program::Shell(cmd) => write!(f, "`{cmd}`"),
        }
    }
}

/// How requests are named in messages: `GET http://…`, ``read_file_async `data/x.txt` ``…
impl fmt::Display for IoRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoRequest::HttpGet(g) => {
                write!(f, "GET {}", g.written.as_deref().unwrap_or(g.url.as_str()))
            }
            IoRequest::ReadFile { path, .. } => write!(f, "read_file_async `{path}`"),
            IoRequest::Command(c) => write!(f, "command {}", c.program),
            IoRequest::Sleep(d) => write!(f, "sleep_ms({})", d.as_millis()),
        }
    }
}

/// What a performed request gave, before it is handed to the script.
#[derive(Debug)]
pub enum Response {
    Http {
        /// The URL finally answered (after redirects).
        url: reqwest::Url,
        status: u16,
        /// As the client received them: the script sees only the ones it reads turned into
        /// strings, once, in [`response_value`].
        headers: HeaderMap,
        body: Vec<u8>,
        binary: bool,
    },
    File {
        bytes: Vec<u8>,
        binary: bool,
    },
    Command {
        /// The exit status, or 128 + the signal number that killed it.
        status: i64,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
    Slept,
}

/// Takes the request out of a value `map` returned, or gives the value back if it is none.
pub fn take_request(d: Dynamic) -> Result<IoRequest, Dynamic> {
    if d.is::<IoRequest>() {
        Ok(d.cast::<IoRequest>())
    } else {
        Err(d)
    }
}

fn text(bytes: Vec<u8>, what: &str, hint: &str) -> Result<Dynamic, String> {
    String::from_utf8(bytes)
        .map(Dynamic::from)
        .map_err(|e| format!("{what} is not UTF-8 text ({}){hint}", e.utf8_error()))
}

/// The script's view of a response: HTTP → `#{status, body | body_blob, headers, url}`, file → a
/// string (or a blob), command → `#{status, stdout, stderr}`, sleep → `()`. Fails when text is
/// not UTF-8.
pub fn response_value(response: Response) -> Result<Dynamic, String> {
    let d = match response {
        Response::Http {
            url,
            status,
            headers,
            body,
            binary,
        } => {
            let hmap = header_map(&headers);
            let mut m = Map::new();
            m.insert("status".into(), Dynamic::from(INT::from(status)));
            m.insert("url".into(), Dynamic::from(String::from(url)));
            m.insert("headers".into(), Dynamic::from(hmap));
            if binary {
                m.insert("body_blob".into(), Dynamic::from_blob(body));
            } else {
                let hint = " (ask for `binary: true` to get `body_blob`)";
                m.insert("body".into(), text(body, "the response body", hint)?);
            }
            Dynamic::from(m)
        }
        Response::File { bytes, binary } => {
            if binary {
                Dynamic::from_blob(bytes)
            } else {
                text(bytes, "the file", " (ask for `binary: true` to get a blob)")?
            }
        }
        Response::Command {
            status,
            stdout,
            stderr,
        } => {
            let mut m = Map::new();
            m.insert("status".into(), Dynamic::from(status));
            m.insert("stdout".into(), text(stdout, "the command's stdout", "")?);
            m.insert("stderr".into(), text(stderr, "the command's stderr", "")?);
            Dynamic::from(m)
        }
        Response::Slept => Dynamic::UNIT,
    };
    Ok(d)
}

/// Response headers as a map of names to values; a header sent more than once has its values
/// joined with `, ` in the order received (RFC 9110's combined field value).
fn header_map(headers: &HeaderMap) -> Map {
    let mut map = Map::new();
    for name in headers.keys() {
        let values: Vec<_> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .collect();
        map.insert(name.as_str().into(), Dynamic::from(values.join(", ")));
    }
    map
}

/// Reads an options map, refusing keys other than `allowed`.
struct Options<'a> {
    func: &'a str,
    map: Map,
}

impl<'a> Options<'a> {
    fn new(func: &'a str, map: Map, allowed: &[&str]) -> Res<Self> {
        for k in map.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(runtime(format!(
                    "`{func}` has no option `{k}`; its options are {}",
                    allowed.join(", ")
                )));
            }
        }
        Ok(Self { func, map })
    }

    fn timeout(&self) -> Res<Option<Duration>> {
        let Some(v) = self.map.get("timeout_ms") else {
            return Ok(None);
        };
        match v.as_int() {
            Ok(ms) if ms > 0 => Ok(Some(Duration::from_millis(ms as u64))),
            _ => Err(runtime(format!(
                "`{}`: `timeout_ms` must be a positive integer (milliseconds), not `{v}`",
                self.func
            ))),
        }
    }

    fn flag(&self, key: &str) -> Res<bool> {
        match self.map.get(key) {
            None => Ok(false),
            Some(v) => v.as_bool().map_err(|_| {
                runtime(format!(
                    "`{}`: `{key}` must be true or false, not `{v}`",
                    self.func
                ))
            }),
        }
    }

    fn headers(&self) -> Res<Vec<(String, String)>> {
        let Some(v) = self.map.get("headers") else {
            return Ok(Vec::new());
        };
        let Some(m) = v.read_lock::<Map>() else {
            return Err(runtime(format!(
                "`{}`: `headers` must be a map of names to values, like #{{ \"accept\": \"text/plain\" }}",
                self.func
            )));
        };
        let mut out: Vec<(String, String)> = m
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        out.sort();
        for (k, v) in &out {
            if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                return Err(runtime(format!(
                    "`{}`: `{k}` is not a valid header name",
                    self.func
                )));
            }
            if reqwest::header::HeaderValue::from_str(v).is_err() {
                return Err(runtime(format!(
                    "`{}`: the value of header `{k}` is not a valid header value",
                    self.func
                )));
            }
        }
        Ok(out)
    }
}

fn http_get_with(url: &str, opts: Map) -> Res<IoRequest> {
    let opts = Options::new("http_get", opts, &["headers", "timeout_ms", "binary"])?;
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        Ok(u) => {
            return Err(runtime(format!(
                "`http_get`: `{url}` is a `{}` URL; only http and https are supported",
                u.scheme()
            )))
        }
        Err(e) => return Err(runtime(format!("`http_get`: `{url}` is not a URL: {e}"))),
    };
    Ok(IoRequest::HttpGet(HttpGet {
        written: (parsed.as_str() != url).then(|| url.to_string()),
        url: parsed,
        headers: opts.headers()?,
        timeout: opts.timeout()?,
        binary: opts.flag("binary")?,
    }))
}

fn read_file_with(path: &str, opts: Map) -> Res<IoRequest> {
    let opts = Options::new("read_file_async", opts, &["binary"])?;
    if path.is_empty() {
        return Err(runtime("`read_file_async`: the path is empty"));
    }
    Ok(IoRequest::ReadFile {
        path: path.to_string(),
        binary: opts.flag("binary")?,
    })
}

fn argv_of(arr: Array) -> Res<Vec<String>> {
    if arr.is_empty() {
        return Err(runtime(
            "`command`: the argument array is empty; give the program first, e.g. [\"ls\", \"-l\"]",
        ));
    }
    arr.into_iter()
        .enumerate()
        .map(|(i, v)| {
            if v.is_array() || v.is_map() || v.is_unit() {
                Err(runtime(format!(
                    "`command`: argument {i} is a `{}`; give strings or numbers",
                    v.type_name()
                )))
            } else {
                Ok(v.to_string())
            }
        })
        .collect()
}

fn command_with(program: Program, opts: Map) -> Res<IoRequest> {
    let opts = Options::new("command", opts, &["timeout_ms"])?;
    if let Program::Shell(s) = &program {
        if s.trim().is_empty() {
            return Err(runtime("`command`: the command line is empty"));
        }
    }
    Ok(IoRequest::Command(CommandSpec {
        program,
        timeout: opts.timeout()?,
    }))
}

fn sleep_ms(ms: INT) -> Res<IoRequest> {
    u64::try_from(ms)
        .map(|ms| IoRequest::Sleep(Duration::from_millis(ms)))
        .map_err(|_| {
            runtime(format!(
                "`sleep_ms`: milliseconds must not be negative, got {ms}"
            ))
        })
}

/// Registers the request constructors and the `IoRequest` type.
pub fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<IoRequest>("IoRequest")
        .register_fn("http_get", |url: &str| http_get_with(url, Map::new()))
        .register_fn("http_get", http_get_with)
        .register_fn("read_file_async", |p: &str| read_file_with(p, Map::new()))
        .register_fn("read_file_async", read_file_with)
        .register_fn("command", |argv: Array| {
            command_with(Program::Argv(argv_of(argv)?), Map::new())
        })
        .register_fn("command", |argv: Array, opts: Map| {
            command_with(Program::Argv(argv_of(argv)?), opts)
        })
        .register_fn("command", |cmd: &str| {
            command_with(Program::Shell(cmd.to_string()), Map::new())
        })
        .register_fn("command", |cmd: &str, opts: Map| {
            command_with(Program::Shell(cmd.to_string()), opts)
        })
        .register_fn("sleep_ms", sleep_ms)
        .register_fn("to_string", |r: &mut IoRequest| r.to_string())
        .register_fn("to_debug", |r: &mut IoRequest| format!("IoRequest({r})"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhai::Blob;

    fn engine() -> Engine {
        let mut e = Engine::new();
        register(&mut e);
        e
    }

    #[test]
    fn constructors_describe_requests() {
        let e = engine();
        let r: IoRequest = e
            .eval(r#"http_get("http://127.0.0.1:8000/a?b=1", #{ headers: #{ "x-k": 1 }, timeout_ms: 500 })"#)
            .unwrap();
        assert_eq!(
            r,
            IoRequest::HttpGet(HttpGet {
                url: reqwest::Url::parse("http://127.0.0.1:8000/a?b=1").unwrap(),
                written: None,
                headers: vec![("x-k".into(), "1".into())],
                timeout: Some(Duration::from_millis(500)),
                binary: false,
            })
        );
        // Messages name the URL as written, even where parsing normalises it.
        let r: IoRequest = e.eval(r#"http_get("HTTP://127.0.0.1:8000")"#).unwrap();
        assert_eq!(r.to_string(), "GET HTTP://127.0.0.1:8000");
        let r: IoRequest = e.eval(r#"command(["echo", "hi", 3])"#).unwrap();
        assert_eq!(r.to_string(), "command `echo hi 3`");
        let r: IoRequest = e.eval(r#"command("echo hi | wc -c")"#).unwrap();
        assert!(matches!(
            r,
            IoRequest::Command(CommandSpec {
                program: Program::Shell(_),
                ..
            })
        ));
        let r: IoRequest = e.eval("sleep_ms(25)").unwrap();
        assert_eq!(r, IoRequest::Sleep(Duration::from_millis(25)));
        let r: IoRequest = e
            .eval(r#"read_file_async("x.bin", #{ binary: true })"#)
            .unwrap();
        assert_eq!(r.to_string(), "read_file_async `x.bin`");
        let s: String = e.eval(r#"`${sleep_ms(3)}`"#).unwrap();
        assert_eq!(s, "sleep_ms(3)");
    }

    #[test]
    fn bad_arguments_are_clear_errors() {
        let e = engine();
        let msg = |src: &str| e.eval::<IoRequest>(src).unwrap_err().to_string();
        assert!(msg(r#"http_get("ftp://x/")"#).contains("only http and https"));
        assert!(msg(r#"http_get("not a url")"#).contains("is not a URL"));
        assert!(
            msg(r#"http_get("http://x/", #{ timeout: 5 })"#).contains("has no option `timeout`")
        );
        assert!(msg(r#"http_get("http://x/", #{ timeout_ms: 0 })"#).contains("positive integer"));
        assert!(msg("command([])").contains("empty"));
        assert!(msg("sleep_ms(-1)").contains("must not be negative"));
    }

    #[test]
    fn responses_become_script_values() {
        let mut headers = HeaderMap::new();
        headers.append("a", "1".parse().unwrap());
        headers.append("b", "x".parse().unwrap());
        headers.append("a", "2".parse().unwrap());
        headers.append("a", "3".parse().unwrap());
        let v = response_value(Response::Http {
            url: reqwest::Url::parse("http://x/").unwrap(),
            status: 404,
            headers,
            body: b"nope".to_vec(),
            binary: false,
        })
        .unwrap();
        let m = v.cast::<Map>();
        assert_eq!(m["status"].as_int().unwrap(), 404);
        assert_eq!(m["body"].clone().into_string().unwrap(), "nope");
        let h = m["headers"].clone().cast::<Map>();
        assert_eq!(h["a"].clone().into_string().unwrap(), "1, 2, 3");
        assert_eq!(h["b"].clone().into_string().unwrap(), "x");
        assert_eq!(m["url"].clone().into_string().unwrap(), "http://x/");
        let err = response_value(Response::File {
            bytes: vec![0xff, 0xfe],
            binary: false,
        })
        .unwrap_err();
        assert!(err.contains("not UTF-8"), "{err}");
        let blob = response_value(Response::File {
            bytes: vec![0xff],
            binary: true,
        })
        .unwrap();
        assert_eq!(blob.cast::<Blob>(), vec![0xff]);
    }
}
