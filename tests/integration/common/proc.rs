//! What Linux says of a process in `/proc`: its memory figures (`/proc/<pid>/status`, in KiB) and
//! its open descriptors. The one reader of these for the tests, and for the examples that print
//! the same figures (they include this file by path).

/// A `kB` field of `/proc/<pid>/status`: `VmRSS` (resident now), `VmHWM` (the peak).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
    parse_kib(&status, field).unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// This process's peak resident memory, in KiB.
pub fn own_peak_kib() -> u64 {
    status_kib(std::process::id(), "VmHWM")
}

/// Resets this process's peak (VmHWM) to its current RSS, so that a peak read afterwards is what
/// the code since raised it to, not the process's whole history. Panics where it cannot: a bound
/// that cannot measure must fail, not pass.
pub fn reset_own_peak() {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        panic!("cannot reset the peak RSS here (writing /proc/self/clear_refs: {e}): this check cannot measure on this machine");
    }
}

/// How many descriptors process `pid` has open.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/fd: {e}"))
        .count()
}

/// `field` of a status text: `VmHWM:   12345 kB` → 12345.
fn parse_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn a_status_field_is_read_by_its_exact_name() {
    let status = "Name:\tx\nVmHWM:\t   12345 kB\nVmRSS:\t  678 kB\nVmRSSx:\t1 kB\n";
    assert_eq!(parse_kib(status, "VmHWM"), Some(12345));
    assert_eq!(parse_kib(status, "VmRSS"), Some(678));
    assert_eq!(parse_kib(status, "VmSwap"), None);
    assert_eq!(parse_kib(status, "Vm"), None);
}
