//! A Postfix master's process tree, read from /proc: which processes it has (and had), and
//! whether each is still the same process (PID plus start time, so a reused PID is not taken for
//! it).

/// One PID with its start time (to tell it from a reused PID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ProcId {
    pub(super) pid: u32,
    start: u64,
}

fn stat_fields(pid: u32) -> Option<(u32, u64, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    // cutime cstime priority nice threads itrealvalue starttime
    let state = f.first()?.chars().next()?;
    let ppid = f.get(1)?.parse().ok()?;
    let start = f.get(19)?.parse().ok()?;
    Some((ppid, start, state))
}

pub(super) fn alive(p: ProcId) -> bool {
    matches!(stat_fields(p.pid), Some((_, start, state)) if start == p.start && state != 'Z')
}

/// `root` and all its descendants, found by scanning /proc.
pub(super) fn process_tree(root: u32) -> Vec<ProcId> {
    let mut all = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            match stat_fields(pid) {
                Some((ppid, start, state)) if state != 'Z' => all.push((pid, ppid, start)),
                _ => {}
            }
        }
    }
    let mut out: Vec<ProcId> = all
        .iter()
        .filter(|(pid, _, _)| *pid == root)
        .map(|&(pid, _, start)| ProcId { pid, start })
        .collect();
    let mut i = 0;
    while i < out.len() {
        let parent = out[i].pid;
        for &(pid, ppid, start) in &all {
            if ppid == parent && !out.iter().any(|p| p.pid == pid) {
                out.push(ProcId { pid, start });
            }
        }
        i += 1;
    }
    out
}
