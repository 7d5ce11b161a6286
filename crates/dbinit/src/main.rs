//! `dbinit`: the init container. All logic lives in dbinit-core.

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    dbinit_core::cli::Cli::parse_and_run().await.into()
}
