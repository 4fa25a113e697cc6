//! Build: a Dockerfile and a context become an image. The text is parsed
//! into typed instructions ([`dockerfile`]); the stages the target needs are
//! run in order; FROM starts from a local image's layers (shared, never
//! copied), each RUN runs in a container on a writable snapshot of the
//! current layers and each COPY/ADD writes into one, and what changed
//! becomes exactly one new layer. The other instructions change the config
//! and add a history entry marked `empty_layer`.
//!
//! Build cache: every step has a key, the digest of the previous step's
//! key, the instruction as written, the ARG values in scope and the content
//! of its inputs (COPY/ADD sources by bytes, modes and names, never mtimes;
//! another stage by its config digest). The store maps a key to the image
//! config after the step and its top layer; a hit takes both as they are, so
//! an unchanged rebuild gives the same image ID. Cached layers are GC roots
//! until `builder prune` (or `system prune`) forgets the cache.
//!
//! ```text
//! <root>/tmp/build-*/        a step's snapshot: upper/ work/ init/ rootfs/ (swept if killed)
//! <root>/build-mounts/<id>/  RUN --mount=type=cache directories, kept between builds
//! ```

mod cache;
mod context;
mod copy;
pub mod explain;
pub mod git;
pub mod ignore;
mod output;
mod run;
mod secrets;
mod snapshot;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value};

use self::context::SourceRoot;
pub use self::ignore::Ignore;
use self::snapshot::View;
use crate::container::spec;
use crate::core::Core;
use crate::digest::{chain_ids, Digest, Hasher};
use crate::dockerfile::metadata::command_args;
use crate::dockerfile::words::{self, Vars};
use crate::dockerfile::{self, Dockerfile, Instruction, Located, Source};
use crate::error::{Error, IoContext, Result};
use crate::image::{self, Reference};
use crate::images::Images;
use crate::store::{now, LayerRecord};
use crate::tmp::TempDir;
use crate::unpack::layer_dir;
pub use cache::CacheSpec;
pub use output::Output;

/// Where the build context comes from.
pub enum ContextSource {
    /// A directory.
    Dir(PathBuf),
    /// A tar archive (plain or compressed) or a lone Dockerfile, read from a stream (`-`).
    Stream(Box<dyn Read>),
    /// A git repository (`URL#REF:SUBDIR`), or an http(s) URL of a tar or a Dockerfile.
    Remote(String),
}

/// `build` flags.
pub struct BuildOptions {
    /// The context.
    pub context: ContextSource,
    /// Say why each step that did not come from the cache was rebuilt.
    pub explain: bool,
    /// `-f`: the Dockerfile (a path, relative to the working directory), default `Dockerfile` then `Containerfile` in the context.
    pub file: Option<PathBuf>,
    /// `-t`, any number.
    pub tags: Vec<String>,
    /// `--build-arg K=V` (or `K`, taking this process's value).
    pub build_args: Vec<String>,
    /// `--target`.
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `-q`: print nothing but the image ID.
    pub quiet: bool,
    /// `--platform` (only the host's can be built: RUN executes natively).
    pub platform: Option<String>,
    /// `--label K=V`.
    pub labels: Vec<String>,
    /// `--pull`: pull base images even when they are in the store.
    pub pull: bool,
    /// Where pulls of base images report progress.
    pub progress: std::sync::Arc<dyn crate::registry::Progress>,
    /// Pass signals sent to this process on to a RUN step's command while it
    /// runs (the CLI's Ctrl-C stops the step, and the build fails cleanly).
    /// Process-wide: a front end serving several builds at once leaves it off.
    pub sig_proxy: bool,
    /// `--network`: RUN steps' network, `default` (the default bridge), `host` or `none`.
    pub network: Option<String>,
    /// `--secret id=ID[,src=FILE|env=VAR]`: secrets RUN steps may mount.
    pub secrets: Vec<String>,
    /// `--ssh ID[=SOCKET|KEY,...]`: ssh agents RUN steps may mount.
    pub ssh: Vec<String>,
    /// `--output`/`-o`: write the final stage's filesystem there instead of storing an image.
    pub output: Option<String>,
    /// `--add-host NAME:IP`: entries of RUN steps' /etc/hosts.
    pub add_hosts: Vec<String>,
    /// `--ulimit NAME=SOFT[:HARD]`: RUN steps' resource limits.
    pub ulimits: Vec<String>,
    /// `--build-context NAME=DIR|docker-image://REF|GIT-URL`.
    pub build_contexts: Vec<String>,
    /// `--cache-to type=registry,ref=REF[,mode=min|max]`: export the build cache there.
    pub cache_to: Vec<String>,
    /// `--cache-from type=registry,ref=REF` (or REF): import a build cache from there.
    pub cache_from: Vec<String>,
}

/// ARGs every build knows without declaring them (proxies), as Docker's.
const PREDEFINED_ARGS: [&str; 8] =
    ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy"];

/// A stage's image as far as it has been built.
#[derive(Clone)]
struct State {
    /// The whole image config (architecture, os, config, rootfs, history).
    config: Value,
    /// Layers, bottom first.
    layers: Vec<LayerRecord>,
    /// The cache key of the last step.
    key: Digest,
    /// The image the stage started from (through stages) and its layer
    /// count: the layers above it are the build's own (`image layers`).
    base: Option<(String, usize)>,
}

impl State {
    fn cfg(&self, field: &str) -> &Value {
        &self.config["config"][field]
    }

    fn env(&self) -> Vec<String> {
        dockerfile::metadata::env(&self.config)
    }

    fn workdir(&self) -> String {
        dockerfile::metadata::workdir(&self.config)
    }

    fn shell(&self) -> Vec<String> {
        dockerfile::metadata::shell(&self.config)
    }

    fn set(&mut self, field: &str, v: Value) {
        if !self.config["config"].is_object() {
            self.config["config"] = json!({});
        }
        self.config["config"][field] = v;
    }

    fn lowers(&self, layers_dir: &Path) -> Vec<PathBuf> {
        self.layers.iter().rev().map(|l| layer_dir(layers_dir, &l.chain_id)).collect()
    }
}

/// A stage's input when named by `--from`: built here, an image, or a
/// directory named by `--build-context`.
enum FromRef {
    Stage(usize),
    Image(Digest),
    Dir(SourceRoot),
}

/// What `--build-context NAME=VALUE` names.
enum NamedContext {
    /// `docker-image://REF`: an image, in the store or pulled.
    Image(String),
    /// A directory (or a git repository, fetched): files for COPY --from and RUN --mount from=.
    Dir(SourceRoot),
}

struct Builder<'a> {
    core: &'a Core,
    df: Dockerfile,
    opts: &'a BuildOptions,
    context: SourceRoot,
    out: &'a mut dyn Write,
    build_args: HashMap<String, String>,
    used_args: HashSet<String>,
    global: Vars,
    built: HashMap<usize, State>,
    step: usize,
    total: usize,
    epoch: Option<i64>,
    /// `ADD URL` sources, downloaded once per build (to key the cache by their content).
    downloads: HashMap<String, PathBuf>,
    download_dir: Option<TempDir>,
    /// What names this Dockerfile in the step records (`explain`): its path.
    project: String,
    /// The index of the step being built within its stage.
    step_in_stage: usize,
    /// The number of the step before when it was rebuilt (not cached).
    rebuilt_before: Option<usize>,
    /// Each step so far, cached or why not.
    explained: Vec<explain::Explained>,
    /// What the build was lent for its RUN steps (`--secret`, `--ssh`).
    secrets: secrets::Secrets,
    agents: secrets::Agents,
    /// RUN steps' limits (`--ulimit`).
    run_resources: crate::container::resources::Resources,
    /// `--build-context`s, by name.
    named: HashMap<String, NamedContext>,
    /// `--cache-from`: steps other machines built, and their layers.
    imported: cache::Imported,
    /// Every step's key and result, for `--cache-to`.
    exported: cache::Exported,
    /// The stage built (`--target`, or the last).
    target: usize,
    /// Stages built on an earlier stage (FROM its name): stage → that stage.
    from_stage: HashMap<usize, usize>,
    /// Where the stage being built is in a `--cache-from` image's history.
    inline: Option<cache::Cursor>,
}

fn err_at(df: &Dockerfile, line: usize, msg: impl std::fmt::Display) -> Error {
    Error::Dockerfile { file: df.file.clone(), line, message: msg.to_string() }
}

fn digest_of(parts: &[&[u8]]) -> Digest {
    let mut h = Hasher::default();
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finish()
}

/// A stage's ARGs in scope, and which of them were declared after an ENV of
/// the same name. As BuildKit: ARG and ENV set one environment in order, so
/// such an ARG shadows the ENV (in RUN and in expansions) until the next ENV
/// of that name; the image's config keeps the ENV's value either way.
#[derive(Default)]
struct StageArgs {
    values: Vars,
    over_env: HashSet<String>,
    /// Every ARG declared in the stage, in order (BuildKit's RUN history lists them).
    order: Vec<String>,
}

impl StageArgs {
    /// Declare (or, with no value, undeclare) an ARG.
    fn declare(&mut self, name: &str, value: Option<String>) {
        self.order.push(name.to_string());
        match value {
            Some(v) => {
                self.values.insert(name.to_string(), v);
                self.over_env.insert(name.to_string());
            }
            None => {
                self.values.remove(name);
                self.over_env.remove(name);
            }
        }
    }

    /// An ENV set `name`: from here on the ENV's value is seen.
    fn env_set(&mut self, name: &str) {
        self.over_env.remove(name);
    }

    /// What expansions see: the ENVs over the ARGs, but for ARGs declared since.
    fn vars(&self, env: &[String]) -> Vars {
        let mut v = self.values.clone();
        for e in env {
            if let Some((k, val)) = e.split_once('=') {
                if !self.over_env.contains(k) {
                    v.insert(k.to_string(), val.to_string());
                }
            }
        }
        v
    }

    /// A RUN's environment: the image's, then the ARGs it lacks or that shadow its ENVs.
    fn run_env(&self, mut env: Vec<String>) -> Vec<String> {
        let mut sorted: Vec<(&String, &String)> = self.values.iter().collect();
        sorted.sort();
        for (k, v) in sorted {
            match env.iter().position(|e| e.split('=').next() == Some(k.as_str())) {
                Some(i) if self.over_env.contains(k) => env[i] = format!("{k}={v}"),
                Some(_) => {}
                None => env.push(format!("{k}={v}")),
            }
        }
        env
    }
}

/// Set a variable where it is (as Docker does), or append it.
impl<'a> Builder<'a> {
    fn now(&self) -> i64 {
        self.epoch.unwrap_or_else(now)
    }

    fn say(&mut self, line: &str) -> Result<()> {
        if !self.opts.quiet {
            writeln!(self.out, "{line}")
                .and_then(|_| self.out.flush())
                .map_err(|e| Error::stream("writing output", e))?;
        }
        Ok(())
    }

    fn err(&self, line: usize, msg: impl std::fmt::Display) -> Error {
        err_at(&self.df, line, msg)
    }

    /// A step's failure, whatever failed (a mount, the runtime, a layer
    /// commit), named by the step's `file:line`; errors that name it already pass.
    fn placed(&self, line: usize, e: Error) -> Error {
        match e {
            Error::Dockerfile { .. } | Error::StepFailed { .. } => e,
            // Keep the OS error (a full disk is told apart by it).
            Error::Io { path, source } => Error::Stream { context: self.err(line, path.display()).to_string(), source },
            Error::Stream { context, source } => Error::Stream { context: self.err(line, context).to_string(), source },
            other => self.err(line, other),
        }
    }

    /// Which stage a `--from`/`FROM` name means, if it is a stage before `before`.
    fn stage_named(&self, name: &str, before: usize) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.df.stages[..before]
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .map(|s| s.index)
            .or_else(|| name.parse::<usize>().ok().filter(|i| *i < before))
    }

    /// Stages stage `i` needs built first.
    fn deps(&self, i: usize) -> Result<Vec<usize>> {
        let s = &self.df.stages[i];
        let mut out = Vec::new();
        let from =
            words::expand(&s.from.value.image, &self.global, self.df.escape).map_err(|e| self.err(s.from.line, e))?;
        if let Some(d) = self.stage_named(&from, i) {
            out.push(d);
        }
        for st in &s.steps {
            let names: Vec<&str> = match &st.value {
                Instruction::Copy(c) => c.from.iter().map(String::as_str).collect(),
                Instruction::Run(r) => r.mounts.iter().filter_map(|m| m.from.as_deref()).collect(),
                _ => Vec::new(),
            };
            for n in names {
                if let Some(d) = self.stage_named(n, i) {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    fn plan(&self, target: usize) -> Result<Vec<usize>> {
        let mut order = Vec::new();
        let mut seen = HashSet::new();
        let mut todo = vec![(target, false)];
        while let Some((i, expanded)) = todo.pop() {
            if expanded {
                if seen.insert(i) {
                    order.push(i);
                }
                continue;
            }
            if seen.contains(&i) {
                continue;
            }
            todo.push((i, true));
            for d in self.deps(i)? {
                todo.push((d, false));
            }
        }
        Ok(order)
    }

    fn run(&mut self) -> Result<State> {
        let target = match &self.opts.target {
            Some(t) => self
                .df
                .stages
                .iter()
                .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
                .ok_or_else(|| {
                Error::invalid(format!("target stage {t:?} could not be found in {}", self.df.file))
            })?,
            None => self.df.stages.len() - 1,
        };
        self.target = target;
        let order = self.plan(target)?;
        self.total = order.iter().map(|i| 1 + self.df.stages[*i].steps.len()).sum();
        for i in order {
            let st = self.build_stage(i)?;
            self.built.insert(i, st);
        }
        Ok(self.built.remove(&target).expect("target built"))
    }

    fn base_state(&mut self, stage: usize) -> Result<(State, Vec<String>)> {
        let s = &self.df.stages[stage];
        let line = s.from.line;
        let name = words::expand(&s.from.value.image, &self.global, self.df.escape).map_err(|e| self.err(line, e))?;
        if let Some(p) = &s.from.value.platform {
            let p = words::expand(p, &self.global, self.df.escape).map_err(|e| self.err(line, e))?;
            let want = image::Platform::parse(&p).map_err(|e| self.err(line, e))?;
            let host = image::Platform::host();
            if want.os != host.os || want.architecture != host.architecture {
                return Err(
                    self.err(line, format!("--platform={p}: only the host platform can be built (RUN runs natively)"))
                );
            }
        }
        if let Some(prev) = self.stage_named(&name, stage) {
            self.from_stage.insert(stage, prev);
            let mut st = self.built.get(&prev).cloned().expect("dependencies are built first");
            let key = digest_of(&[b"from-stage", st.key.as_str().as_bytes()]);
            self.record_from(stage, &key, ("stage", st.key.to_string()))?;
            // As BuildKit: a stage's ONBUILD triggers run in a stage built on it, as an image's do.
            let onbuild: Vec<String> = serde_json::from_value(st.cfg("OnBuild").clone()).unwrap_or_default();
            if !onbuild.is_empty() {
                st.set("OnBuild", Value::Null);
            }
            return Ok((State { key, ..st }, onbuild));
        }
        let name = match self.named.get(&name) {
            Some(NamedContext::Image(r)) => r.clone(),
            Some(NamedContext::Dir(_)) => {
                return Err(
                    self.err(line, format!("FROM {name}: a directory build context can be copied from, not built on"))
                )
            }
            None => name,
        };
        if name == "scratch" {
            let host = image::Platform::host();
            let config = json!({"architecture": host.architecture, "os": host.os,
                "config": {"Env": [spec::DEFAULT_PATH]}, "rootfs": {"type": "layers", "diff_ids": []}, "history": []});
            let base = Some(("scratch".to_string(), 0));
            let key = digest_of(&[b"scratch"]);
            self.record_from(stage, &key, ("image", "scratch".into()))?;
            return Ok((State { config, layers: Vec::new(), key, base }, Vec::new()));
        }
        let local = if self.opts.pull { None } else { self.core.resolve_image(&name).ok() };
        let id = match local {
            Some(id) => id,
            None => {
                let platform = s.from.value.platform.clone().or_else(|| self.opts.platform.clone());
                let opts = crate::registry::PullOptions { platform, registry: Default::default() };
                crate::registry::Registries::new(self.core)
                    .pull_inner(&name, &opts, self.opts.progress.clone())
                    .map_err(|e| self.err(line, format!("FROM {name}: not in the store, and pulling it failed: {e}")))?
            }
        };
        let (mut config, _) = self.core.config_of(&id)?;
        let layers = self.core.usable_layers(&id).map_err(|e| self.err(line, e))?;
        let onbuild: Vec<String> = serde_json::from_value(config["config"]["OnBuild"].clone()).unwrap_or_default();
        if !config["config"].is_object() {
            config["config"] = json!({});
        }
        config["config"]["OnBuild"] = Value::Null;
        // As BuildKit and buildah: an image without a PATH gets the default one.
        let mut env: Vec<String> = serde_json::from_value(config["config"]["Env"].clone()).unwrap_or_default();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, spec::DEFAULT_PATH.to_string());
            config["config"]["Env"] = json!(env);
        }
        let base = Some((name.clone(), layers.len()));
        let key = digest_of(&[b"from", id.as_str().as_bytes()]);
        self.record_from(stage, &key, ("image", id.to_string()))?;
        Ok((State { config, layers, key, base }, onbuild))
    }

    /// The place of a step in the records: this Dockerfile, the stage, the step.
    fn slot(&self, stage: usize, step: &str) -> String {
        format!("{}:{stage}:{step}", self.project)
    }

    /// Record what a stage's FROM resolved to (what its first step builds on).
    fn record_from(&self, stage: usize, key: &Digest, base: (&str, String)) -> Result<()> {
        let rec = explain::StepInputs {
            slot: self.slot(stage, "from"),
            parent: String::new(),
            text: self.df.stages[stage].from.text.clone(),
            args: BTreeMap::new(),
            inputs: vec![(base.0.to_string(), base.1)],
        };
        explain::record(&self.core.store, key, &rec)
    }

    fn build_stage(&mut self, i: usize) -> Result<State> {
        let started = Instant::now();
        self.step += 1;
        let from_text = self.df.stages[i].from.text.clone();
        let (mut state, triggers) = self.base_state(i)?;
        self.total += triggers.len();
        self.say(&format!("STEP {}/{}: {from_text}", self.step, self.total))?;
        self.say(&format!("--> {}", done(started)))?;
        let mut args = StageArgs::default();
        let mut cmd_set = false;
        let from_line = self.df.stages[i].from.line;
        self.inline = if triggers.is_empty() { self.imported.start(&state.config) } else { None };
        let mut steps: Vec<Located<Instruction>> = Vec::new();
        for t in &triggers {
            let parsed = dockerfile::parse(
                &format!("{} (ONBUILD of the base image)", self.df.file),
                &format!("FROM scratch\n{t}\n"),
            )
            .map_err(|e| self.err(from_line, e))?;
            for mut st in parsed.stages.into_iter().flat_map(|s| s.steps) {
                st.line = from_line;
                steps.push(st);
            }
        }
        steps.extend(self.df.stages[i].steps.clone());
        self.rebuilt_before = None;
        for (k, st) in steps.iter().enumerate() {
            self.step_in_stage = k;
            self.step += 1;
            self.say(&format!("STEP {}/{}: {}", self.step, self.total, st.text))?;
            let t0 = Instant::now();
            let (next, cached) = self.step_once(i, &state, &mut args, &mut cmd_set, st)?;
            state = next;
            self.say(&format!("--> {}", if cached { "CACHED".to_string() } else { done(t0) }))?;
        }
        Ok(state)
    }

    /// Args in scope, sorted, as they enter the cache key.
    fn args_text(args: &Vars) -> String {
        let sorted: BTreeMap<_, _> = args.iter().collect();
        sorted.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
    }

    fn step_once(
        &mut self,
        stage: usize,
        state: &State,
        args: &mut StageArgs,
        cmd_set: &mut bool,
        st: &Located<Instruction>,
    ) -> Result<(State, bool)> {
        let line = st.line;
        let esc = self.df.escape;
        if let Instruction::Arg(decls) = &st.value {
            for d in decls {
                let vars = args.vars(&state.env());
                let value = if let Some(v) = self.build_args.get(&d.name) {
                    self.used_args.insert(d.name.clone());
                    Some(v.clone())
                } else if let Some(v) = self.global.get(&d.name).filter(|_| d.default.is_none()) {
                    Some(v.clone())
                } else {
                    d.default
                        .as_ref()
                        .map(|x| words::expand(x, &vars, esc))
                        .transpose()
                        .map_err(|e| self.err(line, e))?
                };
                args.declare(&d.name, value);
            }
        }
        if let Instruction::Env(text) = &st.value {
            // Before the cache is asked: a cached ENV ends an ARG's shadowing too.
            let vars = args.vars(&state.env());
            for (k, _) in words::pairs(text, &vars, esc, true).map_err(|e| self.err(line, e))? {
                args.env_set(&k);
            }
        }
        let vars = args.vars(&state.env());
        let inline = self.inline_step(state, st, args, &vars);
        let (inputs, input_log) = self.inputs_of(stage, st, &vars)?;
        let key = digest_of(&[
            state.key.as_str().as_bytes(),
            st.text.as_bytes(),
            Self::args_text(&args.values).as_bytes(),
            inputs.as_str().as_bytes(),
        ]);
        let record = explain::StepInputs {
            slot: self.slot(stage, &self.step_in_stage.to_string()),
            parent: state.key.to_string(),
            text: st.text.clone(),
            args: args.values.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            inputs: input_log,
        };
        if !self.opts.no_cache {
            // Here, in an imported cache, or (a RUN's layer) in an imported image.
            let mut hit = self.cached(&key)?.map_or_else(|| self.remote_hit(&key), |h| Ok(Some(h)))?;
            if let (None, Some(diff_id)) = (&hit, &inline) {
                hit = Some(self.inline_hit(state, st, &vars, &key, diff_id)?);
            }
            if let Some(mut hit) = hit {
                hit.base = state.base.clone();
                self.exported.add(stage, &key, &hit.config);
                if matches!(st.value, Instruction::Cmd(_)) {
                    *cmd_set = true;
                }
                self.explained.push(explain::Explained {
                    step: self.step,
                    text: st.text.clone(),
                    cached: true,
                    reasons: Vec::new(),
                });
                self.rebuilt_before = None;
                return Ok((hit, true));
            }
        }
        let reasons = explain::reasons(&self.core.store, &key, &record, self.rebuilt_before, self.opts.no_cache)?;
        if self.opts.explain {
            for r in &reasons {
                self.say(&format!("--> not cached: {r}"))?;
            }
        }
        self.explained.push(explain::Explained { step: self.step, text: st.text.clone(), cached: false, reasons });
        self.rebuilt_before = Some(self.step);
        // A step built here builds on layers that are here (fetched now if a cache hit left them remote).
        let mut state = state.clone();
        self.ready(&mut state)?;
        let state = &state;
        let mut next = state.clone();
        next.key = key.clone();
        let created = image::format_time(self.now());
        let mut layer = None;
        let mut linked_reuse = false;
        let mut created_by = st.text.clone();
        match &st.value {
            Instruction::Run(r) => {
                let (l, by) = self.run_step(stage, state, r, args, &vars, st).map_err(|e| self.placed(line, e))?;
                created_by = by;
                layer = Some(l);
            }
            Instruction::Copy(c) | Instruction::Add(c) => {
                let add = matches!(st.value, Instruction::Add(_));
                // --link with a --chown by name needs the stage's /etc/passwd: then it is an ordinary copy.
                let by_name = c.chown.as_deref().is_some_and(|u| u.split(':').any(|p| p.parse::<u32>().is_err()));
                let l = if c.link && !by_name {
                    let link_key = digest_of(&[
                        b"link",
                        st.text.as_bytes(),
                        Self::args_text(&args.values).as_bytes(),
                        inputs.as_str().as_bytes(),
                        state.workdir().as_bytes(),
                    ]);
                    let (l, reused) = self
                        .linked_copy_step(stage, state, c, &vars, st, add, &link_key)
                        .map_err(|e| self.placed(line, e))?;
                    linked_reuse = reused;
                    l
                } else {
                    self.copy_step(stage, state, c, &vars, st, add, false).map_err(|e| self.placed(line, e))?
                };
                layer = Some(l);
            }
            Instruction::Arg(_) => {}
            meta => {
                if matches!(meta, Instruction::Cmd(_)) {
                    *cmd_set = true;
                }
                let cmd_set_before = *cmd_set;
                dockerfile::metadata::apply(&mut next.config, meta, &vars, esc, cmd_set_before)
                    .map_err(|e| self.err(line, e))?;
                if matches!(meta, Instruction::Workdir(_)) {
                    layer = self.workdir_step(state, &next, line).map_err(|e| self.placed(line, e))?;
                }
            }
        }
        let mut entry = json!({"created": created, "created_by": created_by, "comment": "strata build"});
        match layer {
            Some(l) => {
                next.layers.push(l);
                next.config["rootfs"] = json!({"type": "layers",
                    "diff_ids": next.layers.iter().map(|l| l.diff_id.as_str()).collect::<Vec<_>>()});
            }
            None => entry["empty_layer"] = true.into(),
        }
        next.config["created"] = created.into();
        match next.config["history"].as_array_mut() {
            Some(h) => h.push(entry),
            None => next.config["history"] = json!([entry]),
        }
        let text = serde_json::to_string(&next.config).expect("config serializes");
        self.core.store.put_cached_step(&key, &text, next.layers.last().map(|l| &l.chain_id))?;
        explain::record(&self.core.store, &key, &record)?;
        self.exported.add(stage, &key, &next.config);
        Ok((next, linked_reuse))
    }

    /// A step another machine built (`--cache-from`): its config, and those
    /// of its layers that are here already; the rest wait for [`ready`](Self::ready).
    fn remote_hit(&self, key: &Digest) -> Result<Option<State>> {
        let Some(config) = self.imported.hit(self.core, key)? else { return Ok(None) };
        let mut layers = Vec::new();
        for c in chain_ids(&cache::diff_ids(&config)) {
            match self.core.store.layer(&c)? {
                Some(l) => layers.push(l),
                None => break,
            }
        }
        Ok(Some(State { config, layers, key: key.clone(), base: None }))
    }

    /// Match a step against the `--cache-from` image's history (see
    /// [`cache`]): the image's layer for it when it is a RUN (or a WORKDIR)
    /// that image made; `None` otherwise, and matching ends at a mismatch.
    fn inline_step(
        &mut self,
        state: &State,
        st: &Located<Instruction>,
        args: &StageArgs,
        vars: &Vars,
    ) -> Option<Digest> {
        let mut cursor = self.inline.take()?;
        let exact = |text: String, layer| cache::Expect { text, exact: true, layer };
        let word = |w: &str| cache::Expect { text: w.to_string(), exact: false, layer: Some(false) };
        let esc = self.df.escape;
        let want: Vec<cache::Expect> = match &st.value {
            Instruction::Run(r) if r.mounts.is_empty() && r.heredocs.is_empty() && r.network.is_none() => {
                let mut parts: Vec<String> = Vec::new();
                if !args.order.is_empty() {
                    parts.push(format!("|{}", args.order.len()));
                    for k in &args.order {
                        parts.push(format!("{k}={}", vars.get(k).map_or("", |v| v.as_str())));
                    }
                }
                parts.extend(command_args(&r.command, &state.shell()));
                vec![exact(format!("RUN {} # buildkit", parts.join(" ")), Some(true))]
            }
            Instruction::Env(text) => {
                let pairs = words::pairs(text, vars, esc, true).ok()?;
                let text = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
                vec![exact(format!("ENV {text}"), Some(false))]
            }
            Instruction::Arg(decls) => decls
                .iter()
                .map(|d| {
                    let text = match &d.default {
                        Some(v) => format!("ARG {}={v}", d.name),
                        None => format!("ARG {}", d.name),
                    };
                    exact(text, Some(false))
                })
                .collect(),
            Instruction::User(u) => vec![exact(format!("USER {}", words::expand(u, vars, esc).ok()?), Some(false))],
            Instruction::Workdir(_) => {
                let mut next = state.config.clone();
                dockerfile::metadata::apply(&mut next, &st.value, vars, esc, false).ok()?;
                vec![exact(format!("WORKDIR {}", dockerfile::metadata::workdir(&next)), None)]
            }
            Instruction::Label(_) => vec![word("LABEL")],
            Instruction::Expose(_) => vec![word("EXPOSE")],
            Instruction::Cmd(_) => vec![word("CMD")],
            Instruction::Entrypoint(_) => vec![word("ENTRYPOINT")],
            Instruction::Volume(_) => vec![word("VOLUME")],
            Instruction::Stopsignal(_) => vec![word("STOPSIGNAL")],
            Instruction::Healthcheck(_) => vec![word("HEALTHCHECK")],
            _ => return None,
        };
        let layer = self.imported.advance(&mut cursor, &want)?;
        self.inline = Some(cursor);
        layer
    }

    /// A step whose layer a `--cache-from` image has: the config as the
    /// step makes it, with that layer (fetched when something needs it).
    fn inline_hit(
        &mut self,
        state: &State,
        st: &Located<Instruction>,
        vars: &Vars,
        key: &Digest,
        diff_id: &Digest,
    ) -> Result<State> {
        let mut next = state.clone();
        next.key = key.clone();
        let created_by = match &st.value {
            Instruction::Run(r) => format!("RUN {}", command_args(&r.command, &state.shell()).join(" ")),
            meta => {
                dockerfile::metadata::apply(&mut next.config, meta, vars, self.df.escape, false)
                    .map_err(|e| self.err(st.line, e))?;
                st.text.clone()
            }
        };
        let mut ids: Vec<Value> = cache::diff_ids(&next.config).iter().map(|d| json!(d.as_str())).collect();
        ids.push(json!(diff_id.as_str()));
        next.config["rootfs"] = json!({"type": "layers", "diff_ids": ids});
        let created = image::format_time(self.now());
        next.config["created"] = created.clone().into();
        let entry = json!({"created": created, "created_by": created_by, "comment": "strata build"});
        match next.config["history"].as_array_mut() {
            Some(h) => h.push(entry),
            None => next.config["history"] = json!([entry]),
        }
        Ok(next)
    }

    /// `--cache-to`: push the steps of the stages the result is built from
    /// (every stage's for `mode=max`) to each spec's reference.
    fn export_cache(&mut self, specs: &[CacheSpec]) -> Result<()> {
        let mut stages = HashSet::from([self.target]);
        let mut s = self.target;
        while let Some(p) = self.from_stage.get(&s) {
            s = *p;
            stages.insert(s);
        }
        for spec in specs {
            match self.exported.push(self.core, spec, &stages, &self.imported) {
                Ok(d) => self.say(&format!("exported the build cache to {} ({d})", spec.reference))?,
                Err(e) if spec.ignore_error => self.say(&format!("[Warning] --cache-to {}: {e}", spec.reference))?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Make every layer of `state` present: those a `--cache-from` hit left
    /// in the registry are fetched now.
    fn ready(&mut self, state: &mut State) -> Result<()> {
        if state.layers.len() == cache::diff_ids(&state.config).len() {
            return Ok(());
        }
        let (layers, fetched) = self.imported.layers_of(self.core, &state.config)?;
        state.layers = layers;
        if fetched > 0 {
            self.say(&format!("--> fetched {fetched} layer(s) from the build cache"))?;
        }
        Ok(())
    }

    /// A cached step's result, if its layers are all still here.
    fn cached(&self, key: &Digest) -> Result<Option<State>> {
        let Some((text, _)) = self.core.store.cached_step(key)? else { return Ok(None) };
        let Ok(config) = serde_json::from_str::<Value>(&text) else { return Ok(None) };
        let diff_ids: Vec<Digest> = match config["rootfs"]["diff_ids"].as_array() {
            Some(a) => a.iter().filter_map(|d| d.as_str().and_then(|d| Digest::parse(d).ok())).collect(),
            None => return Ok(None),
        };
        let mut layers = Vec::new();
        for c in chain_ids(&diff_ids) {
            match self.core.store.layer(&c)? {
                Some(l) => layers.push(l),
                None => return Ok(None),
            }
        }
        Ok(Some(State { config, layers, key: key.clone(), base: None }))
    }

    /// The content identity of a step's inputs (COPY/ADD sources, bind mounts).
    fn inputs_of(
        &mut self,
        stage: usize,
        st: &Located<Instruction>,
        vars: &Vars,
    ) -> Result<(Digest, Vec<(String, String)>)> {
        let mut h = Hasher::default();
        // What went into the digest, named, for `build --explain`.
        let mut log: Vec<(String, String)> = Vec::new();
        let esc = self.df.escape;
        match &st.value {
            Instruction::Copy(c) | Instruction::Add(c) => {
                let from = c
                    .from
                    .as_ref()
                    .map(|f| words::expand(f, vars, esc).map_err(|e| self.err(st.line, e)))
                    .transpose()?;
                for s in &c.sources {
                    match s {
                        Source::Heredoc(hd) => {
                            let body = if hd.expand {
                                words::expand_heredoc(&hd.body, vars).map_err(|e| self.err(st.line, e))?
                            } else {
                                hd.body.clone()
                            };
                            h.update(format!("heredoc {}\n", body.len()).as_bytes());
                            h.update(body.as_bytes());
                            log.push(("heredoc".to_string(), Digest::of(body.as_bytes()).to_string()));
                        }
                        Source::Path(p) => {
                            let p = words::expand(p, vars, esc).map_err(|e| self.err(st.line, e))?;
                            if git::GitSource::is_git(&p) && matches!(st.value, Instruction::Add(_)) {
                                // The commit the ref names now: a moved branch is a changed source.
                                let g = git::GitSource::parse(&p).map_err(|e| self.err(st.line, e))?;
                                let commit = g.commit().map_err(|e| self.err(st.line, format!("ADD {e}")))?;
                                h.update(format!("git {p} {commit} {}\n", c.keep_git_dir).as_bytes());
                                log.push((p.clone(), commit));
                                continue;
                            }
                            if is_url(&p) {
                                if !matches!(st.value, Instruction::Add(_)) {
                                    return Err(
                                        self.err(st.line, format!("COPY {p}: COPY does not take URLs (ADD does)"))
                                    );
                                }
                                if let Some(sum) = &c.checksum {
                                    // The checksum names the content: no download needed to key the cache.
                                    h.update(format!("url {p} {sum}\n").as_bytes());
                                    log.push((p.clone(), sum.clone()));
                                    continue;
                                }
                                let file = self.download(&p, st.line)?;
                                h.update(format!("url {p}\n").as_bytes());
                                let (d, _) = crate::digest::HashingReader::new(File::open(&file).at(&file)?)
                                    .drain_finish()
                                    .at(&file)?;
                                h.update(d.as_str().as_bytes());
                                log.push((p.clone(), d.to_string()));
                                continue;
                            }
                            match &from {
                                Some(f) => {
                                    let id = self.identity_of_from(f, stage, st.line)?;
                                    h.update(format!("from {id} {p}\n").as_bytes());
                                    log.push((format!("--from={f} {p}"), id));
                                }
                                None => {
                                    // The sources copy_step copies (--parents and --exclude as there).
                                    let ctx = self.with_excludes(self.context.clone(), c, vars, st.line)?;
                                    let rels: Vec<String> = ctx
                                        .sources(&p, c.parents)
                                        .map_err(|e| self.err(st.line, e))?
                                        .into_iter()
                                        .map(|(rel, _)| rel)
                                        .collect();
                                    ctx.hash_into(&rels, &mut h, &mut log)?;
                                }
                            }
                        }
                    }
                }
            }
            Instruction::Run(r) => {
                for m in r.mounts.iter().filter(|m| m.kind == "bind") {
                    let src = m.source.clone().unwrap_or_default();
                    match &m.from {
                        Some(f) => {
                            let id = self.identity_of_from(f, stage, st.line)?;
                            h.update(format!("from {id} {src}\n").as_bytes());
                            log.push((format!("--mount from={f} {src}"), id));
                        }
                        None => {
                            let rels = self
                                .context
                                .resolve(if src.is_empty() { "." } else { &src })
                                .map_err(|e| self.err(st.line, e))?;
                            self.context.hash_into(&rels, &mut h, &mut log)?;
                        }
                    }
                }
            }
            _ => {}
        }
        Ok((h.finish(), log))
    }

    fn resolve_from(&self, name: &str, stage: usize, line: usize) -> Result<FromRef> {
        if let Some(i) = self.stage_named(name, stage) {
            return Ok(FromRef::Stage(i));
        }
        let name = match self.named.get(name) {
            Some(NamedContext::Dir(root)) => return Ok(FromRef::Dir(root.clone())),
            Some(NamedContext::Image(r)) => r.as_str(),
            None => name,
        };
        match self.core.resolve_image(name) {
            Ok(id) => Ok(FromRef::Image(id)),
            Err(e) if e.kind() == crate::ErrorKind::NotFound => {
                Err(self
                    .err(line, format!("--from={name}: no such stage before this one, and no such image in the store")))
            }
            Err(e) => Err(e),
        }
    }

    /// What identifies the content of `--from=name` for the cache.
    fn identity_of_from(&self, name: &str, stage: usize, line: usize) -> Result<String> {
        Ok(match self.resolve_from(name, stage, line)? {
            FromRef::Stage(i) => {
                let st = &self.built[&i];
                Digest::of(serde_json::to_string(&st.config).expect("serializes").as_bytes()).to_string()
            }
            FromRef::Image(id) => id.to_string(),
            FromRef::Dir(root) => {
                let mut h = Hasher::default();
                root.hash_into(&[String::new()], &mut h, &mut Vec::new())?;
                h.finish().to_string()
            }
        })
    }

    fn view(&mut self, name: &str, stage: usize, line: usize) -> Result<View> {
        let layers: Vec<LayerRecord> = match self.resolve_from(name, stage, line)? {
            FromRef::Stage(i) => {
                let mut st = self.built.remove(&i).expect("dependencies are built first");
                let r = self.ready(&mut st);
                let layers = st.layers.clone();
                self.built.insert(i, st);
                r?;
                layers
            }
            FromRef::Image(id) => self.core.usable_layers(&id).map_err(|e| self.err(line, e))?,
            FromRef::Dir(root) => return View::of_dir(self.core, &root.root),
        };
        View::of(self.core, &layers)
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://") || s.starts_with("git@")
}

/// Up to the first 512 bytes of a stream (a tar header's worth).
fn read_head(r: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    head.truncate(n);
    Ok(head)
}

/// Whether bytes starting so are an archive ADD unpacks and `build -` takes:
/// a tar, plain (its `ustar` magic) or gzip/zstd-compressed.
fn is_archive(head: &[u8]) -> bool {
    crate::layer::Compression::detect(head) != crate::layer::Compression::None
        || (head.len() >= 262 && &head[257..262] == b"ustar")
}

fn done(t: Instant) -> String {
    format!("{:.2}s", t.elapsed().as_secs_f64())
}

/// Read the Dockerfile a build uses.
fn read_dockerfile(opts: &BuildOptions, context: &Path) -> Result<(String, String, PathBuf)> {
    let path = match &opts.file {
        Some(f) => {
            if f.exists() {
                f.clone()
            } else {
                context.join(f)
            }
        }
        None => {
            let d = context.join("Dockerfile");
            if d.exists() {
                d
            } else {
                context.join("Containerfile")
            }
        }
    };
    let text = fs::read_to_string(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => {
            Error::invalid(format!("cannot find Dockerfile or Containerfile: {}", path.display()))
        }
        _ => Error::Io { path: path.clone(), source: e },
    })?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "Dockerfile".into());
    Ok((name, text, path))
}

/// The builds service: Dockerfile builds and the build cache.
pub struct Builds<'c> {
    core: &'c Core,
}

impl<'c> Builds<'c> {
    /// The service over `core`.
    pub fn new(core: &'c Core) -> Self {
        Builds { core }
    }

    /// `build`: run a Dockerfile on a context; progress lines go to `out`.
    /// Returns the image ID, or `None` when `--output` took the result instead.
    pub fn build(&self, opts: &mut BuildOptions, out: &mut dyn Write) -> Result<Option<Digest>> {
        if let Some(n) = opts.network.as_deref().filter(|n| !matches!(*n, "default" | "bridge" | "host" | "none")) {
            return Err(Error::invalid(format!("build --network {n:?}: want default, host or none")));
        }
        let output = opts.output.as_deref().map(Output::parse).transpose()?;
        let cache_to: Vec<CacheSpec> =
            opts.cache_to.iter().map(|v| CacheSpec::parse("--cache-to", v)).collect::<Result<_>>()?;
        let cache_from: Vec<CacheSpec> =
            opts.cache_from.iter().map(|v| CacheSpec::parse("--cache-from", v)).collect::<Result<_>>()?;
        spec::check_add_hosts(&opts.add_hosts)?;
        let run_resources = crate::container::resources::Resources::from_flags(
            &crate::container::resources::ResourceFlags { ulimits: opts.ulimits.clone(), ..Default::default() },
            "none",
            &|_| Err(Error::invalid("a build step shares no namespace")),
        )?;
        let mut owned_context = None;
        if let ContextSource::Remote(url) = &opts.context {
            let url = url.clone();
            if git::GitSource::is_git(&url) {
                let (dir, sub, _) = git::GitSource::parse(&url)?.fetch(&self.core.tmp, false)?;
                opts.context = ContextSource::Dir(sub);
                owned_context = Some(dir);
            } else {
                // Downloaded whole, then read as `build -` reads standard input.
                let dir = TempDir::new(&self.core.tmp, "build-remote")?;
                let file = dir.path().join("context");
                crate::registry::download(&url, &file).map_err(|e| Error::invalid(format!("context {url}: {e}")))?;
                opts.context = ContextSource::Stream(Box::new(File::open(&file).at(&file)?));
                owned_context = Some(dir);
            }
        }
        let (context_dir, stdin_dockerfile) = match &mut opts.context {
            ContextSource::Dir(d) => {
                if !d.is_dir() {
                    return Err(Error::invalid(format!("context {}: not a directory", d.display())));
                }
                (d.clone(), None)
            }
            ContextSource::Stream(r) => {
                let dir = TempDir::new(&self.core.tmp, "build-context")?;
                let read_err = |e| Error::stream("reading the context from standard input", e);
                let head = read_head(r).map_err(read_err)?;
                let mut whole = io::Cursor::new(head.clone()).chain(r);
                let text = if is_archive(&head) {
                    // Streamed straight into the directory: the context is never held in memory.
                    let (_, rd) = crate::layer::decompress(io::BufReader::new(whole))
                        .map_err(|e| Error::stream("context from standard input", e))?;
                    tar::Archive::new(rd)
                        .unpack(dir.path())
                        .map_err(|e| Error::stream("unpacking the context tar", e))?;
                    None
                } else {
                    let mut bytes = Vec::new();
                    whole.read_to_end(&mut bytes).map_err(read_err)?;
                    Some(
                        String::from_utf8(bytes)
                            .map_err(|_| Error::invalid("standard input is neither a tar archive nor a Dockerfile"))?,
                    )
                };
                let p = dir.path().to_path_buf();
                owned_context = Some(dir);
                (p, text)
            }
            ContextSource::Remote(_) => unreachable!("a remote context is fetched above"),
        };
        let df_from_stdin = opts.file.as_ref().is_some_and(|f| f.as_os_str() == "-");
        let (file, text, df_path) = match stdin_dockerfile {
            Some(_) if df_from_stdin => {
                return Err(Error::invalid("-f -: standard input already holds the context (build -)"))
            }
            Some(t) => ("Dockerfile".to_string(), t, context_dir.join("Dockerfile")),
            None if df_from_stdin => {
                let mut text = String::new();
                io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| Error::stream("reading the Dockerfile from standard input (-f -)", e))?;
                ("Dockerfile".to_string(), text, context_dir.join("Dockerfile"))
            }
            None => read_dockerfile(opts, &context_dir)?,
        };
        let df = dockerfile::parse(&file, &text)?;
        let project = match (&owned_context, fs::canonicalize(&df_path)) {
            (None, Ok(p)) if !df_from_stdin => p.display().to_string(),
            _ => format!("-/{file}"),
        };
        let ignore_text = [df_path.with_file_name(format!("{file}.dockerignore")), context_dir.join(".dockerignore")]
            .iter()
            .find_map(|p| fs::read_to_string(p).ok().map(|t| (t, p.clone())));
        let ignore = match &ignore_text {
            Some((t, p)) => Ignore::parse(t, &p.display().to_string())?,
            None => Ignore::default(),
        };
        let mut build_args = HashMap::new();
        for a in &opts.build_args {
            match a.split_once('=') {
                Some((k, v)) => build_args.insert(k.to_string(), v.to_string()),
                None => std::env::var(a).ok().and_then(|v| build_args.insert(a.clone(), v)),
            };
        }
        if let Some(p) = &opts.platform {
            let want = image::Platform::parse(p)?;
            let host = image::Platform::host();
            if want.os != host.os || want.architecture != host.architecture {
                return Err(Error::invalid(format!(
                    "--platform {p}: only the host platform ({}/{}) can be built",
                    host.os, host.architecture
                )));
            }
        }
        let tags: Vec<String> =
            opts.tags.iter().map(|t| Reference::parse(t).map(|r| r.to_string())).collect::<Result<_>>()?;
        let mut labels = Vec::new();
        for l in &opts.labels {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            if k.is_empty() {
                return Err(Error::invalid(format!("--label {l:?}: want KEY=VALUE")));
            }
            labels.push((k.to_string(), v.to_string()));
        }
        let epoch = crate::layer::source_date_epoch().map(|e| e as i64);
        // Global ARGs: defaults expanded in order, build args override.
        let host = image::Platform::host();
        let mut global = Vars::new();
        for (k, v) in [
            ("TARGETPLATFORM", format!("{}/{}", host.os, host.architecture)),
            ("TARGETOS", host.os.clone()),
            ("TARGETARCH", host.architecture.clone()),
            ("BUILDPLATFORM", format!("{}/{}", host.os, host.architecture)),
            ("BUILDOS", host.os.clone()),
            ("BUILDARCH", host.architecture.clone()),
        ] {
            global.insert(k.to_string(), v);
        }
        let mut used_args = HashSet::new();
        for a in &df.global_args {
            for d in &a.value {
                let v = match build_args.get(&d.name) {
                    Some(v) => {
                        used_args.insert(d.name.clone());
                        Some(v.clone())
                    }
                    None => d
                        .default
                        .as_ref()
                        .map(|x| words::expand(x, &global, df.escape))
                        .transpose()
                        .map_err(|e| err_at(&df, a.line, e))?,
                };
                if let Some(v) = v {
                    global.insert(d.name.clone(), v);
                }
            }
        }
        let context = SourceRoot { ignore, ..SourceRoot::of(context_dir, false) };
        let quiet = opts.quiet;
        let (named, _fetched) = self.named_contexts(&opts.build_contexts)?;
        let secrets = secrets::Secrets::read(&opts.secrets)?;
        let agents = secrets::Agents::start(&opts.ssh, &self.core.tmp)?;
        let imported = cache::Imported::load(self.core, &cache_from, out)?;
        let mut b = Builder {
            core: self.core,
            df,
            opts,
            context,
            out,
            build_args,
            used_args,
            global,
            built: HashMap::new(),
            step: 0,
            total: 0,
            epoch,
            downloads: HashMap::new(),
            download_dir: None,
            project,
            step_in_stage: 0,
            rebuilt_before: None,
            explained: Vec::new(),
            secrets,
            agents,
            run_resources,
            named,
            imported,
            exported: cache::Exported::default(),
            target: 0,
            from_stage: HashMap::new(),
            inline: None,
        };
        let result = b.run();
        // The store lock is held again from here on: the build's leases can go.
        let _ = b.core.store.release_leases();
        let unused: Vec<String> = b
            .build_args
            .keys()
            .filter(|k| !b.used_args.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
            .cloned()
            .collect();
        let mut state = result?;
        if !unused.is_empty() && !quiet {
            eprintln!("[Warning] One or more build-args {unused:?} were not consumed");
        }
        if !labels.is_empty() {
            let mut map = state.cfg("Labels").as_object().cloned().unwrap_or_default();
            for (k, v) in labels {
                map.insert(k, v.into());
            }
            state.set("Labels", Value::Object(map));
        }
        let created = image::parse_time(state.config["created"].as_str());
        let created = if created == 0 { epoch.unwrap_or_else(now) } else { created };
        b.ready(&mut state)?;
        b.export_cache(&cache_to)?;
        let b_out = b.out;
        if let Some(output) = &output {
            output.write(b.core, &state.layers)?;
            let _ = b.core.store.release_leases();
            drop(owned_context);
            return Ok(None);
        }
        dockerfile::metadata::omit_empty(&mut state.config);
        let id = Images::new(b.core).store_image(state.config, &state.layers, None, &tags, created)?;
        if let Some((base, layers)) = &state.base {
            b.core.store.set_image_base(&id, base, *layers)?;
        }
        b.core.store.put_build_explanation(&id, &serde_json::to_string(&b.explained).expect("serializes"))?;
        // Layers fetched from a build cache after the build were leased until the image held them.
        let _ = b.core.store.release_leases();
        drop(owned_context);
        if !quiet {
            for t in &tags {
                let _ = writeln!(b_out, "Successfully tagged {}", crate::image::reference::display_tag(t));
            }
        }
        Ok(Some(id))
    }

    /// `--build-context NAME=VALUE`s, read (git ones fetched) before the
    /// build; the fetched trees live as long as what is returned with them.
    fn named_contexts(&self, specs: &[String]) -> Result<(HashMap<String, NamedContext>, Vec<TempDir>)> {
        let mut named = HashMap::new();
        let mut fetched = Vec::new();
        for spec in specs {
            let bad = |why: String| Error::invalid(format!("--build-context {spec:?}: {why}"));
            let (name, value) = spec
                .split_once('=')
                .filter(|(n, v)| !n.is_empty() && !v.is_empty())
                .ok_or_else(|| bad("want NAME=DIR, NAME=docker-image://REF or NAME=GIT-URL".into()))?;
            let dir_root = |root: PathBuf| SourceRoot::of(root, false);
            let context = if let Some(r) = value.strip_prefix("docker-image://") {
                Reference::parse(r).map_err(|e| bad(e.to_string()))?;
                NamedContext::Image(r.to_string())
            } else if git::GitSource::is_git(value) {
                let (dir, sub, _) = git::GitSource::parse(value)?.fetch(&self.core.tmp, false)?;
                fetched.push(dir);
                NamedContext::Dir(dir_root(sub))
            } else if value.contains("://") {
                return Err(bad("want a directory, docker-image://REF or a git URL".into()));
            } else {
                let dir = PathBuf::from(value);
                if !dir.is_dir() {
                    return Err(bad(format!("{value}: not a directory")));
                }
                NamedContext::Dir(dir_root(dir))
            };
            named.insert(name.to_string(), context);
        }
        Ok((named, fetched))
    }

    /// `builder explain IMAGE`: each step of the build that made IMAGE,
    /// cached or why not.
    pub fn explain(&self, image: &str) -> Result<Vec<explain::Explained>> {
        let id = self.core.resolve_image(image)?;
        match self.core.store.build_explanation(&id)? {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| Error::Corrupt(format!("the build explanation of image {id}: {e}"))),
            None => Err(Error::invalid(format!("image {image} was not built by strata here: no build explanation"))),
        }
    }

    /// `builder prune`: forget the build cache, then free what only it kept.
    /// Returns (cache entries dropped, bytes freed).
    pub fn prune_cache(&self) -> Result<(usize, u64)> {
        self.core.exclusive()?;
        let n = self.core.store.clear_build_cache()?;
        let (_, freed) = self.core.collect_garbage()?;
        let mounts = self.core.root.join("build-mounts");
        let mut freed = freed;
        if mounts.exists() {
            freed += crate::tree::usage(&mounts)?;
            crate::tree::remove(&mounts)?;
        }
        Ok((n, freed))
    }
}
