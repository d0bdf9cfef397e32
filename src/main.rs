//! `cortex`: the reference binary. It parses flags, environment and defaults, opens the plugins
//! they name, and hands the work to the library crates. No ledger logic lives here.

#![forbid(unsafe_code)]

mod anchoring;
mod commands;
mod config;
mod config_file;
mod output;
mod plugins;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use config::Settings;
use cortex_core::{Error, ErrorKind, HashAlgorithm};
use std::path::PathBuf;
use std::process::ExitCode;

/// CORTEX: a tamper-evident audit ledger with signed C2SP checkpoints.
#[derive(Parser, Debug)]
#[command(name = "cortex", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// Database URL or path (sqlite:///path/cortex.db or a plain path).
    #[arg(long, global = true, env = "CORTEX_DB")]
    db: Option<String>,
    /// Directory for the default database and keys.
    #[arg(long, global = true, env = "CORTEX_HOME")]
    home: Option<PathBuf>,
    /// Hash algorithm for a new ledger (sha256, blake3); must match an existing one.
    #[arg(long, global = true, env = "CORTEX_HASHER")]
    hasher: Option<String>,
    /// Checkpoint signing key (an Ed25519 note key file).
    #[arg(long, global = true, env = "CORTEX_SIGNING_KEY")]
    key: Option<PathBuf>,
    /// Print machine-readable JSON instead of human output.
    #[arg(long, global = true)]
    json: bool,
    /// Who is writing: recorded as the author of every memory entry this command appends.
    #[arg(long, global = true, env = "CORTEX_AGENT")]
    agent: Option<String>,
    /// Ledger policy file: the keys that must sign each checkpoint (with the tree sizes each is
    /// valid for) and the anchors that must hold its receipts. Default: HOME/policy.txt if it
    /// exists.
    #[arg(long, global = true, env = "CORTEX_POLICY")]
    policy: Option<PathBuf>,
    /// Another checkpoint signer beside the note key, KIND:PATH (ed25519:…, ssh:…,
    /// sigstore:…); repeatable.
    #[arg(long, global = true, env = "CORTEX_SIGNERS", value_delimiter = ',')]
    signer: Vec<String>,
    /// An anchor to submit checkpoints to, KIND+URL, declared in the policy (default: all the
    /// policy's anchors); repeatable.
    #[arg(long, global = true, env = "CORTEX_ANCHORS", value_delimiter = ',')]
    anchor: Vec<String>,
    /// Configuration file (TOML). Default: HOME/config.toml if it exists. A flag beats its
    /// environment variable, which beats the file, which beats the default.
    #[arg(long, global = true, env = "CORTEX_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create or upgrade the database schema.
    Migrate,
    /// Append entries, make checkpoints, verify, export and prove.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Manage checkpoint signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Measure the ledger against the product's performance bars.
    Benchmark(commands::bench::BenchArgs),
    /// Run the whole flow on a fresh ledger: append, checkpoint, verify, prove, export.
    Demo(commands::demo::DemoArgs),
    /// Store a fact in the agent memory (or a batch of JSON Lines facts from stdin).
    Store(commands::memory::StoreArgs),
    /// Ranked search of the facts: keyword (BM25), semantic or hybrid.
    Search(commands::memory::SearchArgs),
    /// A project's current facts, by consensus then recency.
    Recall(commands::memory::RecallArgs),
    /// Vote +1 or -1 on a fact (reputation-weighted consensus).
    Vote(commands::memory::VoteArgs),
    /// Deprecate a fact: it leaves recall and search but stays in the history.
    Deprecate(commands::memory::DeprecateArgs),
    /// A fact's ledger entries and votes, or all facts of a project.
    History(commands::memory::HistoryArgs),
    /// Erase a fact's content for good (the right to be forgotten); every proof stays valid.
    Forget(commands::memory::ForgetArgs),
    /// Maintain the agent memory.
    #[command(subcommand)]
    Memory(MemoryCommand),
    /// The local embedding model for semantic and hybrid search.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Serve the ledger over the Model Context Protocol.
    #[command(subcommand)]
    Mcp(McpCommand),
    /// Act as a C2SP tlog-witness for other logs.
    #[command(subcommand)]
    Witness(WitnessCommand),
    /// Publish the ledger as a read-only tlog-tiles log.
    #[command(subcommand)]
    Tiles(TilesCommand),
    /// Serve the REST API, MCP over HTTP and the operational endpoints on one port, behind API
    /// keys.
    Serve(commands::serve::ServeArgs),
    /// The effective configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Print every effective setting and where it came from (flag, env, file, default),
    /// passwords hidden.
    Show,
}

#[derive(Subcommand, Debug)]
enum WitnessCommand {
    /// Serve add-checkpoint: cosign the known logs' checkpoints that extend the last one seen
    /// (key: --witness-key or HOME/witness.skey; state: --state or HOME/witness.db).
    Serve(commands::witness::ServeArgs),
}

#[derive(Subcommand, Debug)]
enum MemoryCommand {
    /// Recompute the memory tables from the ledger (the source of truth), in one transaction.
    Rebuild(commands::memory::RebuildArgs),
}

#[derive(Subcommand, Debug)]
enum ModelsCommand {
    /// Install all-MiniLM-L6-v2 under HOME/models/, checking each file's pinned SHA-256.
    Install(commands::models::InstallArgs),
    /// Whether a model is installed and its files intact.
    Status,
}

#[derive(Subcommand, Debug)]
enum McpCommand {
    /// Start an MCP server (stdio, Streamable HTTP, legacy SSE or WebSocket).
    Start(commands::mcp::StartArgs),
}

#[derive(Subcommand, Debug)]
enum TilesCommand {
    /// Serve /checkpoint, /tile/L/N and /tile/entries/N for the latest checkpoint.
    Serve(commands::tiles::ServeArgs),
}

#[derive(Subcommand, Debug)]
enum LedgerCommand {
    /// Append one entry from flags, or a batch of JSON Lines from stdin.
    Append(commands::ledger::AppendArgs),
    /// Sign a checkpoint of the whole ledger (or keep signing every --interval seconds).
    Checkpoint(commands::ledger::CheckpointArgs),
    /// Verify every entry, the chain, the Merkle tiles and every checkpoint.
    Verify(commands::ledger::VerifyArgs),
    /// Export entries with the signed checkpoint and what is needed to recompute its root.
    Export(commands::ledger::ExportArgs),
    /// Verify an export or a tlog-proof file offline with the log's verifier key.
    VerifyExternal(commands::ledger::VerifyExternalArgs),
    /// Write a c2sp.org/tlog-proof@v1 inclusion proof for one entry.
    Proof(commands::ledger::ProofArgs),
    /// Submit the newest checkpoint to every anchor that holds no receipt for it, now.
    Anchor,
    /// Show the ledger head, latest checkpoint and anchors.
    Status,
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Generate a checkpoint signing key (Ed25519 note key, SSH or Sigstore) and its public key.
    Generate(KeysGenerate),
    /// Manage the API keys of `cortex serve` (stored hashed in the ledger's database).
    #[command(subcommand)]
    Api(ApiKeysCommand),
}

#[derive(Subcommand, Debug)]
enum ApiKeysCommand {
    /// Create a key; its token is printed once.
    Create {
        /// The identity the key acts as: the author of what it writes, the voter of its votes.
        #[arg(long)]
        name: String,
        /// read, write or admin.
        #[arg(long, default_value = "read")]
        role: String,
    },
    /// List the keys (never their tokens).
    List,
    /// Revoke a key by its id (or its token).
    Revoke {
        /// The key's id (12 hex digits).
        id: String,
    },
}

#[derive(Args, Debug)]
struct KeysGenerate {
    /// Key type: ed25519 (the ledger's note key), ssh (an SSHSIG signer) or sigstore.
    #[arg(long = "type", default_value = "ed25519")]
    kind: String,
    /// For --type ssh: ed25519 (default), ecdsa-p256 or ecdsa-p384; for --type sigstore:
    /// ecdsa-p256 (default) or ed25519.
    #[arg(long)]
    algorithm: Option<String>,
    /// Key name; for a ledger key this is the checkpoint origin (e.g. example.com/audit).
    #[arg(long)]
    name: Option<String>,
    /// Where to write the secret key (the .vkey goes beside it).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace an existing key file.
    #[arg(long)]
    force: bool,
}

fn settings(cli: &Cli) -> Result<Settings, Error> {
    let home = cli.home.clone().unwrap_or_else(Settings::default_home);
    let db = cli
        .db
        .clone()
        .unwrap_or_else(|| home.join("cortex.db").display().to_string());
    let hasher = cli
        .hasher
        .as_deref()
        .map(HashAlgorithm::parse)
        .transpose()?;
    let (key, key_explicit) = match &cli.key {
        Some(k) => (k.clone(), true),
        None => (Settings::default_key(&home), false),
    };
    Ok(Settings {
        db,
        hasher,
        key,
        key_explicit,
        json: cli.json,
        agent: cli.agent.clone(),
        home,
        policy: cli.policy.clone(),
        signers: cli.signer.clone(),
        anchors: cli.anchor.clone(),
    })
}

/// Exit codes: 0 ok, 1 integrity violation, 2 bad usage or input, 3 the operation failed.
fn exit_code(e: &Error) -> u8 {
    match e.kind() {
        ErrorKind::Integrity => 1,
        ErrorKind::InvalidInput
        | ErrorKind::Config
        | ErrorKind::NotFound
        | ErrorKind::Unsupported
        | ErrorKind::Unauthorized
        | ErrorKind::Forbidden => 2,
        _ => 3,
    }
}

/// Fills every setting that no flag or environment variable gave from the config file.
fn apply_file(
    cli: &mut Cli,
    m: &clap::ArgMatches,
    f: &config_file::ConfigFile,
) -> Result<(), Error> {
    use config_file::given;
    if given(m, "db").is_none() && f.db.is_some() {
        cli.db = f.db.clone();
    }
    if given(m, "hasher").is_none() && f.hasher.is_some() {
        cli.hasher = f.hasher.clone();
    }
    if given(m, "key").is_none() && f.key.is_some() {
        cli.key = f.key.clone();
    }
    if given(m, "agent").is_none() && f.agent.is_some() {
        cli.agent = f.agent.clone();
    }
    if given(m, "policy").is_none() && f.policy.is_some() {
        cli.policy = f.policy.clone();
    }
    if given(m, "signer").is_none()
        && let Some(v) = &f.signers
    {
        cli.signer = v.clone();
    }
    if given(m, "anchor").is_none()
        && let Some(v) = &f.anchors
    {
        cli.anchor = v.clone();
    }
    if let Command::Serve(a) = &mut cli.command
        && let (Some(sm), Some(sf)) = (m.subcommand_matches("serve"), &f.serve)
    {
        a.apply_file(sf, sm)?;
    }
    Ok(())
}

/// Parses the command line, reads the config file and applies it under flags and environment.
fn parse() -> Result<
    (
        Cli,
        clap::ArgMatches,
        Option<PathBuf>,
        config_file::ConfigFile,
    ),
    Error,
> {
    let m = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&m).unwrap_or_else(|e| e.exit());
    let home = cli.home.clone().unwrap_or_else(Settings::default_home);
    let (path, file) = config_file::ConfigFile::load(cli.config.as_deref(), &home)?;
    apply_file(&mut cli, &m, &file)?;
    Ok((cli, m, path, file))
}

fn main() -> ExitCode {
    let (cli, matches, config_path, file) = match parse() {
        Ok(p) => p,
        Err(e) => {
            output::error(std::env::args().any(|a| a == "--json"), &e);
            return ExitCode::from(exit_code(&e));
        }
    };
    let json = cli.json;
    let result = settings(&cli).and_then(|s| match cli.command {
        Command::Config(ConfigCommand::Show) => {
            commands::config::show(&s, &matches, config_path.as_deref(), &file)
        }
        Command::Migrate => commands::ledger::migrate(&s),
        Command::Ledger(LedgerCommand::Append(a)) => commands::ledger::append(&s, a),
        Command::Ledger(LedgerCommand::Checkpoint(a)) => commands::ledger::checkpoint(&s, a),
        Command::Ledger(LedgerCommand::Verify(a)) => commands::ledger::verify(&s, a),
        Command::Ledger(LedgerCommand::Export(a)) => commands::ledger::export(&s, a),
        Command::Ledger(LedgerCommand::VerifyExternal(a)) => {
            commands::ledger::verify_external(&s, a)
        }
        Command::Ledger(LedgerCommand::Proof(a)) => commands::ledger::proof(&s, a),
        Command::Ledger(LedgerCommand::Status) => commands::ledger::status(&s),
        Command::Ledger(LedgerCommand::Anchor) => commands::ledger::anchor(&s),
        Command::Keys(KeysCommand::Generate(k)) => commands::keys::generate(
            &s,
            commands::keys::KeySpec {
                kind: k.kind,
                algorithm: k.algorithm,
                name: k.name,
                out: k.out,
                force: k.force,
            },
        ),
        Command::Keys(KeysCommand::Api(ApiKeysCommand::Create { name, role })) => {
            commands::keys::api_create(&s, &name, &role)
        }
        Command::Keys(KeysCommand::Api(ApiKeysCommand::List)) => commands::keys::api_list(&s),
        Command::Keys(KeysCommand::Api(ApiKeysCommand::Revoke { id })) => {
            commands::keys::api_revoke(&s, &id)
        }
        Command::Serve(a) => commands::serve::serve(&s, a),
        Command::Benchmark(a) => commands::bench::run(&s, a),
        Command::Demo(a) => commands::demo::run(&s, a),
        Command::Store(a) => commands::memory::store(&s, a),
        Command::Search(a) => commands::memory::search(&s, a),
        Command::Recall(a) => commands::memory::recall(&s, a),
        Command::Vote(a) => commands::memory::vote(&s, a),
        Command::Deprecate(a) => commands::memory::deprecate(&s, a),
        Command::History(a) => commands::memory::history(&s, a),
        Command::Forget(a) => commands::memory::forget(&s, a),
        Command::Memory(MemoryCommand::Rebuild(a)) => commands::memory::rebuild(&s, a),
        Command::Models(ModelsCommand::Install(a)) => commands::models::install(&s, a),
        Command::Models(ModelsCommand::Status) => commands::models::status(&s),
        Command::Mcp(McpCommand::Start(a)) => commands::mcp::start(&s, a),
        Command::Witness(WitnessCommand::Serve(a)) => commands::witness::serve(json, &s.home, a),
        Command::Tiles(TilesCommand::Serve(a)) => commands::tiles::serve(&s, a),
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            output::error(json, &e);
            ExitCode::from(exit_code(&e))
        }
    }
}
