fn main() -> std::process::ExitCode {
    mcp_cockpit::cli::main()
}
