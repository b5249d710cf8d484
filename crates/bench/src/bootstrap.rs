//! Cold bootstraps of runtime SOs from 64 KiB to 64 MiB, the in-process
//! floor of the same work, and warm runner creation.
//!
//! A runtime SO of a given size is a real one (the runtime of the
//! artifacts, or for the curve, which starts below its size, the minimal
//! runtime of `csrc/min_runtime.c`) with a section appended
//! that no segment loads (`.simpler.bench.pad`, like a debug section): the
//! file is a valid shared object of exactly that size, which the host's
//! preflight accepts and the loader maps no more of than the real one.
//! Each cold iteration fills that section with different bytes: a new
//! fingerprint, so the host's bootstrap cache misses and the device
//! installs and loads a new file, as a process bootstrapping a new runtime
//! does.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use simpler_abi::PreinstallName;
use simpler_host::{CacheStatus, DeviceRunner, DeviceRunnerBuilder};

/// Size of the padded runtime SO of the warm-creation row.
pub const RUNTIME_SIZE: usize = 1 << 20;

/// The sizes of the cold-bootstrap curve.
pub const CURVE_SIZES: [usize; 4] = [64 << 10, 1 << 20, 16 << 20, 64 << 20];

/// The name of the padding section.
pub const PAD_SECTION: &str = ".simpler.bench.pad";

/// `ELF64_Ehdr` fields the padding rewrites (offsets in the file header).
const E_SHOFF: usize = 0x28;
const E_SHENTSIZE: usize = 0x3a;
const E_SHNUM: usize = 0x3c;
const E_SHSTRNDX: usize = 0x3e;
/// `ELF64_Shdr`: its size and the fields used here.
const SHDR: usize = 64;
const SH_NAME: usize = 0x00;
const SH_TYPE: usize = 0x04;
const SH_OFFSET: usize = 0x18;
const SH_SIZE: usize = 0x20;
const SH_ADDRALIGN: usize = 0x30;
const SHT_PROGBITS: u32 = 1;
/// Section indices from here on are escapes (`SHN_LORESERVE`).
const SHN_LORESERVE: usize = 0xff00;

/// `runtime` (a 64-bit little-endian ELF shared object) made exactly
/// `size` bytes long by a non-loaded section [`PAD_SECTION`] filled with a
/// pattern derived from `seed`, so that every seed gives a different
/// fingerprint.
///
/// The new section, a copy of the section-name table with its name added
/// and a copy of the section header table with its header added go after
/// the original bytes; the file header points at the new tables. Nothing
/// the loader reads (program headers, segments) changes.
pub fn padded(runtime: &[u8], size: usize, seed: u64) -> Vec<u8> {
    let field = |at: usize, len: usize| -> u64 {
        let bytes = runtime
            .get(at..at + len)
            .unwrap_or_else(|| panic!("the runtime SO ends inside its ELF headers (at {at})"));
        bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    };
    assert!(
        runtime.starts_with(b"\x7fELF") && runtime[4] == 2 && runtime[5] == 1,
        "the runtime SO is not a 64-bit little-endian ELF file"
    );
    let shoff = field(E_SHOFF, 8) as usize;
    let shnum = field(E_SHNUM, 2) as usize;
    let shstrndx = field(E_SHSTRNDX, 2) as usize;
    assert_eq!(
        field(E_SHENTSIZE, 2) as usize,
        SHDR,
        "unexpected e_shentsize"
    );
    assert!(
        shnum > 0 && shnum + 1 < SHN_LORESERVE && shstrndx < shnum,
        "the runtime SO's section table ({shnum} sections, names in {shstrndx}) cannot take \
         one more section"
    );
    let headers = runtime
        .get(shoff..shoff + shnum * SHDR)
        .expect("the section header table lies inside the file");
    let strtab_header = &headers[shstrndx * SHDR..][..SHDR];
    let header_field = |h: &[u8], at: usize| -> u64 {
        u64::from_le_bytes(h[at..at + 8].try_into().expect("8 bytes"))
    };
    let (str_offset, str_size) = (
        header_field(strtab_header, SH_OFFSET) as usize,
        header_field(strtab_header, SH_SIZE) as usize,
    );
    let mut names = runtime
        .get(str_offset..str_offset + str_size)
        .expect("the section-name table lies inside the file")
        .to_vec();
    let pad_name = names.len() as u32;
    names.extend_from_slice(PAD_SECTION.as_bytes());
    names.push(0);

    // Layout: original | zeros to 8 | pad | names, zeros to 8 | headers.
    let align8 = |n: usize| n.next_multiple_of(8);
    let pad_start = align8(runtime.len());
    let tables = align8(names.len()) + (shnum + 1) * SHDR;
    assert!(
        size.is_multiple_of(8) && size >= pad_start + tables,
        "the runtime SO ({} B) does not fit {size} B with a padding section",
        runtime.len()
    );
    let names_start = size - tables;
    let headers_start = names_start + align8(names.len());

    let mut bytes = Vec::with_capacity(size);
    bytes.extend_from_slice(runtime);
    bytes.resize(pad_start, 0);
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while bytes.len() < names_start {
        // xorshift64: cheap bytes that do not compress to a pattern.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let take = (names_start - bytes.len()).min(8);
        bytes.extend_from_slice(&state.to_le_bytes()[..take]);
    }
    bytes.extend_from_slice(&names);
    bytes.resize(headers_start, 0);
    bytes.extend_from_slice(headers);
    let moved = headers_start + shstrndx * SHDR;
    bytes[moved + SH_OFFSET..][..8].copy_from_slice(&(names_start as u64).to_le_bytes());
    bytes[moved + SH_SIZE..][..8].copy_from_slice(&(names.len() as u64).to_le_bytes());
    // No flags (so not SHF_ALLOC: no segment holds it), no address.
    let mut pad = [0u8; SHDR];
    pad[SH_NAME..][..4].copy_from_slice(&pad_name.to_le_bytes());
    pad[SH_TYPE..][..4].copy_from_slice(&SHT_PROGBITS.to_le_bytes());
    pad[SH_OFFSET..][..8].copy_from_slice(&(pad_start as u64).to_le_bytes());
    pad[SH_SIZE..][..8].copy_from_slice(&((names_start - pad_start) as u64).to_le_bytes());
    pad[SH_ADDRALIGN..][..8].copy_from_slice(&1u64.to_le_bytes());
    bytes.extend_from_slice(&pad);
    bytes[E_SHOFF..][..8].copy_from_slice(&(headers_start as u64).to_le_bytes());
    bytes[E_SHNUM..][..2].copy_from_slice(&((shnum + 1) as u16).to_le_bytes());
    debug_assert_eq!(bytes.len(), size);
    bytes
}

/// One runner build and what it reported.
#[derive(Clone, Copy, Debug)]
pub struct Build {
    /// Wall time of `build()`.
    pub total: Duration,
    /// Of which the bootstrap (or the cache lookup).
    pub bootstrap: Duration,
    /// Of which the `simpler_aicpu_init` launch.
    pub init: Duration,
}

/// Builds a runner from `builder` (its runtime SO set), checks that the
/// bootstrap cache did what `expect` says, and returns it with its timings.
pub fn build(builder: DeviceRunnerBuilder, expect: CacheStatus) -> (DeviceRunner, Build) {
    let started = Instant::now();
    let runner = builder
        .build()
        .unwrap_or_else(|e| panic!("building a runner failed: {e}"));
    let total = started.elapsed();
    let info = runner.info();
    assert_eq!(
        info.cache, expect,
        "the bootstrap cache did not do what the measurement needs"
    );
    let timings = Build {
        total,
        bootstrap: info.bootstrap_time,
        init: info.init_time,
    };
    (runner, timings)
}

/// A cold build: `runtime` is new to the device.
pub fn cold(builder: DeviceRunnerBuilder, runtime: Vec<u8>) -> (DeviceRunner, Build) {
    build(builder.runtime_bytes(runtime), CacheStatus::Miss)
}

/// Removes the installed file of `runner` from the simulated device's
/// filesystem (`preinstall` under the simulator root), so that a long run
/// does not fill the disk. Untimed.
pub fn remove_installed(preinstall: &Path, runner: &DeviceRunner) {
    let path = preinstall.join(runner.info().preinstall_name.as_str());
    // The device process keeps its mapping; the file is no longer needed.
    if let Err(e) = fs::remove_file(&path) {
        panic!("cannot remove {}: {e}", path.display());
    }
}

/// The floor of a cold bootstrap, in this process: what installing `bytes`
/// cannot avoid — hash them once (the file name), copy them once (to the
/// device), write a temp file in `dir`, make it 0755, rename it onto its
/// name, and `dlopen` it. Returns the time and removes the file after.
pub fn floor(dir: &Path, bytes: &[u8]) -> Duration {
    let started = Instant::now();
    let name = PreinstallName::of(bytes);
    let copy = bytes.to_vec();
    let target = dir.join(name.as_str());
    let temp: PathBuf = dir.join(format!(".{name}.tmp"));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", temp.display()));
    file.write_all(&copy)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", temp.display()));
    file.set_permissions(fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", temp.display()));
    drop(file);
    fs::rename(&temp, &target)
        .unwrap_or_else(|e| panic!("cannot rename onto {}: {e}", target.display()));
    let lib = crate::sys::dlopen_runtime(&target)
        .unwrap_or_else(|e| panic!("cannot dlopen {}: {e}", target.display()));
    let elapsed = started.elapsed();
    drop(lib);
    drop(copy);
    fs::remove_file(&target).unwrap_or_else(|e| panic!("cannot remove {}: {e}", target.display()));
    elapsed
}

/// A warm runner creation from a builder whose runtime SO is installed
/// already, so `build()` finds it in the cache. The runner is dropped
/// untimed.
pub fn warm(builder: DeviceRunnerBuilder) -> Build {
    build(builder, CacheStatus::Hit).1
}

#[cfg(test)]
mod tests {
    use object::read::elf::{ElfFile64, ProgramHeader as _};
    use object::{Object, ObjectSection};
    use simpler_host::{Machine, Role, SoImage};

    use super::*;

    fn runtime() -> Vec<u8> {
        fs::read(simpler_testkit::host_artifacts().runtime()).expect("read the runtime SO")
    }

    #[test]
    fn padding_makes_a_valid_so_of_the_size_that_varies_with_the_seed() {
        let (real, minimal) = (runtime(), crate::setup::min_runtime_bytes());
        let cases = CURVE_SIZES
            .iter()
            .map(|&size| (&minimal, size))
            .chain([(&real, RUNTIME_SIZE)]);
        for (so, size) in cases {
            let (a, b) = (padded(so, size, 1), padded(so, size, 2));
            assert_eq!((a.len(), b.len()), (size, size));
            // Only the section table's place and count change in the
            // file header, and nothing after it in the original bytes.
            assert_eq!(a[..E_SHOFF], so[..E_SHOFF]);
            assert_eq!(a[0x40..so.len()], so[0x40..]);
            assert_ne!(PreinstallName::of(&a), PreinstallName::of(&b));
            assert_eq!(a, padded(so, size, 1));
            // The preflight accepts it as a runtime SO.
            SoImage::from_bytes(a.clone(), Role::Runtime, Machine::host())
                .unwrap_or_else(|e| panic!("{size} B: {e}"));
        }
    }

    #[test]
    fn the_padding_is_a_named_section_no_segment_loads() {
        let so = runtime();
        let bytes = padded(&so, 1 << 20, 7);
        let original = ElfFile64::<object::Endianness>::parse(&so[..]).unwrap();
        let file = ElfFile64::<object::Endianness>::parse(&bytes[..]).unwrap();
        let names = |f: &ElfFile64<object::Endianness>| -> Vec<String> {
            f.sections().map(|s| s.name().unwrap().to_owned()).collect()
        };
        let mut expected = names(&original);
        expected.push(PAD_SECTION.to_owned());
        assert_eq!(names(&file), expected);
        let pad = file.section_by_name(PAD_SECTION).unwrap();
        let (start, len) = pad.file_range().unwrap();
        assert!(start as usize >= so.len() && len > (1 << 20) - so.len() as u64 - 4096);
        let endian = file.endian();
        for segment in file.elf_program_headers() {
            let (offset, filesz) = (segment.p_offset(endian), segment.p_filesz(endian));
            assert!(
                offset + filesz <= so.len() as u64,
                "a segment reaches the padding"
            );
        }
    }

    #[test]
    fn a_size_too_small_for_the_tables_is_refused() {
        let so = runtime();
        let small = so.len().next_multiple_of(8) + 64;
        let refused = std::panic::catch_unwind(|| padded(&so, small, 1));
        assert!(refused.is_err());
    }
}
