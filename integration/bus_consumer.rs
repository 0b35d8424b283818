//! The consumer toolkit every role consumes with, against a real nats-server: a dead letter is
//! stored before its original is terminated (and the original waits while DEADLETTER cannot take
//! it), a delivery dropped without a disposition is NAKed at once, and `/readyz` follows NATS.

use crate::support::{DbKind, NatsServer, TestApp, eventually};
use async_nats::jetstream;
use ifox::bus::consumer::{self, LoopOptions, ROUTER};
use ifox::bus::{Bus, Delivery, Disposition, Health, Settled, StreamSpec};
use ifox::settings::Settings;
use reqwest::{Method, StatusCode};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

async fn bus(nats: &NatsServer) -> Bus {
    let settings = Settings::load_from(
        Some(std::path::Path::new("/nonexistent/ifox.toml")),
        vec![("IFOX__NATS__URL".to_owned(), nats.url())],
    )
    .expect("settings");
    let bus = Bus::connect(&settings.nats).await.expect("connect");
    bus.apply_streams(&StreamSpec::embedded().unwrap())
        .await
        .expect("streams");
    bus
}

async fn publish_event(js: &jetstream::Context, id: &str) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", id);
    headers.insert("ce-id", id);
    js.publish_with_headers("ifox.events.test.thing", headers, "payload".into())
        .await
        .unwrap()
        .await
        .unwrap();
}

/// Runs the router's consumer definition with `decide` as the handler; returns what each
/// settlement did, in order.
fn consume(
    bus: &Bus,
    shutdown: &CancellationToken,
    decide: impl Fn(&Delivery) -> Option<Disposition> + Send + Sync + 'static,
) -> Arc<Mutex<Vec<(u64, Settled)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (bus, shutdown, log) = (bus.clone(), shutdown.clone(), seen.clone());
    let decide = Arc::new(decide);
    tokio::spawn(async move {
        let config = ROUTER.config(0).unwrap();
        let handler = |deliveries: Vec<Delivery>| {
            let (bus, log, decide) = (bus.clone(), log.clone(), decide.clone());
            async move {
                for d in deliveries {
                    let delivered = d.delivered();
                    match decide(&d) {
                        Some(disposition) => {
                            let settled = d.settle(&bus, disposition).await;
                            log.lock().unwrap().push((delivered, settled));
                        }
                        // Dropped without a disposition: the guard's business.
                        None => drop(d),
                    }
                }
            }
        };
        consumer::run(
            bus.clone(),
            ROUTER,
            config,
            LoopOptions::SEQUENTIAL,
            Health::default(),
            shutdown,
            handler,
        )
        .await;
    });
    seen
}

#[tokio::test]
async fn a_dead_letter_is_stored_before_its_original_is_terminated() {
    let nats = NatsServer::start().await;
    let bus = bus(&nats).await;
    let js = bus.jetstream().clone();
    // DEADLETTER cannot take anything: the original must not be terminated meanwhile.
    js.delete_stream("DEADLETTER").await.unwrap();
    publish_event(&js, "ev-1").await;
    let shutdown = CancellationToken::new();
    let seen = consume(&bus, &shutdown, |_| {
        Some(Disposition::DeadLetter {
            reason: "no_route",
            detail: "no team claims it".into(),
        })
    });
    // The dead letter is retried while the original is kept alive (in-progress acks) past the
    // consumer's ack_wait (30 s): not terminated, not NAKed, not redelivered.
    tokio::time::sleep(Duration::from_secs(35)).await;
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing settled while DEADLETTER is away: {:?}",
        seen.lock().unwrap()
    );
    let info = js
        .get_stream("EVENTS")
        .await
        .unwrap()
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>("router")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(
        info.num_ack_pending, 1,
        "the original is still held, not terminated"
    );
    assert_eq!(info.num_redelivered, 0, "kept alive, not redelivered");
    bus.apply_streams(&StreamSpec::embedded().unwrap())
        .await
        .unwrap();
    eventually("the dead letter", Duration::from_secs(15), || async {
        seen.lock()
            .unwrap()
            .iter()
            .any(|(_, s)| *s == Settled::DeadLettered)
            .then_some(())
    })
    .await;
    let dl = js.get_stream("DEADLETTER").await.unwrap();
    let letter = dl
        .get_last_raw_message_by_subject("ifox.deadletter.router.no_route")
        .await
        .unwrap();
    let header = |n: &str| letter.headers.get(n).map(|v| v.as_str().to_owned());
    assert_eq!(header("Ifox-DL-Reason").as_deref(), Some("no_route"));
    assert_eq!(
        header("Ifox-DL-Subject").as_deref(),
        Some("ifox.events.test.thing")
    );
    assert_eq!(header("ce-id").as_deref(), Some("ev-1"));
    let attempts: u64 = header("Ifox-DL-Attempts").unwrap().parse().unwrap();
    assert_eq!(
        attempts, 1,
        "stored by the first delivery's retries, no redelivery needed"
    );
    assert_eq!(&letter.payload[..], b"payload");
    // And only now terminated: nothing left for the consumer.
    eventually("the original settled", Duration::from_secs(5), || async {
        let events = js.get_stream("EVENTS").await.ok()?;
        let info = events.consumer_info("router").await.ok()?;
        (info.num_ack_pending == 0 && info.num_pending == 0).then_some(())
    })
    .await;
    shutdown.cancel();
}

#[tokio::test]
async fn a_delivery_dropped_without_a_disposition_is_redelivered_at_once() {
    let nats = NatsServer::start().await;
    let bus = bus(&nats).await;
    publish_event(bus.jetstream(), "ev-drop").await;
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    // The first delivery is dropped; the second is acked.
    let seen = consume(&bus, &shutdown, |d| {
        (d.delivered() >= 2).then_some(Disposition::Ack)
    });
    // The consumer's ack_wait is 30 s: a redelivery well before that is the guard's NAK.
    let (delivered, settled) = eventually("the redelivery", Duration::from_secs(10), || async {
        seen.lock().unwrap().first().copied()
    })
    .await;
    assert_eq!((delivered, settled), (2, Settled::Acked));
    assert!(started.elapsed() < Duration::from_secs(30));
    shutdown.cancel();
}

#[tokio::test]
async fn readiness_turns_unavailable_while_nats_is_down_and_recovers() {
    let mut nats = NatsServer::start().await;
    let app = TestApp::spawn_with(DbKind::Sqlite, &[("IFOX__NATS__URL", &nats.url())]).await;
    let ready = || async {
        let a = app.request(Method::GET, "/readyz", None, None).await;
        (a.status, a.reason().to_owned())
    };
    eventually("ready", Duration::from_secs(20), || async {
        (ready().await.0 == StatusCode::OK).then_some(())
    })
    .await;
    nats.stop();
    let (status, reason) = eventually("not ready", Duration::from_secs(20), || async {
        let r = ready().await;
        (r.0 != StatusCode::OK).then_some(r)
    })
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        reason == "nats_disconnected" || reason == "consumer_not_consuming",
        "{reason}"
    );
    nats.resume().await;
    eventually("ready again", Duration::from_secs(30), || async {
        (ready().await.0 == StatusCode::OK).then_some(())
    })
    .await;
}
