//! Run tokens: what an agent gets instead of a long-lived secret. The bridge mints one per delivery;
//! it names one org, one team and one run, and expires at the run's deadline. It lets the agent
//! read its team's effective config and report its own run's status — nothing else.
//!
//! Shape: `ifxr_{org}.{team}.{run_id}.{expires_unix}.{mac}`, the MAC an HMAC-SHA256 (base64url) of
//! everything before it under a key every replica shares (`bridge.run_token_key`, derived from the
//! admin token by default). Stateless: minting writes nothing, so a delivery costs no database
//! write for its token; revoking one means waiting for its deadline (minutes). The `ifxr_` prefix
//! cannot begin an org id (ids are DNS labels), so run and team tokens never parse as each other.

use super::{NodeId, OrgId};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const PREFIX: &str = "ifxr_";

/// What a valid run token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunClaims {
    pub org: OrgId,
    pub team: NodeId,
    pub run_id: String,
    pub expires_unix: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunTokenError {
    #[error("not a run token")]
    Malformed,
    #[error("run token signature does not verify")]
    Invalid,
    #[error("run token expired")]
    Expired,
}

fn mac(key: &[u8], text: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(text.as_bytes());
    mac
}

/// A token for `claims` under `key`.
pub fn mint(key: &[u8], claims: &RunClaims) -> String {
    let text = format!(
        "{PREFIX}{}.{}.{}.{}",
        claims.org, claims.team, claims.run_id, claims.expires_unix
    );
    let sig = URL_SAFE_NO_PAD.encode(mac(key, &text).finalize().into_bytes());
    format!("{text}.{sig}")
}

/// Whether `token` looks like a run token (so auth knows which verifier to use).
pub fn is_run_token(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// The claims of `token` when its MAC verifies under `key` and it has not expired at `now_unix`.
pub fn verify(key: &[u8], token: &str, now_unix: i64) -> Result<RunClaims, RunTokenError> {
    let body = token.strip_prefix(PREFIX).ok_or(RunTokenError::Malformed)?;
    if token.len() > 512 {
        return Err(RunTokenError::Malformed);
    }
    let (signed, sig) = token.rsplit_once('.').ok_or(RunTokenError::Malformed)?;
    let parts: Vec<&str> = body.split('.').collect();
    let [org, team, run_id, expires, _sig] = parts[..] else {
        return Err(RunTokenError::Malformed);
    };
    let org = OrgId::parse(org).map_err(|_| RunTokenError::Malformed)?;
    let team = NodeId::parse(team).map_err(|_| RunTokenError::Malformed)?;
    let expires_unix: i64 = expires.parse().map_err(|_| RunTokenError::Malformed)?;
    if run_id.is_empty() || !run_id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(RunTokenError::Malformed);
    }
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| RunTokenError::Malformed)?;
    mac(key, signed)
        .verify_slice(&sig)
        .map_err(|_| RunTokenError::Invalid)?;
    if expires_unix <= now_unix {
        return Err(RunTokenError::Expired);
    }
    Ok(RunClaims {
        org,
        team,
        run_id: run_id.to_owned(),
        expires_unix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> RunClaims {
        RunClaims {
            org: OrgId::parse("acme").unwrap(),
            team: NodeId::parse("payments").unwrap(),
            run_id: "0190b5a2-1c4e-8e5f-9a3b-0c1d2e3f4a5b".into(),
            expires_unix: 2_000,
        }
    }

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let t = mint(b"k1", &claims());
        assert!(is_run_token(&t));
        assert_eq!(verify(b"k1", &t, 1_999), Ok(claims()));
        assert_eq!(verify(b"k1", &t, 2_000), Err(RunTokenError::Expired));
    }

    #[test]
    fn another_key_or_any_changed_field_does_not_verify() {
        let t = mint(b"k1", &claims());
        assert_eq!(verify(b"k2", &t, 0), Err(RunTokenError::Invalid));
        let other_team = t.replacen(".payments.", ".billing.", 1);
        assert_eq!(verify(b"k1", &other_team, 0), Err(RunTokenError::Invalid));
        let later = t.replacen(".2000.", ".9999.", 1);
        assert_eq!(verify(b"k1", &later, 0), Err(RunTokenError::Invalid));
    }

    #[test]
    fn team_tokens_and_garbage_are_not_run_tokens() {
        for bad in [
            "acme.payments.secret",
            "ifxr_",
            "ifxr_acme.payments.run.1",
            "ifxr_ACME.payments.0190.2000.sig",
            "ifxr_acme.payments.0190.soon.sig",
            "ifxr_acme.payments.zz.2000.sig",
        ] {
            assert_eq!(verify(b"k", bad, 0), Err(RunTokenError::Malformed), "{bad}");
        }
    }
}
