//! Lays out the server's start-up code together in release builds on x86_64 Linux.
//!
//! The kernel maps an executable's code 64 KB around each page a process touches, so a start
//! that runs functions scattered over the whole text section keeps most of it resident: the idle
//! server's RSS was about 15 MB, 12.6 MB of it the binary's pages. `link/runcomfy-mcp.order`
//! (written by `benches/link_order.py`) lists the functions a start and a first call run, by
//! their mangled names; the linker puts them first. Those names carry hashes that change with
//! `cargo update` or a new toolchain; a name the build no longer has is skipped, so a stale list
//! costs memory, never a build (regenerate it then, as that script says).
//!
//! Only where the linker is known to be LLD, which reads that list: rustc's own default on
//! `x86_64-unknown-linux-gnu` since 1.90. Any linker chosen by the user (`RUSTC_LINKER`, linker
//! flags in RUSTFLAGS, maturin's zig) or an older rustc gets a plain link, as does
//! `RUNCOMFY_LINK_ORDER=0`. The same builds, when made for this machine's own glibc 2.36 or
//! later, also pack their relocations (see the end of `main`).

use std::{env, path::Path, process::Command};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link/runcomfy-mcp.order");
    println!("cargo:rerun-if-env-changed=RUNCOMFY_LINK_ORDER");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let wanted = var("RUNCOMFY_LINK_ORDER") != "0"
        && var("PROFILE") == "release"
        && var("TARGET") == "x86_64-unknown-linux-gnu"
        && var("RUSTC_LINKER").is_empty()
        && !var("CARGO_ENCODED_RUSTFLAGS").contains("link");
    let order = Path::new(&var("CARGO_MANIFEST_DIR")).join("link/runcomfy-mcp.order");
    if !wanted || !order.is_file() || !rustc_links_with_lld() {
        return;
    }
    println!(
        "cargo:rustc-link-arg-bin=runcomfy-mcp=-Wl,--symbol-ordering-file={}",
        order.display()
    );
    // Names a rebuild no longer has are expected (see above): no warning for each.
    println!("cargo:rustc-link-arg-bin=runcomfy-mcp=-Wl,--no-warn-symbol-ordering");
    // The loader reads all 33 k relocations of the position-independent binary at every start:
    // 0.8 MB of `.rela.dyn` in RSS. Packed (RELR) they take a few KB, but only glibc 2.36 or
    // later can load them, so only a build for this machine's own glibc, when it is that new,
    // packs them (the binary then says so: an older glibc refuses it with a clear error).
    if var("HOST") == var("TARGET") && host_glibc().is_some_and(|v| v >= (2, 36)) {
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
