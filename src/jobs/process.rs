//! Eval processes: each runs in a process group of its own, so a timeout, a cancel or our own crash
//! recovery can end it together with everything it started. No shell is ever involved.
//!
//! A descendant can leave the group (`setsid()`, `setpgid()`), so a job's processes are also found by the
//! cookie every one of them inherits in its environment, `COCKPIT_JOB_ID=<jobId>` (the way Jenkins'
//! ProcessTreeKiller finds a build's daemons), and the service is a child subreaper: an orphaned
//! descendant is re-parented to us rather than to init, and we reap it after killing it. The job id,
//! which recovery has in the database, is all it takes to find them again after a restart.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

use crate::config::EvalTask;

/// A line longer than this is cut (the rest of it is discarded), so no process can exhaust our memory.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// How much of stderr is kept for the `failed` event.
pub const STDERR_TAIL_BYTES: usize = 2048;

pub struct Spawned {
    pub child: Child,
    pub pgid: i32,
    pub start_time: Option<i64>,
}

/// Variables an eval inherits from the service (plus every `LC_*`); nothing else of the service's
/// environment reaches it — API keys, `PROM_BEARER` and whatever else the service was given stay out.
const INHERITED_ENV: [&str; 9] = [
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM",
];

fn inherited(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| INHERITED_ENV.contains(&n) || n.starts_with("LC_"))
}

/// The environment cookie that marks every process of a job.
pub const JOB_COOKIE: &str = "COCKPIT_JOB_ID";

/// Makes this process the reaper of its orphaned descendants (Linux `PR_SET_CHILD_SUBREAPER`).
pub fn become_subreaper() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        log::warn!("cannot become a child subreaper ({e}): eval processes that detach are still found by their cookie, but reaped by init");
    }
}

pub fn spawn(
    argv: &[OsString],
    cwd: &Path,
    task: &EvalTask,
    job_id: &str,
) -> std::io::Result<Spawned> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty command"))?;
    let child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(std::env::vars_os().filter(|(name, _)| inherited(name)))
        .envs(&task.env)
        .env(JOB_COOKIE, job_id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| std::io::Error::other("process exited before it could be tracked"))?;
    let pgid = i32::try_from(pid).map_err(|_| std::io::Error::other("pid out of range"))?;
    Ok(Spawned {
        child,
        pgid,
        start_time: start_time(pgid),
    })
}

/// Signals every process of the group; a group that is already gone is not an error.
pub fn signal_group(pgid: i32, signal: Signal) {
    match killpg(Pid::from_raw(pgid), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => log::warn!("cannot send {signal} to process group {pgid}: {e}"),
    }
}

/// How long to wait for a killed job's processes to finish exiting.
pub const GROUP_EXIT_LIMIT: Duration = Duration::from_secs(3);

/// Kills every process of the job — its group, and every process carrying its cookie wherever it went — and
/// waits (bounded) until none is alive, so a job is only reported ended once nothing it started is still
/// running. Descendants re-parented to us are reaped. A signal is sent before the target has exited; under
/// load the exit can take a while.
pub async fn end_job(pgid: Option<i32>, job_id: &str) {
    if let Some(pgid) = pgid {
        signal_group(pgid, Signal::SIGKILL);
    }
    let deadline = tokio::time::Instant::now() + GROUP_EXIT_LIMIT;
    let mut adopted = Vec::new();
    loop {
        let alive = job_processes(pgid, job_id);
        if alive.is_empty() {
            break;
        }
        for &pid in &alive {
            if Some(pid) != pgid {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                if !adopted.contains(&pid) {
                    adopted.push(pid);
                }
            }
        }
        reap(&mut adopted);
        if tokio::time::Instant::now() >= deadline {
            log::warn!("job {job_id} still has live processes after SIGKILL: {alive:?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    reap(&mut adopted);
}

/// Collects the exit of every killed descendant that is now our child (the main process is tokio's to
/// wait for, and is never among them); the others were reaped by their own parents.
fn reap(pids: &mut Vec<i32>) {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    pids.retain(|&pid| {
        matches!(
            waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)),
            Ok(WaitStatus::StillAlive)
        )
    });
}

/// The live processes of a job: those in its process group (if it is still the job's), and those carrying
/// its cookie.
pub fn job_processes(pgid: Option<i32>, job_id: &str) -> Vec<i32> {
    let cookie = format!("{JOB_COOKIE}={job_id}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            let Some((state, group)) = state_and_group(pid) else {
                return false;
            };
            let alive = !matches!(state, 'Z' | 'X');
            alive && (Some(group) == pgid || has_cookie(pid, &cookie))
        })
        .collect()
}

/// A process's state letter and process group, from `/proc/<pid>/stat`.
fn state_and_group(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing ')'.
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let group = fields.nth(1)?.parse().ok()?;
    Some((state, group))
}

fn has_cookie(pid: i32, cookie: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
        environ
            .split(|b| *b == 0)
            .any(|entry| entry == cookie.as_bytes())
    })
}

/// The process's start time in clock ticks since boot (`/proc/<pid>/stat` field 22): with the pid it
/// identifies a process for good, so a restarted service never signals a reused pid.
pub fn start_time(pid: i32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Reads one line of at most [`MAX_LINE_BYTES`]; `None` at end of stream.
pub async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Option<String>> {
    let mut line = Vec::new();
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok((!line.is_empty()).then(|| String::from_utf8_lossy(&line).into_owned()));
        }
        let (chunk, used, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        let room = MAX_LINE_BYTES.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        reader.consume(used);
        if done {
            return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
        }
    }
}

/// Reads a stream to its end, keeping only the last [`STDERR_TAIL_BYTES`].
pub async fn read_tail<R: AsyncRead + Unpin>(mut reader: R) -> String {
    let mut tail: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = reader.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > STDERR_TAIL_BYTES {
            tail.drain(..tail.len() - STDERR_TAIL_BYTES);
        }
    }
    String::from_utf8_lossy(&tail).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn lines_are_capped_and_split() {
        let long = "x".repeat(MAX_LINE_BYTES + 10);
        let input = format!("a\n{long}\nb");
        let mut reader = tokio::io::BufReader::new(input.as_bytes());
        assert_eq!(
            read_line(&mut reader).await.expect("io").as_deref(),
            Some("a")
        );
        assert_eq!(
            read_line(&mut reader).await.expect("io").map(|l| l.len()),
            Some(MAX_LINE_BYTES)
        );
        assert_eq!(
            read_line(&mut reader).await.expect("io").as_deref(),
            Some("b")
        );
        assert_eq!(read_line(&mut reader).await.expect("io"), None);
    }

    #[test]
    fn only_the_allow_listed_variables_are_inherited() {
        for name in ["PATH", "HOME", "LC_ALL", "LC_CTYPE", "TZ"] {
            assert!(inherited(std::ffi::OsStr::new(name)), "{name}");
        }
        for name in [
            "LUKHAS_MCP_API_KEYS",
            "PROM_BEARER",
            "COCKPIT_FAILPOINT",
            "AWS_SECRET_ACCESS_KEY",
        ] {
            assert!(!inherited(std::ffi::OsStr::new(name)), "{name}");
        }
    }

    #[test]
    fn the_start_time_of_this_process_is_readable() {
        let me = i32::try_from(std::process::id()).expect("pid");
        assert!(start_time(me).is_some());
    }
}
