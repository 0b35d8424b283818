//! Deletions that are due: the objects of teams moved back to shared (deprovision, a URL removed
//! through the config API, a pipeline given up) and of orphans found by the resync (a deleted team
//! or org), once their grace has passed, the team's own Namespace included. A team provisioned
//! dedicated again in the meantime keeps its objects; a shared team keeps its pipeline's.

use super::ProvisionError;
use super::backend::Backend;
use super::reconcile::Reconciler;
use super::request::Mode;
use crate::domain::now_ms;
use crate::store::deployments;

impl<B: Backend + Clone> Reconciler<B> {
    /// Deletes the objects of every team whose grace has passed. Returns the teams done.
    pub async fn delete_due(&self) -> Result<usize, ProvisionError> {
        let now = now_ms();
        let due: Vec<_> = {
            let mut conn = self.conn().await?;
            deployments::deletions(&mut conn)
                .await?
                .into_iter()
                .filter(|d| d.3 <= now)
                .collect()
        };
        let mut done = 0;
        for (org, team, run, _) in due {
            // A team provisioned dedicated again keeps its objects (admission cancels, this guards
            // against a race with it).
            let row = {
                let mut conn = self.conn().await?;
                deployments::get(&mut conn, &org, &team).await?
            };
            if row.as_ref().is_some_and(|r| r.mode == Mode::Dedicated) {
                let mut conn = self.conn().await?;
                deployments::cancel_deletion(&mut conn, &org, &team).await?;
                continue;
            }
            let keep = row.as_ref().map(|r| self.desired(r)).unwrap_or_default();
            let n = self.prune(&org, &team, &keep).await?;
            let mut conn = self.conn().await?;
            deployments::cancel_deletion(&mut conn, &org, &team).await?;
            drop(conn);
            if run != "resync" {
                self.step(
                    &run,
                    "delete_objects",
                    "succeeded",
                    Some(&format!("{n} objects deleted")),
                    None,
                )
                .await?;
            }
            tracing::info!(%org, %team, deleted = n, "grace over: dedicated objects deleted");
            done += 1;
        }
        Ok(done)
    }
}
