//! Test-only crash points (SPEC §10), armed by `COCKPIT_FAILPOINT` in builds with the `failpoints` cargo
//! feature (which only the test command enables), so crash tests hit exact points with no timing luck.
//! One process-wide switch, set once by the binary's entry point (never by `Application::build`, so tests
//! that serve in-process can't arm it for their neighbours); without the feature every check is `false`
//! and compiles away. Where each point strikes:
//!
//! | name | where |
//! |---|---|
//! | `job_panic` | a job's supervisor panics on the job's first stdout line |
//! | `before_commit` | the process dies inside the transaction that ends a canary, before it commits |
//! | `after_commit` | the process dies right after that transaction commits, before anyone hears of it |
//! | `mid_check` | the process dies in a canary's second check, after gathering, before recording |
//! | `db_readonly` | every pooled connection is read-only: all writes fail, reads work |
//! | `canary_panic` | the first canary actor to handle a check panics (once per process) |
//! | `deadline_commit_fails` | the first deadline commit fails before writing (once per process) |
//! | `tool_panic` | every `model_gates` call panics inside its handler |

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(feature = "failpoints")]
use std::sync::OnceLock;

#[cfg(feature = "failpoints")]
static ARMED: OnceLock<Failpoint> = OnceLock::new();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    JobPanic,
    BeforeCommit,
    AfterCommit,
    MidCheck,
    DbReadonly,
    CanaryPanic,
    DeadlineCommit,
    ToolPanic,
}

impl Failpoint {
    pub const ALL: [Failpoint; 8] = [
        Failpoint::JobPanic,
        Failpoint::BeforeCommit,
        Failpoint::AfterCommit,
        Failpoint::MidCheck,
        Failpoint::DbReadonly,
        Failpoint::CanaryPanic,
        Failpoint::DeadlineCommit,
        Failpoint::ToolPanic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Failpoint::JobPanic => "job_panic",
            Failpoint::BeforeCommit => "before_commit",
            Failpoint::AfterCommit => "after_commit",
            Failpoint::MidCheck => "mid_check",
            Failpoint::DbReadonly => "db_readonly",
            Failpoint::CanaryPanic => "canary_panic",
            Failpoint::DeadlineCommit => "deadline_commit_fails",
            Failpoint::ToolPanic => "tool_panic",
        }
    }

    pub fn parse(name: &str) -> Option<Failpoint> {
        Failpoint::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl fmt::Display for Failpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Arms `point` for the rest of this process (the first call wins). Called by the binary only.
#[cfg(feature = "failpoints")]
pub fn arm(point: Failpoint) {
    let _ = ARMED.set(point);
}

/// Whether `point` is the armed failpoint.
#[cfg(feature = "failpoints")]
pub fn armed(point: Failpoint) -> bool {
    ARMED.get() == Some(&point)
}

/// Whether `point` is the armed failpoint: never, in a build without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
pub fn armed(_point: Failpoint) -> bool {
    false
}

/// Whether `point` is armed and this is the first time it is reached in this process: for failpoints
/// that strike once, so the test can watch the recovery.
pub fn strikes_once(point: Failpoint) -> bool {
    static STRUCK: [AtomicBool; Failpoint::ALL.len()] =
        [const { AtomicBool::new(false) }; Failpoint::ALL.len()];
    let index = Failpoint::ALL.iter().position(|p| *p == point).unwrap_or(0);
    armed(point) && !STRUCK[index].swap(true, Ordering::SeqCst)
}

/// Ends the process at `point` if it is the armed failpoint.
pub fn crash_if_armed(point: Failpoint) {
    if armed(point) {
        crash(point);
    }
}

/// Ends the process on the spot, as a crash would: no destructor runs, nothing is flushed.
pub fn crash(point: Failpoint) -> ! {
    eprintln!("mcp-cockpit: failpoint {point} reached: crashing");
    std::process::abort()
}
