//! [`SecretList`]: several secrets under one settings key, for rotation (webhook signing secrets).

use super::Secret;
use serde::Deserialize;

/// Several [`Secret`]s: a TOML list, or one comma-separated string (the environment's form).
/// Debug shows only how many there are.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretList(Vec<Secret>);

impl SecretList {
    pub fn new(secrets: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self(
            secrets
                .into_iter()
                .map(|s| Secret::new(s))
                .filter(|s| !s.expose().is_empty())
                .collect(),
        )
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The secrets in order, for verifiers that take `&[&str]`.
    pub fn exposed(&self) -> Vec<&str> {
        self.0.iter().map(Secret::expose).collect()
    }
}

impl std::fmt::Debug for SecretList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{} redacted]", self.0.len())
    }
}

impl<'de> Deserialize<'de> for SecretList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = SecretList;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of secrets or one comma-separated string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SecretList, E> {
                Ok(SecretList::new(v.split(',').map(str::trim)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<SecretList, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(SecretList::new(out))
            }
            // The environment parser turns an all-digit value into a number, which would drop leading
            // zeros: refuse it rather than verify with a different secret than the one configured.
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<SecretList, E> {
                Err(E::custom("a secret must not be a bare number"))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<SecretList, E> {
                Err(E::custom("a secret must not be a bare number"))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<SecretList, E> {
                Err(E::custom("a secret must not be a bare number"))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SecretList, E> {
                Err(E::custom("a secret must not be a boolean"))
            }
        }
        d.deserialize_any(Visit)
    }
}
