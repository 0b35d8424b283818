//! The in-memory cache of org webhook secrets, so that an org-scoped webhook URL — reachable by
//! anyone — cannot be used to drive database reads:
//!
//! - An org's whole set (every provider key, or none) is read at once and kept for
//!   `ingest.org_secrets_ttl`: a flood of unsigned or wrongly signed requests, or of made-up generic
//!   sources, costs one read per org per TTL. Orgs the catalog does not know never get here (the
//!   catalog is in memory), and an org that set no secrets is cached as such (negative caching).
//! - Bounded: at most `ingest.org_secrets_cache_size` orgs; past it the entry closest to expiry goes.
//! - Concurrent misses of one org share one read (a `OnceCell` per entry).
//! - Writes through the admin API of this process drop the org's entry ([`SecretCache::invalidate`]),
//!   so they apply to the next request; writes through another replica apply within the TTL.
//! - A failed read is remembered for [`RETRY_AFTER`] (one attempt per org per interval during a
//!   database outage, not one per request), and meanwhile the secrets last read keep verifying, so
//!   org-scoped webhooks outlive a database outage once their org has been seen.
//!
//! Every lookup is counted in `ifox_webhook_secret_lookups_total{result}`: `cache_hit`, `db_read`,
//! `stale` (read failed, last known secrets used), `db_error`, `unknown_org`.

use crate::domain::OrgId;
use crate::settings::{IngestSettings, SecretList};
use crate::store::{Store, StoreError, webhook_secrets};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// How long a failed read is remembered before the database is tried again for that org.
pub const RETRY_AFTER: Duration = Duration::from_secs(2);

/// One org's secrets by provider key (`slack`, `generic/<source>`, …); empty when it set none.
type OrgSecrets = HashMap<String, SecretList>;
/// A read's outcome, shared by every request that waited for it.
type Loaded = Result<Arc<OrgSecrets>, Arc<StoreError>>;

/// Cheap to clone; the admin API and the ingest role share one per process.
#[derive(Clone)]
pub struct SecretCache {
    table: Arc<Mutex<Table>>,
}

impl SecretCache {
    pub fn new(settings: &IngestSettings) -> SecretCache {
        SecretCache {
            table: Arc::new(Mutex::new(Table::new(
                settings.org_secrets_ttl,
                settings.org_secrets_cache_size,
            ))),
        }
    }

    /// The secrets `org` set for `key`, if any: from memory, or from one database read.
    /// `incarnation` names which org of that id this is ([`crate::tenancy::Catalog::org_incarnation`]):
    /// an entry of an earlier org with the same id (deleted, then created again) is never used, not
    /// even as the stale fallback.
    pub async fn get(
        &self,
        store: &Store,
        org: &OrgId,
        incarnation: i64,
        key: &str,
    ) -> Result<Option<SecretList>, Arc<StoreError>> {
        let slot = self.lock().slot(org, incarnation, Instant::now());
        let mut read = false;
        let loaded = slot
            .cell
            .get_or_init(|| {
                read = true;
                self.load(store, org, &slot)
            })
            .await;
        let (result, answer) = match (loaded, &slot.last) {
            (Ok(secrets), _) => (
                if read { "db_read" } else { "cache_hit" },
                Ok(secrets.get(key).cloned()),
            ),
            (Err(_), Some(last)) => ("stale", Ok(last.get(key).cloned())),
            (Err(e), None) => ("db_error", Err(e.clone())),
        };
        count(result);
        answer
    }

    /// Counts a request for an org the catalog does not know (refused before any lookup).
    pub fn unknown_org(&self) {
        count("unknown_org");
    }

    /// Forgets `org` (its secrets were written, or it was deleted): the next request reads again.
    pub fn invalidate(&self, org: &OrgId) {
        self.lock().slots.remove(org);
    }

    async fn load(&self, store: &Store, org: &OrgId, slot: &Slot) -> Loaded {
        let read = async {
            let mut conn = store.pool().acquire().await?;
            webhook_secrets::list_org(&mut conn, org).await
        };
        match read.await {
            Ok(rows) => Ok(Arc::new(
                rows.into_iter()
                    .map(|(key, secrets)| (key, SecretList::new(secrets)))
                    .collect(),
            )),
            Err(e) => {
                tracing::warn!(%org, error = %e, "org webhook secrets cannot be read");
                self.lock().retry_soon(org, slot, Instant::now());
                Err(Arc::new(e))
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while holding this lock leaves a table that is still consistent (every change is
        // one map operation), so a poisoned lock is used as is.
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn count(result: &'static str) {
    metrics::counter!("ifox_webhook_secret_lookups_total", "result" => result).increment(1);
}

/// One org's entry: until when it serves, the read (done or under way), and the secrets of the
/// previous successful read (used while a new read fails).
#[derive(Clone)]
struct Slot {
    /// The org this entry is of (its incarnation): an org deleted and created again is another.
    incarnation: i64,
    expires: Instant,
    cell: Arc<OnceCell<Loaded>>,
    last: Option<Arc<OrgSecrets>>,
}

impl Slot {
    /// The secrets this entry knows, read or carried over.
    fn known(&self) -> Option<Arc<OrgSecrets>> {
        match self.cell.get() {
            Some(Ok(secrets)) => Some(secrets.clone()),
            _ => self.last.clone(),
        }
    }
}

/// The pure part: which entry serves a lookup, when entries expire, which one goes when full.
struct Table {
    ttl: Duration,
    capacity: usize,
    slots: HashMap<OrgId, Slot>,
}

impl Table {
    fn new(ttl: Duration, capacity: usize) -> Table {
        Table {
            ttl,
            capacity: capacity.max(1),
            slots: HashMap::new(),
        }
    }

    /// The entry serving `org` (as `incarnation`) at `now`: the current one, or a new (empty) one
    /// that carries over what the expired one knew — unless that was another incarnation's.
    fn slot(&mut self, org: &OrgId, incarnation: i64, now: Instant) -> Slot {
        let last = match self.slots.get(org) {
            Some(slot) if slot.incarnation != incarnation => None,
            Some(slot) if slot.expires > now => return slot.clone(),
            Some(expired) => expired.known(),
            None => {
                self.make_room(now);
                None
            }
        };
        let slot = Slot {
            incarnation,
            expires: now + self.ttl,
            cell: Arc::new(OnceCell::new()),
            last,
        };
        self.slots.insert(org.clone(), slot.clone());
        slot
    }

    /// A read of `slot` failed: it serves (its error, or the secrets it carries) for
    /// [`RETRY_AFTER`] only. A newer entry for the org is left alone.
    fn retry_soon(&mut self, org: &OrgId, slot: &Slot, now: Instant) {
        if let Some(current) = self.slots.get_mut(org)
            && Arc::ptr_eq(&current.cell, &slot.cell)
        {
            current.expires = current.expires.min(now + RETRY_AFTER);
        }
    }

    /// Before a new org goes in: drop the expired entries when full, then the one closest to expiry.
    fn make_room(&mut self, now: Instant) {
        if self.slots.len() < self.capacity {
            return;
        }
        self.slots.retain(|_, slot| slot.expires > now);
        while self.slots.len() >= self.capacity {
            let oldest = self
                .slots
                .iter()
                .min_by_key(|(_, slot)| slot.expires)
                .map(|(org, _)| org.clone());
            match oldest {
                Some(org) => self.slots.remove(&org),
                None => break,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(id: &str) -> OrgId {
        OrgId::parse(id).expect("org id")
    }

    fn filled(slot: &Slot, keys: &[&str]) {
        let secrets: OrgSecrets = keys
            .iter()
            .map(|k| (k.to_string(), SecretList::new(["s"])))
            .collect();
        assert!(slot.cell.set(Ok(Arc::new(secrets))).is_ok());
    }

    #[test]
    fn an_entry_serves_until_its_ttl_then_a_new_one_carries_what_it_knew() {
        let mut t = Table::new(Duration::from_secs(30), 10);
        let now = Instant::now();
        let first = t.slot(&org("acme"), 1, now);
        filled(&first, &["github"]);
        let again = t.slot(&org("acme"), 1, now + Duration::from_secs(29));
        assert!(Arc::ptr_eq(&first.cell, &again.cell), "served from memory");
        let later = t.slot(&org("acme"), 1, now + Duration::from_secs(30));
        assert!(
            !Arc::ptr_eq(&first.cell, &later.cell),
            "expired: read again"
        );
        assert!(later.cell.get().is_none());
        assert!(
            later
                .last
                .as_ref()
                .is_some_and(|l| l.contains_key("github"))
        );
    }

    #[test]
    fn the_table_never_holds_more_than_its_capacity_and_drops_the_closest_to_expiry() {
        let mut t = Table::new(Duration::from_secs(30), 3);
        let now = Instant::now();
        for (i, id) in ["a1", "a2", "a3", "a4", "a5"].iter().enumerate() {
            t.slot(&org(id), 1, now + Duration::from_secs(i as u64));
            assert!(t.slots.len() <= 3);
        }
        let mut kept: Vec<_> = t.slots.keys().map(|o| o.as_str().to_owned()).collect();
        kept.sort();
        assert_eq!(kept, ["a3", "a4", "a5"]);
    }

    #[test]
    fn expired_entries_go_first_when_full() {
        let mut t = Table::new(Duration::from_secs(10), 2);
        let now = Instant::now();
        t.slot(&org("old"), 1, now);
        t.slot(&org("fresh"), 1, now + Duration::from_secs(9));
        t.slot(&org("new"), 1, now + Duration::from_secs(11));
        assert!(!t.slots.contains_key(&org("old")));
        assert!(t.slots.contains_key(&org("fresh")) && t.slots.contains_key(&org("new")));
    }

    #[test]
    fn a_failed_read_is_retried_after_the_retry_interval_not_the_ttl() {
        let mut t = Table::new(Duration::from_secs(30), 10);
        let now = Instant::now();
        let slot = t.slot(&org("acme"), 1, now);
        t.retry_soon(&org("acme"), &slot, now);
        let within = t.slot(
            &org("acme"),
            1,
            now + RETRY_AFTER - Duration::from_millis(1),
        );
        assert!(Arc::ptr_eq(&slot.cell, &within.cell));
        let after = t.slot(&org("acme"), 1, now + RETRY_AFTER);
        assert!(!Arc::ptr_eq(&slot.cell, &after.cell));
    }

    #[test]
    fn an_org_created_again_under_the_same_id_never_sees_the_deleted_ones_secrets() {
        let mut t = Table::new(Duration::from_secs(30), 10);
        let now = Instant::now();
        let deleted = t.slot(&org("acme"), 1, now);
        filled(&deleted, &["github"]);
        // Within the TTL, and after it (where an entry of the same org carries its secrets over).
        for at in [now, now + Duration::from_secs(31)] {
            let again = t.slot(&org("acme"), 2, at);
            assert!(!Arc::ptr_eq(&deleted.cell, &again.cell), "read again");
            assert!(again.cell.get().is_none());
            assert!(again.last.is_none(), "nothing carried over");
            t.slots.insert(org("acme"), deleted.clone());
        }
    }

    #[test]
    fn a_stale_failure_leaves_a_newer_entry_alone() {
        let mut t = Table::new(Duration::from_secs(30), 10);
        let now = Instant::now();
        let old = t.slot(&org("acme"), 1, now);
        t.slots.remove(&org("acme"));
        let new = t.slot(&org("acme"), 1, now);
        t.retry_soon(&org("acme"), &old, now);
        let current = t.slot(&org("acme"), 1, now + RETRY_AFTER);
        assert!(Arc::ptr_eq(&new.cell, &current.cell));
    }
}
