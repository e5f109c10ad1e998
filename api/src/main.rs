//! The `shenfen` binary: see [`shenfen_api::cli`].

fn main() -> std::process::ExitCode {
    shenfen_api::cli::main()
}
