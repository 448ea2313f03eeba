//! Packs the binary's relocations in release builds made for this machine's own glibc.
//!
//! The loader reads all 33 k relocations of the position-independent binary at every start:
//! 0.8 MB of `.rela.dyn` in RSS. Packed (RELR, `-z pack-relative-relocs`) they take a few KB,
//! but only glibc 2.36 or later can load them, so only a build for this machine's own glibc, when
//! it is that new, packs them (the binary then says so: an older glibc refuses it with a clear
//! error). Only where the linker is known to be LLD: rustc's own default on
//! `x86_64-unknown-linux-gnu` since 1.90. Any linker chosen by the user (`RUSTC_LINKER`, linker
//! flags in RUSTFLAGS, maturin's zig), a cross build or an older rustc gets a plain link.

use std::{env, process::Command};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let wanted = var("PROFILE") == "release"
        && var("TARGET") == "x86_64-unknown-linux-gnu"
        && var("HOST") == var("TARGET")
        && var("RUSTC_LINKER").is_empty()
        && !var("CARGO_ENCODED_RUSTFLAGS").contains("link");
    if wanted && rustc_links_with_lld() && host_glibc().is_some_and(|v| v >= (2, 36)) {
        println!("cargo:rustc-link-arg-bin=runcomfy-mcp=-Wl,-z,pack-relative-relocs");
    }
}

/// This machine's glibc version, from `getconf GNU_LIBC_VERSION` ("glibc 2.36").
fn host_glibc() -> Option<(u32, u32)> {
    let output = Command::new("getconf").arg("GNU_LIBC_VERSION").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let (major, minor) = text.trim().strip_prefix("glibc ")?.split_once('.')?;
    Some((major.parse().ok()?, minor.split('.').next()?.parse().ok()?))
}

/// rustc 1.90 or later, whose x86_64 Linux default linker is its own LLD.
fn rustc_links_with_lld() -> bool {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(output) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let version = String::from_utf8_lossy(&output.stdout);
    let mut numbers = version
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .split(['.', '-'])
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    (major, minor) >= (1, 90)
}
