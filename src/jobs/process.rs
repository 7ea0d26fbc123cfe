//! Eval processes: each runs in a process group of its own, so a timeout, a cancel or our own crash
//! recovery can end it together with everything it started. No shell is ever involved.

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

pub fn spawn(argv: &[OsString], cwd: &Path, task: &EvalTask) -> std::io::Result<Spawned> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty command"))?;
    let child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .envs(&task.env)
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

/// How long to wait for a killed group's processes to finish exiting.
pub const GROUP_EXIT_LIMIT: Duration = Duration::from_secs(3);

/// Kills the whole group and waits (bounded) until none of its processes is alive, so a job is only
/// reported ended once nothing it started is still running. A signal is sent before the target has
/// exited; under load the exit can take a while.
pub async fn end_group(pgid: i32) {
    signal_group(pgid, Signal::SIGKILL);
    let deadline = tokio::time::Instant::now() + GROUP_EXIT_LIMIT;
    while group_alive(pgid) {
        if tokio::time::Instant::now() >= deadline {
            log::warn!("process group {pgid} still has live processes after SIGKILL");
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Whether any process of the group is alive (zombies have exited and count as gone).
pub fn group_alive(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        let Some((_, after_name)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = after_name.split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let group = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
        group == Some(pgid) && !matches!(state, "Z" | "X")
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
    fn the_start_time_of_this_process_is_readable() {
        let me = i32::try_from(std::process::id()).expect("pid");
        assert!(start_time(me).is_some());
    }
}
