//! Where a config's values come from: the YAML file with `${NAME}` interpolated, then
//! `TOLLGATE__SECTION__KEY` variables laid over it.

use super::{ConfigError, err};
use serde_norway::{Mapping, Value};

pub(super) const ENV_PREFIX: &str = "TOLLGATE__";

/// An override's text as YAML: numbers and booleans become typed, lists stay lists, and anything
/// else (including text that happens to look like a mapping) stays a string.
pub(super) fn scalar(text: &str) -> Value {
    if text.is_empty() {
        return Value::String(String::new());
    }
    match serde_norway::from_str::<Value>(text) {
        Ok(v @ (Value::Bool(_) | Value::Number(_) | Value::Sequence(_))) => v,
        _ => Value::String(text.to_string()),
    }
}

pub(super) fn set_path(root: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let mut node = root;
    for (i, key) in path.iter().enumerate() {
        if node.is_null() {
            *node = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(map) = node else {
            return Err(format!("{} is not a section", path[..i].join(".")));
        };
        let k = Value::String(key.clone());
        if i + 1 == path.len() {
            map.insert(k, value);
            return Ok(());
        }
        node = map.entry(k).or_insert(Value::Null);
    }
    Ok(())
}

/// Replaces `${NAME}` in every string of the file with the environment variable NAME.
pub(super) fn interpolate(
    node: &mut Value,
    at: &str,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    match node {
        Value::String(s) if s.contains("${") => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                let end = after.find('}').ok_or_else(|| err(at, "unclosed ${"))?;
                let name = &after[..end];
                let value = lookup(name)
                    .ok_or_else(|| err(at, format!("environment variable {name} is not set")))?;
                out.push_str(&value);
                rest = &after[end + 1..];
            }
            out.push_str(rest);
            *s = out;
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = k.as_str().unwrap_or("?");
                let path = if at.is_empty() {
                    key.to_string()
                } else {
                    format!("{at}.{key}")
                };
                interpolate(v, &path, lookup)?;
            }
        }
        Value::Sequence(seq) => {
            for (i, v) in seq.iter_mut().enumerate() {
                interpolate(v, &format!("{at}[{i}]"), lookup)?;
            }
        }
        _ => {}
    }
    Ok(())
}
