//! Bearer tokens, pure: their shape, generation and hashing, and the principal a token stands for.
//!
//! Shapes: org admin `{org}.{secret}`, team `{org}.{team}.{secret}`; the secret is 32 random bytes
//! (256 bits) in unpadded base64url, so it never contains a `.`. Only the SHA-256 of the whole token is
//! stored; the token itself is shown once, at issue.

use super::ids::{NodeId, OrgId};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Who is calling. Handlers receive this (or a scope derived from it), never a raw id from a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// `IFOX__ADMIN__TOKEN`: everything.
    GlobalAdmin,
    /// Everything inside one org.
    OrgAdmin { org: OrgId, token_id: String },
    /// Its own team's config, nothing else.
    Team {
        org: OrgId,
        team: NodeId,
        token_id: String,
    },
}

impl Principal {
    /// The actor recorded in audit and history: a token id, never a token.
    pub fn actor(&self) -> String {
        match self {
            Principal::GlobalAdmin => "global-admin".to_owned(),
            Principal::OrgAdmin { token_id, .. } | Principal::Team { token_id, .. } => {
                token_id.clone()
            }
        }
    }

    /// Whether this principal may see the org at all (the others get 404, as for a missing org).
    pub fn sees_org(&self, org: &OrgId) -> bool {
        match self {
            Principal::GlobalAdmin => true,
            Principal::OrgAdmin { org: own, .. } | Principal::Team { org: own, .. } => own == org,
        }
    }

    /// Whether this principal administers the org (global or that org's admin).
    pub fn administers(&self, org: &OrgId) -> bool {
        match self {
            Principal::GlobalAdmin => true,
            Principal::OrgAdmin { org: own, .. } => own == org,
            Principal::Team { .. } => false,
        }
    }
}

/// What a presented token claims to be, before the database is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenShape {
    Org { org: OrgId },
    Team { org: OrgId, team: NodeId },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token is not of the form org.secret or org.team.secret")]
pub struct MalformedToken;

/// Parses the shape of a presented token (never logs or returns the secret part).
pub fn parse_shape(token: &str) -> Result<TokenShape, MalformedToken> {
    let parts: Vec<&str> = token.split('.').collect();
    let secret_ok = |s: &str| s.len() >= 22 && URL_SAFE_NO_PAD.decode(s).is_ok();
    match parts.as_slice() {
        [org, secret] if secret_ok(secret) => Ok(TokenShape::Org {
            org: OrgId::parse(*org).map_err(|_| MalformedToken)?,
        }),
        [org, team, secret] if secret_ok(secret) => Ok(TokenShape::Team {
            org: OrgId::parse(*org).map_err(|_| MalformedToken)?,
            team: NodeId::parse(*team).map_err(|_| MalformedToken)?,
        }),
        _ => Err(MalformedToken),
    }
}

/// A new token of the given shape.
pub fn generate(shape: &TokenShape) -> String {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let secret = URL_SAFE_NO_PAD.encode(secret);
    match shape {
        TokenShape::Org { org } => format!("{org}.{secret}"),
        TokenShape::Team { org, team } => format!("{org}.{team}.{secret}"),
    }
}

/// The stored form: lowercase hex SHA-256 of the whole token.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Constant-time equality, for comparing a presented secret with a configured one.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.as_slice().ct_eq(b.as_slice()).into()
}

/// A new token id (what audit records name as the actor).
pub fn new_token_id() -> String {
    format!("tok_{}", uuid::Uuid::now_v7().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_back_to_their_shape_and_carry_256_bits() {
        let org = OrgId::parse("acme").unwrap();
        let team = NodeId::parse("payments").unwrap();
        let t = generate(&TokenShape::Team {
            org: org.clone(),
            team: team.clone(),
        });
        assert_eq!(
            parse_shape(&t),
            Ok(TokenShape::Team {
                org: org.clone(),
                team
            })
        );
        let secret = t.rsplit('.').next().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(secret).unwrap().len(), 32);
        let o = generate(&TokenShape::Org { org: org.clone() });
        assert_eq!(parse_shape(&o), Ok(TokenShape::Org { org }));
        assert_ne!(
            o,
            generate(&TokenShape::Org {
                org: OrgId::parse("acme").unwrap()
            })
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in [
            "",
            "acme",
            "acme.",
            "ACME.aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "a.b.c.d",
            "acme.short",
            "acme.t.!!!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert_eq!(parse_shape(bad), Err(MalformedToken), "{bad}");
        }
    }

    #[test]
    fn hashes_are_stable_hex_and_differ_per_token() {
        assert_eq!(hash("x"), hash("x"));
        assert_ne!(hash("x"), hash("y"));
        assert_eq!(hash("x").len(), 64);
        assert!(constant_time_eq("abc", "abc") && !constant_time_eq("abc", "abd"));
    }

    #[test]
    fn scopes_follow_the_principal() {
        let acme = OrgId::parse("acme").unwrap();
        let other = OrgId::parse("globex").unwrap();
        let admin = Principal::OrgAdmin {
            org: acme.clone(),
            token_id: "tok_1".into(),
        };
        assert!(admin.administers(&acme) && !admin.administers(&other) && !admin.sees_org(&other));
        let team = Principal::Team {
            org: acme.clone(),
            team: NodeId::parse("t").unwrap(),
            token_id: "tok_2".into(),
        };
        assert!(team.sees_org(&acme) && !team.administers(&acme));
        assert_eq!(team.actor(), "tok_2");
        assert!(Principal::GlobalAdmin.administers(&other));
    }
}
