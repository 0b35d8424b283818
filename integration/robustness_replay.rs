//! The replay's bounds (`limits.replay_events`, `limits.replay_span`), played by an operator who asks
//! for more: nothing is republished and the refusal names the setting.

use crate::support::NatsServer;
use crate::support::app::ADMIN_TOKEN;
use ifox::domain::limits::{Limit, Limits};
use ifox::router::replay::{Options, ReplayError, Selection, replay};
use std::time::{Duration, SystemTime};

/// A nats-server with an EVENTS stream holding `n` GitHub events, and a bus on it.
async fn events(n: usize) -> (NatsServer, ifox::bus::Bus, async_nats::jetstream::Context) {
    let nats = NatsServer::start().await;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.expect("connect"));
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "EVENTS".into(),
        subjects: vec!["ifox.events.>".into()],
        ..Default::default()
    })
    .await
    .expect("EVENTS");
    for i in 0..n {
        let source = if i == 0 { "slack" } else { "github" };
        crate::router_fixtures::publish_event(
            &js,
            source,
            "issues",
            Some(&format!("ev-{i}")),
            &[],
            &[],
            b"{}",
        )
        .await;
    }
    let settings = ifox::settings::Settings::load_from(
        Some(std::path::Path::new("/nonexistent/ifox.toml")),
        [("IFOX__NATS__URL".to_owned(), nats.url())],
    )
    .expect("settings");
    let bus = ifox::bus::Bus::connect(&settings.nats).await.expect("bus");
    (nats, bus, js)
}

#[tokio::test]
async fn a_replay_selecting_more_events_or_a_longer_window_than_allowed_republishes_nothing() {
    let (_nats, bus, js) = events(4).await;
    let key = ifox::domain::replay_sig::key(ADMIN_TOKEN);
    let opts = Options {
        limits: Limits {
            replay_events: 2,
            replay_span: Duration::from_secs(3600),
            ..Limits::default()
        },
        ..Options::default()
    };
    let all = Selection {
        stream: "EVENTS".into(),
        ..Selection::default()
    };
    let stored = crate::router_fixtures::stream_count(&js, "EVENTS").await;
    match replay(&bus, &key, &all, &opts, |_, _| {}).await {
        Err(ReplayError::OverLimit(e)) => {
            assert_eq!((e.limit, e.max, e.value), (Limit::ReplayEvents, 2, 4));
        }
        other => panic!("expected replay_too_large, got {other:?}"),
    }
    // The subject filter and a sequence range count: 3 GitHub events, then 2 of them.
    let github = Selection {
        subject: Some("ifox.events.github.>".into()),
        ..all.clone()
    };
    assert!(matches!(
        replay(&bus, &key, &github, &opts, |_, _| {}).await,
        Err(ReplayError::OverLimit(e)) if e.value == 3
    ));
    let two = Selection {
        start_seq: Some(3),
        ..github.clone()
    };
    let done = replay(&bus, &key, &two, &opts, |_, _| {})
        .await
        .expect("replay");
    assert_eq!(done.republished, 2);
    let two_hours = Selection {
        since: Some(SystemTime::now() - Duration::from_secs(7200)),
        ..github
    };
    match replay(&bus, &key, &two_hours, &opts, |_, _| {}).await {
        Err(ReplayError::OverLimit(e)) => assert_eq!(e.limit, Limit::ReplaySpan),
        other => panic!("expected replay_span_too_long, got {other:?}"),
    }
    assert_eq!(
        crate::router_fixtures::stream_count(&js, "EVENTS").await,
        stored + 2,
        "only the replay within its bounds republished"
    );
}
