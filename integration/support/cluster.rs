//! A NATS JetStream cluster on loopback: three `nats-server` processes ([`NatsServer`]), each with
//! its own ports and store, joined by cluster routes. A node can be killed (`kill -9`) and restarted
//! on the same ports and store, so it rejoins as the same peer.

use super::NatsServer;
use super::nats::free_port;
use async_nats::jetstream;
use std::time::Duration;

pub struct NatsCluster {
    pub nodes: Vec<NatsServer>,
    /// Server names (`n0`, `n1`, …), as JetStream names peers and leaders.
    pub names: Vec<String>,
}

impl NatsCluster {
    /// Starts `size` servers of cluster `ifox-test` and returns once every one reports healthy
    /// (meta leader elected, JetStream current).
    pub async fn start(size: usize) -> NatsCluster {
        let cluster_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let routes = cluster_ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes = Vec::with_capacity(size);
        let mut names = Vec::with_capacity(size);
        for (i, port) in cluster_ports.iter().enumerate() {
            let name = format!("n{i}");
            let args = [
                "--name",
                &name,
                "--cluster_name",
                "ifox-test",
                "--cluster",
                &format!("nats://127.0.0.1:{port}"),
                "--routes",
                &routes,
            ];
            nodes.push(NatsServer::start_with_args(args.map(str::to_owned).to_vec()).await);
            names.push(name);
        }
        let cluster = NatsCluster { nodes, names };
        cluster.healthy(Duration::from_secs(60)).await;
        cluster
    }

    /// Every node's client URL, comma-separated: a seed list for `nats.url`.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A JetStream client that knows every node (and so survives any one of them).
    pub async fn jetstream(&self) -> jetstream::Context {
        let urls: Vec<async_nats::ServerAddr> = self
            .nodes
            .iter()
            .map(|n| n.url().parse().expect("server address"))
            .collect();
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(urls)
            .await
            .expect("connect to the cluster");
        jetstream::new(client)
    }

    /// The node named `name` (a stream's leader, for example).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// `kill -9` of node `i`; its store stays for [`NatsCluster::restart`].
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].stop();
    }

    /// Restarts node `i` on its ports and store; returns once it serves JetStream again.
    pub async fn restart(&mut self, i: usize) {
        self.nodes[i].resume().await;
    }

    /// Waits until every node's `/healthz` (JetStream included) answers 200; panics after `deadline`.
    pub async fn healthy(&self, deadline: Duration) {
        let client = reqwest::Client::new();
        let urls: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("{}/healthz", n.monitor_url()))
            .collect();
        super::eventually("every NATS node healthy", deadline, || {
            let (client, urls) = (client.clone(), urls.clone());
            async move {
                for url in &urls {
                    let ok = client
                        .get(url)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    if !ok {
                        return None;
                    }
                }
                Some(())
            }
        })
        .await;
    }
}
