//! The router's durable pull consumer on EVENTS (`streams/consumers/EVENTS.router.json`, the same
//! file `nats consumer add EVENTS --config` takes), on the consumer toolkit of [`crate::bus::consumer`].
//! Several replicas share it; each processes up to `concurrency` events at once, in chunks of what
//! has arrived (an eighth of it at most). On shutdown it stops pulling and finishes (and acks) what
//! it holds; anything pulled but not started is NAKed by the delivery guard, never lost.

use super::verdict::Event;
use super::worker::Worker;
use crate::bus::consumer::{self, LoopOptions, ROUTER};
use crate::bus::{Bus, Delivery, Health};
use crate::domain::headers;
use crate::settings::RouterSettings;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub const STREAM: &str = ROUTER.stream;

/// Consumes until `shutdown`, re-establishing the consumer after NATS outages. Also runs the
/// MAX_DELIVERIES advisory listener and the queue-depth gauges of the consumer.
pub async fn run(
    worker: Worker,
    bus: Bus,
    settings: RouterSettings,
    health: Health,
    shutdown: CancellationToken,
) -> Result<(), consumer::ConsumerError> {
    let config = ROUTER.config(settings.max_deliver)?;
    let concurrency = settings.concurrency.max(1);
    // Events are worked on in chunks of what has arrived (up to an eighth of the concurrency), so
    // the runs of a chunk go to the run writer in one request; eight chunks are in flight.
    let chunk = (concurrency / 8).clamp(1, 64);
    let options = LoopOptions {
        batch: concurrency * 2,
        concurrency: concurrency.div_ceil(chunk),
        chunk,
    };
    let advisories = tokio::spawn(consumer::watch_max_deliveries(
        bus.clone(),
        ROUTER,
        shutdown.clone(),
    ));
    let depth = tokio::spawn(consumer::watch_depth(
        bus.clone(),
        ROUTER,
        Duration::from_secs(5),
        shutdown.clone(),
    ));
    let handler = |deliveries: Vec<Delivery>| handle(&worker, &bus, deliveries);
    consumer::run(
        bus.clone(),
        ROUTER,
        config,
        options,
        health,
        shutdown.clone(),
        handler,
    )
    .await;
    let _ = advisories.await;
    let _ = depth.await;
    Ok(())
}

async fn handle(worker: &Worker, bus: &Bus, deliveries: Vec<Delivery>) {
    let events: Vec<(Event<'_>, &Delivery)> = deliveries
        .iter()
        .map(|d| {
            let ev = Event {
                subject: d.subject(),
                headers: d.headers(),
                payload: d.payload(),
            };
            (ev, d)
        })
        .collect();
    let outcomes = worker.process(&events).await;
    drop(events);
    futures::future::join_all(deliveries.into_iter().zip(outcomes).map(|(d, outcome)| {
        // One span per routed event: its settlement (ack, dead letter) logs with its ids (read
        // from the message in place: nothing is copied for a span no subscriber wants).
        let span = {
            let header = |name| {
                d.headers()
                    .and_then(|h| headers::get(h, name))
                    .unwrap_or_default()
            };
            let traceparent = header(headers::TRACEPARENT);
            let run = outcome.run.as_ref();
            let span = tracing::info_span!(
                "event",
                event_id = header(headers::CE_ID),
                trace_id = traceparent.split('-').nth(1).unwrap_or_default(),
                org = run.map_or("", |r| r.org.as_str()),
                team = run.map_or("", |r| r.team.as_str()),
                run_id = run.map(|r| tracing::field::display(r.run_id)),
                subject = d.subject(),
                stream_seq = d.stream_seq(),
            );
            crate::telemetry::trace::parent_on(&span, Some(traceparent));
            span
        };
        d.settle(bus, outcome.disposition).instrument(span)
    }))
    .await;
}
