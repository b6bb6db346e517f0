//! The `job` object a rule closure receives: `job.input`, `job.output`, `job.log` (indexable by
//! position and by name: `job.input[0]`, `job.input.reads`), `job.wildcards`, `job.params`,
//! `job.threads`, `job.resources`, `job.rule`, `job.attempt`.

use std::collections::BTreeMap;
use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, Map, Position};

use crate::rules::pattern::Wildcards;

/// Paths with optional names, in declaration order.
pub type NamedPaths = Vec<(Option<String>, String)>;

/// A job as the executors describe it to the script runtime (no Rhai types); serialisable so
/// worker processes and MPI ranks receive the same description.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JobSpec {
    pub rule: String,
    pub input: NamedPaths,
    pub output: NamedPaths,
    pub log: NamedPaths,
    pub wildcards: Wildcards,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub threads: u32,
    pub resources: BTreeMap<String, u64>,
    /// Which attempt this is: 1, then 2 for the first retry, and so on.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
}

fn first_attempt() -> u32 {
    1
}

/// A list of paths, some of them named. Scripts cannot change one, so copies share the lists:
/// every `map` call gets its own copy of `job`, and a job with 10,000 inputs must not copy
/// 10,000 paths per item.
#[derive(Debug, Clone, Default)]
pub struct Files(Arc<FileList>);

#[derive(Debug, Clone, Default)]
struct FileList {
    paths: Vec<String>,
    names: Vec<Option<String>>,
}

impl Files {
    pub(super) fn new(files: &NamedPaths) -> Self {
        Self(Arc::new(FileList {
            paths: files.iter().map(|(_, p)| p.clone()).collect(),
            names: files.iter().map(|(n, _)| n.clone()).collect(),
        }))
    }

    fn index(&mut self, i: i64) -> Result<String, Box<EvalAltResult>> {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.0.paths.get(i))
            .cloned()
            .ok_or_else(|| {
                Box::new(EvalAltResult::ErrorIndexNotFound(
                    Dynamic::from(i),
                    Position::NONE,
                ))
            })
    }

    fn named(&mut self, name: &str) -> Result<String, Box<EvalAltResult>> {
        self.0
            .names
            .iter()
            .position(|n| n.as_deref() == Some(name))
            .map(|i| self.0.paths[i].clone())
            .ok_or_else(|| {
                let known: Vec<&str> = self.0.names.iter().flatten().map(String::as_str).collect();
                let msg = if known.is_empty() {
                    format!("no file named `{name}`: the files are not named")
                } else {
                    format!("no file named `{name}`; names: {}", known.join(", "))
                };
                Box::new(EvalAltResult::ErrorRuntime(msg.into(), Position::NONE))
            })
    }

    fn paths_array(&mut self) -> rhai::Array {
        self.0.paths.iter().cloned().map(Dynamic::from).collect()
    }

    fn joined(&mut self) -> String {
        self.0.paths.join(" ")
    }
}

impl IntoIterator for Files {
    type Item = String;
    type IntoIter = std::vec::IntoIter<String>;
    fn into_iter(self) -> Self::IntoIter {
        Arc::unwrap_or_clone(self.0).paths.into_iter()
    }
}

/// Registers the `Files` type.
pub fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<Files>("Files")
        .register_indexer_get(Files::index)
        .register_indexer_get(Files::named)
        .register_get("len", |f: &mut Files| f.0.paths.len() as i64)
        .register_fn("len", |f: &mut Files| f.0.paths.len() as i64)
        .register_fn("to_array", Files::paths_array)
        .register_fn("to_string", Files::joined)
        .register_fn("to_debug", Files::joined)
        .register_iterator::<Files>();
}

/// Builds the `job` map.
pub fn job_map(job: &JobSpec) -> Result<Map, Box<EvalAltResult>> {
    let mut map = Map::new();
    map.insert("rule".into(), job.rule.clone().into());
    map.insert("input".into(), Dynamic::from(Files::new(&job.input)));
    map.insert("output".into(), Dynamic::from(Files::new(&job.output)));
    map.insert("log".into(), Dynamic::from(Files::new(&job.log)));
    let wildcards: Map = job
        .wildcards
        .iter()
        .map(|(k, v)| (k.as_str().into(), Dynamic::from(v.clone())))
        .collect();
    map.insert("wildcards".into(), wildcards.into());
    map.insert(
        "params".into(),
        rhai::serde::to_dynamic(serde_json::Value::Object(job.params.clone()))?,
    );
    map.insert("threads".into(), Dynamic::from(i64::from(job.threads)));
    let resources: Map = job
        .resources
        .iter()
        .map(|(k, v)| (k.as_str().into(), Dynamic::from(*v as i64)))
        .collect();
    map.insert("resources".into(), resources.into());
    map.insert("attempt".into(), Dynamic::from(i64::from(job.attempt)));
    Ok(map)
}
