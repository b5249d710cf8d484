//! The host's ELF preflight on arbitrary bytes, as each role and for both
//! device machines, checked by the shared oracle: never a panic, always the
//! problem the header decides, otherwise an answer consistent with what the
//! file holds. Seed it with real SOs (see README.md).

#![no_main]

use libfuzzer_sys::fuzz_target;
use simpler_fuzz_cases::preflight_oracle;
use simpler_host::elf::{Machine, Role};

fuzz_target!(|data: &[u8]| {
    for role in [Role::Dispatcher, Role::Runtime] {
        for machine in [Machine::AARCH64, Machine::X86_64] {
            if let Err(violation) = preflight_oracle::check(data, role, machine, "fuzz-input.so") {
                panic!("preflight as the {role} SO for {machine}: {violation}");
            }
        }
    }
});
