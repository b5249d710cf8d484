//! Running external commands visibly.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The command as a shell line: explicitly set variables, program, arguments.
pub fn display(cmd: &Command) -> String {
    let mut line = String::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            let _ = write!(
                line,
                "{}={} ",
                key.to_string_lossy(),
                quote(&value.to_string_lossy())
            );
        }
    }
    line.push_str(&quote(&cmd.get_program().to_string_lossy()));
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&quote(&arg.to_string_lossy()));
    }
    line
}

/// `word` quoted for bash when it needs it; control characters (such as
/// the separator in `CARGO_ENCODED_RUSTFLAGS`) as `$'\xNN'` escapes.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        return word.to_string();
    }
    if word.chars().any(char::is_control) {
        let mut out = String::from("$'");
        for c in word.chars() {
            match c {
                '\'' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                c if c.is_ascii_control() => {
                    let _ = write!(out, "\\x{:02x}", u32::from(c));
                }
                c if c.is_control() => {
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Echoes `cmd` and runs it with inherited stdio; an error unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = display(cmd);
    eprintln!("$ {line}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Like [`run`], but passes each line of the command's stdout to `line`
/// after printing it.
pub fn run_lines(cmd: &mut Command, mut line: impl FnMut(&str)) -> Result<()> {
    let shown = display(cmd);
    eprintln!("$ {shown}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    let stdout = child.stdout.take().context("the command's stdout")?;
    for text in BufReader::new(stdout).lines() {
        // A line that is not UTF-8 is still shown, just not handed on.
        match text {
            Ok(text) => {
                println!("{text}");
                line(&text);
            }
            Err(err) if err.kind() == std::io::ErrorKind::InvalidData => {}
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err).with_context(|| format!("reading the output of `{shown}`"));
            }
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its stdout when it exits 0, `None` when it
/// cannot start or fails: for probing whether a tool is present.
pub fn probe(cmd: &mut Command) -> Option<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_what_a_shell_would_split() {
        let mut cmd = Command::new("cargo");
        cmd.args(["build", "--config", "profile.x.debug=\"full\"", "it's"])
            .env("A", "b c");
        assert_eq!(
            display(&cmd),
            r#"A='b c' cargo build --config 'profile.x.debug="full"' 'it'\''s'"#
        );
        assert_eq!(
            quote("--cfg\x1fsimpler_nostd"),
            r"$'--cfg\x1fsimpler_nostd'"
        );
    }

    #[test]
    fn run_lines_hands_on_every_line_and_reports_failure() {
        let mut seen = Vec::new();
        run_lines(Command::new("printf").arg("a\\nb\\n"), |l| {
            seen.push(l.to_string())
        })
        .unwrap();
        assert_eq!(seen, ["a", "b"]);
        let err = run_lines(Command::new("sh").args(["-c", "echo x; exit 3"]), |_| {}).unwrap_err();
        assert!(err.to_string().contains("failed"), "{err}");
    }

    #[test]
    fn run_reports_failure_and_probe_returns_none() {
        let err = run(&mut Command::new("false")).unwrap_err();
        assert!(err.to_string().contains("`false` failed"), "{err}");
        assert_eq!(probe(&mut Command::new("false")), None);
        assert_eq!(
            probe(Command::new("echo").arg("hi")).as_deref(),
            Some("hi\n")
        );
    }
}
