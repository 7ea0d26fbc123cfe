//! Identifiers that begin with what a user has typed so far, for `completion/complete`. Prefixes compare
//! case-sensitively with `substr`, which reads the same on every SQL backend (`LIKE` does not: SQLite folds
//! ASCII case, PostgreSQL does not).

use std::collections::BTreeSet;

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer, Text};

use super::schema::{canaries, jobs, model_gates};
use super::{Conn, StoreError};

/// What can be completed from the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    JobId,
    CanaryId,
    ModelId,
    Gate,
}

/// The first `limit` matches in order, and how many match in all.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Matches {
    pub values: Vec<String>,
    pub total: usize,
}

/// `substr(<column>, 1, <prefix length>) = <prefix>`, as a filter (a macro: the bound expression's type has
/// no name worth writing).
macro_rules! starts_with {
    ($column:literal, $prefix:expr) => {
        sql::<Bool>(concat!("substr(", $column, ", 1, "))
            .bind::<Integer, _>(i32::try_from($prefix.chars().count()).unwrap_or(i32::MAX))
            .sql(") = ")
            .bind::<Text, _>($prefix.to_string())
    };
}

/// The values of `field` that begin with `prefix`, sorted; at most `limit` of them, with the total.
pub fn matching(
    conn: &mut Conn,
    field: Field,
    prefix: &str,
    limit: usize,
) -> Result<Matches, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // Jobs and canaries can be many: counted, and only the first page read.
    let (values, total): (Vec<String>, i64) = match field {
        Field::JobId => (
            jobs::table
                .select(jobs::job_id)
                .filter(starts_with!("job_id", prefix))
                .order(jobs::job_id.asc())
                .limit(limit)
                .load(conn)?,
            jobs::table
                .filter(starts_with!("job_id", prefix))
                .count()
                .get_result(conn)?,
        ),
        Field::CanaryId => (
            canaries::table
                .select(canaries::id)
                .filter(starts_with!("id", prefix))
                .order(canaries::id.asc())
                .limit(limit)
                .load(conn)?,
            canaries::table
                .filter(starts_with!("id", prefix))
                .count()
                .get_result(conn)?,
        ),
        Field::ModelId => return Ok(first(models(conn, prefix)?, limit)),
        Field::Gate => return Ok(first(gates(conn, prefix)?, limit)),
    };
    Ok(Matches {
        values,
        total: usize::try_from(total).unwrap_or(0),
    })
}

/// Models: a handful of distinct names, from the gates table and the canaries that moved them.
fn models(conn: &mut Conn, prefix: &str) -> Result<BTreeSet<String>, StoreError> {
    let mut models: BTreeSet<String> = model_gates::table
        .select(model_gates::model_id)
        .filter(starts_with!("model_id", prefix))
        .load::<String>(conn)?
        .into_iter()
        .collect();
    models.extend(
        canaries::table
            .select(canaries::model_id)
            .distinct()
            .filter(starts_with!("model_id", prefix))
            .load::<String>(conn)?,
    );
    Ok(models)
}

/// Gates: where models are, and where canaries moved them from and to.
fn gates(conn: &mut Conn, prefix: &str) -> Result<BTreeSet<String>, StoreError> {
    let mut gates: BTreeSet<String> = model_gates::table
        .select(model_gates::gate)
        .distinct()
        .filter(starts_with!("gate", prefix))
        .load::<String>(conn)?
        .into_iter()
        .collect();
    gates.extend(
        canaries::table
            .select(canaries::from_gate)
            .distinct()
            .filter(starts_with!("from_gate", prefix))
            .load::<String>(conn)?,
    );
    gates.extend(
        canaries::table
            .select(canaries::to_gate)
            .distinct()
            .filter(starts_with!("to_gate", prefix))
            .load::<String>(conn)?,
    );
    Ok(gates)
}

/// The first `limit` of a sorted set, with its size.
fn first(found: BTreeSet<String>, limit: i64) -> Matches {
    Matches {
        total: found.len(),
        values: found
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect(),
    }
}
