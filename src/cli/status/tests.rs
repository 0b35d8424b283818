use super::*;

fn stream(name: &str, replicas: usize, leader: Option<&str>, peers: Vec<Peer>) -> StreamStatus {
    StreamStatus {
        name: name.into(),
        present: true,
        replicas,
        leader: leader.map(str::to_owned),
        peers,
        ..StreamStatus::default()
    }
}

fn peer(name: &str, current: bool, offline: bool, lag: u64) -> Peer {
    Peer {
        name: name.into(),
        current,
        offline,
        lag,
        active_ms: 10,
    }
}

#[test]
fn dead_letter_subjects_give_stage_and_reason() {
    assert_eq!(
        dead_letter_key("ifox.deadletter.router.no_route"),
        Some(("router", "no_route"))
    );
    assert_eq!(dead_letter_key("ifox.deadletter.router"), None);
    assert_eq!(dead_letter_key("ifox.deadletter.a.b.c"), None);
    assert_eq!(dead_letter_key("ifox.events.a.b"), None);
}

#[test]
fn a_healthy_installation_has_no_problem() {
    let s = assess(Status {
        streams: vec![
            stream(
                "EVENTS",
                3,
                Some("n1"),
                vec![peer("n2", true, false, 0), peer("n3", true, false, 0)],
            ),
            stream("RUNS", 1, None, vec![]),
        ],
        ..Status::default()
    });
    assert!(s.healthy, "{:?}", s.problems);
}

#[test]
fn replica_loss_lag_missing_streams_and_failed_provisioning_are_problems() {
    let s = assess(Status {
        streams: vec![
            stream(
                "EVENTS",
                3,
                Some("n1"),
                vec![peer("n2", false, false, 42), peer("n3", false, true, 0)],
            ),
            stream("AGENT_RUNS", 3, None, vec![]),
            stream("PROVISION", 3, Some("n1"), vec![peer("n2", true, false, 0)]),
            StreamStatus {
                name: "RUNS".into(),
                ..StreamStatus::default()
            },
        ],
        provision_runs_not_succeeded: vec![
            ProvisionRun {
                run_id: "r1".into(),
                org: "acme".into(),
                team: "sre".into(),
                status: "failed".into(),
                ..ProvisionRun::default()
            },
            ProvisionRun {
                run_id: "r2".into(),
                org: "acme".into(),
                team: "db".into(),
                status: "running".into(),
                ..ProvisionRun::default()
            },
        ],
        unavailable: vec!["database: refused".into()],
        ..Status::default()
    });
    assert!(!s.healthy);
    assert_eq!(
        s.problems,
        [
            "unavailable: database: refused",
            "stream EVENTS: replica n2 lagging by 42 operations",
            "stream EVENTS: replica n3 offline",
            "stream AGENT_RUNS: no leader",
            "stream PROVISION: 2 of 3 replicas",
            "stream RUNS is missing (ifox streams apply)",
            "provisioning of acme/sre failed (run r1)",
        ]
    );
    let text = render(&s);
    assert!(text.starts_with("health: PROBLEMS"));
    assert!(
        text.contains("n2 lag 42") && text.contains("n3 offline"),
        "{text}"
    );
    assert!(text.contains("RUNS         missing"), "{text}");
}
