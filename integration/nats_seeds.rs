//! Several seed servers in `nats.url`: a process whose first seeds are down connects through the
//! one that is up, and a list of only dead seeds fails naming all of them.

use crate::support::nats::free_port;
use crate::support::{DbKind, NatsServer, TestApp, eventually};
use ifox::bus::Bus;
use ifox::settings::Settings;
use std::time::Duration;

fn nats_settings(url: &str) -> ifox::settings::NatsSettings {
    let env = [("IFOX__NATS__URL".to_owned(), url.to_owned())];
    Settings::load_from(Some(std::path::Path::new("/nonexistent/ifox.toml")), env)
        .expect("settings")
        .nats
}

#[tokio::test]
async fn a_seed_list_whose_first_servers_are_down_still_connects_through_the_live_one() {
    let nats = NatsServer::start().await;
    let dead = [free_port(), free_port()].map(|p| format!("nats://127.0.0.1:{p}"));
    let list = format!("{},{},{}", dead[0], dead[1], nats.url());
    let settings = nats_settings(&list);
    assert_eq!(settings.url.len(), 3);
    // The client tries the seeds in random order: several connects, each of which must find the
    // live server whatever the order (and without falling back to connecting in the background).
    for _ in 0..5 {
        let bus = Bus::connect(&settings)
            .await
            .expect("connect through the list");
        assert!(bus.is_connected());
        assert_eq!(
            bus.client().server_info().port,
            nats.port,
            "connected to the live seed"
        );
    }
    // The whole app, started the way a pod is, applies its streams on the live server.
    let app = TestApp::spawn_with(DbKind::Sqlite, &[("IFOX__NATS__URL", &list)]).await;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    eventually(
        "the app to create EVENTS through the seed list",
        Duration::from_secs(10),
        || {
            let js = js.clone();
            async move { js.get_stream("EVENTS").await.ok() }
        },
    )
    .await;
    assert!(app.state.runs_bus.as_ref().unwrap().is_connected());
    app.stop().await;
}

#[tokio::test]
async fn a_seed_list_of_dead_servers_fails_naming_every_seed() {
    let dead = [free_port(), free_port()].map(|p| format!("nats://127.0.0.1:{p}"));
    let settings = nats_settings(&dead.join(","));
    let err = Bus::connect(&settings).await.unwrap_err().to_string();
    assert!(
        err.contains(&dead[0]) && err.contains(&dead[1]),
        "the error names both seeds: {err}"
    );
}
