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
