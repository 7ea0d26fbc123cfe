//! SLO-guarded canaries (SPEC §7): one actor per canary under the canary registry, the PrometheusPoller that
//! gathers each canary's SLIs when due, the decision rules, and the transactions that record every check and
//! decision with its evidence.

mod actor;
pub mod canary_events;
pub mod policy;
mod poller;
pub mod records;
mod registry;
pub mod rules;

use std::fmt;
use std::time::Duration;

pub use actor::{Action, CanaryActor, Operate, OperateError, Operated};
pub use poller::{Gather, Probe, PrometheusPoller};
pub use records::{StartRules, Started};
pub use registry::{CanaryRegistry, Lookup, Recovered, StartCanary};

use crate::clock::{self, Timestamp};
use crate::ids::CanaryId;
use crate::storage::canaries::CanaryRow;
use crate::storage::StoreError;
use policy::Policy;
use rules::Counters;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Running,
    Paused,
    Held,
    Promoted,
    RolledBack,
    DryRun,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Running,
        Status::Paused,
        Status::Held,
        Status::Promoted,
        Status::RolledBack,
        Status::DryRun,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Held => "held",
            Status::Promoted => "promoted",
            Status::RolledBack => "rolled_back",
            Status::DryRun => "dry_run",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn is_active(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Held)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a canary actor knows about its canary; the database row is its durable copy.
#[derive(Debug, Clone)]
pub struct CanaryState {
    pub id: CanaryId,
    pub model_id: String,
    pub from_gate: String,
    pub to_gate: String,
    pub policy: Policy,
    pub dry_run: bool,
    pub status: Status,
    pub counters: Counters,
    pub created: Timestamp,
    pub deadline: Timestamp,
    pub next_check: Option<Timestamp>,
}

impl CanaryState {
    /// The state after the canary ends: promoted (or rolled back) for real, or `dry_run` for a dry run.
    pub fn ended(mut self, promote: bool) -> CanaryState {
        self.status = match (self.dry_run, promote) {
            (true, _) => Status::DryRun,
            (false, true) => Status::Promoted,
            (false, false) => Status::RolledBack,
        };
        self.next_check = None;
        self
    }

    /// Milliseconds since the canary started, for `duration`/`durationMs`.
    pub fn age_ms(&self, now: Timestamp) -> u64 {
        u64::try_from((now - self.created).num_milliseconds()).unwrap_or(0)
    }

    pub fn from_row(row: &CanaryRow) -> Result<Self, StoreError> {
        let bad = |what: &str| StoreError::Corrupt(format!("canary {}: {what}", row.id));
        let policy_json: serde_json::Value =
            serde_json::from_str(&row.slo_policy).map_err(|_| bad("slo_policy is not JSON"))?;
        let count = |n: i32| u32::try_from(n).unwrap_or(0);
        Ok(Self {
            id: CanaryId::named(row.id.clone()),
            model_id: row.model_id.clone(),
            from_gate: row.from_gate.clone(),
            to_gate: row.to_gate.clone(),
            policy: Policy::from_json(&policy_json).map_err(|e| bad(&e))?,
            dry_run: row.dry_run,
            status: Status::parse(&row.status).ok_or_else(|| bad("unknown status"))?,
            counters: Counters {
                checks: count(row.checks),
                passes: count(row.consecutive_passes),
                failures: count(row.consecutive_failures),
                no_decision: count(row.consecutive_no_decision),
            },
            created: clock::parse_sql(&row.created_at).ok_or_else(|| bad("created_at"))?,
            deadline: clock::parse_sql_ms(&row.deadline_at).ok_or_else(|| bad("deadline_at"))?,
            next_check: row.next_check_at.as_deref().and_then(clock::parse_sql_ms),
        })
    }
}

/// `now + d`, saturating.
pub fn after(now: Timestamp, d: Duration) -> Timestamp {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}
