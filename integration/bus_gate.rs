//! The publish gate (`Bus::gated`, what the ingest publishes through) against a real nats-server:
//! many concurrent callers each get their own PubAck, every message is stored once, and a
//! `Nats-Msg-Id` seen twice is still reported as a duplicate to the second caller.

use crate::support::nats::NatsServer;
use ifox::bus::{Bus, StreamSpec, streams};

async fn gated_bus(nats: &NatsServer) -> Bus {
    let settings = ifox::settings::Settings::load_from(
        Some(std::path::Path::new("/nonexistent/ifox.toml")),
        [("IFOX__NATS__URL".to_owned(), nats.url())],
    )
    .unwrap();
    let bus = Bus::connect(&settings.nats).await.unwrap();
    streams::apply(bus.jetstream(), &StreamSpec::embedded().unwrap())
        .await
        .unwrap();
    bus.gated()
}

fn headers(id: &str) -> async_nats::HeaderMap {
    let mut h = async_nats::HeaderMap::new();
    h.insert("Nats-Msg-Id", id);
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gated_publishes_of_concurrent_callers_each_get_their_own_ack() {
    let nats = NatsServer::start().await;
    let bus = gated_bus(&nats).await;
    const N: usize = 300;
    let publishes = (0..N).map(|i| {
        let bus = bus.clone();
        tokio::spawn(async move {
            let body = format!("message {i}");
            let ack = bus
                .publish(
                    "ifox.events.gate.test".into(),
                    headers(&format!("gate-{i}")),
                    body.into(),
                )
                .await
                .expect("stored");
            (i, ack)
        })
    });
    let mut sequences = std::collections::BTreeSet::new();
    for task in futures::future::join_all(publishes).await {
        let (i, ack) = task.unwrap();
        assert_eq!(ack.stream, "EVENTS");
        assert!(!ack.duplicate, "message {i} is new");
        assert!(
            sequences.insert(ack.sequence),
            "message {i} has a sequence of its own"
        );
    }
    assert_eq!(sequences.len(), N);

    // Every message is stored once, each with the body its own caller sent.
    let mut stream = bus.jetstream().get_stream("EVENTS").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, N as u64);
    for seq in [sequences.first().unwrap(), sequences.last().unwrap()] {
        let stored = stream.get_raw_message(*seq).await.unwrap();
        let id = stored.headers.get("Nats-Msg-Id").unwrap().to_string();
        let i = id.strip_prefix("gate-").unwrap();
        assert_eq!(stored.payload, format!("message {i}").as_bytes());
    }

    // The same delivery twice at once: one is stored, the other is told it is a duplicate.
    let twice = (0..2).map(|_| {
        bus.publish(
            "ifox.events.gate.test".into(),
            headers("gate-twice"),
            "again".into(),
        )
    });
    let acks: Vec<_> = futures::future::join_all(twice)
        .await
        .into_iter()
        .map(|a| a.unwrap())
        .collect();
    assert_eq!(acks.iter().filter(|a| a.duplicate).count(), 1);
    assert_eq!(acks[0].sequence, acks[1].sequence);
    assert_eq!(
        stream.info().await.unwrap().state.messages,
        N as u64 + 1,
        "the duplicate stored nothing"
    );
}
