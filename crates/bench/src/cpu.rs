//! Which CPUs the benchmark runs on.
//!
//! On a virtual machine, waking a thread on the *other* CPU can cost far
//! more than the work it was woken for (an idle virtual CPU must be
//! resumed), so a round trip between processes takes very different times
//! depending on where the scheduler put the two sides (docs/performance.md
//! has the numbers). Pinning the whole run (the benchmark, the echo child
//! and the simulator's device process inherit the affinity) to one CPU
//! takes that out, leaving the software's own cost.

use std::io;

use crate::sys;

/// Restricts this process, and every process and thread it starts from now
/// on, to `cpu`.
pub fn pin_to(cpu: usize) -> io::Result<()> {
    if cpu >= sys::CPU_SETSIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is beyond the largest CPU set"),
        ));
    }
    sys::set_affinity(cpu)
}

/// CPUs online on the machine, whatever this process may use.
pub fn online() -> usize {
    sys::online_cpus()
}

/// The CPUs this process may run on.
pub fn allowed() -> io::Result<Vec<usize>> {
    sys::affinity()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_out_of_range_is_refused_and_the_allowed_set_is_not_empty() {
        assert!(pin_to(1 << 20).is_err());
        let allowed = allowed().unwrap();
        assert!(!allowed.is_empty() && allowed.len() <= online());
    }
}
