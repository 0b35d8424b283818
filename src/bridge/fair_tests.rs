use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[test]
fn a_lone_run_starts_at_the_next_free_slot_behind_a_flood() {
    // The case: team A floods 1,000 runs into an agent that takes 3 at a time.
    let mut f = Fair::new();
    for i in 0..1000 {
        f.push("a", format!("a{i}"));
    }
    let mut started = Vec::new();
    while let Some((_, item)) = f.next(3, |_| 5) {
        started.push(item);
    }
    assert_eq!(started, ["a0", "a1", "a2"], "the global bound holds");
    f.push("b", "b0".to_owned());
    assert_eq!(f.next(3, |_| 5), None, "no free slot yet");
    f.done(&"a").unwrap();
    assert_eq!(
        f.next(3, |_| 5),
        Some(("b", "b0".to_owned())),
        "the next slot is b's"
    );
    f.done(&"a").unwrap();
    assert_eq!(f.next(3, |_| 5), Some(("a", "a3".to_owned())));
    assert_eq!((f.waiting(), f.in_flight()), (996, 3));
}

#[test]
fn teams_queued_together_alternate_and_keep_their_own_order() {
    let mut f = Fair::new();
    for i in 0..5 {
        f.push("a", i);
    }
    f.push("b", 100);
    f.push("b", 101);
    f.push("c", 200);
    let mut order = Vec::new();
    while let Some((team, item)) = f.next(usize::MAX, |_| 10) {
        order.push((team, item));
    }
    assert_eq!(
        order,
        [
            ("a", 0),
            ("b", 100),
            ("c", 200),
            ("a", 1),
            ("b", 101),
            ("a", 2),
            ("a", 3),
            ("a", 4)
        ]
    );
}

#[test]
fn a_team_at_its_limit_does_not_block_others_and_waits_for_its_own_slot() {
    let mut f = Fair::new();
    for i in 0..3 {
        f.push("small", i);
    }
    f.push("big", 10);
    f.push("big", 11);
    let limit = |t: &&str| if *t == "small" { 1 } else { 5 };
    assert_eq!(f.next(10, limit), Some(("small", 0)));
    assert_eq!(f.next(10, limit), Some(("big", 10)));
    assert_eq!(f.next(10, limit), Some(("big", 11)));
    assert_eq!(f.next(10, limit), None, "small is at its limit of 1");
    assert_eq!(f.team_in_flight(&"small"), 1);
    assert_eq!(
        f.iter_waiting().map(|(t, i)| (*t, *i)).collect::<Vec<_>>(),
        [("small", 1), ("small", 2)]
    );
    f.done(&"big").unwrap();
    assert_eq!(
        f.next(10, limit),
        None,
        "a free global slot does not lift a team limit"
    );
    f.done(&"small").unwrap();
    assert_eq!(f.next(10, limit), Some(("small", 1)));
}

#[test]
fn done_without_a_delivery_in_flight_is_an_error_and_idle_teams_are_forgotten() {
    let mut f: Fair<&str, u8> = Fair::new();
    assert_eq!(f.done(&"x"), Err(FairError::NotInFlight));
    f.push("x", 1);
    assert_eq!(
        f.done(&"x"),
        Err(FairError::NotInFlight),
        "waiting is not in flight"
    );
    assert!(f.next(1, |_| 1).is_some());
    f.done(&"x").unwrap();
    assert!(f.teams.is_empty() && f.ready.is_empty());
    assert_eq!(f.done(&"x"), Err(FairError::NotInFlight));
}

/// Random pushes, starts and ends over many teams: limits are never exceeded, each team's items
/// start in push order exactly once, and `next` refuses only when no team could start.
#[test]
fn random_sequences_never_exceed_a_limit_nor_lose_or_reorder_an_item() {
    for seed in 0..20u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let teams = rng.random_range(1..8usize);
        let limits: Vec<usize> = (0..teams).map(|_| rng.random_range(1..4)).collect();
        let global = rng.random_range(1..10usize);
        let mut f: Fair<usize, (usize, u32)> = Fair::new();
        let mut pushed = vec![0u32; teams];
        let mut started = vec![0u32; teams];
        let mut running: Vec<usize> = Vec::new();
        for _ in 0..3000 {
            match rng.random_range(0..3) {
                0 => {
                    let t = rng.random_range(0..teams);
                    f.push(t, (t, pushed[t]));
                    pushed[t] += 1;
                }
                1 => match f.next(global, |t| limits[*t]) {
                    Some((t, (owner, n))) => {
                        assert_eq!(t, owner);
                        assert_eq!(n, started[t], "seed {seed}: team {t} out of order");
                        started[t] += 1;
                        running.push(t);
                    }
                    None => {
                        let blocked = running.len() >= global
                            || (0..teams).all(|t| {
                                started[t] == pushed[t]
                                    || running.iter().filter(|&&r| r == t).count() >= limits[t]
                            });
                        assert!(blocked, "seed {seed}: a team could have started");
                    }
                },
                _ if !running.is_empty() => {
                    let t = running.swap_remove(rng.random_range(0..running.len()));
                    f.done(&t).unwrap();
                }
                _ => {}
            }
            assert!(running.len() <= global, "seed {seed}: global bound");
            for (t, limit) in limits.iter().enumerate() {
                let n = running.iter().filter(|&&r| r == t).count();
                assert!(n <= *limit, "seed {seed}: team {t} above its limit");
                assert_eq!(f.team_in_flight(&t), n);
            }
            assert_eq!(f.in_flight(), running.len());
            let waiting: u32 = (0..teams).map(|t| pushed[t] - started[t]).sum();
            assert_eq!(f.waiting(), waiting as usize);
            assert_eq!(f.iter_waiting().count(), waiting as usize);
        }
    }
}

#[test]
fn draining_gives_back_every_waiting_item_and_keeps_the_in_flight_count() {
    let mut f: Fair<&str, u32> = Fair::new();
    for i in 0..5 {
        f.push("a", i);
    }
    f.push("b", 9);
    let started = f.next(10, |_| 1).map(|(t, _)| t);
    assert!(started.is_some());
    let mut drained = f.drain_waiting();
    drained.sort();
    assert_eq!(drained.len(), 5);
    assert_eq!((f.waiting(), f.in_flight()), (0, 1));
    assert!(f.next(10, |_| 1).is_none(), "nothing left to start");
    assert!(f.done(&started.unwrap()).is_ok());
    assert_eq!(f.in_flight(), 0);
}
