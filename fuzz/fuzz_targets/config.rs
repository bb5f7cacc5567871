//! Configuration parsing and validation (`config::load_str` + `Config::validate`): any TOML
//! (or garbage) gives a config or named problems, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(cfg) = sessiongate::config::load_str(text) else { return };
    match cfg.validate() {
        Ok(settings) => {
            assert!(settings.base_path.starts_with('/'));
            // The derived pieces build without panicking too.
            let _ = sessiongate::cookies::CookiePolicy::new(settings.cookies.clone()).csrf(&"a".repeat(32));
            let _ = sessiongate::cors::CorsPolicy::new(&settings.cors_origins, &settings.cors);
        }
        Err(problems) => assert!(!problems.is_empty()),
    }
});
