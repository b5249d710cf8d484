//! Processes seen from a test: a process's state in `/proc`, and stopping
//! one the way a wedged device process looks (stopped, reading nothing).

use std::time::Duration;

use crate::sys;

/// The state letter of `pid` in `/proc` (`R`, `S`, `T` for stopped, `Z`, …);
/// `None` once it is gone (reaped, or never existed).
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state …`; comm may hold spaces and parens.
    stat.rsplit(')').next()?.trim_start().chars().next()
}

/// Sends `SIGSTOP` to `pid` and waits until the kernel reports it stopped.
/// Panics if the signal cannot be sent or the process ends meanwhile.
pub fn stop_process(pid: u32) {
    sys::signal(pid, libc::SIGSTOP).unwrap_or_else(|e| panic!("cannot stop process {pid}: {e}"));
    loop {
        match process_state(pid) {
            Some('T') => return,
            Some(_) => std::thread::sleep(Duration::from_millis(1)),
            None => panic!("process {pid} ended instead of stopping"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_child_reads_as_stopped_and_a_reaped_one_as_gone() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        stop_process(child.id());
        assert_eq!(process_state(child.id()), Some('T'));
        child.kill().expect("SIGKILL ends a stopped process");
        child.wait().expect("reap it");
        assert_eq!(process_state(child.id()), None);
    }
}
