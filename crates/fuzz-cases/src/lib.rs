//! The bad input simpler is tested with and what must hold for it, shared
//! by the cargo-fuzz targets in `fuzz/` and the property tests of
//! `simpler-e2e`, so that the fuzzer and the tests apply one oracle.
//!
//! - [`bootstrap_case`]: one call of the dispatcher's
//!   `DynTileFwkBackendKernelServerInit` on a generated argument block, and
//!   everything that must hold after it.
//! - [`decode`]: a fuzzer's bytes as a [`bootstrap_case::BootstrapCase`],
//!   and back, so a case found by a property test replays in the fuzzer.
//! - [`preflight_oracle`]: what `simpler_host::elf::preflight` must answer
//!   for any bytes.

pub mod bootstrap_case;
pub mod decode;
pub mod preflight_oracle;
