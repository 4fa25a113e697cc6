//! What the instructions that make no layer (CMD, ENTRYPOINT, ENV, LABEL,
//! EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL, SHELL, MAINTAINER, ONBUILD,
//! HEALTHCHECK) do to an image config. One place, used by `build` and by
//! `commit --change`, so the two cannot mean different things.

use serde_json::{json, Value};

use super::words::{self, Vars};
use super::{CommandForm, Instruction};

fn cfg<'a>(config: &'a Value, field: &str) -> &'a Value {
    &config["config"][field]
}

fn set(config: &mut Value, field: &str, v: Value) {
    if !config["config"].is_object() {
        config["config"] = json!({});
    }
    config["config"][field] = v;
}

/// Drop the config fields that are empty (an empty list, map or string, or
/// null), as BuildKit writes a built image's config (the OCI image config's
/// fields are all `omitempty`).
pub fn omit_empty(config: &mut Value) {
    if let Some(c) = config["config"].as_object_mut() {
        c.retain(|_, v| match v {
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
            _ => true,
        });
    }
}

/// The config's environment, `KEY=VALUE` entries.
pub fn env(config: &Value) -> Vec<String> {
    serde_json::from_value(cfg(config, "Env").clone()).unwrap_or_default()
}

/// The config's working directory (`/` when unset).
pub fn workdir(config: &Value) -> String {
    cfg(config, "WorkingDir").as_str().filter(|w| !w.is_empty()).unwrap_or("/").to_string()
}

/// The config's shell for shell-form commands.
pub fn shell(config: &Value) -> Vec<String> {
    serde_json::from_value(cfg(config, "Shell").clone()).unwrap_or_else(|_| vec!["/bin/sh".into(), "-c".into()])
}

/// Set `k` in an environment list in place (as Docker: an existing variable keeps its position).
pub fn set_env(env: &mut Vec<String>, k: &str, v: &str) {
    match env.iter_mut().find(|e| e.split('=').next() == Some(k)) {
        Some(e) => *e = format!("{k}={v}"),
        None => env.push(format!("{k}={v}")),
    }
}

/// A command's argv: exec form as written, shell form run by `shell`.
pub fn command_args(c: &CommandForm, shell: &[String]) -> Vec<String> {
    match c {
        CommandForm::Exec(v) => v.clone(),
        CommandForm::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            v
        }
    }
}

/// Apply the metadata instruction `instr` to the image config `config` (the
/// whole config JSON), its words expanded with `vars` as of before the line.
/// `cmd_set`: whether this stage has set CMD itself (an ENTRYPOINT then
/// keeps it; otherwise an ENTRYPOINT clears an inherited CMD). Errors are
/// messages for the caller to place (`file:line`, the `--change`).
/// RUN, COPY, ADD, FROM and ARG are not metadata: nothing is done for them.
pub fn apply(config: &mut Value, instr: &Instruction, vars: &Vars, esc: char, cmd_set: bool) -> Result<(), String> {
    match instr {
        Instruction::Cmd(c) => {
            set(config, "Cmd", json!(command_args(c, &shell(config))));
        }
        Instruction::Entrypoint(c) => {
            set(config, "Entrypoint", json!(command_args(c, &shell(config))));
            if !cmd_set {
                set(config, "Cmd", Value::Null);
            }
        }
        Instruction::Env(text) => {
            let mut env = env(config);
            // As Docker: every pair on the line is expanded with the values from before the line.
            for (k, v) in words::pairs(text, &vars, esc, true)? {
                set_env(&mut env, &k, &v);
            }
            set(config, "Env", json!(env));
        }
        Instruction::Label(text) => {
            let mut labels = cfg(config, "Labels").as_object().cloned().unwrap_or_default();
            for (k, v) in words::pairs(text, &vars, esc, true)? {
                labels.insert(k, v.into());
            }
            set(config, "Labels", Value::Object(labels));
        }
        Instruction::Expose(ports) => {
            let mut map = cfg(config, "ExposedPorts").as_object().cloned().unwrap_or_default();
            for p in ports {
                for p in words::split(p, &vars, esc)? {
                    let (port, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                    let proto = proto.to_ascii_lowercase();
                    let range = match port.split_once('-') {
                        Some((a, b)) => a.parse::<u16>().ok().zip(b.parse::<u16>().ok()).filter(|(a, b)| a <= b),
                        None => port.parse::<u16>().ok().map(|p| (p, p)),
                    };
                    let Some((first, last)) = range.filter(|_| matches!(proto.as_str(), "tcp" | "udp" | "sctp")) else {
                        return Err(format!("invalid port {p:?}: want PORT[-PORT][/tcp|udp|sctp]"));
                    };
                    // As Docker and BuildKit: a range is kept as each of its ports.
                    for port in first..=last {
                        map.insert(format!("{port}/{proto}"), json!({}));
                    }
                }
            }
            set(config, "ExposedPorts", Value::Object(map));
        }
        Instruction::Volume(paths) => {
            let mut map = cfg(config, "Volumes").as_object().cloned().unwrap_or_default();
            for p in paths {
                let p = words::expand(p, &vars, esc)?;
                if p.is_empty() {
                    return Err("VOLUME specified can not be an empty string".into());
                }
                map.insert(p, json!({}));
            }
            set(config, "Volumes", Value::Object(map));
        }
        Instruction::User(u) => set(config, "User", words::expand(u, &vars, esc)?.into()),
        Instruction::Workdir(w) => {
            let w = words::expand(w, &vars, esc)?;
            let joined = if w.starts_with('/') { w } else { format!("{}/{w}", workdir(config).trim_end_matches('/')) };
            let clean = crate::confined::clean_container_path(&joined);
            set(config, "WorkingDir", clean.into());
        }
        Instruction::Stopsignal(s) => set(config, "StopSignal", words::expand(s, &vars, esc)?.into()),
        Instruction::Shell(s) => set(config, "Shell", json!(s)),
        Instruction::Maintainer(m) => config["author"] = m.clone().into(),
        Instruction::Onbuild(t) => {
            let mut list: Vec<String> = serde_json::from_value(cfg(config, "OnBuild").clone()).unwrap_or_default();
            list.push(t.clone());
            set(config, "OnBuild", json!(list));
        }
        Instruction::Healthcheck(h) => {
            let test = match &h.test {
                None => json!(["NONE"]),
                Some(CommandForm::Exec(v)) => {
                    let mut t = vec!["CMD".to_string()];
                    t.extend(v.iter().cloned());
                    json!(t)
                }
                Some(CommandForm::Shell(s)) => json!(["CMD-SHELL", s]),
            };
            let mut hc = json!({"Test": test});
            for (k, v) in [
                ("Interval", h.interval),
                ("Timeout", h.timeout),
                ("StartPeriod", h.start_period),
                ("StartInterval", h.start_interval),
                ("Retries", h.retries),
            ] {
                if let Some(v) = v {
                    hc[k] = v.into();
                }
            }
            set(config, "Healthcheck", hc);
        }
        Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_) | Instruction::Arg(_) => {}
    }
    Ok(())
}

/// `commit --change`: each a Dockerfile instruction of the kinds Docker
/// allows there (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER,
/// VOLUME, WORKDIR), parsed, expanded (with the config's environment) and
/// applied exactly as a build would.
pub fn apply_changes(config: &mut Value, changes: &[String]) -> crate::error::Result<()> {
    let mut cmd_set = false;
    for change in changes {
        let bad = |why: String| crate::error::Error::invalid(format!("--change {change:?}: {why}"));
        let df = super::parse("--change", &format!("FROM scratch\n{change}\n")).map_err(|e| match e {
            crate::error::Error::Dockerfile { message, .. } => bad(message),
            other => other,
        })?;
        let [step] = df.stages[0].steps.as_slice() else {
            return Err(bad("give one instruction per --change".into()));
        };
        match &step.value {
            Instruction::Cmd(_) => cmd_set = true,
            Instruction::Entrypoint(_)
            | Instruction::Env(_)
            | Instruction::Expose(_)
            | Instruction::Label(_)
            | Instruction::Onbuild(_)
            | Instruction::User(_)
            | Instruction::Volume(_)
            | Instruction::Workdir(_) => {}
            _ => return Err(bad("want CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME or WORKDIR".into())),
        }
        let vars: Vars =
            env(config).iter().filter_map(|e| e.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect();
        apply(config, &step.value, &vars, df.escape, cmd_set).map_err(bad)?;
    }
    Ok(())
}
