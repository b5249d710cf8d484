//! What `simpler_host::elf::preflight` must answer for any bytes: the
//! problem the ELF header alone decides, and the invariants every other
//! answer keeps.
//!
//! Shared by the `preflight` fuzz target and the `prop_preflight` property
//! tests of `simpler-e2e`.

use simpler_abi::fingerprint;
use simpler_host::elf::{Machine, Role, SoInfo, SymbolKind};
use simpler_host::{PreflightError, PreflightProblem};

/// Size of an ELF64 file header.
const EHDR64_LEN: usize = 64;
/// `e_ident[EI_CLASS]`: 1 = 32-bit, 2 = 64-bit.
const EI_CLASS: usize = 4;
/// `e_ident[EI_DATA]`: 1 = little-endian, 2 = big-endian.
const EI_DATA: usize = 5;
/// `e_ident[EI_VERSION]`: must be 1.
const EI_VERSION: usize = 6;
/// Offset of `e_type` (u16).
const E_TYPE: usize = 16;
/// Offset of `e_machine` (u16).
const E_MACHINE: usize = 18;
/// `ET_DYN`.
const ET_DYN: u16 = 3;

/// What the bytes before the section headers decide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prediction {
    /// Exactly this problem.
    Exactly(PreflightProblem),
    /// `Malformed` (an unreadable header), whatever the message.
    Malformed,
    /// `NotSharedObject` for a readable header whose `e_type` is not `ET_DYN`.
    NotSharedObject,
    /// A sound `ET_DYN` header: the answer depends on the sections, and must
    /// keep the invariants [`check`] applies.
    Deep,
}

/// The answer for `bytes` as far as the ELF header decides it.
pub fn predict(bytes: &[u8], role: Role) -> Prediction {
    let len = bytes.len() as u64;
    if len > role.max_len() {
        return Prediction::Exactly(PreflightProblem::TooLarge {
            len,
            max: role.max_len(),
            role,
        });
    }
    if bytes.is_empty() {
        return Prediction::Exactly(PreflightProblem::Empty);
    }
    if !bytes.starts_with(b"\x7fELF") {
        return Prediction::Exactly(PreflightProblem::NotElf);
    }
    match bytes.get(EI_CLASS) {
        Some(2) => {}
        Some(1) => return Prediction::Exactly(PreflightProblem::Not64Bit),
        _ => return Prediction::Malformed,
    }
    match bytes.get(EI_DATA) {
        Some(1) => {}
        Some(2) => return Prediction::Exactly(PreflightProblem::BigEndian),
        _ => return Prediction::Malformed,
    }
    if bytes.len() < EHDR64_LEN || bytes[EI_VERSION] != 1 {
        return Prediction::Malformed;
    }
    if u16_at(bytes, E_TYPE) != ET_DYN {
        return Prediction::NotSharedObject;
    }
    Prediction::Deep
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

/// Runs the preflight on `bytes` (labelled `label`) twice and checks the
/// answer against [`predict`] and the invariants of every answer:
///
/// - an error names `label` and `role`, and its message starts with the
///   label;
/// - the answer agrees with [`SoInfo::parse`] on the same bytes;
/// - success means the machine matches, the file names no program
///   interpreter and every contract symbol is a function it defines, with
///   the size and fingerprint of these bytes;
/// - `WrongMachine` names the file's `e_machine` and the expected one;
/// - `Executable` names the interpreter the parsed file has;
/// - `MissingExports` lists, in contract order, exactly the contract
///   symbols the parsed file has no dynamic symbol for;
/// - `NotAFunction` names the first contract symbol, in contract order,
///   that the parsed file has but not as a function it defines, and what
///   it is;
/// - the same bytes give the same answer again.
///
/// Returns the answer, or the first violation found.
pub fn check(
    bytes: &[u8],
    role: Role,
    machine: Machine,
    label: &str,
) -> Result<Result<SoInfo, PreflightError>, String> {
    let result = simpler_host::elf::preflight(bytes, role, machine, label);
    let again = simpler_host::elf::preflight(bytes, role, machine, label);
    if again != result {
        return Err(format!(
            "two answers for the same bytes: {result:?} then {again:?}"
        ));
    }
    check_answer(bytes, role, machine, label, &result)?;
    Ok(result)
}

fn check_answer(
    bytes: &[u8],
    role: Role,
    machine: Machine,
    label: &str,
    result: &Result<SoInfo, PreflightError>,
) -> Result<(), String> {
    let prediction = predict(bytes, role);
    let problem = match result {
        Ok(info) => return check_ok(bytes, role, machine, info, &prediction),
        Err(err) => {
            if err.file != label || err.role != role {
                return Err(format!("error names {} as {}: {err:?}", err.file, err.role));
            }
            let text = err.to_string();
            if !text.starts_with(&format!("{label}: ")) || text.len() <= label.len() + 2 {
                return Err(format!("message does not name the file: {text:?}"));
            }
            &err.problem
        }
    };
    let fits = match (&prediction, problem) {
        (Prediction::Exactly(expected), found) => expected == found,
        (Prediction::Malformed, PreflightProblem::Malformed(msg)) => !msg.is_empty(),
        (Prediction::NotSharedObject, PreflightProblem::NotSharedObject(what)) => !what.is_empty(),
        (Prediction::Deep, found) => check_deep(bytes, role, machine, found)?,
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(format!("expected {prediction:?}, got {problem:?}"))
    }
}

fn check_ok(
    bytes: &[u8],
    role: Role,
    machine: Machine,
    info: &SoInfo,
    prediction: &Prediction,
) -> Result<(), String> {
    if *prediction != Prediction::Deep {
        return Err(format!("accepted, but the header says {prediction:?}"));
    }
    let parsed = SoInfo::parse(bytes).map_err(|p| format!("accepted, but parse says {p:?}"))?;
    if parsed != *info {
        return Err(format!("preflight {info:?} differs from parse {parsed:?}"));
    }
    if info.machine != machine || Machine(u16_at(bytes, E_MACHINE)) != machine {
        return Err(format!("accepted {} for {machine}", info.machine));
    }
    if info.size != bytes.len() as u64 || info.fingerprint != fingerprint(bytes) {
        return Err(format!("size or fingerprint wrong: {info:?}"));
    }
    if !info.exports.windows(2).all(|w| w[0] < w[1]) {
        return Err("exports not sorted and unique".into());
    }
    if let Some(interpreter) = &info.interpreter {
        return Err(format!(
            "accepted an executable (interpreter {interpreter})"
        ));
    }
    let missing = lacking(role, info);
    if !missing.is_empty() {
        return Err(format!("accepted without {missing:?}"));
    }
    if let Some((symbol, kind)) = first_non_function(role, info) {
        return Err(format!("accepted with {symbol} {kind}"));
    }
    Ok(())
}

/// Whether `found` is a sound answer for a file with a sound `ET_DYN`
/// header: parse errors agree with [`SoInfo::parse`]; the machine and
/// export checks agree with what it read.
fn check_deep(
    bytes: &[u8],
    role: Role,
    machine: Machine,
    found: &PreflightProblem,
) -> Result<bool, String> {
    let parsed = SoInfo::parse(bytes);
    Ok(match (found, parsed) {
        (PreflightProblem::Malformed(msg), Err(PreflightProblem::Malformed(other))) => {
            !msg.is_empty() && *msg == other
        }
        (
            PreflightProblem::NotSharedObject(what),
            Err(PreflightProblem::NotSharedObject(other)),
        ) => *what == other,
        (PreflightProblem::WrongMachine { found, expected }, Ok(info)) => {
            *expected == machine
                && *found == info.machine
                && *found == Machine(u16_at(bytes, E_MACHINE))
                && *found != machine
        }
        (PreflightProblem::Executable { interpreter }, Ok(info)) => {
            info.machine == machine && info.interpreter.as_ref() == Some(interpreter)
        }
        (PreflightProblem::MissingExports { role: r, missing }, Ok(info)) => {
            *r == role
                && info.machine == machine
                && info.interpreter.is_none()
                && !missing.is_empty()
                && *missing == lacking(role, &info)
        }
        (
            PreflightProblem::NotAFunction {
                role: r,
                symbol,
                kind,
            },
            Ok(info),
        ) => {
            *r == role
                && info.machine == machine
                && info.interpreter.is_none()
                && lacking(role, &info).is_empty()
                && first_non_function(role, &info) == Some((symbol, *kind))
        }
        _ => false,
    })
}

/// What `info` has under `name`, found by a plain scan (independent of
/// `SoInfo::symbol`).
fn kind_of(info: &SoInfo, name: &str) -> Option<SymbolKind> {
    info.symbols.iter().find(|s| s.name == name).map(|s| s.kind)
}

/// The contract symbols `info` has no dynamic symbol for, in contract
/// order.
fn lacking(role: Role, info: &SoInfo) -> Vec<&'static str> {
    role.contract()
        .iter()
        .copied()
        .filter(|symbol| kind_of(info, symbol).is_none())
        .collect()
}

/// The first contract symbol `info` has, but not as a function or an
/// indirect function it defines, and what it is.
fn first_non_function(role: Role, info: &SoInfo) -> Option<(&'static str, SymbolKind)> {
    role.contract()
        .iter()
        .find_map(|&symbol| match kind_of(info, symbol) {
            Some(SymbolKind::Function | SymbolKind::Ifunc) | None => None,
            Some(kind) => Some((symbol, kind)),
        })
}
