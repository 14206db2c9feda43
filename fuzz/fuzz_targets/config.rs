//! The configuration, TOML text to validated `Config`: loading never panics, whatever the text
//! (syntax errors, wrong types, spans at odd offsets, secrets written inline, non-UTF-8 bytes),
//! and every error message can be printed.

#![no_main]

use dane_roll::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let loaded = match std::str::from_utf8(data) {
        Ok(text) => Config::from_str_named(text, "fuzz.toml"),
        // Bytes that are not UTF-8 only reach `Config::load`, through a file.
        Err(_) => {
            let path = scratch();
            std::fs::write(&path, data).expect("write the scratch file");
            Config::load(&path)
        }
    };
    match loaded {
        Ok(config) => {
            let _ = format!("{config:?}");
            for problem in &config.warnings {
                let _ = problem.to_string();
            }
            for service in &config.services {
                let _ = service.owner_names();
                let _ = config.provider_for(service);
                let _ = service.matches_lineage(&service.name);
                let _ = config.services_for_domains(&service.domains);
            }
        }
        Err(err) => {
            let _ = err.to_string();
            for problem in err.problems() {
                let _ = problem.to_string();
            }
        }
    }
});

/// One scratch file per fuzzing process.
fn scratch() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("dane-roll-fuzz-config-{}.toml", std::process::id()))
}
