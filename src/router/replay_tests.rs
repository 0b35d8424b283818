//! Unit tests of `replay.rs`: the headers of a replay, its signature, and what the router accepts.

use super::*;

#[test]
fn a_replay_gets_a_new_id_names_the_root_original_and_drops_dead_letter_headers() {
    let mut h = HeaderMap::new();
    h.insert("ce-id", "ev1");
    h.insert("ce-source", "github");
    h.insert("ce-time", "2026-11-28T12:00:00.000Z");
    h.insert("Nats-Msg-Id", "dl:router:EVENTS:7");
    h.insert(dead_letter::SUBJECT, "ifox.events.github.issues");
    h.insert(dead_letter::REASON, "no_route");
    let key = replay_sig::key("admin");
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_500);
    let (subject, out, root) =
        replayed("ifox.deadletter.router.no_route", Some(&h), at, false, &key).unwrap();
    assert_eq!(
        (subject.as_str(), root.as_str()),
        ("ifox.events.github.issues", "ev1")
    );
    assert_ne!(out.get("ce-id").unwrap().as_str(), "ev1");
    assert!(out.get(dead_letter::REASON).is_none() && out.get(REPLAY_FORCE).is_none());
    assert_eq!(out.get("ce-source").unwrap().as_str(), "github");
    assert_eq!(
        out.get("ce-time").unwrap().as_str(),
        "2026-11-28T12:00:00.000Z",
        "the run id derives from ce-time"
    );
    // replaying the replay still names the first original
    let (_, again, root) =
        replayed("ifox.events.github.issues", Some(&out), at, true, &key).unwrap();
    assert_eq!(root, "ev1");
    assert_eq!(again.get(REPLAY_FORCE).unwrap().as_str(), "true");
}

fn event<'a>(subject: &'a str, h: &'a HeaderMap) -> Event<'a> {
    Event {
        subject,
        headers: Some(h),
        payload: b"{}",
    }
}

#[test]
fn a_replay_is_signed_for_its_own_subject_and_flag_and_stamped_with_the_stream_time() {
    let key = replay_sig::key("admin");
    let mut h = HeaderMap::new();
    h.insert("ce-id", "ev1");
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_500);
    let subject = "ifox.events.alerts.fired";
    let (target, out, _) = replayed(subject, Some(&h), at, true, &key).unwrap();
    assert_eq!(
        out.get(CE_TIME).unwrap().as_str(),
        "1970-01-01T00:00:01.500Z",
        "no ce-time: the stored message's time"
    );
    assert!(signed(&event(&target, &out), &key));
    assert!(!signed(&event(&target, &out), &replay_sig::key("other")));
    assert!(!signed(&event("ifox.events.alerts.other", &out), &key));
    let mut unforced = out.clone();
    unforced.insert(REPLAY_FORCE, "false");
    assert!(
        !signed(&event(&target, &unforced), &key),
        "the flag is signed"
    );
    let mut bare = HeaderMap::new();
    bare.insert("ce-id", "ev2");
    assert!(
        signed(&event(subject, &bare), &key),
        "no replay header, nothing to check"
    );
    bare.insert(REPLAY_OF, "ev1");
    assert!(!signed(&event(subject, &bare), &key));
    // Replaying that forged event does not launder its replay-of into a signed one.
    let (_, again, root) = replayed(subject, Some(&bare), at, false, &key).unwrap();
    assert_eq!(root, "ev2", "the forged event is its own original");
    assert_eq!(again.get(REPLAY_OF).unwrap().as_str(), "ev2");
}
