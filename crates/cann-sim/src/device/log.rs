//! The device log, `<root>/device<N>/log/device.log`: every `DlogRecord`
//! call of a device SO and the simulator's own notes, one line each.

use std::ffi::{c_char, c_int, CStr, CString};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Module id the simulator's own lines carry (CANN's ids are small).
const SIM_MODULE: c_int = -1;

/// CANN dlog levels.
pub mod level {
    /// `DLOG_INFO`.
    pub const INFO: i32 = 1;
    /// `DLOG_WARN`.
    pub const WARN: i32 = 2;
    /// `DLOG_ERROR`.
    pub const ERROR: i32 = 3;
}

struct Sink {
    file: Option<File>,
    /// Lines kept in memory while file writes are made to fail on purpose.
    held: Option<Vec<String>>,
}

static SINK: Mutex<Sink> = Mutex::new(Sink {
    file: None,
    held: None,
});

extern "C" {
    fn DlogRecord(module: c_int, level: c_int, fmt: *const c_char, ...);
}

fn sink() -> std::sync::MutexGuard<'static, Sink> {
    SINK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens (appending) the log file; without it lines go to stderr.
pub fn open(path: &Path) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    sink().file = Some(file);
    Ok(())
}

/// Logs one of the simulator's own lines, through `DlogRecord` like any
/// device SO would.
pub fn note(level: i32, text: &str) {
    let text = CString::new(text.replace('\0', " ")).unwrap_or_default();
    // SAFETY: a "%s" format with one NUL-terminated string argument.
    unsafe { DlogRecord(SIM_MODULE, level, c"%s".as_ptr(), text.as_ptr()) };
}

/// Keeps lines in memory until [`release`] (file writes fail meanwhile).
pub fn hold() {
    sink().held.get_or_insert_with(Vec::new);
}

/// Writes the lines kept since [`hold`].
pub fn release() {
    let mut s = sink();
    if let Some(lines) = s.held.take() {
        for line in lines {
            write(&mut s, &line);
        }
    }
}

fn write(s: &mut Sink, line: &str) {
    let done = s
        .file
        .as_mut()
        .is_some_and(|f| f.write_all(line.as_bytes()).is_ok());
    if !done {
        eprint!("{line}");
    }
}

fn level_name(level: c_int) -> String {
    match level {
        0 => "DEBUG".into(),
        1 => "INFO".into(),
        2 => "WARN".into(),
        3 => "ERROR".into(),
        0x10 => "EVENT".into(),
        other => format!("LEVEL{other}"),
    }
}

/// Receives every formatted `DlogRecord` line (called from `dlog.c`).
///
/// # Safety
/// `text` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn simpler_sim_dlog_line(module: c_int, level: c_int, text: *const c_char) {
    // SAFETY: dlog.c always passes its NUL-terminated buffer.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let module = if module == SIM_MODULE {
        "sim".to_owned()
    } else {
        format!("module {module}")
    };
    let line = format!(
        "[{}.{:06}] [pid {}] {} {module}: {}\n",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        level_name(level),
        text.trim_end_matches('\n')
    );
    let mut s = sink();
    match s.held.as_mut() {
        Some(held) => held.push(line),
        None => write(&mut s, &line),
    }
}
