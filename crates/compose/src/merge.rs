//! Normalising a file's short forms and merging files in order, as compose does: mappings
//! merge key by key, a later scalar wins, sequences append what is new, secret grants
//! merge by `source`; `!reset` removes a key and `!override` replaces it whole.

use serde_yaml_ng::value::Tag;
use serde_yaml_ng::{Mapping, Value};

/// Rewrites short forms so files merge and deserialise one way: `build: DIR` becomes
/// `{context: DIR}`, `KEY=VALUE` lists become mappings, `- name` grants become
/// `{source: name}`.
pub(crate) fn normalize(doc: &mut Value) {
    let Some(Value::Mapping(services)) = doc.get_mut("services") else {
        return;
    };
    for (_, service) in services.iter_mut() {
        grants_to_long_form(service);
        let Some(build) = service.get_mut("build") else {
            continue;
        };
        if let Value::String(context) = build {
            let mut long = Mapping::new();
            long.insert("context".into(), Value::String(std::mem::take(context)));
            *build = Value::Mapping(long);
        }
        for key in ["args", "labels", "additional_contexts"] {
            if let Some(list) = build.get_mut(key) {
                list_to_mapping(list);
            }
        }
        grants_to_long_form(build);
    }
}

/// `[A=1, B]` as `{A: "1", B: null}`.
fn list_to_mapping(value: &mut Value) {
    let Value::Sequence(items) = value else {
        return;
    };
    let mut map = Mapping::new();
    for item in items.iter() {
        let text = match item {
            Value::String(s) => s.clone(),
            other => crate::schema::key_text(other),
        };
        let (key, val) = match text.split_once('=') {
            Some((k, v)) => (k.to_owned(), Value::String(v.to_owned())),
            None => (text, Value::Null),
        };
        map.insert(Value::String(key), val);
    }
    *value = Value::Mapping(map);
}

fn grants_to_long_form(holder: &mut Value) {
    let Some(Value::Sequence(items)) = holder.get_mut("secrets") else {
        return;
    };
    for item in items.iter_mut() {
        if let Value::String(name) = item {
            let mut long = Mapping::new();
            long.insert("source".into(), Value::String(std::mem::take(name)));
            *item = Value::Mapping(long);
        }
    }
}

/// Merges `over` (a later file) into `base`.
pub(crate) fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(base), Value::Mapping(over)) => {
            for (key, value) in over {
                merge_entry(base, key, value);
            }
        }
        (Value::Sequence(base), Value::Sequence(over)) => {
            for item in over.into_iter().filter_map(clean) {
                append(base, item);
            }
        }
        (base, over) => {
            if let Some(value) = clean(over) {
                *base = value;
            }
        }
    }
}

fn merge_entry(base: &mut Mapping, key: Value, value: Value) {
    if let Value::Tagged(tagged) = &value {
        if tagged.tag == Tag::new("reset") {
            base.remove(&key);
            return;
        }
        if tagged.tag == Tag::new("override") {
            if let Some(v) = clean(value) {
                base.insert(key, v);
            }
            return;
        }
    }
    match base.get_mut(&key) {
        Some(existing) => merge(existing, value),
        None => {
            if let Some(v) = clean(value) {
                base.insert(key, v);
            }
        }
    }
}

/// A sequence item joins unless already there; a grant replaces the one of its source.
fn append(base: &mut Vec<Value>, item: Value) {
    let source = |v: &Value| v.get("source").cloned();
    if let Some(src) = source(&item)
        && let Some(slot) = base.iter_mut().find(|b| source(b).as_ref() == Some(&src))
    {
        *slot = item;
    } else if !base.contains(&item) {
        base.push(item);
    }
}

/// `value` without merge tags: `!reset` entries dropped, `!override` unwrapped.
fn clean(value: Value) -> Option<Value> {
    match value {
        Value::Tagged(tagged) if tagged.tag == Tag::new("reset") => None,
        Value::Tagged(tagged) if tagged.tag == Tag::new("override") => clean(tagged.value),
        Value::Mapping(map) => Some(Value::Mapping(
            map.into_iter()
                .filter_map(|(k, v)| clean(v).map(|v| (k, v)))
                .collect(),
        )),
        Value::Sequence(items) => Some(Value::Sequence(
            items.into_iter().filter_map(clean).collect(),
        )),
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(yaml: &str) -> Value {
        let mut v: Value = serde_yaml_ng::from_str(yaml).unwrap();
        normalize(&mut v);
        v
    }

    #[test]
    fn override_file_merges_as_compose() {
        let mut base = Value::Mapping(Mapping::new());
        merge(
            &mut base,
            doc(
                "services:\n  app:\n    build:\n      context: .\n      args: [A=1, B=2]\n      tags: [x]\n      secrets: [s, {source: t, target: one}]\n",
            ),
        );
        merge(
            &mut base,
            doc(
                "services:\n  app:\n    build:\n      args: {B: 3, C: 4}\n      tags: [x, y]\n      secrets: [{source: t, target: two}]\n      target: prod\n",
            ),
        );
        let want = doc(
            "services:\n  app:\n    build:\n      context: .\n      args: {A: '1', B: 3, C: 4}\n      tags: [x, y]\n      secrets: [{source: s}, {source: t, target: two}]\n      target: prod\n",
        );
        assert_eq!(base, want);
    }

    #[test]
    fn reset_and_override_tags() {
        let mut base =
            doc("services:\n  app:\n    build: {context: ., args: {A: '1'}, tags: [x]}\n");
        merge(
            &mut base,
            doc(
                "services:\n  app:\n    build:\n      args: !override {B: '2'}\n      tags: !reset []\n",
            ),
        );
        assert_eq!(
            base,
            doc("services:\n  app:\n    build: {context: ., args: {B: '2'}}\n")
        );
    }

    #[test]
    fn short_forms_become_long() {
        assert_eq!(
            doc(
                "services:\n  a:\n    build: ./dir\n  b:\n    build: {args: [K, V=x=y], secrets: [n]}\n"
            ),
            doc(
                "services:\n  a:\n    build: {context: ./dir}\n  b:\n    build: {args: {K: null, V: x=y}, secrets: [{source: n}]}\n"
            )
        );
    }
}
