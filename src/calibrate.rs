//! `sessiongate hash calibrate`: pick Argon2id parameters that cost about a target time here.

use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, Version};

/// Keep OWASP's memory (19 MiB) and raise the iterations until one hash takes `target`.
pub fn calibrate(target: Duration) -> (u32, u32, Duration) {
    let memory_kib = 19_456;
    let mut best = (memory_kib, 2, Duration::ZERO);
    for iterations in 2..=64 {
        let params = Params::new(memory_kib, iterations, 1, None).expect("valid params");
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut out = [0u8; 32];
        // Median of three runs: the machine may be busy.
        let mut times = [Duration::ZERO; 3];
        for t in &mut times {
            let s = Instant::now();
            argon.hash_password_into(b"calibration password", b"calibration salt", &mut out).expect("hash");
            *t = s.elapsed();
        }
        times.sort();
        best = (memory_kib, iterations, times[1]);
        if times[1] >= target {
            break;
        }
    }
    best
}
