//! The signed marker of a replay: `ifox replay` signs the replay headers it writes, the router
//! refuses replay headers without a valid signature. Pure (HMAC-SHA256 over plain strings).
//!
//! Anything allowed to publish on `ifox.events.>` could otherwise set `Ifox-Replay-Of` and
//! `Ifox-Replay-Force` itself: collapse a coming event onto an old run (a replay-of naming an event
//! not seen yet) or force extra runs of another tenant's event. The signature covers what those
//! headers decide — the replayed `ce-id`, the force flag — bound to this message (its own `ce-id` and
//! subject), so a signature cannot be moved to another message. The key derives from the admin
//! token (as the run-token key does, `settings::bridge`): every process that has the admin token
//! (the router, the operator's `ifox replay`) has it, no new secret to distribute.

use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The signing key of replays, derived from the admin token.
pub fn key(admin_token: &str) -> Vec<u8> {
    super::secret::derived_key(admin_token, b"ifox replay signatures v1")
}

fn mac(key: &[u8], replay_of: &str, force: bool, ce_id: &str, subject: &str) -> HmacSha256 {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    // Header values hold no line break (`headers::header_safe`), so the fields cannot run together.
    let force = if force { "true" } else { "false" };
    for part in [replay_of, force, ce_id, subject] {
        mac.update(part.as_bytes());
        mac.update(b"\n");
    }
    mac
}

/// The `Ifox-Replay-Sig` value (lowercase hex).
pub fn sign(key: &[u8], replay_of: &str, force: bool, ce_id: &str, subject: &str) -> String {
    hex::encode(
        mac(key, replay_of, force, ce_id, subject)
            .finalize()
            .into_bytes(),
    )
}

/// Whether `sig` signs these values (compared in constant time).
pub fn verify(
    key: &[u8],
    sig: &str,
    replay_of: &str,
    force: bool,
    ce_id: &str,
    subject: &str,
) -> bool {
    let Ok(bytes) = hex::decode(sig.trim()) else {
        return false;
    };
    mac(key, replay_of, force, ce_id, subject)
        .verify_slice(&bytes)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_only_for_its_own_values_and_key() {
        let k = key("admin-token");
        let subject = "ifox.events.github.issues";
        let s = sign(&k, "ev1", false, "replay-1", subject);
        assert!(verify(&k, &s, "ev1", false, "replay-1", subject));
        // (key, signature, replay-of, force, ce-id, subject), each with one thing changed.
        type Case<'a> = (&'a [u8], &'a str, &'a str, bool, &'a str, &'a str);
        let other = key("other");
        let refused: [Case<'_>; 7] = [
            (&k, &s, "ev1", true, "replay-1", subject),
            (&k, &s, "ev2", false, "replay-1", subject),
            (&k, &s, "ev1", false, "replay-2", subject),
            (
                &k,
                &s,
                "ev1",
                false,
                "replay-1",
                "ifox.events.slack.message",
            ),
            (&other, &s, "ev1", false, "replay-1", subject),
            (&k, "not hex", "ev1", false, "replay-1", subject),
            (&k, "", "ev1", false, "replay-1", subject),
        ];
        for (i, (key, sig, of, force, id, subj)) in refused.into_iter().enumerate() {
            assert!(!verify(key, sig, of, force, id, subj), "case {i}");
        }
    }

    #[test]
    fn the_key_is_not_the_admin_token_nor_the_run_token_key() {
        let k = key("admin-token");
        assert_ne!(k, b"admin-token".to_vec());
        assert_eq!(k.len(), 32);
        assert_eq!(k, key("admin-token"));
    }
}
