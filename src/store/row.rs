//! Reading typed values out of a row: ids parsed, JSON columns decoded, every bad value reported as
//! [`StoreError::Corrupt`] naming the column. Shared by every table module, so a row is mapped the same
//! way everywhere.

use super::StoreError;
use crate::domain::{NodeId, OrgId};
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::any::AnyRow;

/// A stored value that does not parse: the column and why.
pub(crate) fn corrupt(column: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{column}: {e}"))
}

pub(crate) fn org(row: &AnyRow, column: &str) -> Result<OrgId, StoreError> {
    OrgId::parse(row.try_get::<String, _>(column)?).map_err(|e| corrupt(column, e))
}

pub(crate) fn node(row: &AnyRow, column: &str) -> Result<NodeId, StoreError> {
    NodeId::parse(row.try_get::<String, _>(column)?).map_err(|e| corrupt(column, e))
}

pub(crate) fn opt_node(row: &AnyRow, column: &str) -> Result<Option<NodeId>, StoreError> {
    row.try_get::<Option<String>, _>(column)?
        .map(NodeId::parse)
        .transpose()
        .map_err(|e| corrupt(column, e))
}

/// A JSON text column decoded into `T` (a `serde_json::Value` for free-form JSON).
pub(crate) fn json<T: DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T, StoreError> {
    serde_json::from_str(&row.try_get::<String, _>(column)?).map_err(|e| corrupt(column, e))
}

/// A nullable JSON text column.
pub(crate) fn opt_json<T: DeserializeOwned>(
    row: &AnyRow,
    column: &str,
) -> Result<Option<T>, StoreError> {
    row.try_get::<Option<String>, _>(column)?
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|e| corrupt(column, e))
}

/// A value as the text of a JSON column.
pub(crate) fn json_text<T: serde::Serialize>(
    column: &str,
    value: &T,
) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| corrupt(column, e))
}

/// `(org_id, team_id)` of a row.
pub(crate) fn org_team(row: &AnyRow) -> Result<(OrgId, NodeId), StoreError> {
    Ok((org(row, "org_id")?, node(row, "team_id")?))
}
