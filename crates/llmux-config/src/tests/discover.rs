//! `discover()` order, on a real temporary directory.

use std::path::{Path, PathBuf};

use super::env;
use crate::{Source, discover, load};

/// A unique directory under the system temp dir, removed on drop.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("llmux-config-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }

    pub(super) fn write(&self, relative: &str, contents: &str) -> PathBuf {
        let path = self.0.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn discovery_order() {
    let dir = TempDir::new("discover");
    let root = dir.path();
    assert_eq!(discover(root), Source::Demo);

    dir.write(
        "configs/credentials.json",
        r#"[{"platform":"openai","type":"api-key","value":"sk-abcdefgh"}]"#,
    );
    assert_eq!(discover(root), Source::Demo, "both seed files must exist");

    dir.write(
        "configs/models.json",
        r#"[{"vendor":"openai","model":"gpt-4o"}]"#,
    );
    let seed = Source::Seed {
        credentials: root.join("configs/credentials.json"),
        models: root.join("configs/models.json"),
    };
    assert_eq!(discover(root), seed);
    let config = load(&seed, &env(&[])).unwrap();
    assert_eq!(config.credentials[0].name, "openai-1");

    for name in ["llmux.toml", "llmux.json", "llmux.yml", "llmux.yaml"] {
        dir.write(name, "");
        assert_eq!(discover(root), Source::File(root.join(name)), "{name}");
    }
}

#[test]
fn a_directory_named_like_a_config_is_skipped() {
    let dir = TempDir::new("discover-dir");
    std::fs::create_dir_all(dir.path().join("llmux.yaml")).unwrap();
    dir.write("llmux.json", "{}");
    assert_eq!(
        discover(dir.path()),
        Source::File(dir.path().join("llmux.json"))
    );
}
