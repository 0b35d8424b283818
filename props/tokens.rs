//! Target `tokens`: bearer tokens as presented to the API (org and team tokens, run tokens) and the
//! replay signatures the router checks.

use crate::common::text;
use ifox::domain::run_token::{self, RunClaims, RunTokenError};
use ifox::domain::token::{TokenShape, generate, parse_shape};
use ifox::domain::{NodeId, OrgId, replay_sig};
use proptest::prelude::*;

/// A DNS label (what org and node ids are).
fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?"
}

fn shape() -> impl Strategy<Value = TokenShape> {
    (label(), prop::option::of(label())).prop_map(|(org, team)| {
        let org = OrgId::parse(org).expect("a label");
        match team {
            Some(team) => TokenShape::Team {
                org,
                team: NodeId::parse(team).expect("a label"),
            },
            None => TokenShape::Org { org },
        }
    })
}

fn claims() -> impl Strategy<Value = RunClaims> {
    (label(), label(), "[0-9a-f-]{1,40}", any::<i64>()).prop_map(
        |(org, team, run_id, expires_unix)| RunClaims {
            org: OrgId::parse(org).expect("a label"),
            team: NodeId::parse(team).expect("a label"),
            run_id,
            expires_unix,
        },
    )
}

/// A presented token: near a real one (a prefix, dots, base64url) or anything.
fn presented() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => ("(ifxr_)?", "[a-z0-9.-]{0,30}", "[A-Za-z0-9_.+-]{0,50}").prop_map(|(p, a, b)| format!("{p}{a}.{b}")),
        1 => "ifxr_[a-z0-9]{1,8}\\.[a-z0-9]{1,8}\\.[0-9a-f-]{1,12}\\.[-+]?[0-9]{1,20}\\.[A-Za-z0-9_-]{0,50}",
        1 => text(),
        1 => "[.]{0,600}",
    ]
}

proptest! {
    /// parse(render(x)) == x: a generated org or team token parses back to its shape.
    #[test]
    fn a_generated_token_parses_back_to_its_shape(shape in shape()) {
        prop_assert_eq!(parse_shape(&generate(&shape)), Ok(shape));
    }

    /// Any presented string gets a shape or `MalformedToken`, never a panic; a shape names the org
    /// (and team) the token's own first segments spell.
    #[test]
    fn any_presented_token_gets_a_shape_or_a_typed_error(token in presented()) {
        if let Ok(shape) = parse_shape(&token) {
            let parts: Vec<&str> = token.split('.').collect();
            match shape {
                TokenShape::Org { org } => prop_assert_eq!(parts.first().copied(), Some(org.as_str())),
                TokenShape::Team { org, team } => {
                    prop_assert_eq!(parts.first().copied(), Some(org.as_str()));
                    prop_assert_eq!(parts.get(1).copied(), Some(team.as_str()));
                }
            }
        }
    }

    /// A minted run token verifies to its claims under its key before its deadline, is `Expired`
    /// from the deadline on, and never verifies under another key.
    #[test]
    fn a_run_token_verifies_only_under_its_key_until_its_deadline(
        claims in claims(),
        key in prop::collection::vec(any::<u8>(), 0..64),
        other in prop::collection::vec(any::<u8>(), 0..64),
        before in 1i64..1_000_000,
    ) {
        let token = run_token::mint(&key, &claims);
        prop_assert!(run_token::is_run_token(&token));
        if let Some(now) = claims.expires_unix.checked_sub(before) {
            prop_assert_eq!(run_token::verify(&key, &token, now), Ok(claims.clone()));
        }
        prop_assert_eq!(run_token::verify(&key, &token, claims.expires_unix), Err(RunTokenError::Expired));
        if other != key {
            prop_assert_eq!(run_token::verify(&other, &token, i64::MIN), Err(RunTokenError::Invalid));
        }
    }

    /// Any one-character change of a run token makes it fail (`Malformed` or `Invalid`, never other
    /// claims), and any presented string gets a typed answer, never a panic.
    #[test]
    fn a_changed_or_made_up_run_token_never_verifies(
        claims in claims(),
        at in any::<prop::sample::Index>(),
        replacement in prop::char::range(' ', '~'),
        made_up in presented(),
    ) {
        let key = b"props-run-token-key";
        let token = run_token::mint(key, &claims);
        let mut chars: Vec<char> = token.chars().collect();
        let i = at.index(chars.len());
        if chars[i] != replacement {
            chars[i] = replacement;
            let changed: String = chars.into_iter().collect();
            let got = run_token::verify(key, &changed, i64::MIN);
            prop_assert!(matches!(got, Err(RunTokenError::Malformed | RunTokenError::Invalid)), "{} -> {:?}", changed, got);
        }
        let got = run_token::verify(key, &made_up, i64::MIN);
        prop_assert!(got.is_err(), "{} verified", made_up);
    }

    /// A replay signature holds for exactly the values it signed under its key: a change of the
    /// replayed id, the force flag, the message's own id, its subject or the key fails, and any
    /// presented signature text gets `false`, never a panic.
    #[test]
    fn a_replay_signature_holds_only_for_its_values(
        admin in "[!-~]{1,40}",
        other_admin in "[!-~]{1,40}",
        fields in ("[ -~]{0,40}", any::<bool>(), "[ -~]{0,40}", "[ -~]{0,40}"),
        changed in ("[ -~]{0,40}", "[ -~]{0,40}", "[ -~]{0,40}"),
        presented in prop_oneof!["[0-9a-fA-F ]{0,70}", text()],
    ) {
        let (of, force, id, subject) = fields;
        let key = replay_sig::key(&admin);
        let sig = replay_sig::sign(&key, &of, force, &id, &subject);
        prop_assert!(replay_sig::verify(&key, &sig, &of, force, &id, &subject));
        prop_assert!(!replay_sig::verify(&key, &sig, &of, !force, &id, &subject));
        if changed.0 != of {
            prop_assert!(!replay_sig::verify(&key, &sig, &changed.0, force, &id, &subject));
        }
        if changed.1 != id {
            prop_assert!(!replay_sig::verify(&key, &sig, &of, force, &changed.1, &subject));
        }
        if changed.2 != subject {
            prop_assert!(!replay_sig::verify(&key, &sig, &of, force, &id, &changed.2));
        }
        if other_admin != admin {
            prop_assert!(!replay_sig::verify(&replay_sig::key(&other_admin), &sig, &of, force, &id, &subject));
        }
        if presented.trim() != sig {
            prop_assert!(!replay_sig::verify(&key, &presented, &of, force, &id, &subject));
        }
    }
}
