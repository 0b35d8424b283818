//! Target `stream_files`: the loaders of `streams/*.json` (`bus::streams::StreamSpec`) and
//! `streams/consumers/*.json` (`bus::consumer::ConsumerDef`), fed the committed files changed in
//! every way, and any text.

use crate::common::{json_value, key, text};
use ifox::bus::consumer::{BRIDGE, ConsumerDef, ConsumerError, PROVISIONER, ROUTER};
use ifox::bus::streams::{StreamError, StreamSpec};
use proptest::prelude::*;
use serde_json::{Map, Value};

const CONSUMERS: [ConsumerDef; 3] = [ROUTER, PROVISIONER, BRIDGE];

/// One of the committed files as a JSON object, with members set to anything or removed.
fn changed(files: Vec<Map<String, Value>>) -> impl Strategy<Value = String> {
    let edit = prop::collection::vec((key_near(), prop::option::of(json_value())), 0..4);
    (prop::sample::select(files), edit, any::<bool>()).prop_map(|(mut file, edits, compact)| {
        for (k, v) in edits {
            match v {
                Some(v) => file.insert(k, v),
                None => file.remove(&k),
            };
        }
        let v = Value::Object(file);
        if compact {
            v.to_string()
        } else {
            serde_json::to_string_pretty(&v).expect("json")
        }
    })
}

/// Member names of the files (so edits hit what the loaders read), or any.
fn key_near() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "name", "subjects", "durable_name", "max_deliver", "ack_wait", "filter_subject",
            "deliver_policy", "ack_policy", "max_ack_pending", "num_replicas", "max_age",
        ])
        .prop_map(str::to_owned),
        1 => key(),
    ]
}

fn stream_files() -> Vec<Map<String, Value>> {
    StreamSpec::embedded()
        .expect("the committed stream files")
        .iter()
        .map(|s| s.config().clone())
        .collect()
}

fn consumer_files() -> Vec<Map<String, Value>> {
    CONSUMERS
        .iter()
        .map(|d| {
            serde_json::from_str(d.json).expect("the committed consumer files are JSON objects")
        })
        .collect()
}

/// Text a file may hold: a committed file changed, any JSON, or any text.
fn file_text(files: Vec<Map<String, Value>>) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => changed(files),
        1 => json_value().prop_map(|v| v.to_string()),
        1 => text(),
    ]
}

/// A consumer definition of the given text. `ConsumerDef` holds `&'static str` because the real
/// ones are embedded in the binary; a test case's text is leaked to get one (a few hundred bytes
/// per case, freed when the test process ends).
fn consumer(json: String) -> ConsumerDef {
    ConsumerDef {
        json: Box::leak(json.into_boxed_str()),
        ..ROUTER
    }
}

proptest! {
    /// Any text as a stream file loads or gives a typed error (not JSON, or invalid naming the
    /// rule), never a panic; a loaded stream has a name NATS accepts and at least one subject, and
    /// its config is the file's object, member for member.
    #[test]
    fn any_stream_file_loads_or_is_refused(text in file_text(stream_files()), replicas in any::<u8>()) {
        match StreamSpec::parse("props.json", &text) {
            Ok(spec) => {
                let name = spec.name();
                prop_assert!(!name.is_empty() && !name.chars().any(|c| c.is_whitespace() || ".*>/\\".contains(c)));
                let subjects = spec.config().get("subjects").and_then(Value::as_array);
                prop_assert!(subjects.is_some_and(|s| !s.is_empty() && s.iter().all(Value::is_string)));
                let file: Value = serde_json::from_str(&text).expect("it loaded, so it is JSON");
                prop_assert_eq!(Some(spec.config()), file.as_object());
                let replicated = spec.clone().with_replicas(replicas);
                let want = if replicas > 0 { Some(Value::from(replicas)) } else { spec.config().get("num_replicas").cloned() };
                prop_assert_eq!(replicated.config().get("num_replicas").cloned(), want);
                prop_assert_eq!(replicated.name(), name);
            }
            Err(StreamError::Parse { .. } | StreamError::Invalid { .. }) => {}
            Err(other) => prop_assert!(false, "a file cannot fail with {}", other),
        }
    }

    /// parse(render(x)) == x: a loaded stream file written back as JSON loads to the same spec.
    #[test]
    fn a_loaded_stream_file_written_back_loads_the_same(text in changed(stream_files())) {
        if let Ok(spec) = StreamSpec::parse("props.json", &text) {
            let written = Value::Object(spec.config().clone()).to_string();
            prop_assert_eq!(StreamSpec::parse("props.json", &written).ok(), Some(spec));
        }
    }

    /// Any text as a consumer file gives a consumer config or a typed error (not a consumer
    /// definition, or no durable name), never a panic; a loaded one has a durable name, takes a
    /// positive `max_deliver` override and keeps the file's otherwise, and written back as JSON it
    /// loads to the same config.
    #[test]
    fn any_consumer_file_loads_or_is_refused(text in file_text(consumer_files()), max_deliver in -3i64..20) {
        let def = consumer(text);
        match def.config(max_deliver) {
            Ok(config) => {
                prop_assert!(config.durable_name.as_deref().is_some_and(|n| !n.is_empty()));
                let kept = def.config(0).expect("loaded once").max_deliver;
                prop_assert_eq!(config.max_deliver, if max_deliver > 0 { max_deliver } else { kept });
                let written = serde_json::to_string(&config).expect("a config serialises");
                prop_assert_eq!(consumer(written).config(0).ok(), Some(config.clone()));
            }
            Err(ConsumerError::Definition { .. } | ConsumerError::Unnamed { .. }) => {}
            Err(other) => prop_assert!(false, "a file cannot fail with {}", other),
        }
    }
}
