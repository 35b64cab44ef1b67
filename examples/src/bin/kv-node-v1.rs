//! The key-value node process with the code of versions 1 to 1.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match upshift_examples::node_main::run(1).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
