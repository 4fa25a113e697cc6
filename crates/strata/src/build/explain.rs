//! Why a build step did not come from the cache. Every step a build
//! completes records what its cache key was made of (`build_steps`: the
//! step's place in its Dockerfile, the key before it, the instruction, the
//! build args in scope, and each input by name: context files with their
//! mode and digest, heredocs, URLs, other stages and images). A step that
//! misses is compared with the last record of the same place: the
//! differences are the reasons. The reasons of a whole build are kept with
//! the image it made (`builder explain IMAGE`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::Result;
use crate::store::Store;

/// What one step's cache key was made of.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepInputs {
    /// The step's place: the Dockerfile, the stage and the step's index in it.
    pub slot: String,
    /// The cache key of what the step builds on (the step before, or the FROM).
    pub parent: String,
    /// The instruction as written.
    pub text: String,
    /// Build args in scope.
    pub args: BTreeMap<String, String>,
    /// Each input by name and what it was (context files: mode and digest).
    pub inputs: Vec<(String, String)>,
}

/// One step of a build as `--explain` tells it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Explained {
    /// The step's number in the build's output (`STEP n/m`).
    pub step: usize,
    /// The instruction.
    pub text: String,
    /// It came from the cache.
    pub cached: bool,
    /// Why it did not.
    pub reasons: Vec<String>,
}

/// Record the inputs of the step whose key is `key`.
pub fn record(store: &Store, key: &Digest, step: &StepInputs) -> Result<()> {
    store.put_build_step(key, &step.slot, &serde_json::to_string(step).expect("serializes"))
}

/// Why the step `now` (key `key`) missed the cache. `rebuilt_before`: the
/// number of the step before it when that one missed too in this build.
pub fn reasons(
    store: &Store,
    key: &Digest,
    now: &StepInputs,
    rebuilt_before: Option<usize>,
    no_cache: bool,
) -> Result<Vec<String>> {
    if no_cache {
        return Ok(vec!["--no-cache".into()]);
    }
    let earlier: Vec<(Digest, StepInputs)> = store
        .build_steps_at(&now.slot)?
        .into_iter()
        .filter_map(|(k, text)| serde_json::from_str(&text).ok().map(|s| (k, s)))
        .collect();
    if earlier.iter().any(|(k, _)| k == key) {
        return Ok(vec!["the cached result is gone (the build cache was pruned or its layer removed)".into()]);
    }
    if let Some((_, same_parent)) = earlier.iter().find(|(_, s)| s.parent == now.parent) {
        let d = differences(same_parent, now);
        if d.is_empty() {
            return Ok(vec!["the cached result is gone (the build cache was pruned or its layer removed)".into()]);
        }
        return Ok(d);
    }
    let Some((_, last)) = earlier.first() else {
        return Ok(vec!["no earlier build of this step".into()]);
    };
    let mut out = vec![match rebuilt_before {
        Some(n) => format!("the step before it changed (STEP {n} was rebuilt)"),
        None => parent_change(store, &last.parent, &now.parent)?,
    }];
    out.extend(differences(last, now));
    Ok(out)
}

/// What changed between the records of the parents `old` and `new` (the FROM of a stage).
fn parent_change(store: &Store, old: &str, new: &str) -> Result<String> {
    let read = |k: &str| -> Result<Option<StepInputs>> {
        let Ok(d) = Digest::parse(k) else { return Ok(None) };
        Ok(store.build_step(&d)?.and_then(|t| serde_json::from_str(&t).ok()))
    };
    Ok(match (read(old)?, read(new)?) {
        (Some(o), Some(n)) if o.inputs != n.inputs => {
            let was = o.inputs.first().map(|i| i.1.clone()).unwrap_or_default();
            let is = n.inputs.first().map(|i| i.1.clone()).unwrap_or_default();
            format!("the parent changed: {} is {is}, was {was}", n.text)
        }
        (Some(o), Some(n)) if o.text != n.text => format!("the parent changed: {:?}, was {:?}", n.text, o.text),
        _ => "the parent changed".to_string(),
    })
}

/// `new, was old`, leaving out the words both share (a file's unchanged mode).
fn change(old: &str, new: &str) -> String {
    let (o, n): (Vec<&str>, Vec<&str>) = (old.split(' ').collect(), new.split(' ').collect());
    if o.len() == n.len() && o.len() > 1 {
        let kept: Vec<usize> = (0..o.len()).filter(|&i| o[i] != n[i] && o[i] != "mode").collect();
        if kept.len() < o.len() {
            let pick = |w: &[&str]| kept.iter().map(|&i| w[i]).collect::<Vec<_>>().join(" ");
            return format!("{}, was {}", pick(&n), pick(&o));
        }
    }
    format!("{new}, was {old}")
}

/// The differences between an earlier record of a step and now.
fn differences(old: &StepInputs, now: &StepInputs) -> Vec<String> {
    let mut out = Vec::new();
    if old.text != now.text {
        out.push(format!("the instruction changed: {:?}, was {:?}", now.text, old.text));
    }
    let names: std::collections::BTreeSet<&String> = old.args.keys().chain(now.args.keys()).collect();
    for n in names {
        match (old.args.get(n), now.args.get(n)) {
            (Some(a), Some(b)) if a != b => out.push(format!("build arg {n} changed: {b:?}, was {a:?}")),
            (None, Some(b)) => out.push(format!("build arg {n} is set: {b:?}")),
            (Some(a), None) => out.push(format!("build arg {n} is no longer set (was {a:?})")),
            _ => {}
        }
    }
    let before: BTreeMap<&String, &String> = old.inputs.iter().map(|(k, v)| (k, v)).collect();
    let after: BTreeMap<&String, &String> = now.inputs.iter().map(|(k, v)| (k, v)).collect();
    for (k, v) in &after {
        match before.get(k) {
            Some(o) if o != v => out.push(format!("input {k} changed: {}", change(o, v))),
            None => out.push(format!("input {k} is new: {v}")),
            _ => {}
        }
    }
    for (k, o) in &before {
        if !after.contains_key(k) {
            out.push(format!("input {k} is gone (was {o})"));
        }
    }
    out
}
