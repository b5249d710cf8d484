//! Environment variables the workspace's own tests and test tools set for
//! the processes they start (a test re-run in a child, a stress worker, a
//! fault-matrix cell). No shipped code reads them; they are declared here so
//! that every `SIMPLER_*` name has one home.

/// Set in a child process started by the testkit to re-run one test.
pub const TESTKIT_CHILD: &str = "SIMPLER_TESTKIT_CHILD";
/// A stress worker's index.
pub const STRESS_WORKER: &str = "SIMPLER_STRESS_WORKER";
/// Cycles per runner thread of the stress test (user-settable, to run it longer).
pub const STRESS_CYCLES: &str = "SIMPLER_STRESS_CYCLES";
/// The fault-matrix cell a child runs.
pub const FAULT_CELL: &str = "SIMPLER_FAULT_CELL";
/// The fault-matrix cell's N (which call fails).
pub const FAULT_N: &str = "SIMPLER_FAULT_N";
/// The file holding a property-test case for a child to run.
pub const PROP_CASE_FILE: &str = "SIMPLER_PROP_CASE_FILE";
/// The fuzz harness's dispatcher SO.
pub const FUZZ_DISPATCHER: &str = "SIMPLER_FUZZ_DISPATCHER";
/// The fuzz harness's cap on image sizes.
pub const FUZZ_CAP_IMAGES: &str = "SIMPLER_FUZZ_CAP_IMAGES";
/// The run of the killed-write test a child bootstraps (which padded
/// runtime SO).
pub const KILLED_WRITE_RUN: &str = "SIMPLER_KILLED_WRITE_RUN";
/// Set in the killed-write test's last child: its bootstrap must install.
pub const KILLED_WRITE_CLEAN: &str = "SIMPLER_KILLED_WRITE_CLEAN";
/// The C compiler command (words separated by spaces) tests build kernel
/// SOs for the device side with; unset: the host's `cc`. The aarch64
/// end-to-end stage sets it to a compiler for aarch64.
pub const DEVICE_CC: &str = "SIMPLER_TEST_DEVICE_CC";
/// The simulator switch a stack-emulation child checks the refusal of.
pub const STACK_SWITCH: &str = "SIMPLER_STACK_SWITCH";
