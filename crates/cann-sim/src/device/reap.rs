//! Reaping a device process, and how it ended in words.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use crate::sys;

/// How long a device process may take to exit once its channel is closed
/// before it is killed.
pub const EXIT_GRACE: Duration = Duration::from_secs(5);

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (_, Some(sig)) => format!("was killed by signal {sig} ({})", sys::signal_name(sig)),
        _ => "ended".to_owned(),
    }
}

/// Waits for the child, killing it if it does not exit within `grace`
/// ([`EXIT_GRACE`], or zero for a process already found not answering);
/// returns a description of how it ended.
pub fn reap(child: &mut Child, grace: Duration) -> String {
    let deadline = Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return describe(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) => {
                // SIGKILL, which also ends a stopped process.
                let _ = child.kill();
                return match child.wait() {
                    Ok(status) => format!("{} (killed after not exiting)", describe(status)),
                    Err(e) => format!("could not be reaped: {e}"),
                };
            }
            Err(e) => return format!("could not be reaped: {e}"),
        }
    }
}
