//! The bodies and headers `webhook_payload` sends: each provider's shape with hostile values where
//! its parser looks, any JSON, or any bytes; a content type and provider headers with hostile values.

use crate::common::{
    bytes, header_value_bytes, identifier_kind, identifier_value, json_object, json_value, text,
    with_paths,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use ifox::domain::headers::route_header;
use proptest::prelude::*;
use serde_json::{Value, json};

/// A body as a provider might send it: its shape with hostile values, or any JSON, or any bytes.
pub fn body(shaped: impl Strategy<Value = Value>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => shaped.prop_map(|v| v.to_string().into_bytes()),
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => bytes(256),
    ]
}

/// A leaf where the parser reads an identifier: mostly a string (claimed values among them).
fn id_leaf() -> BoxedStrategy<Value> {
    prop_oneof![4 => identifier_value().prop_map(Value::String), 1 => json_value()].boxed()
}

pub fn type_leaf(known: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop_oneof![
        3 => prop::sample::select(known).prop_map(|s| Value::String(s.to_owned())),
        1 => text().prop_map(Value::String),
        1 => json_value(),
    ]
    .boxed()
}

pub fn github_body() -> impl Strategy<Value = Vec<u8>> {
    body(
        (json_object(), id_leaf(), id_leaf()).prop_map(|(base, name, login)| {
            with_paths(
                base,
                vec![
                    ("/repository/full_name", name),
                    ("/repository/owner/login", login),
                ],
            )
        }),
    )
}

pub fn slack_value() -> impl Strategy<Value = Value> {
    (
        json_object(),
        type_leaf(&[
            "event_callback",
            "url_verification",
            "block_actions",
            "view_submission",
        ]),
        type_leaf(&["app_mention", "message"]),
        (id_leaf(), id_leaf(), id_leaf(), id_leaf()),
        (id_leaf(), id_leaf(), id_leaf()),
    )
        .prop_map(
            |(base, kind, event_type, (ch, ch2, team, team2), (event_id, trigger, challenge))| {
                with_paths(
                    base,
                    vec![
                        ("/type", kind),
                        ("/event/type", event_type),
                        ("/event/channel", ch),
                        ("/channel/id", ch2),
                        ("/team_id", team),
                        ("/team/id", team2),
                        ("/event_id", event_id),
                        ("/trigger_id", trigger),
                        ("/challenge", challenge),
                    ],
                )
            },
        )
}

/// An interaction: a form whose `payload` field is JSON (or not), among other fields.
pub fn slack_form() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (slack_value(), prop::collection::vec((text(), text()), 0..3)).prop_map(|(v, extra)| {
            let mut form = form_urlencoded::Serializer::new(String::new());
            for (k, x) in &extra {
                form.append_pair(k, x);
            }
            form.append_pair("payload", &v.to_string());
            form.finish().into_bytes()
        }),
        1 => bytes(256),
    ]
}

pub fn pagerduty_body() -> impl Strategy<Value = Vec<u8>> {
    body(
        (
            json_object(),
            id_leaf(),
            type_leaf(&["incident.triggered", "pagey.ping"]),
            id_leaf(),
        )
            .prop_map(|(base, id, kind, service)| {
                with_paths(
                    base,
                    vec![
                        ("/event/id", id),
                        ("/event/event_type", kind),
                        ("/event/data/service/id", service),
                    ],
                )
            }),
    )
}

pub fn incidentio_body() -> impl Strategy<Value = Vec<u8>> {
    let shaped = (
        json_object(),
        type_leaf(&[
            "public_alert.alert_created_v1",
            "public_incident.incident_created_v2",
        ]),
        id_leaf(),
    )
        .prop_map(|(mut base, kind, source)| {
            if let (Some(map), Some(k)) = (base.as_object_mut(), kind.as_str()) {
                map.insert(k.to_owned(), json!({ "alert_source_id": source }));
            }
            with_paths(base, vec![("/event_type", kind)])
        });
    body(shaped)
}

/// Headers besides the signature: a content type (mostly right), provider headers with hostile
/// values, and routing headers for the generic sender.
pub fn extra_headers(
    content_type: &'static str,
    names: &'static [&'static str],
) -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let ct = prop_oneof![
        4 => Just(content_type.as_bytes().to_vec()),
        1 => Just(b"application/json; charset=utf-8".to_vec()),
        1 => header_value_bytes(),
    ];
    let named = prop::collection::vec(
        (
            prop::sample::select(names).prop_map(str::to_owned),
            prop_oneof![
                2 => identifier_value().prop_map(String::into_bytes),
                1 => header_value_bytes(),
            ],
        ),
        0..6,
    );
    let routes =
        prop::collection::vec((identifier_kind(), identifier_value()), 0..4).prop_map(|r| {
            r.into_iter()
                .map(|(k, v)| (route_header(k), v.into_bytes()))
                .collect::<Vec<_>>()
        });
    (ct, named, routes).prop_map(|(ct, mut named, routes)| {
        named.push(("content-type".to_owned(), ct));
        named.extend(routes);
        named
    })
}

pub fn header_map(pairs: Vec<(String, Vec<u8>)>) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::from_bytes(&value)) {
            h.append(n, v);
        }
    }
    h
}
