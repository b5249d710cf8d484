//! Turns a fuzzer's bytes into a [`BootstrapCase`].
//!
//! Layout (missing bytes read as zero, so an all-zero header followed by a
//! real runtime SO is a well-formed call installing it):
//!
//! | byte   | meaning |
//! |--------|---------|
//! | 0      | bits 0-2 all set: null block; bits 3-5 all set: `device_args` 0; bits 6-7 both set: `inner_so_bin` 0 |
//! | 1      | bit 0: no report; bits 1-7: length class (below) |
//! | 2..5   | slack after the block, `DeviceArgs` and report (each mod 8) |
//! | 5..13  | `device_id` (little-endian) |
//! | 13..21 | noise seed for the fields Init must ignore |
//! | 21..29 | length operand (within-buffer offset or huge length) |
//! | 29     | bit 0: prefix the payload with the ELF magic |
//! | 30..   | payload |
//!
//! Length classes (0-127): 0-87 the payload length; 88 → 0; 89 → 1;
//! 90 → 3; 91 → 4; 92-119 → operand mod (payload length + 1); 120 → cap - 1;
//! 121 → cap; 122-123 → cap + 1; 124-126 → operand forced above the cap;
//! 127 → `u64::MAX`. The cap is `MAX_INNER_SO_LEN` (256 MiB): the two
//! classes at and just below it install a 256 MiB file and run slowly.

use simpler_abi::names::MAX_INNER_SO_LEN;

use crate::bootstrap_case::{BootstrapCase, ELF_MAGIC};

/// The length class of each fixed length.
const FIXED_LENGTHS: [(u8, u64); 6] = [
    (89, 1),
    (90, 3),
    (91, 4),
    (120, MAX_INNER_SO_LEN - 1),
    (121, MAX_INNER_SO_LEN),
    (122, MAX_INNER_SO_LEN + 1),
];

/// Offset of the payload in a fuzz input.
pub const HEADER_LEN: usize = 30;

/// Decodes `data` as the table in the module documentation says.
pub fn bootstrap_case(data: &[u8]) -> BootstrapCase {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let word = |at: usize| {
        let mut raw = [0u8; 8];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = byte(at + i);
        }
        u64::from_le_bytes(raw)
    };
    let flags = byte(0);
    let mut payload = Vec::new();
    if byte(29) & 1 == 1 {
        payload.extend_from_slice(&ELF_MAGIC);
    }
    payload.extend_from_slice(data.get(HEADER_LEN..).unwrap_or_default());
    let n = payload.len() as u64;
    let operand = word(21);
    let declared_len = match byte(1) >> 1 {
        0..=87 => n,
        88 => 0,
        class @ (89..=91 | 120..=121) => fixed_length(class),
        92..=119 => operand % (n + 1),
        122 | 123 => MAX_INNER_SO_LEN + 1,
        124..=126 => operand.max(MAX_INNER_SO_LEN + 2),
        _ => u64::MAX,
    };
    BootstrapCase {
        null_block: flags & 0b111 == 0b111,
        null_device_args: flags & 0b11_1000 == 0b11_1000,
        null_bin: flags & 0b1100_0000 == 0b1100_0000,
        report: byte(1) & 1 == 0,
        payload,
        declared_len,
        device_id: word(5),
        noise: word(13),
        slack: [byte(2) % 8, byte(3) % 8, byte(4) % 8],
    }
}

fn fixed_length(class: u8) -> u64 {
    FIXED_LENGTHS
        .iter()
        .find(|&&(c, _)| c == class)
        .map_or(0, |&(_, len)| len)
}

/// The fuzz input that decodes to `case`, so that a case found by the
/// property tests can be replayed by the fuzz target; `None` for a length
/// no class produces (between the payload length and the cap, other than
/// 1, 3, 4 and the two next to the cap).
pub fn encode(case: &BootstrapCase) -> Option<Vec<u8>> {
    let n = case.payload.len() as u64;
    let (class, operand) = if case.declared_len == n {
        (0, 0)
    } else if case.declared_len < n {
        (92, case.declared_len)
    } else if case.declared_len > MAX_INNER_SO_LEN + 1 {
        (124, case.declared_len)
    } else {
        let &(class, _) = FIXED_LENGTHS
            .iter()
            .find(|&&(_, len)| len == case.declared_len)?;
        (class, 0)
    };
    let mut out = vec![0u8; HEADER_LEN];
    let set = |on: bool, bits: u8| if on { bits } else { 0 };
    out[0] = set(case.null_block, 0b111)
        | set(case.null_device_args, 0b11_1000)
        | set(case.null_bin, 0b1100_0000);
    out[1] = (class << 1) | u8::from(!case.report);
    out[2..5].copy_from_slice(&case.slack.map(|s| s % 8));
    out[5..13].copy_from_slice(&case.device_id.to_le_bytes());
    out[13..21].copy_from_slice(&case.noise.to_le_bytes());
    out[21..29].copy_from_slice(&operand.to_le_bytes());
    out.extend_from_slice(&case.payload);
    Some(out)
}
