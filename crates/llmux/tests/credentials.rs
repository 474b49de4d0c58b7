//! `llmux credentials encrypt|decrypt|rotate` as a user runs it: the built binary in a temporary
//! directory with only the variables each step needs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// The same kind of key in base64, as `openssl rand -base64 32` prints it.
const NEW_KEY: &str = "8PHy8/T19vf4+fr7/P3+/wABAgMEBQYHCAkKCwwNDg8=";
const OPENAI: &str = "sk-proj-PLAINTEXT-openai-0001";
const ANTHROPIC: &str = "sk-ant-PLAINTEXT-anthropic-0002";

const CONFIG: &str = "\
# Production gateway. Keys are encrypted with `llmux credentials encrypt`.
credentials:
  - platform: openai            # main account
    value: sk-proj-PLAINTEXT-openai-0001
    name: openai-main
  - platform: anthropic
    value: \"sk-ant-PLAINTEXT-anthropic-0002\"   # quoted
  - platform: openai
    name: openai-backup
    value: ${OPENAI_BACKUP_KEY}   # from the environment, not a secret in the file
models:
  - vendor: openai
    model: gpt-4o-mini
  - vendor: anthropic
    model: claude-sonnet-4-5
";

/// A fresh directory (removed afterwards) to run the binary in.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        Self(common::temp_dir(&format!("credentials-{name}")))
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.0.join(name)).unwrap()
    }

    /// Runs the binary here with exactly `env` (plus PATH-free defaults) and `stdin`.
    fn run(&self, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_llmux"))
            .args(args)
            .current_dir(&self.0)
            .env_clear()
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("llmux runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// `llmux credentials encrypt <file>` with [`KEY`].
    fn encrypt(&self, file: &str) -> Output {
        self.run(
            &["credentials", "encrypt", file],
            &[("LLMUX_SECRET_KEY", KEY)],
            "",
        )
    }

    /// `llmux credentials decrypt <file>` with `key`.
    fn decrypt(&self, file: &str, key: &str) -> Output {
        self.run(
            &["credentials", "decrypt", file],
            &[("LLMUX_SECRET_KEY", key)],
            "",
        )
    }

    /// `llmux check` with `env`.
    fn check(&self, env: &[(&str, &str)]) -> Output {
        self.run(&["check"], env, "")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

#[track_caller]
fn assert_failure(output: &Output) {
    assert!(
        !output.status.success(),
        "expected failure\nstdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
}

fn key_id(key: &str) -> String {
    llmux_auth::SecretKey::parse(key).unwrap().id().to_string()
}

/// The sealed values in `text`, in order.
fn sealed_values(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .filter(|word| word.starts_with("llmux:v1:"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn encrypt_seals_a_yaml_config_in_place_and_check_needs_the_key() {
    let dir = TempDir::new("yaml");
    dir.write("llmux.yaml", CONFIG);

    let output = dir.encrypt("llmux.yaml");
    assert_success(&output);
    assert_eq!(
        stderr(&output).trim(),
        format!(
            "llmux.yaml: encrypted 2 values with key id {}; 1 value using ${{VAR}} left as is",
            key_id(KEY)
        )
    );

    let encrypted = dir.read("llmux.yaml");
    assert!(
        !encrypted.contains(OPENAI) && !encrypted.contains(ANTHROPIC),
        "{encrypted}"
    );
    let sealed = sealed_values(&encrypted);
    assert_eq!(sealed.len(), 2, "{encrypted}");
    for value in &sealed {
        assert!(value.starts_with(&format!("llmux:v1:{}:", key_id(KEY))));
    }
    // Every other line is exactly as it was: comments, quoting, the ${VAR} reference.
    for (before, after) in CONFIG.lines().zip(encrypted.lines()) {
        if before.contains("PLAINTEXT") {
            assert_eq!(
                before.split("value:").next(),
                after.split("value:").next(),
                "{after}"
            );
        } else {
            assert_eq!(before, after);
        }
    }
    assert!(encrypted.contains("    value: \"llmux:v1:"));
    assert!(encrypted.contains("\"   # quoted\n"));
    assert!(encrypted.contains("    value: ${OPENAI_BACKUP_KEY}   # from the environment"));
    assert_eq!(encrypted.lines().count(), CONFIG.lines().count());

    // With the key, the config loads.
    let output = dir.check(&[
        ("LLMUX_SECRET_KEY", KEY),
        ("OPENAI_BACKUP_KEY", "sk-backup"),
    ]);
    assert_success(&output);
    assert!(
        stdout(&output).contains("openai-main"),
        "{}",
        stdout(&output)
    );

    // Without it, a clear startup error naming the value, and no secret anywhere.
    let output = dir.check(&[("OPENAI_BACKUP_KEY", "sk-backup")]);
    assert_failure(&output);
    let errors = stderr(&output);
    assert!(
        errors.contains(
            "config error: credentials[0].value: is encrypted but LLMUX_SECRET_KEY is not set"
        ),
        "{errors}"
    );
    assert!(
        errors.contains(
            "config error: credentials[1].value: is encrypted but LLMUX_SECRET_KEY is not set"
        ),
        "{errors}"
    );

    // With another key, a clear error with the key ids.
    let output = dir.check(&[
        ("LLMUX_SECRET_KEY", NEW_KEY),
        ("OPENAI_BACKUP_KEY", "sk-backup"),
    ]);
    assert_failure(&output);
    let errors = stderr(&output);
    assert!(
        errors.contains(&format!(
            "credentials[0].value: cannot be decrypted with the configured LLMUX_SECRET_KEY (key id {} sealed it",
            key_id(KEY)
        )),
        "{errors}"
    );
    for text in [&errors, &stdout(&output)] {
        for secret in [OPENAI, ANTHROPIC, KEY, NEW_KEY] {
            assert!(!text.contains(secret), "{text}");
        }
    }

    // Encrypting again changes nothing.
    let output = dir.encrypt("llmux.yaml");
    assert_success(&output);
    assert_eq!(dir.read("llmux.yaml"), encrypted);
}

#[test]
fn decrypt_prints_the_plaintext_and_leaves_the_file_alone() {
    let dir = TempDir::new("decrypt");
    dir.write("llmux.yaml", CONFIG);
    assert_success(&dir.encrypt("llmux.yaml"));
    let encrypted = dir.read("llmux.yaml");

    let output = dir.decrypt("llmux.yaml", KEY);
    assert_success(&output);
    // Values come back in the quoting they were written in, so the text is the original.
    assert_eq!(stdout(&output), CONFIG);
    assert_eq!(dir.read("llmux.yaml"), encrypted);

    let output = dir.run(&["credentials", "decrypt", "llmux.yaml"], &[], "");
    assert_failure(&output);
    assert_eq!(
        stderr(&output).trim(),
        "error: cannot decrypt llmux.yaml: LLMUX_SECRET_KEY is not set"
    );
    assert!(stdout(&output).is_empty());
}

#[test]
fn encrypt_value_seals_one_secret_from_stdin() {
    let dir = TempDir::new("value");
    let output = dir.run(
        &["credentials", "encrypt", "--value"],
        &[("LLMUX_SECRET_KEY", KEY)],
        &format!("{OPENAI}\n"),
    );
    assert_success(&output);
    let sealed = stdout(&output);
    assert!(sealed.ends_with('\n'));
    let sealed = sealed.trim_end();
    assert!(
        sealed.starts_with(&format!("llmux:v1:{}:", key_id(KEY))),
        "{sealed}"
    );
    assert!(!sealed.contains(OPENAI));

    // Pasted into a JSON config, it loads.
    dir.write(
        "llmux.json",
        &format!(
            r#"{{"credentials": [{{"platform": "openai", "value": "{sealed}"}}],
                "models": [{{"vendor": "openai", "model": "gpt-4o"}}]}}"#
        ),
    );
    assert_success(&dir.check(&[("LLMUX_SECRET_KEY", KEY)]));
    let output = dir.decrypt("llmux.json", KEY);
    assert_success(&output);
    assert!(stdout(&output).contains(&format!(r#""value": "{OPENAI}""#)));

    // Nothing on stdin, or no key: clear errors.
    let output = dir.run(
        &["credentials", "encrypt", "--value"],
        &[("LLMUX_SECRET_KEY", KEY)],
        "  \n",
    );
    assert_failure(&output);
    assert!(
        stderr(&output).contains("no secret on stdin"),
        "{}",
        stderr(&output)
    );
    let output = dir.run(&["credentials", "encrypt", "--value"], &[], OPENAI);
    assert_failure(&output);
    assert_eq!(stderr(&output).trim(), "error: LLMUX_SECRET_KEY is not set");
}

#[test]
fn rotate_reseals_every_value_under_the_new_key() {
    let dir = TempDir::new("rotate");
    dir.write("llmux.yaml", CONFIG);
    assert_success(&dir.encrypt("llmux.yaml"));
    let before = dir.read("llmux.yaml");

    let rotation = [
        ("LLMUX_SECRET_KEY", NEW_KEY),
        ("LLMUX_SECRET_KEY_PREVIOUS", KEY),
    ];
    // During the rotation both keys load the old file.
    assert_success(&dir.check(&[rotation[0], rotation[1], ("OPENAI_BACKUP_KEY", "x")]));
    let output = dir.run(&["credentials", "rotate", "llmux.yaml"], &rotation, "");
    assert_success(&output);
    assert_eq!(
        stderr(&output).trim(),
        format!(
            "llmux.yaml: re-encrypted 2 values with key id {}; 1 value using ${{VAR}} left as is",
            key_id(NEW_KEY)
        )
    );
    let after = dir.read("llmux.yaml");
    let sealed = sealed_values(&after);
    assert_eq!(sealed.len(), 2);
    for value in &sealed {
        assert!(
            value.starts_with(&format!("llmux:v1:{}:", key_id(NEW_KEY))),
            "{value}"
        );
    }
    assert_eq!(
        before
            .lines()
            .filter(|l| !l.contains("llmux:v1:"))
            .collect::<Vec<_>>(),
        after
            .lines()
            .filter(|l| !l.contains("llmux:v1:"))
            .collect::<Vec<_>>()
    );

    // The new key alone now loads it; the old key alone no longer does.
    assert_success(&dir.check(&[("LLMUX_SECRET_KEY", NEW_KEY), ("OPENAI_BACKUP_KEY", "x")]));
    let output = dir.check(&[("LLMUX_SECRET_KEY", KEY), ("OPENAI_BACKUP_KEY", "x")]);
    assert_failure(&output);
    assert!(
        stderr(&output).contains(&format!("(key id {} sealed it", key_id(NEW_KEY))),
        "{}",
        stderr(&output)
    );
    let output = dir.decrypt("llmux.yaml", NEW_KEY);
    assert_success(&output);
    assert_eq!(stdout(&output), CONFIG);
}

#[test]
fn files_that_cannot_be_rewritten_safely_are_refused_and_left_unchanged() {
    let dir = TempDir::new("refuse");
    let flow = "credentials: [{platform: openai, value: sk-flow-secret-0001}]\nmodels: [{vendor: openai, model: gpt-4o}]\n";
    dir.write("llmux.yaml", flow);
    let output = dir.encrypt("llmux.yaml");
    assert_failure(&output);
    let message = stderr(&output);
    assert!(
        message.starts_with(
            "error: cannot encrypt llmux.yaml: credentials[0].value cannot be rewritten safely: it is not written as `value: …` on a line of its own"
        ),
        "{message}"
    );
    assert!(
        message.trim_end().ends_with("the file was not changed"),
        "{message}"
    );
    assert!(!message.contains("sk-flow"));
    assert_eq!(dir.read("llmux.yaml"), flow);

    // No key: refused before anything is written.
    dir.write("llmux.yaml", CONFIG);
    let output = dir.run(&["credentials", "encrypt", "llmux.yaml"], &[], "");
    assert_failure(&output);
    assert_eq!(
        stderr(&output).trim(),
        "error: cannot encrypt llmux.yaml: LLMUX_SECRET_KEY is not set; the file was not changed"
    );
    assert_eq!(dir.read("llmux.yaml"), CONFIG);

    // A malformed key is named, never shown.
    let output = dir.run(
        &["credentials", "encrypt", "llmux.yaml"],
        &[("LLMUX_SECRET_KEY", "hunter2")],
        "",
    );
    assert_failure(&output);
    assert!(
        stderr(&output).contains(
            "LLMUX_SECRET_KEY must be 32 bytes written as 64 hex characters or as base64"
        ),
        "{}",
        stderr(&output)
    );
    assert!(!stderr(&output).contains("hunter2"));

    // A missing file.
    let output = dir.encrypt("nope.yaml");
    assert_failure(&output);
    assert!(stderr(&output).contains("cannot read nope.yaml"));
}

#[test]
fn seed_credentials_json_and_toml_are_encrypted_too() {
    let dir = TempDir::new("seed-toml");
    std::fs::create_dir_all(dir.0.join("configs")).unwrap();
    let seed =
        format!("[{{\"platform\":\"openai\",\"type\":\"api-key\",\"value\":\"{OPENAI}\"}}]\n");
    dir.write("configs/credentials.json", &seed);
    dir.write(
        "configs/models.json",
        r#"[{"vendor":"openai","model":"gpt-4o"}]"#,
    );
    assert_success(&dir.encrypt("configs/credentials.json"));
    let encrypted = dir.read("configs/credentials.json");
    assert!(
        encrypted
            .starts_with("[{\"platform\":\"openai\",\"type\":\"api-key\",\"value\":\"llmux:v1:")
    );
    assert!(!encrypted.contains(OPENAI));
    assert_success(&dir.check(&[("LLMUX_SECRET_KEY", KEY)]));

    let toml = format!(
        "# toml config\n[[credentials]]\nplatform = \"openai\"\nvalue = \"{OPENAI}\"  # key\n\n[[models]]\nvendor = \"openai\"\nmodel = \"gpt-4o\"\n"
    );
    dir.write("llmux.toml", &toml);
    assert_success(&dir.encrypt("llmux.toml"));
    let encrypted = dir.read("llmux.toml");
    assert!(
        encrypted.starts_with(
            "# toml config\n[[credentials]]\nplatform = \"openai\"\nvalue = \"llmux:v1:"
        )
    );
    assert!(encrypted.contains("\"  # key\n"));
    assert_success(&dir.run(
        &["check", "--config", "llmux.toml"],
        &[("LLMUX_SECRET_KEY", KEY)],
        "",
    ));
}
