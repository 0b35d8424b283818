use super::*;
use serde_json::json;

fn org(s: &str) -> OrgId {
    OrgId::parse(s).unwrap()
}
fn team(s: &str) -> NodeId {
    NodeId::parse(s).unwrap()
}
fn claim(o: &str, t: &str, kind: IdentifierKind, v: &str) -> Claim {
    Claim {
        org_id: org(o),
        team_id: team(t),
        kind,
        value: kind.normalise(v),
    }
}

#[test]
fn claims_are_trimmed_deduplicated_and_github_repos_lowercased() {
    let raw = json!({"routing": {"github_repos": [" Acme/API ", "acme/api"], "slack_channel_ids": ["C1", " C1"]}});
    let claims: Vec<_> = claims_of(&raw).unwrap().into_iter().collect();
    assert_eq!(
        claims,
        vec![
            Identifier::new(IdentifierKind::SlackChannelIds, "C1"),
            Identifier::new(IdentifierKind::GithubRepos, "acme/api")
        ]
    );
}

#[test]
fn slack_channel_ids_stay_case_sensitive() {
    assert_eq!(IdentifierKind::SlackChannelIds.normalise(" C0aB "), "C0aB");
}

#[test]
fn bad_routing_sections_are_refused_with_the_key() {
    assert_eq!(
        claims_of(&json!({"routing": []})),
        Err(ClaimError::NotAnObject)
    );
    assert_eq!(
        claims_of(&json!({"routing": {"slack": ["x"]}})),
        Err(ClaimError::UnknownKind("slack".into()))
    );
    assert_eq!(
        claims_of(&json!({"routing": {"github_repos": "a/b"}})),
        Err(ClaimError::NotAList("github_repos".into()))
    );
    assert_eq!(
        claims_of(&json!({"routing": {"github_repos": [1]}})),
        Err(ClaimError::NotAList("github_repos".into()))
    );
    assert_eq!(
        claims_of(&json!({"routing": {"github_repos": ["  "]}})),
        Err(ClaimError::EmptyValue("github_repos".into()))
    );
}

#[test]
fn lookup_finds_the_team_and_the_matching_claim() {
    let index = RouteIndex::from_claims([claim(
        "acme",
        "payments",
        IdentifierKind::GithubRepos,
        "acme/pay",
    )]);
    let out = index.lookup(
        &[Identifier::new(IdentifierKind::GithubRepos, "ACME/Pay")],
        &[],
    );
    assert_eq!(
        out,
        RouteOutcome::Found {
            org_id: org("acme"),
            team_id: team("payments"),
            matched: Identifier::new(IdentifierKind::GithubRepos, "acme/pay")
        }
    );
}

#[test]
fn lookup_prefers_the_higher_priority_kind() {
    let index = RouteIndex::from_claims([
        claim("acme", "by-channel", IdentifierKind::SlackChannelIds, "C1"),
        claim(
            "acme",
            "by-service",
            IdentifierKind::PagerdutyServiceIds,
            "P1",
        ),
    ]);
    let ids = [
        Identifier::new(IdentifierKind::SlackChannelIds, "C1"),
        Identifier::new(IdentifierKind::PagerdutyServiceIds, "P1"),
    ];
    assert!(
        matches!(index.lookup(&ids, &[]), RouteOutcome::Found { team_id, .. } if team_id == team("by-service"))
    );
}

#[test]
fn an_identifier_claimed_in_two_orgs_is_ambiguous_unless_a_hint_decides() {
    let index = RouteIndex::from_claims([
        claim("acme", "a", IdentifierKind::SlackChannelIds, "C1"),
        claim("globex", "g", IdentifierKind::SlackChannelIds, "C1"),
    ]);
    let ids = [Identifier::new(IdentifierKind::SlackChannelIds, "C1")];
    assert_eq!(
        index.lookup(&ids, &[]),
        RouteOutcome::Ambiguous {
            matched: ids[0].clone(),
            org_ids: vec![org("acme"), org("globex")]
        }
    );
    assert!(
        matches!(index.lookup(&ids, &[org("globex")]), RouteOutcome::Found { team_id, .. } if team_id == team("g"))
    );
    assert_eq!(
        index.lookup(&ids, &[org("initech")]),
        RouteOutcome::NotFound
    );
}

#[test]
fn replacing_a_teams_claims_forgets_the_old_ones() {
    let mut index =
        RouteIndex::from_claims([claim("acme", "a", IdentifierKind::SlackChannelIds, "C1")]);
    let new: BTreeSet<_> = [Identifier::new(IdentifierKind::SlackChannelIds, "C2")].into();
    index.set_team_claims(&org("acme"), &team("a"), &new);
    assert_eq!(
        index.lookup(
            &[Identifier::new(IdentifierKind::SlackChannelIds, "C1")],
            &[]
        ),
        RouteOutcome::NotFound
    );
    assert_eq!(index.len(), 1);
    index.remove_team(&org("acme"), &team("a"));
    assert!(index.is_empty());
}

fn found_team(outcome: RouteOutcome) -> Option<(String, String)> {
    match outcome {
        RouteOutcome::Found {
            org_id, team_id, ..
        } => Some((org_id.to_string(), team_id.to_string())),
        _ => None,
    }
}

#[test]
fn the_workspace_owner_decides_the_org_before_any_channel_claim() {
    use IdentifierKind::{SlackChannelIds as Chan, SlackWorkspaceIds as Ws};
    let mut index =
        RouteIndex::from_claims([claim("b", "inc", Ws, "T1"), claim("a", "ops", Chan, "C1")]);
    let event = [Identifier::new(Chan, "C1"), Identifier::new(Ws, "T1")];
    assert_eq!(
        found_team(index.lookup(&event, &[])),
        Some(("b".into(), "inc".into())),
        "A's channel claim does not reach into B's workspace"
    );
    // both orgs claim C1: B's own claim wins inside B, no ambiguity
    index.insert(claim("b", "chan", Chan, "C1"));
    assert_eq!(
        found_team(index.lookup(&event, &[])),
        Some(("b".into(), "chan".into()))
    );
    // an event naming no workspace keeps the old rule (the hint or nothing decides)
    assert!(matches!(
        index.lookup(&[Identifier::new(Chan, "C1")], &[]),
        RouteOutcome::Ambiguous { .. }
    ));
    // an org-scoped URL decides the org, whatever the payload says
    assert_eq!(
        found_team(index.lookup(&event, &[org("a")])),
        Some(("a".into(), "ops".into()))
    );
}

#[test]
fn an_org_with_its_own_workspace_gets_no_channel_of_an_unclaimed_one() {
    use IdentifierKind::{SlackChannelIds as Chan, SlackWorkspaceIds as Ws};
    let mut index = RouteIndex::from_claims([
        claim("a", "ops", Ws, "T2"),
        claim("a", "ops", Chan, "C9"),
        claim("c", "any", Chan, "C8"),
    ]);
    let unclaimed = |c: &str| [Identifier::new(Chan, c), Identifier::new(Ws, "T9")];
    assert_eq!(index.lookup(&unclaimed("C9"), &[]), RouteOutcome::NotFound);
    // an org without workspace claims keeps channel routing for unclaimed workspaces
    assert_eq!(
        found_team(index.lookup(&unclaimed("C8"), &[])),
        Some(("c".into(), "any".into()))
    );
    // once A gives up its workspace claim, the rule no longer singles it out
    index.set_team_claims(
        &org("a"),
        &team("ops"),
        &[Identifier::new(Chan, "C9")].into_iter().collect(),
    );
    assert_eq!(
        found_team(index.lookup(&unclaimed("C9"), &[])),
        Some(("a".into(), "ops".into()))
    );
}

#[test]
fn a_repo_resolves_only_in_the_org_owning_its_github_owner() {
    use IdentifierKind::{GithubOwners as Owner, GithubRepos as Repo};
    let index = RouteIndex::from_claims([
        claim("a", "ops", Repo, "globex/web"),
        claim("b", "inc", Owner, "Globex"),
        claim("b", "web", Repo, "globex/api"),
    ]);
    // the repo's own owner part names the tenant, even without an owner identifier in the event
    assert_eq!(
        found_team(index.lookup(&[Identifier::new(Repo, "Globex/Web")], &[])),
        None,
        "A's squatted repo does not match, and without an owner identifier nothing else does"
    );
    let event = [
        Identifier::new(Repo, "globex/web"),
        Identifier::new(Owner, "globex"),
    ];
    assert_eq!(
        found_team(index.lookup(&event, &[])),
        Some(("b".into(), "inc".into()))
    );
    assert_eq!(
        found_team(index.lookup(&[Identifier::new(Repo, "globex/api")], &[])),
        Some(("b".into(), "web".into()))
    );
    assert_eq!(
        Identifier::new(Repo, "Globex/Web").namespace(),
        Some(Identifier::new(Owner, "globex"))
    );
}
