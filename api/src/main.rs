//! The `shenfen` binary: see [`shenfen_api::cli`].

/// mimalloc: the server allocates many small, short-lived buffers per request (JSON values,
/// strings) across threads, where glibc's allocator spent about a tenth of the CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    shenfen_api::cli::main()
}
