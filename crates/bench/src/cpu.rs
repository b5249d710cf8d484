//! Which CPUs the benchmark runs on.
//!
//! On the project's virtual machine, waking a thread on the *other* CPU
//! costs tens of microseconds (an idle virtual CPU must be resumed), so a
//! round trip between processes takes either ~10 µs or ~60 µs depending on
//! where the scheduler put the two sides. Pinning the whole run (the
//! benchmark, the echo child and the simulator's device process inherit the
//! affinity) to one CPU takes that out, leaving the software's own cost.

use std::io;

/// Restricts this process, and every process and thread it starts from now
/// on, to `cpu`.
pub fn pin_to(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is beyond the largest CPU set"),
        ));
    }
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes inside it
    // (bounds checked above); sched_setaffinity reads it for the call.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// CPUs online on the machine, whatever this process may use.
pub fn online() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(0)
}

/// The CPUs this process may run on.
pub fn allowed() -> io::Result<Vec<usize>> {
    // SAFETY: sched_getaffinity fills the zeroed set; CPU_ISSET reads
    // inside it for every index below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect())
    }
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
