//! Properties of the host's ELF preflight (`simpler_host::elf::preflight`)
//! on random bytes, mutated real ELF files and SOs with patched headers or
//! hidden contract symbols: it never panics, every rejection is the
//! specific problem the input has, and the untouched artifacts pass.
//!
//! The oracle for arbitrary bytes is shared with the `preflight` fuzz
//! target (`simpler_fuzz_cases::preflight_oracle`). Cases per property:
//! `PROPTEST_CASES` (default 256).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use object::elf::{self, FileHeader64};
use object::read::elf::{FileHeader as _, ProgramHeader as _, SectionHeader as _};
use object::LittleEndian;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use simpler_fuzz_cases::preflight_oracle::{check, predict, Prediction};
use simpler_host::elf::{preflight, Machine, Role, SoInfo, SymbolKind};
use simpler_host::{PreflightError, PreflightProblem};
use simpler_testkit::{device_artifacts, host_artifacts};

const LABEL: &str = "generated.so";

/// Runs `test` on `PROPTEST_CASES` values of `strategy` (no regression
/// files) and returns how often each outcome it names came up.
fn run_property<S: Strategy>(
    strategy: S,
    test: impl Fn(S::Value) -> Result<&'static str, TestCaseError>,
) -> BTreeMap<&'static str, u32> {
    let counts = std::cell::RefCell::new(BTreeMap::new());
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&strategy, |value| {
        let outcome = test(value)?;
        *counts.borrow_mut().entry(outcome).or_insert(0) += 1;
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    let counts = counts.into_inner();
    println!("outcomes: {counts:?}");
    counts
}

/// Asserts that each of `outcomes` came up, when there were enough cases
/// for that to be all but certain: a property that never reaches an
/// outcome proves nothing about it.
fn assert_reached(counts: &BTreeMap<&str, u32>, outcomes: &[&str]) {
    if Config::default().cases >= 128 {
        for outcome in outcomes {
            assert!(
                counts.contains_key(outcome),
                "no case ended {outcome}: {counts:?}"
            );
        }
    }
}

/// The variant's name, for counting.
fn outcome(result: &Result<SoInfo, PreflightError>) -> &'static str {
    match result {
        Ok(_) => "Ok",
        Err(e) => match e.problem {
            PreflightProblem::Empty => "Empty",
            PreflightProblem::TooLarge { .. } => "TooLarge",
            PreflightProblem::NotElf => "NotElf",
            PreflightProblem::Not64Bit => "Not64Bit",
            PreflightProblem::BigEndian => "BigEndian",
            PreflightProblem::NotSharedObject(_) => "NotSharedObject",
            PreflightProblem::WrongMachine { .. } => "WrongMachine",
            PreflightProblem::Executable { .. } => "Executable",
            PreflightProblem::MissingExports { .. } => "MissingExports",
            PreflightProblem::NotAFunction { .. } => "NotAFunction",
            PreflightProblem::Malformed(_) => "Malformed",
            _ => "unknown",
        },
    }
}

/// A real ELF file and what it is.
struct Real {
    name: &'static str,
    bytes: Vec<u8>,
    /// The role it fulfils, for the artifacts.
    role: Option<Role>,
    /// The machine it was built for.
    machine: Machine,
    /// File ranges the preflight reads (headers, program and section
    /// tables, the interpreter's name, dynamic section, symbol and string
    /// tables, version sections); the rest is code and data.
    structural: Vec<Range<usize>>,
}

/// The host-arch dispatcher and runtime artifacts, the device-side ones
/// too when `SIMPLER_DEVICE_ARTIFACTS_DIR` names others (the aarch64 run),
/// and `/bin/true` (an executable; on current distributions a PIE, so
/// `ET_DYN`) where present.
fn reals() -> &'static [Real] {
    static REALS: OnceLock<Vec<Real>> = OnceLock::new();
    REALS.get_or_init(|| {
        let read =
            |path: &Path| std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut reals = Vec::new();
        let host = host_artifacts();
        let mut sets = vec![("host", host, Machine::host())];
        let device = device_artifacts();
        if device.dir() != host.dir() {
            sets.push(("device", device, machine_of(device.dir())));
        }
        for (side, artifacts, machine) in sets {
            let name = |so: &str| -> &'static str { format!("{side} {so}").leak() };
            reals.push(Real::new(
                name("dispatcher"),
                read(&artifacts.dispatcher()),
                Some(Role::Dispatcher),
                machine,
            ));
            reals.push(Real::new(
                name("runtime"),
                read(&artifacts.runtime()),
                Some(Role::Runtime),
                machine,
            ));
        }
        if let Ok(bytes) = std::fs::read("/bin/true") {
            reals.push(Real::new("/bin/true", bytes, None, Machine::host()));
        }
        reals
    })
}

/// The machine of an artifacts directory, from its name
/// (`target/artifacts/<triple>`).
fn machine_of(dir: &Path) -> Machine {
    let triple = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let arch = triple.split('-').next().unwrap_or_default();
    Machine::from_name(arch).unwrap_or_else(|| {
        panic!(
            "cannot tell the machine of {}: its name should be a target triple",
            dir.display()
        )
    })
}

/// Shown in failing cases by name: the bytes are the file's.
impl std::fmt::Debug for Real {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Real {
    fn new(name: &'static str, bytes: Vec<u8>, role: Option<Role>, machine: Machine) -> Self {
        let structural = structural_ranges(&bytes);
        Self {
            name,
            bytes,
            role,
            machine,
            structural,
        }
    }

    fn artifacts() -> impl Strategy<Value = &'static Real> {
        let with_role: Vec<&'static Real> = reals().iter().filter(|r| r.role.is_some()).collect();
        prop::sample::select(with_role)
    }

    fn any() -> impl Strategy<Value = &'static Real> {
        prop::sample::select(reals().iter().collect::<Vec<_>>())
    }

    fn is_structural(&self, at: usize) -> bool {
        self.structural.iter().any(|r| r.contains(&at))
    }
}

fn header(bytes: &[u8]) -> &FileHeader64<LittleEndian> {
    FileHeader64::<LittleEndian>::parse(bytes).expect("a real ELF64 header")
}

/// See [`Real::structural`].
fn structural_ranges(bytes: &[u8]) -> Vec<Range<usize>> {
    let e = LittleEndian;
    let h = header(bytes);
    let span = |offset: u64, len: u64| offset as usize..(offset + len) as usize;
    let mut ranges = vec![
        0..size_of::<FileHeader64<LittleEndian>>(),
        span(
            h.e_phoff(e),
            u64::from(h.e_phnum(e)) * u64::from(h.e_phentsize(e)),
        ),
        span(
            h.e_shoff(e),
            u64::from(h.e_shnum(e)) * u64::from(h.e_shentsize(e)),
        ),
    ];
    // The interpreter's name, which an executable's PT_INTERP points at.
    for segment in h.program_headers(e, bytes).expect("real program headers") {
        if segment.p_type(e) == elf::PT_INTERP {
            ranges.push(span(segment.p_offset(e), segment.p_filesz(e)));
        }
    }
    let sections = h.sections(e, bytes).expect("real section table");
    let shstrndx = usize::from(h.e_shstrndx(e));
    for (index, section) in sections.iter().enumerate() {
        let read_by_preflight = matches!(
            section.sh_type(e),
            elf::SHT_DYNAMIC
                | elf::SHT_DYNSYM
                | elf::SHT_SYMTAB
                | elf::SHT_STRTAB
                | elf::SHT_SYMTAB_SHNDX
                | elf::SHT_HASH
                | elf::SHT_GNU_HASH
                | elf::SHT_GNU_VERSYM
                | elf::SHT_GNU_VERDEF
                | elf::SHT_GNU_VERNEED
        );
        if (read_by_preflight || index == shstrndx) && section.sh_type(e) != elf::SHT_NOBITS {
            ranges.push(span(section.sh_offset(e), section.sh_size(e)));
        }
    }
    ranges
}

/// End of the section header table: a file cut before it cannot be read.
fn section_table_end(bytes: &[u8]) -> usize {
    let e = LittleEndian;
    let h = header(bytes);
    (h.e_shoff(e) + u64::from(h.e_shnum(e)) * u64::from(h.e_shentsize(e))) as usize
}

fn any_role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Dispatcher), Just(Role::Runtime)]
}

fn other_machine() -> Machine {
    if Machine::host() == Machine::AARCH64 {
        Machine::X86_64
    } else {
        Machine::AARCH64
    }
}

/// An `e_ident` byte: often `valid` or `invalid`, else 0 to 3.
fn near(valid: u8, invalid: u8) -> impl Strategy<Value = u8> {
    prop_oneof![Just(valid), Just(invalid), 0..4u8]
}

/// Bytes shaped like the start of an ELF file to various depths.
fn elf_shaped_bytes() -> impl Strategy<Value = Vec<u8>> {
    let after = |prefix: Vec<u8>, tail: Vec<u8>| [prefix, tail].concat();
    prop_oneof![
        // Nothing, or anything.
        1 => Just(Vec::new()),
        2 => vec(any::<u8>(), 0..128),
        // The magic, then garbage.
        2 => vec(any::<u8>(), 0..200).prop_map(move |t| after(b"\x7fELF".to_vec(), t)),
        // The magic and e_ident bytes around the valid values.
        3 => (near(2, 1), near(1, 2), near(1, 0), vec(any::<u8>(), 0..200)).prop_map(
            move |(class, data, version, t)| after(vec![0x7f, b'E', b'L', b'F', class, data, version], t)
        ),
        // A real 64-bit header with its type and machine varied, then garbage.
        3 => (
            Real::any(),
            prop_oneof![3 => Just(elf::ET_DYN), 1 => any::<u16>()],
            prop_oneof![Just(Machine::host().0), any::<u16>()],
            vec(any::<u8>(), 0..512),
        )
            .prop_map(move |(real, e_type, e_machine, t)| {
                let mut head = real.bytes[..64].to_vec();
                head[16..18].copy_from_slice(&e_type.to_le_bytes());
                head[18..20].copy_from_slice(&e_machine.to_le_bytes());
                after(head, t)
            }),
    ]
}

#[test]
fn random_bytes_get_the_problem_their_header_decides() {
    let machines = prop_oneof![
        Just(Machine::host()),
        Just(other_machine()),
        any::<u16>().prop_map(Machine)
    ];
    let counts = run_property(
        (elf_shaped_bytes(), any_role(), machines),
        |(bytes, role, machine)| {
            let result = check(&bytes, role, machine, LABEL).map_err(TestCaseError::fail)?;
            Ok(outcome(&result))
        },
    );
    assert_reached(
        &counts,
        &[
            "Empty",
            "NotElf",
            "Not64Bit",
            "BigEndian",
            "Malformed",
            "NotSharedObject",
        ],
    );
}

/// A change to a real ELF file.
#[derive(Clone, Debug)]
enum Mutation {
    /// Flip these bits anywhere.
    Flips(Vec<(Index, u8)>),
    /// Flip these bits in code and data only.
    BodyFlips(Vec<(Index, u8)>),
    /// Keep only a prefix.
    Truncate(Index),
    /// Overwrite a run of bytes.
    Overwrite(Index, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let flips = || vec((any::<Index>(), 0..8u8), 1..8);
    prop_oneof![
        3 => flips().prop_map(Mutation::Flips),
        2 => flips().prop_map(Mutation::BodyFlips),
        2 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (any::<Index>(), vec(any::<u8>(), 1..32))
            .prop_map(|(at, run)| Mutation::Overwrite(at, run)),
    ]
}

/// `result` without what depends on every byte (size and fingerprint).
fn verdict(result: &Result<SoInfo, PreflightError>) -> Result<SoInfo, PreflightError> {
    result.clone().map(|info| SoInfo {
        size: 0,
        fingerprint: 0,
        ..info
    })
}

#[test]
fn mutated_real_elfs_get_a_specific_consistent_answer() {
    let counts = run_property(
        (Real::any(), mutation(), any_role()),
        |(real, mutation, role)| {
            let mut bytes = real.bytes.clone();
            let untouched = preflight(&real.bytes, role, real.machine, LABEL);
            let body: Vec<usize> = match &mutation {
                Mutation::BodyFlips(_) => (0..bytes.len())
                    .filter(|&at| !real.is_structural(at))
                    .collect(),
                _ => Vec::new(),
            };
            match &mutation {
                Mutation::Flips(flips) => {
                    for (at, bit) in flips {
                        bytes[at.index(real.bytes.len())] ^= 1 << bit;
                    }
                }
                Mutation::BodyFlips(flips) => {
                    for (at, bit) in flips {
                        bytes[body[at.index(body.len())]] ^= 1 << bit;
                    }
                }
                Mutation::Truncate(at) => bytes.truncate(at.index(real.bytes.len())),
                Mutation::Overwrite(at, run) => {
                    let at = at.index(bytes.len());
                    let end = (at + run.len()).min(bytes.len());
                    bytes[at..end].copy_from_slice(&run[..end - at]);
                }
            }
            let result = check(&bytes, role, real.machine, LABEL).map_err(TestCaseError::fail)?;
            match &mutation {
                // Code and data do not matter to the preflight.
                Mutation::BodyFlips(_) => prop_assert_eq!(verdict(&result), verdict(&untouched)),
                // A cut through the section table leaves it unreadable.
                Mutation::Truncate(_)
                    if bytes.len() >= 64 && bytes.len() < section_table_end(&real.bytes) =>
                {
                    prop_assert!(
                        matches!(
                            &result,
                            Err(PreflightError {
                                problem: PreflightProblem::Malformed(_),
                                ..
                            })
                        ),
                        "{} cut to {} bytes: {:?}",
                        real.name,
                        bytes.len(),
                        result
                    );
                }
                _ => {}
            }
            Ok(outcome(&result))
        },
    );
    assert_reached(&counts, &["Ok", "Malformed", "MissingExports"]);
}

/// A header change to an artifact and the exact problem it must cause.
#[derive(Clone, Debug)]
enum Patch {
    /// `e_ident` magic byte `at` changed by `delta`.
    Magic(usize, u8),
    /// `EI_CLASS` set to this.
    Class(u8),
    /// `EI_DATA` set to this.
    Data(u8),
    /// `EI_VERSION` set to this.
    Version(u8),
    /// `e_type` set to this.
    Type(u16),
    /// `e_machine` set to this.
    Machine(u16),
    /// Checked for another device machine.
    ForOtherMachine(u16),
    /// Checked as the other role.
    OtherRole,
}

fn patch() -> impl Strategy<Value = Patch> {
    prop_oneof![
        (0..4usize, 1..=255u8).prop_map(|(at, delta)| Patch::Magic(at, delta)),
        prop_oneof![Just(1), any::<u8>()]
            .prop_filter("not 64-bit", |&c| c != 2)
            .prop_map(Patch::Class),
        prop_oneof![Just(2), any::<u8>()]
            .prop_filter("not LSB", |&d| d != 1)
            .prop_map(Patch::Data),
        any::<u8>()
            .prop_filter("not current", |&v| v != 1)
            .prop_map(Patch::Version),
        prop_oneof![
            Just(elf::ET_NONE),
            Just(elf::ET_REL),
            Just(elf::ET_EXEC),
            Just(elf::ET_CORE),
            any::<u16>(),
        ]
        .prop_filter("not ET_DYN", |&t| t != elf::ET_DYN)
        .prop_map(Patch::Type),
        any::<u16>().prop_map(Patch::Machine),
        any::<u16>().prop_map(Patch::ForOtherMachine),
        Just(Patch::OtherRole),
    ]
}

#[test]
fn patched_headers_get_their_specific_problem() {
    let cases = (Real::artifacts(), patch()).prop_filter("a different machine", |(real, patch)| {
        !matches!(patch, Patch::Machine(m) | Patch::ForOtherMachine(m) if *m == real.machine.0)
    });
    let counts = run_property(cases, |(real, patch)| {
        let own_role = real.role.expect("an artifact");
        let mut bytes = real.bytes.clone();
        let mut role = own_role;
        let mut machine = real.machine;
        let problem = match patch {
            Patch::Magic(at, delta) => {
                bytes[at] = bytes[at].wrapping_add(delta);
                Some(PreflightProblem::NotElf)
            }
            Patch::Class(class) => {
                bytes[4] = class;
                (class == 1).then_some(PreflightProblem::Not64Bit)
            }
            Patch::Data(data) => {
                bytes[5] = data;
                (data == 2).then_some(PreflightProblem::BigEndian)
            }
            Patch::Version(version) => {
                bytes[6] = version;
                None
            }
            Patch::Type(e_type) => {
                bytes[16..18].copy_from_slice(&e_type.to_le_bytes());
                None
            }
            Patch::Machine(e_machine) => {
                bytes[18..20].copy_from_slice(&e_machine.to_le_bytes());
                Some(PreflightProblem::WrongMachine {
                    found: Machine(e_machine),
                    expected: real.machine,
                })
            }
            Patch::ForOtherMachine(other) => {
                machine = Machine(other);
                Some(PreflightProblem::WrongMachine {
                    found: real.machine,
                    expected: machine,
                })
            }
            Patch::OtherRole => {
                role = match own_role {
                    Role::Dispatcher => Role::Runtime,
                    Role::Runtime | Role::Kernels => Role::Dispatcher,
                };
                Some(PreflightProblem::MissingExports {
                    role,
                    missing: role.contract().to_vec(),
                })
            }
        };
        let result = check(&bytes, role, machine, LABEL).map_err(TestCaseError::fail)?;
        let found = &result
            .as_ref()
            .expect_err("a patched header passed")
            .problem;
        match (problem, &patch) {
            (Some(expected), _) => prop_assert_eq!(found, &expected),
            (None, Patch::Type(_)) => {
                prop_assert!(
                    matches!(found, PreflightProblem::NotSharedObject(_)),
                    "{found:?}"
                )
            }
            (None, _) => prop_assert!(matches!(found, PreflightProblem::Malformed(_)), "{found:?}"),
        }
        Ok(outcome(&result))
    });
    assert_reached(
        &counts,
        &[
            "NotElf",
            "Not64Bit",
            "BigEndian",
            "Malformed",
            "NotSharedObject",
            "WrongMachine",
            "MissingExports",
        ],
    );
}

/// A way to take a symbol out of an SO's exports.
#[derive(Clone, Copy, Debug)]
enum Hide {
    /// `STV_HIDDEN` visibility.
    Hidden,
    /// `STB_LOCAL` binding.
    Local,
    /// `SHN_UNDEF`: an import, not an export.
    Undefined,
    /// A different name (first letter's case flipped in `.dynstr`).
    Renamed,
}

/// File offsets of the `.dynsym` entry and of the name of `symbol`.
fn dynsym_entry(bytes: &[u8], symbol: &str) -> (usize, usize) {
    let e = LittleEndian;
    let sections = header(bytes)
        .sections(e, bytes)
        .expect("real section table");
    let dynsym = sections
        .iter()
        .find(|s| s.sh_type(e) == elf::SHT_DYNSYM)
        .expect(".dynsym");
    let dynstr = sections
        .section(object::SectionIndex(dynsym.sh_link(e) as usize))
        .expect(".dynstr");
    let table = sections
        .symbols(e, bytes, elf::SHT_DYNSYM)
        .expect("dynamic symbols");
    let entry_len = size_of::<elf::Sym64<LittleEndian>>();
    table
        .symbols()
        .iter()
        .enumerate()
        .find(|(_, sym)| table.symbol_name(e, *sym).ok() == Some(symbol.as_bytes()))
        .map(|(index, sym)| {
            (
                dynsym.sh_offset(e) as usize + index * entry_len,
                (dynstr.sh_offset(e) + u64::from(sym.st_name.get(e))) as usize,
            )
        })
        .unwrap_or_else(|| panic!("{symbol} not in .dynsym"))
}

fn hide(bytes: &mut [u8], symbol: &str, how: Hide) {
    const ST_INFO: usize = 4;
    const ST_OTHER: usize = 5;
    const ST_SHNDX: usize = 6;
    let (entry, name) = dynsym_entry(bytes, symbol);
    match how {
        Hide::Hidden => bytes[entry + ST_OTHER] = (bytes[entry + ST_OTHER] & !3) | elf::STV_HIDDEN,
        Hide::Local => {
            bytes[entry + ST_INFO] = (elf::STB_LOCAL << 4) | (bytes[entry + ST_INFO] & 0xf)
        }
        Hide::Undefined => bytes[entry + ST_SHNDX..entry + ST_SHNDX + 2].fill(0),
        Hide::Renamed => bytes[name] ^= 0x20,
    }
}

#[test]
fn hidden_contract_symbols_are_named_missing() {
    let how = prop_oneof![
        Just(Hide::Hidden),
        Just(Hide::Local),
        Just(Hide::Undefined),
        Just(Hide::Renamed)
    ];
    let counts = run_property(
        (Real::artifacts(), vec(prop::option::weighted(0.6, how), 3)),
        |(real, hides)| {
            let role = real.role.expect("an artifact");
            let mut bytes = real.bytes.clone();
            let mut missing = Vec::new();
            let mut imported = Vec::new();
            for (&symbol, how) in role.contract().iter().zip(&hides) {
                if let Some(how) = *how {
                    hide(&mut bytes, symbol, how);
                    match how {
                        Hide::Undefined => imported.push(symbol),
                        _ => missing.push(symbol),
                    }
                }
            }
            let result = check(&bytes, role, real.machine, LABEL).map_err(TestCaseError::fail)?;
            // Symbols no other object sees are named together; then the
            // first one that is there but only as an import.
            let expected = if !missing.is_empty() {
                Err(PreflightProblem::MissingExports { role, missing })
            } else if let Some(&symbol) = imported.first() {
                Err(PreflightProblem::NotAFunction {
                    role,
                    symbol,
                    kind: SymbolKind::Undefined,
                })
            } else {
                Ok(())
            };
            prop_assert_eq!(result.clone().map(|_| ()).map_err(|e| e.problem), expected);
            Ok(outcome(&result))
        },
    );
    assert_reached(&counts, &["Ok", "MissingExports", "NotAFunction"]);
}

/// Sets the `st_type` of `symbol`'s `.dynsym` entry.
fn retype(bytes: &mut [u8], symbol: &str, st_type: u8) {
    const ST_INFO: usize = 4;
    let (entry, _) = dynsym_entry(bytes, symbol);
    bytes[entry + ST_INFO] = (bytes[entry + ST_INFO] & 0xf0) | st_type;
}

#[test]
fn retyped_contract_symbols_are_named_with_their_kind() {
    let st_type = prop_oneof![
        Just(elf::STT_FUNC),
        Just(elf::STT_GNU_IFUNC),
        Just(elf::STT_OBJECT),
        Just(elf::STT_TLS),
        Just(elf::STT_COMMON),
        Just(elf::STT_NOTYPE),
        0..16u8,
    ];
    let counts = run_property(
        (
            Real::artifacts(),
            vec(prop::option::weighted(0.5, st_type), 3),
        ),
        |(real, types)| {
            let role = real.role.expect("an artifact");
            let mut bytes = real.bytes.clone();
            let mut missing = Vec::new();
            let mut wrong = None;
            for (&symbol, st_type) in role.contract().iter().zip(&types) {
                let Some(st_type) = *st_type else { continue };
                retype(&mut bytes, symbol, st_type);
                let kind = match st_type {
                    elf::STT_FUNC | elf::STT_GNU_IFUNC => continue,
                    // Section and file symbols name no object's entry.
                    elf::STT_SECTION | elf::STT_FILE => {
                        missing.push(symbol);
                        continue;
                    }
                    elf::STT_OBJECT => SymbolKind::Object,
                    elf::STT_TLS => SymbolKind::ThreadLocal,
                    elf::STT_COMMON => SymbolKind::Common,
                    elf::STT_NOTYPE => SymbolKind::NoType,
                    other => SymbolKind::Other(other),
                };
                wrong = wrong.or(Some((symbol, kind)));
            }
            let result = check(&bytes, role, real.machine, LABEL).map_err(TestCaseError::fail)?;
            let expected = match wrong {
                _ if !missing.is_empty() => Err(PreflightProblem::MissingExports { role, missing }),
                Some((symbol, kind)) => Err(PreflightProblem::NotAFunction { role, symbol, kind }),
                None => Ok(()),
            };
            prop_assert_eq!(result.clone().map(|_| ()).map_err(|e| e.problem), expected);
            Ok(outcome(&result))
        },
    );
    assert_reached(&counts, &["Ok", "NotAFunction"]);
}

#[test]
fn oversized_images_are_too_large_whatever_they_hold() {
    // Zeroed allocations are mapped lazily: only the pages the header is
    // copied into are ever touched.
    let runtime = &reals()
        .iter()
        .find(|r| r.role == Some(Role::Runtime))
        .expect("the runtime artifact")
        .bytes;
    let images = std::cell::RefCell::new([Role::Dispatcher, Role::Runtime].map(|role| {
        let mut image = vec![0u8; role.max_len() as usize + (1 << 20)];
        image[..runtime.len()].copy_from_slice(runtime);
        (role, image)
    }));
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(
        &(0..2usize, 1..=(1u64 << 20), any::<bool>()),
        |(which, extra, is_elf)| {
            let mut images = images.borrow_mut();
            let (role, image) = &mut images[which];
            // Either the runtime SO at the start, or not an ELF at all.
            image[0] = if is_elf { 0x7f } else { b'#' };
            let len = role.max_len() + extra;
            let bytes = &image[..len as usize];
            prop_assert_eq!(
                predict(bytes, *role),
                Prediction::Exactly(PreflightProblem::TooLarge {
                    len,
                    max: role.max_len(),
                    role: *role,
                })
            );
            let result =
                check(bytes, *role, Machine::host(), LABEL).map_err(TestCaseError::fail)?;
            prop_assert!(result.is_err());
            Ok(())
        },
    );
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

#[test]
fn untouched_artifacts_pass_and_system_elfs_get_specific_problems() {
    for real in reals() {
        let Some(role) = real.role else { continue };
        let info = check(&real.bytes, role, real.machine, real.name)
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(info.machine, real.machine);
        assert_eq!(info.size, real.bytes.len() as u64);
        assert_eq!(info.fingerprint, simpler_abi::fingerprint(&real.bytes));
        for symbol in role.contract() {
            assert!(info.exports.iter().any(|e| e == symbol), "{symbol}");
        }
    }

    // An executable: a PIE is ET_DYN with a dynamic section, but it names
    // a program interpreter; a position-dependent one is not an SO.
    if let Some(exe) = reals().iter().find(|r| r.role.is_none()) {
        let result = check(&exe.bytes, Role::Runtime, Machine::host(), exe.name).unwrap();
        let problem = result.unwrap_err().problem;
        if header(&exe.bytes).e_type(LittleEndian) == elf::ET_DYN {
            let interpreter = SoInfo::parse(&exe.bytes).unwrap().interpreter;
            assert!(interpreter.is_some(), "{} names no interpreter", exe.name);
            assert_eq!(
                Some(problem),
                interpreter.map(|interpreter| PreflightProblem::Executable { interpreter })
            );
        } else {
            assert!(
                matches!(problem, PreflightProblem::NotSharedObject(_)),
                "{problem:?}"
            );
        }
    }

    // A 32-bit ARM shared object's header: rejected before anything else.
    let mut elf32 = vec![0u8; 52];
    elf32[..7].copy_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1, 1]);
    elf32[16..18].copy_from_slice(&elf::ET_DYN.to_le_bytes());
    elf32[18..20].copy_from_slice(&elf::EM_ARM.to_le_bytes());
    elf32[40..42].copy_from_slice(&52u16.to_le_bytes());
    for role in [Role::Dispatcher, Role::Runtime] {
        let result = check(&elf32, role, Machine::host(), "elf32.so").unwrap();
        assert_eq!(result.unwrap_err().problem, PreflightProblem::Not64Bit);
    }
}
