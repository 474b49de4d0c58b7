//! `llmux credentials encrypt|decrypt|rotate`: reading and writing the files around
//! `llmux_auth::files`, which does the rewriting. Files are replaced atomically (a temporary
//! file next to the target, then a rename), and only when something changed.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, anyhow, bail};
use llmux_auth::files::{self, Layout, Outcome};
use llmux_auth::{Keyring, legacy};
use zeroize::Zeroizing;

use crate::cli::CredentialsAction;

/// Runs one `llmux credentials` action, reading variables through `env`.
pub fn run(
    action: &CredentialsAction,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<ExitCode> {
    match action {
        CredentialsAction::Encrypt {
            file: Some(file), ..
        } => encrypt_file(file, env),
        CredentialsAction::Encrypt { file: None, value } => {
            if !value {
                bail!("give a FILE to encrypt, or --value to encrypt one secret read from stdin");
            }
            encrypt_stdin(env)
        }
        CredentialsAction::Decrypt { file } => decrypt_file(file, env),
        CredentialsAction::Rotate { file } => rotate_file(file, env),
    }?;
    Ok(ExitCode::SUCCESS)
}

fn encrypt_file(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
    let name = path.display();
    let text = read(path)?;
    if legacy::looks_legacy(&text) {
        // The original router's whole-file encryption becomes a plain JSON list whose values
        // are sealed one by one, which the loader reads the same way.
        let plaintext = legacy::open_legacy(&text, env)
            .map_err(|e| anyhow!("cannot encrypt {name}: it {e}"))?;
        let outcome = files::encrypt(&plaintext, Layout::Seed, env)
            .map_err(|e| anyhow!("cannot encrypt {name}: {e}; the file was not changed"))?;
        write_atomically(path, &outcome.text)?;
        eprintln!(
            "{name}: converted from the original router's encrypted format to a JSON list; {}",
            summary(&outcome, "encrypted")
        );
        return Ok(());
    }
    let outcome = files::encrypt(&text, Layout::detect(path, &text), env)
        .map_err(|e| anyhow!("cannot encrypt {name}: {e}; the file was not changed"))?;
    if outcome.changed > 0 {
        write_atomically(path, &outcome.text)?;
    }
    eprintln!("{name}: {}", summary(&outcome, "encrypted"));
    Ok(())
}

fn encrypt_stdin(env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
    let ring = Keyring::from_env(env)?;
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Type or paste the secret, then press Enter and Ctrl-D:");
    }
    // Room up front, so reading does not leave reallocated copies of the secret behind.
    let mut input = Zeroizing::new(String::with_capacity(16 * 1024));
    stdin
        .read_to_string(&mut input)
        .context("cannot read the secret from stdin")?;
    let secret = input.trim();
    if secret.is_empty() {
        bail!(
            "no secret on stdin (pipe it in, for example: printf %s \"$KEY\" | llmux credentials encrypt --value)"
        );
    }
    let sealed = ring.seal(secret)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{sealed}")?;
    stdout.flush()?;
    Ok(())
}

fn decrypt_file(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
    let name = path.display();
    let text = read(path)?;
    let outcome = if legacy::looks_legacy(&text) {
        let plaintext = legacy::open_legacy(&text, env)
            .map_err(|e| anyhow!("cannot decrypt {name}: it {e}"))?;
        files::decrypt(&plaintext, Layout::Seed, env)
    } else {
        files::decrypt(&text, Layout::detect(path, &text), env)
    }
    .map_err(|e| anyhow!("cannot decrypt {name}: {e}"))?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(outcome.text.as_bytes())?;
    if !outcome.text.ends_with('\n') {
        stdout.write_all(b"\n")?;
    }
    stdout.flush()?;
    Ok(())
}

fn rotate_file(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
    let name = path.display();
    let text = read(path)?;
    if legacy::looks_legacy(&text) {
        bail!(
            "cannot rotate {name}: it is in the original router's encrypted format; run `llmux credentials encrypt {name}` first to convert it"
        );
    }
    let outcome = files::rotate(&text, Layout::detect(path, &text), env)
        .map_err(|e| anyhow!("cannot rotate {name}: {e}; the file was not changed"))?;
    if outcome.changed > 0 {
        write_atomically(path, &outcome.text)?;
    }
    eprintln!("{name}: {}", summary(&outcome, "re-encrypted"));
    Ok(())
}

/// One line saying what happened, for stderr.
fn summary(outcome: &Outcome, verb: &str) -> String {
    let mut line = match outcome.key_id {
        Some(id) if outcome.changed > 0 => {
            format!("{verb} {} with key id {id}", values(outcome.changed))
        }
        _ => format!("nothing to do ({verb} 0 values)"),
    };
    let mut notes = Vec::new();
    if outcome.sealed > 0 {
        let already = if verb == "encrypted" {
            "already encrypted"
        } else {
            "already under the current key"
        };
        notes.push(format!("{} {already}", values(outcome.sealed)));
    }
    if outcome.references > 0 {
        notes.push(format!(
            "{} using ${{VAR}} left as is",
            values(outcome.references)
        ));
    }
    if outcome.plain > 0 {
        notes.push(format!(
            "{} not encrypted (run `llmux credentials encrypt`)",
            values(outcome.plain)
        ));
    }
    if !notes.is_empty() {
        line.push_str(&format!("; {}", notes.join(", ")));
    }
    line
}

fn values(n: usize) -> String {
    if n == 1 {
        "1 value".to_owned()
    } else {
        format!("{n} values")
    }
}

fn read(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .with_context(|| format!("cannot read {}", path.display()))
}

/// Replaces the file at `path` (following symlinks to the real file) with `contents`: written
/// to a temporary file in the same directory with the same permissions, flushed to disk, then
/// renamed over the original, so a crash leaves either the old file or the new one.
fn write_atomically(path: &Path, contents: &str) -> anyhow::Result<()> {
    let target = std::fs::canonicalize(path)
        .with_context(|| format!("cannot resolve {}", path.display()))?;
    let dir = target
        .parent()
        .with_context(|| format!("{} has no parent directory", target.display()))?;
    let file_name = target
        .file_name()
        .with_context(|| format!("{} is not a file", target.display()))?
        .to_string_lossy();
    let temp: PathBuf = dir.join(format!(".{file_name}.llmux-{}.tmp", std::process::id()));
    let permissions = std::fs::metadata(&target)
        .with_context(|| format!("cannot read {}", target.display()))?
        .permissions();
    let written = (|| -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.set_permissions(permissions)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, &target)?;
        // Make the rename itself durable; not every platform can open a directory.
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written.with_context(|| format!("cannot write {}", path.display()))
}
