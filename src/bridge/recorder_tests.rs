use super::*;

fn record(status: &str) -> RunRecord {
    let row = runs::RunRow {
        run_id: "r".into(),
        event_id: "e".into(),
        org_id: "acme".into(),
        team_id: "web".into(),
        source: "github".into(),
        event_type: "issues".into(),
        deployment_mode: "shared".into(),
        subject: "ifox.agent.shared.acme.web".into(),
        config_version: String::new(),
        status: status.into(),
        replay_of: None,
        matched: String::new(),
        dispatched_at: None,
        created_at: 0,
        agent_runs_seq: None,
    };
    RunRecord::from(&row)
}

#[test]
fn a_refused_transition_is_acked_only_when_its_run_had_finished() {
    assert_eq!(outcome(true, None), Outcome::Applied);
    for done in ["completed", "failed", "timeout"] {
        assert_eq!(
            outcome(false, Some(&record(done))),
            Outcome::Finished,
            "{done}"
        );
    }
    // Refused, then found live: the record was made between the write and the read (the
    // AGENT_RUNS side); acking it would lose the transition.
    for live in ["queued", "delivering", "running"] {
        assert_eq!(
            outcome(false, Some(&record(live))),
            Outcome::Unknown,
            "{live}"
        );
    }
    assert_eq!(outcome(false, None), Outcome::Unknown);
}
