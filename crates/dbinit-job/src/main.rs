//! `dbinit-job`: the migration job. All logic lives in dbinit-k8s and dbinit-core.

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    dbinit_k8s::JobCli::parse_and_run().await.into()
}
