//! Records the compiler version for `/version` (its `goVersion` field names our toolchain).

use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(1).map(String::from))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=TUG_RUSTC_VERSION=rustc{version}");
    println!("cargo:rerun-if-changed=build.rs");
    for var in ["TUG_GIT_COMMIT", "TUG_GIT_TREE_STATE", "TUG_BUILD_DATE"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
}
