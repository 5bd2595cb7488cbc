//! `socialcraft`: the SocialCraft server binary. Everything it does is in the library
//! (`server::cli`), where the integration tests reach it too.

/// The allocator: rendering pages allocates many short-lived strings, where mimalloc is much
/// faster than glibc's malloc under concurrency (measured in docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    server::cli::main()
}
