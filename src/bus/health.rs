//! What `/readyz` needs to know of the NATS side: whether each registered consumer loop is
//! consuming right now (and why not). The loops of [`super::consumer::run`] keep it current; the
//! connection state comes from the client itself ([`super::Bus::is_connected`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Consumer loops and why each is not consuming (`None` while it is), and the NATS connection
/// when a role uses one. Cheap to clone.
#[derive(Clone, Default)]
pub struct Health {
    consumers: Arc<Mutex<BTreeMap<String, Option<String>>>>,
    client: Arc<Mutex<Option<async_nats::Client>>>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("not_consuming", &self.not_consuming())
            .finish_non_exhaustive()
    }
}

/// Why the NATS side is not ready: a machine-readable reason and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
}

impl Health {
    /// Readiness follows this connection from now on.
    pub fn watch_connection(&self, client: async_nats::Client) {
        if let Ok(mut c) = self.client.lock() {
            *c = Some(client);
        }
    }

    /// `None` when NATS is connected (or not used) and every consumer consumes.
    pub fn problem(&self) -> Option<Problem> {
        let state = self
            .client
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(|c| c.connection_state()));
        if let Some(state) = state
            && state != async_nats::connection::State::Connected
        {
            return Some(Problem {
                reason: "nats_disconnected",
                message: format!("NATS connection is {state}"),
            });
        }
        let stalled = self.not_consuming();
        (!stalled.is_empty()).then(|| Problem {
            reason: "consumer_not_consuming",
            message: stalled
                .iter()
                .map(|(c, why)| format!("{c}: {why}"))
                .collect::<Vec<_>>()
                .join("; "),
        })
    }

    /// A loop that starts: not consuming until its pull is established.
    pub fn register(&self, consumer: &str) {
        self.set(consumer, Some("starting".to_owned()));
    }

    /// `None`: consuming; `Some(why)`: not.
    pub fn set(&self, consumer: &str, problem: Option<String>) {
        if let Ok(mut c) = self.consumers.lock() {
            c.insert(consumer.to_owned(), problem);
        }
    }

    /// The consumers that are not consuming, with why, in name order.
    pub fn not_consuming(&self) -> Vec<(String, String)> {
        self.consumers
            .lock()
            .map(|c| {
                c.iter()
                    .filter_map(|(k, v)| v.clone().map(|why| (k.clone(), why)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_consumer_is_not_ready_until_it_consumes() {
        let h = Health::default();
        assert!(h.not_consuming().is_empty());
        h.register("EVENTS/router");
        assert_eq!(
            h.not_consuming(),
            vec![("EVENTS/router".to_owned(), "starting".to_owned())]
        );
        h.set("EVENTS/router", None);
        assert!(h.not_consuming().is_empty());
        h.set("EVENTS/router", Some("nats gone".into()));
        assert_eq!(h.not_consuming().len(), 1);
    }
}
