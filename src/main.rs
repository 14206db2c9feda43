//! The `dane-roll` binary: a thin front over the library; all logic lives in `dane_roll`.

fn main() -> std::process::ExitCode {
    dane_roll::run()
}
