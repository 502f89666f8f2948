//! glance-replicator: replicates images between glance installations over the v1 API.
//!
//!     glance-replicator <command> [options] [args]
//!
//! Commands: `size`, `dump`, `load`, `livecopy`, `compare`, `help <command>`.

fn main() -> std::process::ExitCode {
    glance_api::replicator::main()
}
