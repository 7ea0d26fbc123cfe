//! `jobs`: one row per `run_eval`, from `queued` to a terminal status.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::insertion_order;
use super::schema::jobs;
use super::{Conn, StoreError, Swept};
use crate::clock;
use crate::events::EntityKind;

pub const TERMINAL: [&str; 4] = ["completed", "failed", "cancelled", "dry_run"];

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = jobs)]
pub struct JobRow {
    pub job_id: String,
    pub task_id: String,
    pub config_id: String,
    pub status: String,
    pub progress: f64,
    pub message: Option<String>,
    pub result: Option<String>,
    pub error: Option<String>,
    pub exit_code: Option<i32>,
    pub duration_ms: Option<i64>,
    pub timeout_seconds: f64,
    pub pgid: Option<i32>,
    pub pid_start_time: Option<i64>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub updated_at: String,
}

impl JobRow {
    pub fn is_terminal(&self) -> bool {
        TERMINAL.contains(&self.status.as_str())
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = jobs)]
pub struct NewJob<'a> {
    pub job_id: &'a str,
    pub task_id: &'a str,
    pub config_id: &'a str,
    pub status: &'a str,
    pub timeout_seconds: f64,
    pub created_at: &'a str,
    pub updated_at: &'a str,
    pub finished_at: Option<&'a str>,
}

/// How a job ended.
#[derive(Debug, Clone)]
pub struct JobEnd {
    pub status: &'static str,
    pub result: Option<String>,
    pub error: Option<String>,
    pub exit_code: Option<i32>,
    pub duration_ms: i64,
}

pub fn insert(conn: &mut Conn, job: &NewJob<'_>) -> Result<(), StoreError> {
    diesel::insert_into(jobs::table).values(job).execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut Conn, job_id: &str) -> Result<Option<JobRow>, StoreError> {
    Ok(jobs::table
        .find(job_id)
        .select(JobRow::as_select())
        .first(conn)
        .optional()?)
}

/// `queued` → `running`, with the process group and its start time; false if the job is no longer queued.
pub fn mark_started(
    conn: &mut Conn,
    job_id: &str,
    pgid: i32,
    pid_start_time: Option<i64>,
    at: &str,
) -> Result<bool, StoreError> {
    let changed = diesel::update(jobs::table.find(job_id).filter(jobs::status.eq("queued")))
        .set((
            jobs::status.eq("running"),
            jobs::pgid.eq(pgid),
            jobs::pid_start_time.eq(pid_start_time),
            jobs::started_at.eq(at),
            jobs::updated_at.eq(at),
        ))
        .execute(conn)?;
    Ok(changed == 1)
}

pub fn update_progress(
    conn: &mut Conn,
    job_id: &str,
    progress: f64,
    message: Option<&str>,
) -> Result<(), StoreError> {
    diesel::update(jobs::table.find(job_id).filter(jobs::status.eq("running")))
        .set((
            jobs::progress.eq(progress),
            jobs::message.eq(message),
            jobs::updated_at.eq(clock::sql(clock::now())),
        ))
        .execute(conn)?;
    Ok(())
}

/// Moves a queued or running job to its terminal status; false (and nothing written) if it already ended,
/// so a job ends exactly once.
pub fn finish(conn: &mut Conn, job_id: &str, end: &JobEnd, at: &str) -> Result<bool, StoreError> {
    let progress = if end.status == "completed" {
        Some(1.0)
    } else {
        None
    };
    let changed = diesel::update(
        jobs::table
            .find(job_id)
            .filter(jobs::status.eq_any(["queued", "running"])),
    )
    .set((
        jobs::status.eq(end.status),
        jobs::result.eq(end.result.as_deref()),
        jobs::error.eq(end.error.as_deref()),
        jobs::exit_code.eq(end.exit_code),
        jobs::duration_ms.eq(end.duration_ms),
        jobs::finished_at.eq(at),
        jobs::updated_at.eq(at),
    ))
    .execute(conn)?;
    if let (true, Some(p)) = (changed == 1, progress) {
        diesel::update(jobs::table.find(job_id))
            .set(jobs::progress.eq(p))
            .execute(conn)?;
    }
    Ok(changed == 1)
}

#[derive(Debug, Default)]
pub struct JobFilter {
    pub status: Option<String>,
    pub task_id: Option<String>,
    pub limit: i64,
}

/// Newest first.
pub fn list(conn: &mut Conn, filter: &JobFilter) -> Result<Vec<JobRow>, StoreError> {
    let mut query = jobs::table.select(JobRow::as_select()).into_boxed();
    if let Some(status) = &filter.status {
        query = query.filter(jobs::status.eq(status));
    }
    if let Some(task_id) = &filter.task_id {
        query = query.filter(jobs::task_id.eq(task_id));
    }
    Ok(query
        .order(sql::<BigInt>(insertion_order(conn, true)))
        .limit(filter.limit)
        .load(conn)?)
}

/// Up to `limit` jobs by id, after `after` (keyset paging: stable however many jobs come and go).
pub fn page_after(
    conn: &mut Conn,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<JobRow>, StoreError> {
    let mut query = jobs::table.select(JobRow::as_select()).into_boxed();
    if let Some(after) = after {
        query = query.filter(jobs::job_id.gt(after));
    }
    Ok(query.order(jobs::job_id.asc()).limit(limit).load(conn)?)
}

/// A job that was `running` back to `queued`, its run forgotten (a restart cut it short).
pub fn requeue(conn: &mut Conn, job_id: &str, at: &str) -> Result<(), StoreError> {
    diesel::update(jobs::table.find(job_id).filter(jobs::status.eq("running")))
        .set((
            jobs::status.eq("queued"),
            jobs::progress.eq(0.0),
            jobs::message.eq(None::<String>),
            jobs::pgid.eq(None::<i32>),
            jobs::pid_start_time.eq(None::<i64>),
            jobs::started_at.eq(None::<String>),
            jobs::updated_at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Jobs a previous process left `queued` or `running`, oldest first (their original queue order).
pub fn unfinished(conn: &mut Conn) -> Result<Vec<JobRow>, StoreError> {
    Ok(jobs::table
        .select(JobRow::as_select())
        .filter(jobs::status.eq_any(["queued", "running"]))
        .order(sql::<BigInt>(insertion_order(conn, false)))
        .load(conn)?)
}

/// Deletes up to `batch` jobs that ended before `cutoff` (SQL time text), with their events. Queued and
/// running jobs are never touched, whatever their age; the audit table is kept.
pub fn sweep_ended(conn: &mut Conn, cutoff: &str, batch: i64) -> Result<Swept, StoreError> {
    let ids: Vec<String> = jobs::table
        .select(jobs::job_id)
        .filter(jobs::finished_at.lt(cutoff))
        .filter(jobs::status.eq_any(TERMINAL))
        .limit(batch)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(Swept::default());
    }
    let events = super::events::delete_entities(conn, EntityKind::Job, &ids)?;
    let jobs = diesel::delete(jobs::table.filter(jobs::job_id.eq_any(&ids))).execute(conn)?;
    Ok(Swept {
        rows: jobs,
        checks: 0,
        events,
    })
}
