//! Per-team fairness of deliveries: runs wait in per-team FIFO queues, and each free slot goes to
//! the team with the fewest deliveries in flight (ties: the team that started a delivery least
//! recently, or arrived first), never beyond a team's `max_concurrent` nor the global bound. Pure
//! data structure: no clock, no tokio; the bridge holds it behind a lock and calls [`Fair::next`]
//! whenever a slot may have freed.
//!
//! Why "fewest in flight" rather than plain round-robin: a team that floods 1,000 runs holds every
//! busy slot; when one frees, a team with one waiting run has 0 in flight and wins it, so its run
//! starts at the next free slot, not after a turn of the flooding team (the promise).
//!
//! The choice scans the ready teams in that order and skips teams at their limit, so it is
//! work-conserving: [`Fair::next`] returns None only when the global bound is reached or every
//! waiting team is at its own limit. Teams with nothing waiting and nothing in flight are
//! forgotten, so memory follows the work, not the number of teams ever seen.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::Hash;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FairError {
    #[error("done() for a team with no delivery in flight")]
    NotInFlight,
}

#[derive(Debug)]
struct Team<T> {
    waiting: VecDeque<T>,
    in_flight: usize,
    /// When the team last started a delivery (or arrived): older wins ties.
    stamp: u64,
}

/// Per-team FIFO queues with fair, bounded starts. `K` is the team key (e.g. org and team ids).
#[derive(Debug)]
pub struct Fair<K, T> {
    teams: HashMap<K, Team<T>>,
    /// Teams with something waiting, ordered by (in flight, stamp).
    ready: BTreeSet<(usize, u64, K)>,
    clock: u64,
    waiting: usize,
    in_flight: usize,
}

impl<K: Ord + Hash + Clone, T> Default for Fair<K, T> {
    fn default() -> Self {
        Self {
            teams: HashMap::new(),
            ready: BTreeSet::new(),
            clock: 0,
            waiting: 0,
            in_flight: 0,
        }
    }
}

impl<K: Ord + Hash + Clone, T> Fair<K, T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `item` behind the team's other waiting items.
    pub fn push(&mut self, team: K, item: T) {
        self.clock += 1;
        let clock = self.clock;
        let t = self.teams.entry(team.clone()).or_insert_with(|| Team {
            waiting: VecDeque::new(),
            in_flight: 0,
            stamp: clock,
        });
        if t.waiting.is_empty() {
            self.ready.insert((t.in_flight, t.stamp, team));
        }
        t.waiting.push_back(item);
        self.waiting += 1;
    }

    /// The next item to start, counted in flight until [`Fair::done`]; None when `global` deliveries
    /// are in flight or every waiting team is at `limit(team)` (its `max_concurrent`).
    pub fn next(&mut self, global: usize, limit: impl Fn(&K) -> usize) -> Option<(K, T)> {
        if self.in_flight >= global {
            return None;
        }
        let key = self
            .ready
            .iter()
            .find(|(in_flight, _, team)| *in_flight < limit(team))?
            .clone();
        self.ready.remove(&key);
        let (_, _, team) = key;
        self.clock += 1;
        let t = self.teams.get_mut(&team).expect("a ready team is known");
        let item = t.waiting.pop_front().expect("a ready team has an item");
        t.in_flight += 1;
        t.stamp = self.clock;
        if !t.waiting.is_empty() {
            self.ready.insert((t.in_flight, t.stamp, team.clone()));
        }
        self.waiting -= 1;
        self.in_flight += 1;
        Some((team, item))
    }

    /// A delivery of `team` ended: its slot is free.
    pub fn done(&mut self, team: &K) -> Result<(), FairError> {
        let t = self
            .teams
            .get_mut(team)
            .filter(|t| t.in_flight > 0)
            .ok_or(FairError::NotInFlight)?;
        if !t.waiting.is_empty() {
            self.ready.remove(&(t.in_flight, t.stamp, team.clone()));
            self.ready.insert((t.in_flight - 1, t.stamp, team.clone()));
        }
        t.in_flight -= 1;
        if t.in_flight == 0 && t.waiting.is_empty() {
            self.teams.remove(team);
        }
        self.in_flight -= 1;
        Ok(())
    }

    /// Items waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// Deliveries started and not done.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Deliveries of one team in flight.
    pub fn team_in_flight(&self, team: &K) -> usize {
        self.teams.get(team).map_or(0, |t| t.in_flight)
    }

    /// Takes every waiting item out (a stopping scheduler gives them back); what is in flight
    /// stays counted until [`Fair::done`].
    pub fn drain_waiting(&mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.waiting);
        for t in self.teams.values_mut() {
            out.extend(t.waiting.drain(..));
        }
        self.teams.retain(|_, t| t.in_flight > 0);
        self.ready.clear();
        self.waiting = 0;
        out
    }

    /// Every waiting item (e.g. to send JetStream in-progress acks for the messages held here).
    pub fn iter_waiting(&self) -> impl Iterator<Item = (&K, &T)> {
        self.teams
            .iter()
            .flat_map(|(k, t)| t.waiting.iter().map(move |item| (k, item)))
    }
}

#[cfg(test)]
#[path = "fair_tests.rs"]
mod tests;
