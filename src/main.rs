fn main() -> std::process::ExitCode {
    mailcove::cli::main()
}
