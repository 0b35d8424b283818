//! [`Secret`]: a string that must never be printed (tokens, database URLs with passwords, signing
//! secrets). It lives in `domain` because the store, tenancy and settings all hold one, and none of
//! them may depend on another for it.

use serde::Deserialize;

/// A value that must never be printed: Debug shows `[redacted]`; read it with [`Secret::expose`].
#[derive(Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(transparent)]
pub struct Secret(String);

/// A key for one `purpose` derived from a shared secret (HMAC-SHA256 of the purpose under it): the
/// admin token yields the run-token key and the replay-signature key this way, so every replica
/// computes the same keys and one leaked key does not give the other.
pub fn derived_key(from: &str, purpose: &[u8]) -> Vec<u8> {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(from.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(purpose);
    mac.finalize().into_bytes().to_vec()
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_output_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(s.expose(), "hunter2");
    }
}
