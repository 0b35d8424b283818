//! Issue 13, finding 8, played as the attacker: a publisher with permission on `ifox.events.>` sets
//! `Ifox-Replay-Of` / `Ifox-Replay-Force` itself, to force extra runs of another team's event or to
//! collapse a coming event onto an old run. The router refuses replay headers that `ifox replay` did
//! not sign: the event becomes an `invalid_event` dead letter.

use crate::ingest_fixtures::Stack;
use crate::router_fixtures::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn forged_replay_headers_are_dead_lettered_and_make_no_run() {
    let stack = Stack::start().await;
    tenants(&stack.app, &[("checkout", "github_repos", "acme/checkout")]).await;
    github_event(&stack.js, "orig-1", "acme/checkout", &[]).await;
    last_on(
        &stack.js,
        "AGENT_RUNS",
        "ifox.agent.shared.acme.checkout",
        WAIT,
    )
    .await;
    drained(&stack.js, WAIT).await;
    assert_eq!(runs_recorded(&stack.app, &stack.js).await, 1);

    // A forced "replay" without a signature, then one with a made-up signature.
    let forged: [&[(&str, &str)]; 2] = [
        &[("Ifox-Replay-Of", "orig-1"), ("Ifox-Replay-Force", "true")],
        &[
            ("Ifox-Replay-Of", "orig-1"),
            ("Ifox-Replay-Force", "true"),
            ("Ifox-Replay-Sig", "00ff"),
        ],
    ];
    for (i, extra) in forged.iter().enumerate() {
        github_event(&stack.js, &format!("forged-{i}"), "acme/checkout", extra).await;
    }
    // A plain replay-of naming an event that was never dispatched (to pre-empt its run).
    github_event(
        &stack.js,
        "forged-3",
        "acme/checkout",
        &[("Ifox-Replay-Of", "future-1")],
    )
    .await;
    drained(&stack.js, WAIT).await;
    assert_eq!(
        runs_recorded(&stack.app, &stack.js).await,
        1,
        "no forged run"
    );
    let dl = last_on(
        &stack.js,
        "DEADLETTER",
        "ifox.deadletter.router.invalid_event",
        WAIT,
    )
    .await;
    assert_eq!(
        header(&dl, "Ifox-DL-Detail").as_deref(),
        Some("unsigned replay header")
    );
    assert_eq!(stream_count(&stack.js, "DEADLETTER").await, 3);
}
