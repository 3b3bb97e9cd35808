//! The `strata` binary: parses the command line, sets up logging, and runs
//! the broker (`strata serve`).

mod alloc;
mod config;
mod metrics_endpoint;
mod process_metrics;
mod serve;
mod thread_priority;
mod wal_tools;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: alloc::LazyLargeAllocator = alloc::LazyLargeAllocator;

/// Strata: a Kafka-compatible streaming broker.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker (embedded defaults: data in ./strata-data, Kafka on
    /// 127.0.0.1:9092, HTTP on 127.0.0.1:9080).
    Serve(Box<config::ServeArgs>),
    /// Inspect, verify and repair the data files of a stopped broker.
    #[command(subcommand)]
    Wal(wal_tools::WalCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::main(&args),
        Command::Wal(command) => {
            if !wal_tools::run(&command)? {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
