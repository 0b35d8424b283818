//! Kubernetes value rules the request checks: label keys and values, and resource quantities
//! (`"4"`, `"500m"`, `"8Gi"`) parsed into millicores and bytes and printed back in canonical form.

use super::request::{RequestError, bad};

/// A label name: optional DNS-subdomain prefix and `/`, then 1–63 of `[A-Za-z0-9._-]`, alphanumeric
/// at both ends.
pub fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.')
                .all(|l| crate::domain::ids::check_dns_label("prefix", l).is_ok());
        if !ok {
            return Err(format!(
                "label key {key:?} has a prefix that is not a DNS subdomain"
            ));
        }
    }
    if name.is_empty() {
        return Err(format!("label key {key:?} has an empty name"));
    }
    check_label_value(name).map_err(|_| format!("label key {key:?} is not a valid label name"))
}

/// A label value: empty, or 1–63 of `[A-Za-z0-9._-]`, alphanumeric at both ends.
pub fn check_label_value(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Ok(());
    }
    let alnum = |c: u8| c.is_ascii_alphanumeric();
    let b = v.as_bytes();
    if v.len() > 63
        || !b.first().is_some_and(|&c| alnum(c))
        || !b.last().is_some_and(|&c| alnum(c))
        || !b.iter().all(|&c| alnum(c) || b"-_.".contains(&c))
    {
        return Err(format!(
            "{v:?} is not a valid label value (at most 63 of A-Z a-z 0-9 - _ ., alphanumeric at both ends)"
        ));
    }
    Ok(())
}

/// CPU in millicores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpu(pub u64);
/// Memory in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory(pub u64);

impl std::fmt::Display for Cpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_multiple_of(1000) {
            write!(f, "{}", self.0 / 1000)
        } else {
            write!(f, "{}m", self.0)
        }
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (suffix, unit) in [
            ("Ti", 1u64 << 40),
            ("Gi", 1 << 30),
            ("Mi", 1 << 20),
            ("Ki", 1 << 10),
        ] {
            if self.0 >= unit && self.0.is_multiple_of(unit) {
                return write!(f, "{}{suffix}", self.0 / unit);
            }
        }
        write!(f, "{}", self.0)
    }
}

/// A Kubernetes quantity as a number of base units (`"500m"` → 0.5, `"8Gi"` → 8·2³⁰).
fn quantity(q: &str) -> Option<f64> {
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1
    {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        _ => return None,
    };
    Some(n * mult)
}

/// Whether a parsed amount is a whole number of units, within floating-point error either way:
/// `"528989026m"` computes to 528989025.99999994, whose `fract()` is nearly 1.
fn whole(v: f64) -> bool {
    (v - v.round()).abs() <= 1e-6
}

pub fn cpu(q: &str, field: &str) -> Result<Cpu, RequestError> {
    let m = quantity(q).map(|v| v * 1000.0).ok_or_else(|| {
        bad(
            field,
            format!("{q:?} is not a CPU quantity such as \"4\" or \"500m\""),
        )
    })?;
    if m < 1.0 || !whole(m) || m > 1e9 {
        return Err(bad(
            field,
            format!("{q:?} must be a whole number of millicores, at least 1m"),
        ));
    }
    Ok(Cpu(m.round() as u64))
}

pub fn memory(q: &str, field: &str) -> Result<Memory, RequestError> {
    let b = quantity(q).ok_or_else(|| {
        bad(
            field,
            format!("{q:?} is not a memory quantity such as \"8Gi\" or \"512Mi\""),
        )
    })?;
    if b < 1024.0 * 1024.0 || !whole(b) || b > 1e15 {
        return Err(bad(
            field,
            format!("{q:?} must be a whole number of bytes, at least 1Mi"),
        ));
    }
    Ok(Memory(b.round() as u64))
}
