//! Shared code of simpler's fuzz targets. `bootstrap_case` and
//! `preflight_oracle` are also compiled into the property tests in
//! `tests/tests/prop_*.rs` (included by path), so the fuzzer and the tests
//! apply one oracle.

pub mod bootstrap_case;
pub mod decode;
pub mod preflight_oracle;
