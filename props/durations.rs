//! Target `durations`: duration settings (`"30s"`, `"24h"`, humantime) as an operator writes them in
//! the environment, through the real settings loader (`Settings::load_from`).

use crate::common::text;
use ifox::settings::{Settings, SettingsError};
use proptest::prelude::*;
use std::path::Path;
use std::time::Duration;

/// Duration keys of every section, how each reads back from loaded settings, and whether it must
/// be more than zero: intervals drive `tokio::time::interval`, which panics on zero, and a zero
/// timeout fails every request.
type Read = fn(&Settings) -> Duration;
#[rustfmt::skip]
const KEYS: [(&str, Read, bool); 9] = [
    ("IFOX__TENANCY__RELOAD_INTERVAL", |s| s.tenancy.reload_interval, true),
    ("IFOX__NATS__CONNECT_TIMEOUT", |s| s.nats.connect_timeout, true),
    ("IFOX__NATS__PUBLISH_TIMEOUT", |s| s.nats.publish_timeout, true),
    ("IFOX__BRIDGE__SWEEP_INTERVAL", |s| s.bridge.sweep_interval, true),
    ("IFOX__PROVISION__TICK", |s| s.provision.tick, true),
    ("IFOX__PROVISION__RESYNC_INTERVAL", |s| s.provision.resync_interval, true),
    ("IFOX__PROVISION__AVAILABILITY_TIMEOUT", |s| s.provision.availability_timeout, false),
    ("IFOX__PROVISION__GRACE", |s| s.provision.grace, false),
    ("IFOX__KUBE__TIMEOUT", |s| s.kube.timeout, false),
];

fn load(key: &str, value: &str) -> Result<Settings, SettingsError> {
    // A file that does not exist: only defaults and this one variable count.
    let none = Path::new("/nonexistent/ifox-props.toml");
    Settings::load_from(Some(none), [(key.to_owned(), value.to_owned())])
}

/// A duration an operator could mean: whole seconds up to ~300 years, sometimes with a fraction.
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        1 => Just(Duration::ZERO),
        4 => (0u64..10_000_000_000, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        4 => (0u64..100_000).prop_map(Duration::from_secs),
        4 => (0u64..100_000).prop_map(Duration::from_millis),
    ]
}

/// Text near a duration: numbers with units, signs, spaces, huge values, or anything.
fn written() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => ("[-+]?[0-9]{1,25}(\\.[0-9]{1,3})?", "(ns|us|ms|s|sec|m|min|h|hr|d|w|M|y|years|)", "( [0-9]{1,4}(s|m|h))?")
            .prop_map(|(n, u, more)| format!("{n}{u}{more}")),
        1 => text(),
    ]
}

proptest! {
    /// parse(render(x)) == x: a duration written as humantime prints it loads back exactly, for
    /// every duration key; zero is refused with a settings error where it cannot work (an interval
    /// or a timeout that must be positive), never accepted to panic later.
    #[test]
    fn a_rendered_duration_loads_back_exactly(d in duration(), which in 0..KEYS.len()) {
        let (key, read, positive) = KEYS[which];
        let text = humantime::format_duration(d).to_string();
        match load(key, &text) {
            Ok(s) => {
                prop_assert_eq!(read(&s), d, "{} = {:?}", key, text);
                prop_assert!(!(positive && d.is_zero()), "{} = 0 was accepted", key);
            }
            Err(e) => prop_assert!(positive && d.is_zero(), "{} = {:?} refused: {}", key, text, e),
        }
    }

    /// Any text in a duration setting loads or gives a settings error naming the problem, never a
    /// panic; what loads is what humantime reads from that text (a number-looking text such as `+0`
    /// is first read as a number by the environment source and then as its plain digits, `0`).
    #[test]
    fn any_duration_text_loads_or_is_refused(value in written(), which in 0..KEYS.len()) {
        let (key, read, positive) = KEYS[which];
        match load(key, &value) {
            Ok(s) => {
                if value.parse::<f64>().is_err() {
                    prop_assert_eq!(Ok(read(&s)), humantime::parse_duration(&value).map_err(|_| ()));
                }
                prop_assert!(!(positive && read(&s).is_zero()));
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}

/// Regression: `bridge.sweep_interval`, `provision.tick` and `provision.resync_interval` of `0s`
/// loaded, and the role then panicked in `tokio::time::interval`; they are refused at load now,
/// naming the key.
#[test]
fn a_zero_interval_is_refused_at_load_naming_the_key() {
    for (env, key) in [
        ("IFOX__BRIDGE__SWEEP_INTERVAL", "bridge.sweep_interval"),
        ("IFOX__PROVISION__TICK", "provision.tick"),
        (
            "IFOX__PROVISION__RESYNC_INTERVAL",
            "provision.resync_interval",
        ),
    ] {
        let err = load(env, "0s").expect_err("zero refused").to_string();
        assert!(err.contains(key), "{err}");
    }
}
