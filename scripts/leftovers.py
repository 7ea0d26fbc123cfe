#!/usr/bin/env python3
"""What a test run left behind: processes and changed files. The test command (scripts/test.sh) calls
`leftovers.py start` first and `leftovers.py check` at its end; check fails when the run left

- a process: one in the test command's session, started after it began, still alive (an orphaned nginx
  worker, a server a failed test never stopped, an eval's grandchild), other than the test command itself
  and its ancestors — listed with its command line;
- a changed tracked file, or a new untracked one (git status and the content of tracked changes differ
  from what they were when the run began).
"""
import hashlib
import os
import subprocess
import sys

STATE = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"mcp-cockpit-leftovers-{os.getppid()}")


def stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    fields = text[text.rindex(")") + 2 :].split()
    # After the command name: state(3) ppid(4) pgrp(5) session(6) ... starttime(22), numbered from 1.
    return {"ppid": int(fields[1]), "sid": int(fields[3]), "start": int(fields[19])}


def ancestors(pid):
    chain = set()
    while pid > 1:
        chain.add(pid)
        try:
            pid = stat(pid)["ppid"]
        except OSError:
            break
    return chain


def tree_state():
    inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], capture_output=True, text=True)
    if inside.returncode != 0:
        return ""
    status = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True).stdout
    diff = subprocess.run(["git", "diff", "HEAD"], capture_output=True).stdout
    return status + "content " + hashlib.sha256(diff).hexdigest()


def start():
    me = stat(os.getppid())
    with open(STATE, "w") as f:
        f.write(f"{me['start']}\n{me['sid']}\n{tree_state()}")


def check():
    with open(STATE) as f:
        began, sid, tree = f.read().split("\n", 2)
    os.unlink(STATE)
    began, sid = int(began), int(sid)
    mine = ancestors(os.getpid())
    left = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in mine:
            continue
        try:
            info = stat(entry)
            if info["sid"] != sid or info["start"] < began:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue  # ended while we looked
        if command:
            left.append(f"  pid {entry}: {command[:200]}")
    problems = []
    if left:
        problems.append("processes the test run left running:\n" + "\n".join(left))
    now = tree_state()
    if now != tree:
        before, after = set(tree.splitlines()), now.splitlines()
        changed = [line for line in after if line not in before and not line.startswith("content ")]
        problems.append(
            "the test run changed the working tree:\n"
            + ("\n".join(changed) if changed else "  (the content of files already changed before the run)")
        )
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)
    print("no process left running, the working tree as it was")


{"start": start, "check": check}[sys.argv[1]]()
