//! `shenfen-server`: the real server's entry point (the same code as the `shenfen` binary),
//! built in this package so the end-to-end tests get its path from cargo.

fn main() -> std::process::ExitCode {
    shenfen_api::cli::main()
}
