//! The device log, `<root>/device<N>/log/device.log`: every `DlogRecord`
//! line of a device SO and the simulator's own notes, one line each.

use std::ffi::c_int;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use simpler_abi::log::dlog;

/// Module id the simulator's own lines carry (CANN's ids are small).
pub const SIM_MODULE: c_int = -1;

/// `DLOG_EVENT`, a level CANN logs beside the four of `simpler_abi`.
const EVENT: c_int = 0x10;

struct Sink {
    file: Option<File>,
    /// Lines kept in memory while file writes are made to fail on purpose.
    held: Option<Vec<String>>,
}

static SINK: Mutex<Sink> = Mutex::new(Sink {
    file: None,
    held: None,
});

fn sink() -> MutexGuard<'static, Sink> {
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
        dlog::DEBUG => "DEBUG".into(),
        dlog::INFO => "INFO".into(),
        dlog::WARN => "WARN".into(),
        dlog::ERROR => "ERROR".into(),
        EVENT => "EVENT".into(),
        other => format!("LEVEL{other}"),
    }
}

/// Writes one formatted line: `[unix time] [pid] LEVEL module M: text`.
pub fn record(module: c_int, level: c_int, text: &str) {
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
