//! Services the project's own scripts install and start (Keystone, Swift): started once per
//! test process, skipped loudly on a laptop without them, required in CI.

use crate::db::services_required;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

/// Runs `scripts/<script> start`, then `env`, and returns what `env` printed as a map.
pub fn start(script: &str) -> Result<HashMap<String, String>, String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts").join(script);
    let out = Command::new(&path).arg("start").output().map_err(|e| format!("{}: {e}", path.display()))?;
    if !out.status.success() {
        return Err(format!("{script} start failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr)));
    }
    let env = Command::new(&path).arg("env").output().map_err(|e| format!("{script} env: {e}"))?;
    Ok(String::from_utf8_lossy(&env.stdout)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect())
}

/// The started service, or `None` after a loud message; a failure when services are required.
pub fn available<'a, T>(name: &str, started: &'a Result<T, String>) -> Option<&'a T> {
    match started {
        Ok(service) => Some(service),
        Err(e) if services_required() => panic!("{name} is required (GLANCE_TEST_REQUIRE_SERVICES): {e}"),
        Err(e) => {
            eprintln!("\n!!!!! SKIPPED: {name} could not start: {e}\n");
            None
        }
    }
}
