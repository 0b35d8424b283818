use super::*;

#[test]
fn a_signature_covers_subject_id_and_body() {
    let key = record_key(b"k");
    let sig = sign(&key, "ifox.runs.a.b.completed", "r:completed", b"{}");
    assert!(verify(
        &key,
        "ifox.runs.a.b.completed",
        "r:completed",
        b"{}",
        &sig
    ));
    assert!(!verify(
        &key,
        "ifox.runs.a.c.completed",
        "r:completed",
        b"{}",
        &sig
    ));
    assert!(!verify(
        &key,
        "ifox.runs.a.b.completed",
        "s:completed",
        b"{}",
        &sig
    ));
    assert!(!verify(
        &key,
        "ifox.runs.a.b.completed",
        "r:completed",
        b"{ }",
        &sig
    ));
    assert!(!verify(
        &record_key(b"other"),
        "ifox.runs.a.b.completed",
        "r:completed",
        b"{}",
        &sig
    ));
    assert!(!verify(
        &key,
        "ifox.runs.a.b.completed",
        "r:completed",
        b"{}",
        "garbage!"
    ));
}

#[test]
fn a_transition_reads_back_as_the_change_it_records() {
    let run = RunRef {
        run_id: "r1".into(),
        event_id: "e1".into(),
        org_id: "acme".into(),
        team_id: "web".into(),
        traceparent: None,
        delivery: 2,
    };
    let change = Change {
        run_id: "r1",
        to: "delivering",
        at: 1_700_000_000_123,
        deadline_at: Some(1_700_000_300_000),
        attempt: true,
        delivered_to: Some("http://agent"),
        protocol: Some("ifox"),
        detail: Some("d"),
        ..Change::default()
    };
    let body = serde_json::to_vec(&Transition::of(&run, &change, None)).unwrap();
    let back: Transition = serde_json::from_slice(&body).unwrap();
    let c = back.change().unwrap();
    assert_eq!(
        (
            c.to,
            c.at,
            c.deadline_at,
            c.attempt,
            c.delivered_to.as_deref(),
            c.protocol.as_deref(),
            c.detail.as_deref()
        ),
        (
            "delivering",
            1_700_000_000_123,
            Some(1_700_000_300_000),
            true,
            Some("http://agent"),
            Some("ifox"),
            Some("d")
        )
    );
    let mut queued = back;
    queued.status = "queued".into();
    assert!(queued.change().is_none(), "no transition reaches queued");
}
