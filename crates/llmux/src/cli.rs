//! Command-line definitions only; `main.rs` wires them.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// llmux: one LLM API over many vendors, credentials and models.
#[derive(Debug, Parser)]
#[command(name = "llmux", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve {
        #[command(flatten)]
        config: ConfigArgs,
        /// Address to listen on (default: config `listen`, else 0.0.0.0:$PORT, PORT defaulting to 8082).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Validate a config and print its combination table.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Encrypt, decrypt or re-key credential values (AES-256-GCM, key in LLMUX_SECRET_KEY).
    Credentials {
        #[command(subcommand)]
        action: CredentialsAction,
    },
    /// Manage virtual client keys in the `auth.database` of the config.
    Keys {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Exit 0 when a gateway answers `GET /health` with 200 (a container health check: the
    /// minimal image has no curl).
    Health {
        /// The gateway's address.
        #[arg(long, default_value = "127.0.0.1:8082")]
        addr: SocketAddr,
    },
    /// Run the mock vendor server (OpenAI, Anthropic and Gemini wire formats).
    MockUpstream {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: SocketAddr,
        /// Content pieces per streamed answer.
        #[arg(long, default_value_t = 4)]
        chunks: usize,
        /// Delay before each response, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Delay between streamed events, in milliseconds.
        #[arg(long, default_value_t = 0)]
        chunk_delay_ms: u64,
    },
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Config file (YAML, JSON or TOML by extension).
    #[arg(long, conflicts_with_all = ["credentials", "models"])]
    pub config: Option<PathBuf>,
    /// The original router's credentials.json (with --models).
    #[arg(long, requires = "models")]
    pub credentials: Option<PathBuf>,
    /// The original router's models.json (with --credentials).
    #[arg(long, requires = "credentials")]
    pub models: Option<PathBuf>,
}

/// `llmux credentials …`. FILE is an llmux config (YAML, JSON or TOML by extension) or the
/// original router's credentials.json.
#[derive(Debug, Subcommand)]
pub enum CredentialsAction {
    /// Encrypt every plain credential value of FILE in place (comments and layout are kept;
    /// `${VAR}` references and values already encrypted are left alone).
    Encrypt {
        /// The file to rewrite.
        #[arg(required_unless_present = "value")]
        file: Option<PathBuf>,
        /// Instead: read one secret from stdin and print it encrypted, for pasting into a file.
        #[arg(long, conflicts_with = "file")]
        value: bool,
    },
    /// Print FILE with every credential value decrypted (the file itself is not changed).
    Decrypt {
        /// The file to read.
        file: PathBuf,
    },
    /// Re-encrypt under LLMUX_SECRET_KEY, in place, every value of FILE encrypted with a key
    /// from LLMUX_SECRET_KEY_PREVIOUS.
    Rotate {
        /// The file to rewrite.
        file: PathBuf,
    },
}

/// `llmux keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create a key; its plaintext is printed once.
    Create(KeyFields),
    /// List keys (never their secrets).
    List,
    /// Revoke a key at once.
    Revoke {
        /// The key's public id.
        id: String,
    },
    /// Change a key's limits (only the fields given).
    Update {
        /// The key's public id.
        id: String,
        #[command(flatten)]
        fields: KeyFields,
    },
    /// Show a key's usage per day and its spend.
    Usage {
        /// The key's public id.
        id: String,
    },
}

/// Limits and restrictions of a key.
#[derive(Debug, Args)]
pub struct KeyFields {
    /// A label.
    #[arg(long)]
    pub name: Option<String>,
    /// Days until the key expires.
    #[arg(long)]
    pub expires_in_days: Option<u32>,
    /// Models (names or aliases) the key may use, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub models: Option<Vec<String>>,
    /// Vendors the key may reach, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub vendors: Option<Vec<String>>,
    /// Requests per minute.
    #[arg(long)]
    pub rpm: Option<u32>,
    /// Tokens per minute.
    #[arg(long)]
    pub tpm: Option<u32>,
    /// Requests in flight at once.
    #[arg(long)]
    pub max_parallel: Option<u32>,
    /// USD per UTC day.
    #[arg(long)]
    pub budget_daily: Option<f64>,
    /// USD per UTC month.
    #[arg(long)]
    pub budget_monthly: Option<f64>,
    /// USD over the key's lifetime.
    #[arg(long)]
    pub budget_total: Option<f64>,
}
