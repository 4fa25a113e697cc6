//! Dockerfile text → typed instructions with line numbers. The syntax is
//! parse-dockerfile's (continuations, comments, JSON forms, heredocs, the
//! `escape` and `syntax` directives); this module maps its tree to our own
//! instructions, checks flags, and names `file:line` in every error. Nothing
//! is expanded or executed here: words keep their quotes and `$VAR`s until
//! the builder expands them in their scope.

pub mod metadata;
pub mod words;

use std::fmt;

use parse_dockerfile as pd;

use crate::error::{Error, Result};

/// A Dockerfile, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    /// The file's name, for messages.
    pub file: String,
    /// The escape character (`\` unless the `escape` directive says otherwise).
    pub escape: char,
    /// ARGs before the first FROM.
    pub global_args: Vec<Located<Vec<ArgDecl>>>,
    /// The stages, in order.
    pub stages: Vec<Stage>,
}

/// One stage: a FROM and what follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Its position among the stages.
    pub index: usize,
    /// `AS name`, lowercased as Docker does.
    pub name: Option<String>,
    /// The FROM line.
    pub from: Located<From>,
    /// The instructions after FROM.
    pub steps: Vec<Located<Instruction>>,
}

/// A value and the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    /// 1-based line number.
    pub line: usize,
    /// The instruction as written (continuations joined), for output and history.
    pub text: String,
    /// The value.
    pub value: T,
}

/// `FROM [--platform=P] IMAGE [AS NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct From {
    /// The image (or stage) reference, unexpanded.
    pub image: String,
    /// `--platform`, unexpanded.
    pub platform: Option<String>,
}

/// `ARG NAME[=DEFAULT]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgDecl {
    /// The name.
    pub name: String,
    /// The default, unexpanded.
    pub default: Option<String>,
}

/// Exec form (`["a", "b"]`) or shell form.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandForm {
    /// A JSON array: run as is.
    Exec(Vec<String>),
    /// A string: run by the SHELL (continuations already joined).
    Shell(String),
}

/// A heredoc body.
#[derive(Debug, Clone, PartialEq)]
pub struct Heredoc {
    /// The text.
    pub body: String,
    /// Whether variables are expanded in it (the delimiter was not quoted).
    pub expand: bool,
}

/// A `RUN --mount=...`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunMount {
    /// `bind`, `cache`, `tmpfs`, `secret` or `ssh` (others are refused when parsed).
    pub kind: String,
    /// `target=` (unexpanded).
    pub target: String,
    /// `source=`.
    pub source: Option<String>,
    /// `from=` (stage or image).
    pub from: Option<String>,
    /// `id=` (cache, secret, ssh; for a secret without one, its target's
    /// file name; for ssh, `default`).
    pub id: Option<String>,
    /// `readonly`/`ro` (cache), or bind without `rw`.
    pub readonly: bool,
    /// `mode=` (cache directory mode, octal).
    pub mode: Option<u32>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
    /// `env=` (secret: also, or only, as this environment variable).
    pub env: Option<String>,
    /// `required` (secret, ssh: fail when the build was not given it).
    pub required: bool,
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The command.
    pub command: CommandForm,
    /// Heredocs (`RUN <<EOF`): each is a script for the shell.
    pub heredocs: Vec<Heredoc>,
    /// `--mount` flags.
    pub mounts: Vec<RunMount>,
    /// `--network=none|host|default`.
    pub network: Option<String>,
}

/// A COPY or ADD source.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A path or glob (unexpanded), or for ADD a URL.
    Path(String),
    /// `COPY <<EOF /dest`.
    Heredoc(Heredoc),
}

/// `COPY` and `ADD`.
#[derive(Debug, Clone, PartialEq)]
pub struct Copy {
    /// Sources.
    pub sources: Vec<Source>,
    /// Destination (unexpanded).
    pub dest: String,
    /// `--from=stage|image` (COPY only).
    pub from: Option<String>,
    /// `--chown=USER[:GROUP]`.
    pub chown: Option<String>,
    /// `--chmod=OCTAL`.
    pub chmod: Option<u32>,
    /// `--link`: the layer is made apart from the stage's files, so its
    /// cache survives a change below it.
    pub link: bool,
    /// `ADD --checksum=sha256:HEX` of a URL source.
    pub checksum: Option<String>,
    /// `--exclude=PATTERN`s (unexpanded), any number.
    pub exclude: Vec<String>,
    /// `COPY --parents`: sources keep their directories (below a `/./` in the source, if any).
    pub parents: bool,
    /// `ADD --keep-git-dir` of a git source.
    pub keep_git_dir: bool,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Healthcheck {
    /// The command, or `None` for `HEALTHCHECK NONE`.
    pub test: Option<CommandForm>,
    /// `--interval`, nanoseconds.
    pub interval: Option<u64>,
    /// `--timeout`, nanoseconds.
    pub timeout: Option<u64>,
    /// `--start-period`, nanoseconds.
    pub start_period: Option<u64>,
    /// `--start-interval`, nanoseconds.
    pub start_interval: Option<u64>,
    /// `--retries`.
    pub retries: Option<u64>,
}

/// One instruction after FROM.
#[derive(Debug, Clone, PartialEq)]
pub enum Instruction {
    /// RUN.
    Run(Run),
    /// COPY.
    Copy(Copy),
    /// ADD.
    Add(Copy),
    /// CMD.
    Cmd(CommandForm),
    /// ENTRYPOINT.
    Entrypoint(CommandForm),
    /// ENV, its unexpanded `K=V ...` text.
    Env(String),
    /// LABEL, its unexpanded `K=V ...` text.
    Label(String),
    /// ARG.
    Arg(Vec<ArgDecl>),
    /// EXPOSE ports (unexpanded).
    Expose(Vec<String>),
    /// VOLUME paths (unexpanded).
    Volume(Vec<String>),
    /// USER (unexpanded).
    User(String),
    /// WORKDIR (unexpanded).
    Workdir(String),
    /// STOPSIGNAL (unexpanded).
    Stopsignal(String),
    /// HEALTHCHECK.
    Healthcheck(Healthcheck),
    /// SHELL.
    Shell(Vec<String>),
    /// MAINTAINER.
    Maintainer(String),
    /// ONBUILD: the trigger instruction's text, run when an image is built FROM this one.
    Onbuild(String),
}

impl Instruction {
    /// Whether this instruction makes a layer.
    pub fn makes_layer(&self) -> bool {
        matches!(self, Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_))
    }
}

impl fmt::Display for Located<Instruction> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

/// The text of an instruction: from its keyword to the next one, without
/// trailing comments, blank lines and continuation breaks.
fn raw_text(text: &str, start: usize, end: usize, escape: char) -> String {
    let chunk = &text[start..end.min(text.len())];
    let mut lines: Vec<&str> = chunk.lines().collect();
    while lines.last().is_some_and(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        lines.pop();
    }
    let joined = words::join_continuations(&lines.join("\n"), escape);
    joined.split('\n').next().unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" ")
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    escape: char,
}

impl Ctx<'_> {
    fn err(&self, offset: usize, msg: impl fmt::Display) -> Error {
        Error::Dockerfile { file: self.file.to_string(), line: line_of(self.text, offset), message: msg.to_string() }
    }

    fn command(&self, c: &pd::Command<'_>) -> CommandForm {
        match c {
            pd::Command::Exec(v) => CommandForm::Exec(v.value.iter().map(|s| s.value.to_string()).collect()),
            pd::Command::Shell(s) => CommandForm::Shell(words::join_continuations(s.value, self.escape)),
            _ => CommandForm::Shell(String::new()),
        }
    }

    fn flags(
        &self,
        flags: &[pd::Flag<'_>],
        allowed: &[&str],
        what: &str,
    ) -> Result<Vec<(String, Option<String>, usize)>> {
        let mut out = Vec::new();
        for f in flags {
            let name = f.name.value.to_string();
            if !allowed.contains(&name.as_str()) {
                let want = if allowed.is_empty() { "none".to_string() } else { allowed.join(", --") };
                return Err(
                    self.err(f.flag_span().start, format!("unknown flag --{name} for {what} (allowed: --{want})"))
                );
            }
            out.push((name, f.value.as_ref().map(|v| v.value.to_string()), f.flag_span().start));
        }
        Ok(out)
    }

    fn arg_decls(&self, a: &pd::ArgInstruction<'_>) -> Result<Vec<ArgDecl>> {
        let mut out = Vec::new();
        // Names cannot hold quotes or spaces; defaults can, so split on unquoted whitespace only.
        for w in split_raw(&a.arguments.value) {
            let (name, default) = match w.split_once('=') {
                Some((n, d)) => (n.to_string(), Some(d.to_string())),
                None => (w.clone(), None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(self.err(a.arg.span.start, format!("invalid ARG name {name:?}")));
            }
            out.push(ArgDecl { name, default });
        }
        Ok(out)
    }

    fn copy(&self, kw: usize, flags: &[pd::Flag<'_>], src: &[pd::Source<'_>], dest: &str, add: bool) -> Result<Copy> {
        let allowed: &[&str] = if add {
            &["chown", "chmod", "link", "checksum", "keep-git-dir", "exclude"]
        } else {
            &["from", "chown", "chmod", "link", "parents", "exclude"]
        };
        let what = if add { "ADD" } else { "COPY" };
        let mut c = Copy {
            sources: Vec::new(),
            dest: dest.to_string(),
            from: None,
            chown: None,
            chmod: None,
            link: false,
            checksum: None,
            exclude: Vec::new(),
            parents: false,
            keep_git_dir: false,
        };
        for (name, value, at) in self.flags(flags, allowed, what)? {
            let need = |v: Option<String>| {
                v.filter(|v| !v.is_empty()).ok_or_else(|| self.err(at, format!("--{name} needs a value")))
            };
            match name.as_str() {
                "from" => c.from = Some(need(value)?),
                "chown" => c.chown = Some(need(value)?),
                "chmod" => {
                    let v = need(value)?;
                    c.chmod = Some(
                        u32::from_str_radix(&v, 8)
                            .ok()
                            .filter(|m| *m <= 0o7777)
                            .ok_or_else(|| self.err(at, format!("--chmod={v}: want an octal mode such as 755")))?,
                    );
                }
                "link" => c.link = value.as_deref().is_none_or(|v| v != "false"),
                "parents" => c.parents = value.as_deref().is_none_or(|v| v != "false"),
                "keep-git-dir" => c.keep_git_dir = value.as_deref().is_none_or(|v| v != "false"),
                "exclude" => c.exclude.push(need(value)?),
                "checksum" => {
                    let v = need(value)?;
                    let ok = v
                        .strip_prefix("sha256:")
                        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
                    if !ok {
                        return Err(self.err(at, format!("--checksum={v}: want sha256:<64 hex digits>")));
                    }
                    c.checksum = Some(v.to_ascii_lowercase());
                }
                other => return Err(self.err(at, format!("--{other} is not supported by strata's {what}"))),
            }
        }
        for s in src {
            c.sources.push(match s {
                pd::Source::Path(p) => Source::Path(p.value.to_string()),
                pd::Source::HereDoc(h) => Source::Heredoc(Heredoc { body: h.value.to_string(), expand: h.expand }),
                _ => return Err(self.err(kw, format!("{what}: unsupported source"))),
            });
        }
        if c.sources.is_empty() {
            return Err(self.err(kw, format!("{what} needs a source and a destination")));
        }
        Ok(c)
    }

    fn run_mount(&self, value: &str, at: usize) -> Result<RunMount> {
        let mut m = RunMount { kind: "bind".into(), ..Default::default() };
        let mut rw = false;
        for part in value.split(',') {
            let (k, v) = part.split_once('=').map(|(k, v)| (k, Some(v))).unwrap_or((part, None));
            let num = |v: Option<&str>, radix: u32| -> Result<u32> {
                v.and_then(|v| u32::from_str_radix(v, radix).ok())
                    .ok_or_else(|| self.err(at, format!("--mount {k}: want a number")))
            };
            match k {
                "type" => m.kind = v.unwrap_or_default().to_string(),
                "target" | "dst" | "destination" => m.target = v.unwrap_or_default().to_string(),
                "source" | "src" => m.source = v.map(String::from),
                "from" => m.from = v.map(String::from),
                "id" => m.id = v.map(String::from),
                "ro" | "readonly" => m.readonly = v.is_none_or(|v| v != "false"),
                "rw" | "readwrite" => rw = v.is_none_or(|v| v != "false"),
                "mode" => m.mode = Some(num(v, 8)?),
                "uid" => m.uid = Some(num(v, 10)?),
                "gid" => m.gid = Some(num(v, 10)?),
                "env" => m.env = v.filter(|v| !v.is_empty()).map(String::from),
                "required" => m.required = v.is_none_or(|v| v != "false"),
                "sharing" if matches!(v, Some("shared" | "private" | "locked")) => {}
                _ => return Err(self.err(at, format!("--mount: unknown option {part:?}"))),
            }
        }
        match m.kind.as_str() {
            "bind" => m.readonly = !rw,
            "cache" | "tmpfs" => {}
            "secret" => {
                // As BuildKit: the id defaults to the target's name, the target to /run/secrets/ID
                // (unless the secret is asked for as an environment variable only).
                if m.id.is_none() {
                    let name = m.target.trim_end_matches('/').rsplit('/').next().unwrap_or("");
                    if name.is_empty() {
                        return Err(self.err(at, "--mount type=secret needs id= or target="));
                    }
                    m.id = Some(name.to_string());
                }
                if m.target.is_empty() && m.env.is_none() {
                    m.target = format!("/run/secrets/{}", m.id.as_deref().unwrap_or_default());
                }
                return Ok(m);
            }
            "ssh" => {
                if m.id.is_none() {
                    m.id = Some("default".into());
                }
                return Ok(m);
            }
            other => {
                return Err(self.err(
                    at,
                    format!("--mount type={other} is not supported (use type=bind, cache, tmpfs, secret or ssh)"),
                ))
            }
        }
        if m.target.is_empty() {
            return Err(self.err(at, "--mount needs target=PATH"));
        }
        Ok(m)
    }

    fn instruction(&self, i: &pd::Instruction<'_>) -> Result<Instruction> {
        use pd::Instruction as P;
        Ok(match i {
            P::Run(r) => {
                let mut run = Run {
                    command: self.command(&r.arguments),
                    heredocs: Vec::new(),
                    mounts: Vec::new(),
                    network: None,
                };
                for (name, value, at) in self.flags(&r.options, &["mount", "network", "security"], "RUN")? {
                    match name.as_str() {
                        "mount" => run.mounts.push(self.run_mount(value.as_deref().unwrap_or(""), at)?),
                        "network" => match value.as_deref() {
                            Some(n @ ("none" | "host" | "default")) => run.network = Some(n.to_string()),
                            other => {
                                return Err(self
                                    .err(at, format!("--network={}: want none, host or default", other.unwrap_or(""))))
                            }
                        },
                        _ => return Err(self.err(at, "--security is not supported")),
                    }
                }
                run.heredocs =
                    r.here_docs.iter().map(|h| Heredoc { body: h.value.to_string(), expand: h.expand }).collect();
                Instruction::Run(run)
            }
            P::Copy(c) => Instruction::Copy(self.copy(c.copy.span.start, &c.options, &c.src, &c.dest.value, false)?),
            P::Add(c) => Instruction::Add(self.copy(c.add.span.start, &c.options, &c.src, &c.dest.value, true)?),
            P::Cmd(c) => Instruction::Cmd(self.command(&c.arguments)),
            P::Entrypoint(c) => Instruction::Entrypoint(self.command(&c.arguments)),
            P::Env(e) => Instruction::Env(words::join_continuations(&e.arguments.value, self.escape)),
            P::Label(l) => Instruction::Label(words::join_continuations(&l.arguments.value, self.escape)),
            P::Arg(a) => Instruction::Arg(self.arg_decls(a)?),
            P::Expose(e) => Instruction::Expose(e.arguments.iter().map(|s| s.value.to_string()).collect()),
            P::Volume(v) => Instruction::Volume(match &v.arguments {
                pd::JsonOrStringArray::Json(a) => a.value.iter().map(|s| s.value.to_string()).collect(),
                pd::JsonOrStringArray::String(a) => a.iter().map(|s| s.value.to_string()).collect(),
            }),
            P::User(u) => Instruction::User(u.arguments.value.trim().to_string()),
            P::Workdir(w) => Instruction::Workdir(w.arguments.value.trim().to_string()),
            P::Stopsignal(s) => Instruction::Stopsignal(s.arguments.value.trim().to_string()),
            P::Shell(s) => Instruction::Shell(s.arguments.iter().map(|s| s.value.to_string()).collect()),
            P::Maintainer(m) => Instruction::Maintainer(m.name.value.to_string()),
            P::Healthcheck(h) => {
                let mut hc = Healthcheck::default();
                for (name, value, at) in self.flags(
                    &h.options,
                    &["interval", "timeout", "start-period", "start-interval", "retries"],
                    "HEALTHCHECK",
                )? {
                    let v = value.unwrap_or_default();
                    if name == "retries" {
                        hc.retries =
                            Some(v.parse().map_err(|_| self.err(at, format!("--retries={v}: want a number")))?);
                        continue;
                    }
                    let d = parse_duration(&v)
                        .ok_or_else(|| self.err(at, format!("--{name}={v}: want a duration such as 30s")))?;
                    match name.as_str() {
                        "interval" => hc.interval = Some(d),
                        "timeout" => hc.timeout = Some(d),
                        "start-period" => hc.start_period = Some(d),
                        _ => hc.start_interval = Some(d),
                    }
                }
                hc.test = match &h.arguments {
                    pd::HealthcheckArguments::Cmd { arguments, .. } => Some(self.command(arguments)),
                    _ => None,
                };
                Instruction::Healthcheck(hc)
            }
            P::Onbuild(o) => {
                let start = keyword_start(&o.instruction);
                let inner = raw_text(self.text, start, self.text.len(), self.escape);
                if matches!(*o.instruction, P::From(_) | P::Onbuild(_) | P::Maintainer(_)) {
                    return Err(self.err(o.onbuild.span.start, "ONBUILD cannot trigger FROM, ONBUILD or MAINTAINER"));
                }
                Instruction::Onbuild(inner)
            }
            P::From(f) => return Err(self.err(f.from.span.start, "FROM inside a stage")),
            _ => return Err(self.err(0, "unknown instruction")),
        })
    }
}

fn keyword_start(i: &pd::Instruction<'_>) -> usize {
    use pd::Instruction as P;
    match i {
        P::Add(x) => x.add.span.start,
        P::Arg(x) => x.arg.span.start,
        P::Cmd(x) => x.cmd.span.start,
        P::Copy(x) => x.copy.span.start,
        P::Entrypoint(x) => x.entrypoint.span.start,
        P::Env(x) => x.env.span.start,
        P::Expose(x) => x.expose.span.start,
        P::From(x) => x.from.span.start,
        P::Healthcheck(x) => x.healthcheck.span.start,
        P::Label(x) => x.label.span.start,
        P::Maintainer(x) => x.maintainer.span.start,
        P::Onbuild(x) => x.onbuild.span.start,
        P::Run(x) => x.run.span.start,
        P::Shell(x) => x.shell.span.start,
        P::Stopsignal(x) => x.stopsignal.span.start,
        P::User(x) => x.user.span.start,
        P::Volume(x) => x.volume.span.start,
        P::Workdir(x) => x.workdir.span.start,
        _ => 0,
    }
}

/// Split on whitespace outside quotes, keeping the quotes (for ARG lines).
fn split_raw(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    for c in s.chars() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (_, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Go duration syntax as HEALTHCHECK takes it: `30s`, `1m30s`, `500ms`.
pub fn parse_duration(s: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u..];
        total += (num * mult) as u64;
    }
    Some(total)
}

/// Parse Dockerfile `text` read from `file`.
pub fn parse(file: &str, text: &str) -> Result<Dockerfile> {
    // A UTF-8 byte order mark is not part of the text (Docker skips one too).
    // The parser skips it itself and its offsets are past it: strip the same
    // one here, and only one (a second is text, as for Docker).
    let (original, text) = (text, text.strip_prefix('\u{feff}').unwrap_or(text));
    let parsed = pd::parse(original).map_err(|e| Error::Dockerfile {
        file: file.to_string(),
        line: e.line(),
        message: e.to_string().split(" at line ").next().unwrap_or("syntax error").to_string(),
    })?;
    let escape = parsed.parser_directives.escape.as_ref().map(|d| d.value.value).unwrap_or('\\');
    let ctx = Ctx { file, text, escape };
    let starts: Vec<usize> = parsed.instructions.iter().map(keyword_start).collect();
    let mut df = Dockerfile { file: file.to_string(), escape, global_args: Vec::new(), stages: Vec::new() };
    for (i, ins) in parsed.instructions.iter().enumerate() {
        let start = starts[i];
        let end = starts.get(i + 1).copied().unwrap_or(text.len());
        let line = line_of(text, start);
        let raw = raw_text(text, start, end, escape);
        match ins {
            pd::Instruction::From(f) => {
                let mut platform = None;
                for (name, value, _) in ctx.flags(&f.options, &["platform"], "FROM")? {
                    if name == "platform" {
                        platform = value;
                    }
                }
                let name = match &f.as_ {
                    Some((_, n)) => {
                        let n = n.value.to_ascii_lowercase();
                        if !n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                            || !n.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                        {
                            return Err(ctx.err(start, format!("invalid stage name {n:?}")));
                        }
                        if df.stages.iter().any(|s| s.name.as_deref() == Some(n.as_str())) {
                            return Err(ctx.err(start, format!("duplicate stage name {n:?}")));
                        }
                        Some(n)
                    }
                    None => None,
                };
                let from = Located { line, text: raw, value: From { image: f.image.value.to_string(), platform } };
                df.stages.push(Stage { index: df.stages.len(), name, from, steps: Vec::new() });
            }
            pd::Instruction::Arg(a) if df.stages.is_empty() => {
                df.global_args.push(Located { line, text: raw, value: ctx.arg_decls(a)? });
            }
            other => {
                let Some(stage) = df.stages.last_mut() else {
                    return Err(ctx.err(
                        start,
                        "no FROM before this instruction: a Dockerfile starts with FROM (ARGs may precede it)",
                    ));
                };
                stage.steps.push(Located { line, text: raw, value: ctx.instruction(other)? });
            }
        }
    }
    if df.stages.is_empty() {
        return Err(Error::Dockerfile {
            file: file.to_string(),
            line: line_of(text, text.len()),
            message: "no FROM instruction".into(),
        });
    }
    Ok(df)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Dockerfile {
        parse("Dockerfile", text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(text: &str) -> String {
        parse("Dockerfile", text).unwrap_err().to_string()
    }

    #[test]
    fn golden_instructions() {
        let df = parse_ok(
            "# syntax=docker/dockerfile:1\nARG BASE=busybox\nFROM ${BASE} AS Build\nENV A=1 \\\n    B=\"two words\"\n\
             RUN --mount=type=cache,target=/cache,id=c1 echo hi \\\n  && echo \"$A\"\nRUN <<EOF\necho heredoc\nEOF\n\
             COPY --chown=1:2 --chmod=640 a b* /dst/\nCOPY <<EOT /x.txt\nhello $A\nEOT\nCMD [\"sh\", \"-c\", \"echo\"]\n\
             HEALTHCHECK --interval=5s --retries=3 CMD true\nONBUILD RUN echo x\nVOLUME [\"/a\", \"/b\"]\n\
             FROM build\nCOPY --from=build /x.txt /y\n",
        );
        assert_eq!(df.global_args[0].value, vec![ArgDecl { name: "BASE".into(), default: Some("busybox".into()) }]);
        assert_eq!(df.stages.len(), 2);
        let s = &df.stages[0];
        assert_eq!((s.name.as_deref(), s.from.line, s.from.value.image.as_str()), (Some("build"), 3, "${BASE}"));
        let steps: Vec<(usize, Instruction)> = s.steps.iter().map(|l| (l.line, l.value.clone())).collect();
        assert_eq!(
            steps,
            vec![
                (4, Instruction::Env("A=1     B=\"two words\"".into())),
                (
                    6,
                    Instruction::Run(Run {
                        command: CommandForm::Shell("echo hi   && echo \"$A\"".into()),
                        heredocs: vec![],
                        mounts: vec![RunMount {
                            kind: "cache".into(),
                            target: "/cache".into(),
                            id: Some("c1".into()),
                            ..Default::default()
                        }],
                        network: None,
                    })
                ),
                (
                    8,
                    Instruction::Run(Run {
                        command: CommandForm::Shell("".into()),
                        heredocs: vec![Heredoc { body: "echo heredoc\n".into(), expand: true }],
                        mounts: vec![],
                        network: None,
                    })
                ),
                (
                    11,
                    Instruction::Copy(Copy {
                        sources: vec![Source::Path("a".into()), Source::Path("b*".into())],
                        dest: "/dst/".into(),
                        from: None,
                        chown: Some("1:2".into()),
                        chmod: Some(0o640),
                        link: false,
                        checksum: None,
                        exclude: Vec::new(),
                        parents: false,
                        keep_git_dir: false,
                    })
                ),
                (
                    12,
                    Instruction::Copy(Copy {
                        sources: vec![Source::Heredoc(Heredoc { body: "hello $A\n".into(), expand: true })],
                        dest: "/x.txt".into(),
                        from: None,
                        chown: None,
                        chmod: None,
                        link: false,
                        checksum: None,
                        exclude: Vec::new(),
                        parents: false,
                        keep_git_dir: false,
                    })
                ),
                (15, Instruction::Cmd(CommandForm::Exec(vec!["sh".into(), "-c".into(), "echo".into()]))),
                (
                    16,
                    Instruction::Healthcheck(Healthcheck {
                        test: Some(CommandForm::Shell("true".into())),
                        interval: Some(5_000_000_000),
                        retries: Some(3),
                        ..Default::default()
                    })
                ),
                (17, Instruction::Onbuild("RUN echo x".into())),
                (18, Instruction::Volume(vec!["/a".into(), "/b".into()])),
            ]
        );
        assert_eq!(s.steps[1].text, "RUN --mount=type=cache,target=/cache,id=c1 echo hi && echo \"$A\"");
        assert_eq!(
            df.stages[1].steps[0].value,
            Instruction::Copy(Copy {
                sources: vec![Source::Path("/x.txt".into())],
                dest: "/y".into(),
                from: Some("build".into()),
                chown: None,
                chmod: None,
                link: false,
                checksum: None,
                exclude: Vec::new(),
                parents: false,
                keep_git_dir: false,
            })
        );
    }

    #[test]
    fn escape_directive() {
        let df = parse_ok("# escape=`\nFROM scratch\nRUN echo a `\n  b\n");
        assert_eq!(df.escape, '`');
        assert_eq!(
            df.stages[0].steps[0].value,
            Instruction::Run(Run {
                command: CommandForm::Shell("echo a   b".into()),
                heredocs: vec![],
                mounts: vec![],
                network: None
            })
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        assert_eq!(err("FROM scratch\n\nBOGUS x\n").split(':').take(2).collect::<Vec<_>>(), vec!["Dockerfile", "3"]);
        let e = err("RUN echo\n");
        assert!(e.starts_with("Dockerfile:1:") && e.contains("FROM"), "{e}");
        assert!(err("FROM a\nCOPY --nope=1 x y\n").starts_with("Dockerfile:2: unknown flag --nope"));
        assert!(
            err("FROM a\nRUN --mount=type=volume,target=/x true\n").starts_with("Dockerfile:2: --mount type=volume")
        );
        assert!(err("FROM a\nRUN --mount=type=secret true\n").contains("id= or target="));
        assert!(err("FROM a\nRUN --mount=type=cache true\n").contains("target"));
        assert!(err("FROM a\nCOPY --chmod=9z x y\n").starts_with("Dockerfile:2: --chmod"));
        assert!(err("FROM a AS x\nFROM b AS x\n").starts_with("Dockerfile:2: duplicate stage"));
        assert!(err("FROM a\nHEALTHCHECK --interval=soon CMD true\n").starts_with("Dockerfile:2:"));
        assert!(err("FROM a\nRUN <<EOF\necho\n").starts_with("Dockerfile:"));
        assert!(err("# just a comment\n").contains("FROM"));
        assert!(err("FROM a\nONBUILD FROM b\n").starts_with("Dockerfile:2: ONBUILD"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("x"), None);
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        // Found by fuzzing: the mark put the parser's offsets off by three bytes, inside a character.
        let df = parse("Dockerfile", "\u{feff}\nFROM sR").unwrap();
        assert_eq!((df.stages.len(), df.stages[0].from.line), (1, 2));
        // Found by fuzzing too: with two marks, both were skipped (one here, one by the parser).
        let _ = parse("Dockerfile", "\u{feff}\u{feff}\nFROM sR\nFROM sR");
    }
}
