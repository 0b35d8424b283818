use super::*;

#[test]
fn the_embedded_streams_are_exactly_the_files_in_the_streams_folder() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("streams");
    let from_dir: Vec<_> = StreamSpec::load_dir(&dir)
        .unwrap()
        .into_iter()
        .map(|s| s.config)
        .collect();
    let mut embedded: Vec<_> = StreamSpec::embedded()
        .unwrap()
        .into_iter()
        .map(|s| s.config)
        .collect();
    embedded.sort_by_key(|c| c["name"].as_str().map(str::to_lowercase));
    let mut from_dir_sorted = from_dir;
    from_dir_sorted.sort_by_key(|c| c["name"].as_str().map(str::to_lowercase));
    assert_eq!(embedded, from_dir_sorted);
}

#[test]
fn every_stream_of_the_design_is_declared_with_its_subjects() {
    let specs = StreamSpec::embedded().unwrap();
    let subjects = |name: &str| {
        specs
            .iter()
            .find(|s| s.name() == name)
            .map(|s| s.config["subjects"].clone())
    };
    assert_eq!(subjects("EVENTS"), Some(json!(["ifox.events.>"])));
    assert_eq!(subjects("AGENT_RUNS"), Some(json!(["ifox.agent.>"])));
    assert_eq!(subjects("PROVISION"), Some(json!(["ifox.provision.>"])));
    assert_eq!(subjects("DEADLETTER"), Some(json!(["ifox.deadletter.>"])));
    assert_eq!(subjects("RUNS"), Some(json!(["ifox.runs.>"])));
}

#[test]
fn the_events_duplicate_window_covers_two_days_of_provider_retries() {
    let events = StreamSpec::embedded()
        .unwrap()
        .into_iter()
        .find(|s| s.name() == "EVENTS")
        .unwrap();
    let ns = |v: &Value| v.as_u64().unwrap();
    assert!(ns(&events.config["duplicate_window"]) >= 48 * 3600 * 1_000_000_000);
    assert!(ns(&events.config["max_age"]) >= ns(&events.config["duplicate_window"]));
}

#[test]
fn a_file_without_subjects_or_with_a_dotted_name_is_refused() {
    assert!(StreamSpec::parse("x", r#"{"name": "A"}"#).is_err());
    assert!(StreamSpec::parse("x", r#"{"name": "A.B", "subjects": ["a"]}"#).is_err());
    assert!(StreamSpec::parse("x", "[]").is_err());
}

#[test]
fn drift_is_judged_only_on_the_keys_the_file_sets() {
    let live = json!({"name": "A", "subjects": ["a.>"], "max_age": 5, "max_msgs": -1})
        .as_object()
        .unwrap()
        .clone();
    let same = json!({"name": "A", "subjects": ["a.>"], "max_age": 5})
        .as_object()
        .unwrap()
        .clone();
    assert!(changes(&live, &same).is_empty());
    let longer = json!({"name": "A", "max_age": 9, "allow_direct": true})
        .as_object()
        .unwrap()
        .clone();
    let c = changes(&live, &longer);
    assert_eq!(c.len(), 2);
    assert_eq!(
        (c[0].field.as_str(), &c[0].live),
        ("allow_direct", &Value::Null)
    );
    assert_eq!((c[1].field.as_str(), &c[1].desired), ("max_age", &json!(9)));
}

#[test]
fn a_replica_override_replaces_the_files_value_and_zero_keeps_it() {
    let spec = StreamSpec::embedded().unwrap().remove(0);
    assert_eq!(
        spec.clone().with_replicas(0).config["num_replicas"],
        json!(1)
    );
    assert_eq!(spec.with_replicas(3).config["num_replicas"], json!(3));
}
