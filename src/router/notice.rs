//! Config change notices: every committed tenancy write publishes `ifox.changes.<org>` (core NATS,
//! JSON `{"org_id", "node_id"}`; `node_id` null for a structural change of the org), and every process
//! that holds a catalog listens and refreshes what changed — so a write through any replica reaches
//! every router within a second. The periodic full reload (`tenancy.reload_interval`) stays as the
//! safety net for a notice lost while disconnected. A NATS client is tenancy's [`ChangeSink`].

use crate::domain::{NodeId, OrgId};
use crate::tenancy::{ChangeSink, Tenancy};
use futures::StreamExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub const SUBJECTS: &str = "ifox.changes.>";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub org_id: OrgId,
    pub node_id: Option<NodeId>,
}

/// Publishes a notice; a failure is logged (the reload loop covers it), never fails the write.
pub async fn publish(client: &async_nats::Client, org: &OrgId, node: Option<&NodeId>) {
    // While disconnected the client would queue (and eventually block); the reload loop covers it.
    if client.connection_state() != async_nats::connection::State::Connected {
        return;
    }
    let notice = Notice {
        org_id: org.clone(),
        node_id: node.cloned(),
    };
    let payload = serde_json::to_vec(&notice).unwrap_or_default();
    if let Err(e) = client
        .publish(format!("ifox.changes.{org}"), payload.into())
        .await
    {
        tracing::warn!(error = %e, %org, "change notice not sent; other replicas catch up at the next reload");
    }
}

impl ChangeSink for async_nats::Client {
    fn notify<'a>(&'a self, org: &'a OrgId, node: Option<&'a NodeId>) -> BoxFuture<'a, ()> {
        Box::pin(publish(self, org, node))
    }
}

/// Listens for notices and refreshes the catalog until `shutdown`.
pub async fn listen(client: async_nats::Client, tenancy: Tenancy, shutdown: CancellationToken) {
    let mut sub = match client.subscribe(SUBJECTS).await {
        Ok(sub) => sub,
        Err(e) => {
            tracing::error!(error = %e, "cannot subscribe to change notices; relying on the periodic reload");
            return;
        }
    };
    loop {
        let msg = tokio::select! {
            () = shutdown.cancelled() => return,
            msg = sub.next() => match msg { Some(m) => m, None => return },
        };
        let Ok(notice) = serde_json::from_slice::<Notice>(&msg.payload) else {
            tracing::warn!(subject = %msg.subject, "ignoring a malformed change notice");
            continue;
        };
        let catalog = tenancy.catalog();
        let refreshed = match &notice.node_id {
            Some(node) => {
                catalog
                    .refresh_node(tenancy.store(), &notice.org_id, node)
                    .await
            }
            None => catalog.reload_org(tenancy.store(), &notice.org_id).await,
        };
        if let Err(e) = refreshed {
            tracing::warn!(error = %e, org = %notice.org_id, "refresh after a change notice failed; the reload loop will retry");
        }
    }
}
