//! `--format` templates as Docker has them: Go's text/template (by the
//! `gtmpl` crate) over the same fields Docker's JSON output uses, with
//! Docker's extra functions (`json`, `join`, `split`, `upper`, `lower`,
//! `title`, `truncate`, `pad`), `\t` and `\n` escapes, and the `table`
//! prefix (a header row of the fields' names, columns aligned as Docker's
//! tabwriter does).
//!
//! The functions are written here because they are Docker's, not Go's:
//! gtmpl has Go's builtins only.

use anyhow::{anyhow, bail, Result};
use gtmpl::{Context, FuncError, Template as Gtmpl, Value};

/// A parsed `--format`.
pub(crate) struct Template {
    inner: Gtmpl,
    source: String,
    table: bool,
}

fn to_gtmpl(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::from(i),
            (_, Some(u), _) => Value::from(u),
            (_, _, Some(f)) => Value::from(f),
            _ => Value::Nil,
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(to_gtmpl).collect()),
        // Objects, as Go structs: a field that is not there is an error, not "<no value>".
        serde_json::Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), to_gtmpl(v))).collect()),
    }
}

fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Number(n) => {
            let text = n.to_string();
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        }
        Value::Array(a) => serde_json::Value::Array(a.iter().map(to_json).collect()),
        Value::Object(o) | Value::Map(o) => {
            let sorted: std::collections::BTreeMap<&String, serde_json::Value> =
                o.iter().map(|(k, v)| (k, to_json(v))).collect();
            serde_json::to_value(sorted).unwrap_or_default()
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn one<'a>(name: &str, args: &'a [Value]) -> Result<&'a Value, FuncError> {
    args.first().ok_or_else(|| FuncError::ExactlyXArgs(name.into(), 1))
}

fn json(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(serde_json::to_string(&to_json(one("json", args)?)).unwrap_or_default()))
}

fn upper(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(text(one("upper", args)?).to_uppercase()))
}

fn lower(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(text(one("lower", args)?).to_lowercase()))
}

fn title(args: &[Value]) -> Result<Value, FuncError> {
    let s = text(one("title", args)?);
    let mut out = String::new();
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    Ok(Value::String(out))
}

fn join(args: &[Value]) -> Result<Value, FuncError> {
    let (Some(Value::Array(items)), Some(sep)) = (args.first(), args.get(1)) else {
        return Err(FuncError::Generic("join wants a list and a separator".into()));
    };
    Ok(Value::String(items.iter().map(text).collect::<Vec<_>>().join(&text(sep))))
}

fn split(args: &[Value]) -> Result<Value, FuncError> {
    let (Some(s), Some(sep)) = (args.first(), args.get(1)) else {
        return Err(FuncError::ExactlyXArgs("split".into(), 2));
    };
    Ok(Value::Array(text(s).split(text(sep).as_str()).map(|p| Value::String(p.to_string())).collect()))
}

fn truncate(args: &[Value]) -> Result<Value, FuncError> {
    let (Some(s), Some(n)) = (args.first(), args.get(1)) else {
        return Err(FuncError::ExactlyXArgs("truncate".into(), 2));
    };
    let n: usize = text(n).parse().map_err(|_| FuncError::Generic("truncate wants a length".into()))?;
    Ok(Value::String(text(s).chars().take(n).collect()))
}

fn pad(args: &[Value]) -> Result<Value, FuncError> {
    let (Some(s), Some(l), Some(r)) = (args.first(), args.get(1), args.get(2)) else {
        return Err(FuncError::ExactlyXArgs("pad".into(), 3));
    };
    let n = |v: &Value| text(v).parse::<usize>().unwrap_or(0);
    Ok(Value::String(format!("{}{}{}", " ".repeat(n(l)), text(s), " ".repeat(n(r)))))
}

/// A value printed as Go's fmt prints it (`[a b]`, `map[k:v]`); gtmpl
/// prints arrays and maps in Rust's debug form. A null prints as `[]`:
/// in Docker's JSON a null is almost always a nil slice (Entrypoint, Cmd,
/// Dns, ...), which Go prints so.
fn go_text(v: &Value) -> String {
    match v {
        Value::NoValue => "<no value>".into(),
        Value::Nil => "[]".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_text).collect::<Vec<_>>().join(" ")),
        Value::Object(o) | Value::Map(o) => {
            let sorted: std::collections::BTreeMap<&String, &Value> = o.iter().collect();
            let items: Vec<String> = sorted.into_iter().map(|(k, v)| format!("{k}:{}", go_text(v))).collect();
            format!("map[{}]", items.join(" "))
        }
        other => other.to_string(),
    }
}

/// The entries of a map in Go's range order (keys sorted), or an array's.
fn sorted_entries(v: &Value) -> Vec<(Value, Value)> {
    match v {
        Value::Object(o) | Value::Map(o) => {
            let sorted: std::collections::BTreeMap<&String, &Value> = o.iter().collect();
            sorted.into_iter().map(|(k, v)| (Value::String(k.clone()), v.clone())).collect()
        }
        Value::Array(a) => a.iter().enumerate().map(|(i, v)| (Value::from(i as u64), v.clone())).collect(),
        _ => Vec::new(),
    }
}

/// `rangevalues X`: X's values in Go's range order (gtmpl ranges over a
/// map in hash order; Go sorts the keys).
fn rangevalues(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::Array(sorted_entries(one("rangevalues", args)?).into_iter().map(|(_, v)| v).collect()))
}

/// `rangekeys X`: X's keys (or indexes) in Go's range order.
fn rangekeys(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::Array(sorted_entries(one("rangekeys", args)?).into_iter().map(|(k, _)| k).collect()))
}

/// A `range` action (braces and trim markers included) in Go's order:
/// `range P` ranges over `rangevalues (P)`; with `$k, $v :=` the keys are
/// taken before the range (inside it, dot is the element) into a variable
/// named by `n`, and `$k` is set from it at the top of each iteration.
fn ordered_range(inner: &str, lead: &str, trail: &str, n: usize) -> String {
    let pipe = inner.trim_start().strip_prefix("range").unwrap_or(inner).trim();
    let (vars, pipe) = match pipe.split_once(":=") {
        Some((vars, p)) if vars.trim_start().starts_with('$') => (Some(vars.trim()), p.trim()),
        _ => (None, pipe),
    };
    match vars.map(|v| v.split(',').map(str::trim).collect::<Vec<_>>()) {
        None => format!("{{{{{lead} range rangevalues ({pipe}) {trail}}}}}"),
        Some(v) if v.len() == 1 => format!("{{{{{lead} range {} := rangevalues ({pipe}) {trail}}}}}", v[0]),
        Some(v) => format!(
            "{{{{{lead} $strata_k{n} := rangekeys ({pipe}) }}}}{{{{range $strata_i{n}, {v1} := rangevalues ({pipe}) }}}}\
             {{{{{k} := index $strata_k{n} $strata_i{n} {trail}}}}}",
            k = v[0],
            v1 = v[1]
        ),
    }
}

fn gofmt(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(go_text(one("gofmt", args)?)))
}

/// Every action that prints a value goes through `gofmt`: `{{P}}` becomes
/// `{{gofmt (P)}}`; `range` goes in Go's order ([`ordered_range`]); other
/// control actions (`if`, `end`, ...), variable declarations and comments
/// are left as they are.
fn print_through_gofmt(source: &str) -> Result<String> {
    const CONTROL: [&str; 10] =
        ["if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"];
    let mut out = String::with_capacity(source.len() + 16);
    let mut rest = source;
    let mut ranges = 0;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let body_start = open + 2;
        // The action's end: the first `}}` outside a string literal.
        let (mut i, mut quote, bytes) = (body_start, None::<u8>, rest.as_bytes());
        while i < bytes.len() {
            match (quote, bytes[i]) {
                (Some(_), b'\\') => i += 1,
                (Some(q), c) if c == q => quote = None,
                (None, c @ (b'"' | b'`' | b'\'')) => quote = Some(c),
                (None, b'}') if bytes.get(i + 1) == Some(&b'}') => break,
                _ => {}
            }
            i += 1;
        }
        if i >= bytes.len() {
            bail!("unclosed action at {:?}", &rest[open..]);
        }
        let body = &rest[body_start..i];
        let (lead, inner) = match body.strip_prefix('-') {
            Some(b) if b.starts_with(char::is_whitespace) => ("-", b),
            _ => ("", body),
        };
        let (inner, trail) = match inner.strip_suffix('-') {
            Some(b) if b.ends_with(char::is_whitespace) => (b, "-"),
            _ => (inner, ""),
        };
        let word = inner.trim_start().split(|c: char| c.is_whitespace() || c == '(').next().unwrap_or("");
        let declares = inner.trim_start().starts_with('$') && (inner.contains(":=") || inner.contains(" = "));
        let keep =
            inner.trim().is_empty() || CONTROL.contains(&word) || inner.trim_start().starts_with("/*") || declares;
        if word == "range" {
            ranges += 1;
            out.push_str(&ordered_range(inner, lead, trail, ranges));
        } else if keep {
            out.push_str(&rest[open..i + 2]);
        } else {
            out.push_str(&format!("{{{{{lead} gofmt ({}) {trail}}}}}", inner.trim()));
        }
        rest = &rest[i + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `label ROW KEY`: the value of one label of a `ps`, `volume ls` or
/// `network ls` row, whose `Labels` is a map or Docker's `k=v,k2=v2` text
/// (a piece without `=` continues the previous value: `a=x,y` is a: "x,y").
fn label(args: &[Value]) -> Result<Value, FuncError> {
    let [row, key] = args else {
        return Err(FuncError::ExactlyXArgs("label".into(), 2));
    };
    let key = text(key);
    let labels = match row {
        Value::Object(o) | Value::Map(o) => o.get("Labels").cloned().unwrap_or(Value::Nil),
        _ => Value::Nil,
    };
    let found = match labels {
        Value::Object(m) | Value::Map(m) => m.get(&key).map(text),
        Value::String(s) => {
            let mut pairs: Vec<(String, String)> = Vec::new();
            for piece in s.split(',').filter(|p| !p.is_empty()) {
                match (piece.split_once('='), pairs.last_mut()) {
                    (None, Some((_, v))) => {
                        v.push(',');
                        v.push_str(piece);
                    }
                    (Some((k, v)), _) => pairs.push((k.to_string(), v.to_string())),
                    (None, None) => pairs.push((piece.to_string(), String::new())),
                }
            }
            pairs.into_iter().find(|(k, _)| *k == key).map(|(_, v)| v)
        }
        _ => None,
    };
    Ok(Value::String(found.unwrap_or_default()))
}

/// Docker's rows have a method `.Label "KEY"`; gtmpl calls no methods
/// with arguments, so `X.Label "KEY"` becomes `(label X "KEY")` (X is `.`
/// or a variable) before parsing.
fn rewrite_label_calls(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(i) = rest.find(".Label ") {
        let (before, after) = rest.split_at(i);
        // The receiver: a variable (`$c`) just before, else dot.
        let var_start = before.rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$')).map_or(0, |j| j + 1);
        let receiver = &before[var_start..];
        let arg = after[".Label ".len()..].trim_start();
        let lit_len = arg.strip_prefix('"').and_then(|a| {
            let mut escaped = false;
            a.char_indices().find(|&(_, c)| {
                let end = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                end
            })
        });
        match lit_len {
            Some((end, _)) if receiver.is_empty() || receiver.starts_with('$') => {
                out.push_str(&before[..var_start]);
                let recv = if receiver.is_empty() { "." } else { receiver };
                out.push_str(&format!("(label {recv} {})", &arg[..end + 2]));
                rest = &arg[end + 2..];
            }
            _ => {
                out.push_str(&rest[..i + ".Label ".len()]);
                rest = &rest[i + ".Label ".len()..];
            }
        }
    }
    out.push_str(rest);
    out
}

impl Template {
    /// Parse a `--format` value that is neither `json` nor `table` alone.
    pub(crate) fn parse(format: &str) -> Result<Self> {
        let (table, body) = match format.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => (true, rest.trim_start()),
            _ => (false, format),
        };
        let source = body.replace("\\t", "\t").replace("\\n", "\n");
        let rewritten = print_through_gofmt(&rewrite_label_calls(&source))
            .map_err(|e| anyhow!("invalid --format {format:?}: {e}"))?;
        let mut inner = Gtmpl::default();
        for (name, f) in [
            ("json", json as gtmpl::Func),
            ("upper", upper),
            ("lower", lower),
            ("title", title),
            ("join", join),
            ("split", split),
            ("truncate", truncate),
            ("pad", pad),
            ("label", label),
            ("gofmt", gofmt),
            ("rangevalues", rangevalues),
            ("rangekeys", rangekeys),
        ] {
            inner.add_func(name, f);
        }
        inner.parse(&rewritten).map_err(|e| anyhow!("invalid --format {format:?}: {e}"))?;
        Ok(Template { inner, source, table })
    }

    /// One value rendered.
    pub(crate) fn render(&self, v: &serde_json::Value) -> Result<String> {
        self.inner.render(&Context::from(to_gtmpl(v))).map_err(|e| {
            // gtmpl names the missing field, then prints the whole object: keep the name.
            let msg = e.to_string();
            let msg = msg.split(" for {").next().unwrap_or(&msg).to_string();
            anyhow!("--format {:?}: {msg}", self.source)
        })
    }

    /// Print one line per value; with `table`, a header row first
    /// (`headers` maps field names to Docker's column titles) and aligned columns.
    pub(crate) fn print(&self, values: &[serde_json::Value], headers: &[(&str, &str)]) -> Result<()> {
        let mut lines = Vec::new();
        for v in values {
            lines.push(self.render(v)?);
        }
        if !self.table {
            for l in lines {
                println!("{l}");
            }
            return Ok(());
        }
        let header = header_of(&self.source, headers);
        let rows: Vec<Vec<String>> =
            std::iter::once(header).chain(lines).map(|l| l.split('\t').map(str::to_string).collect()).collect();
        print!("{}", align(&rows));
        Ok(())
    }
}

/// The header row of a table format: each `{{.Field}}` becomes its title.
fn header_of(source: &str, headers: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else { break };
        let action = rest[start + 2..start + end].trim();
        let field = action.strip_prefix('.').unwrap_or(action);
        let title = headers
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, t)| t.to_string())
            .unwrap_or_else(|| field.to_ascii_uppercase());
        out.push_str(&title);
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// Columns as Docker's tabwriter sets them (minimum width 10, padding 3).
fn align(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..cols).map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        for (c, cell) in r.iter().enumerate() {
            if c + 1 < r.len() {
                let w = (widths[c] + 3).max(10);
                out.push_str(&format!("{cell:<w$}"));
            } else {
                out.push_str(cell);
            }
        }
        out.push('\n');
    }
    out
}

/// `--format` as the listing commands take it: `table` (the default
/// table), `json` (one object per line), or a template.
pub(crate) enum Format {
    /// The command's own table.
    Table,
    /// One JSON object per line.
    Json,
    /// A template.
    Template(Template),
}

impl Format {
    pub(crate) fn parse(format: &str) -> Result<Self> {
        match format {
            "" | "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            t if t.contains("{{") => Ok(Format::Template(Template::parse(t)?)),
            other => bail!("unknown format {other:?}: want table, json or a Go template"),
        }
    }
}

/// `inspect` of several names, as Docker's: each found one printed (a
/// JSON array, or through `--format`), each missing one an error on
/// stderr, exit 1 if any was.
pub(crate) fn inspect_each(
    names: &[String],
    format: Option<&str>,
    lookup: impl Fn(&str) -> strata::Result<serde_json::Value>,
) -> Result<std::process::ExitCode> {
    let mut out = Vec::new();
    let mut failed = false;
    for n in names {
        match lookup(n) {
            Ok(v) => out.push(v),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    print_inspect(&out, format)?;
    Ok(if failed { std::process::ExitCode::from(1) } else { std::process::ExitCode::SUCCESS })
}

/// `inspect`'s output: a JSON array, or each object through `--format`.
pub(crate) fn print_inspect(values: &[serde_json::Value], format: Option<&str>) -> Result<()> {
    match format {
        None | Some("") => println!("{}", serde_json::to_string_pretty(values)?),
        Some("json") => values.iter().for_each(|v| println!("{v}")),
        Some(t) => {
            let t = Template::parse(t)?;
            for v in values {
                println!("{}", t.render(v)?);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_functions_and_tables_render_as_docker_s() {
        let v = serde_json::json!({"ID": "abc", "Names": "web", "Labels": {"a": "1"}, "Ports": ["80", "443"]});
        let r = |f: &str| Template::parse(f).unwrap().render(&v).unwrap();
        assert_eq!(r("{{.ID}}\\t{{.Names}}"), "abc\tweb");
        assert_eq!(r("{{json .Labels}}"), r#"{"a":"1"}"#);
        assert_eq!(r("{{join .Ports \",\"}}"), "80,443");
        assert_eq!(r("{{upper .Names}} {{index .Labels \"a\"}} {{range .Ports}}[{{.}}]{{end}}"), "WEB 1 [80][443]");
        assert_eq!(header_of("{{.ID}}\t{{.Names}}", &[("ID", "CONTAINER ID")]), "CONTAINER ID\tNAMES");
        let row = serde_json::json!({"Labels": "tier=db,x=,list=a,b"});
        let r2 = |f: &str| Template::parse(f).unwrap().render(&row).unwrap();
        assert_eq!(r2(r#"{{.Label "tier"}}|{{.Label "x"}}|{{.Label "list"}}|{{.Label "none"}}"#), "db||a,b|");
        assert_eq!(r2(r#"{{with $r := .}}{{$r.Label "tier" | upper}}{{end}}"#), "DB");
        assert_eq!(r(r#"{{.Label "a"}}"#), "1");
        let env = serde_json::json!({"Env": ["A=1", "B=2"], "None": null, "M": {"b": "2", "a": "1"}});
        let r3 = |f: &str| Template::parse(f).unwrap().render(&env).unwrap();
        assert_eq!(r3("{{.Env}} {{.None}} {{.M}}"), "[A=1 B=2] [] map[a:1 b:2]");
        assert_eq!(
            r3("{{- range $i, $e := .Env -}} {{$i}}:{{$e}} {{- end}} {{if .Env}}y{{else}}n{{end}}"),
            "0:A=11:B=2 y"
        );
        assert_eq!(r3("{{/* c */}}{{$x := \"}}\"}}{{$x}}{{\"a}}b\" | upper}}"), "}}A}}B");
        let many =
            serde_json::json!({"L": {"d": "4", "b": "2", "a": "1", "c": "3", "e": "5"}, "A": ["x", "y"], "N": null});
        let r4 = |f: &str| Template::parse(f).unwrap().render(&many).unwrap();
        assert_eq!(r4("{{range $k, $v := .L}}{{$k}}={{$v}}{{.}};{{end}}"), "a=11;b=22;c=33;d=44;e=55;");
        assert_eq!(
            r4("{{range .L}}{{.}}{{end}} {{range $v := .A}}{{$v}}{{end}} {{range $i, $e := .A}}{{$i}}{{$e}}{{end}}"),
            "12345 xy 0x1y"
        );
        assert_eq!(r4("{{range .N}}x{{else}}none{{end}}"), "none");
        assert!(Template::parse("{{").is_err());
        assert!(Template::parse("{{.Nope}}").unwrap().render(&v).is_err());
    }
}
