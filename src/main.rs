// The binary's allocator (the library leaves the choice to its users): measured in bench/.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sessiongate::cli::main()
}
