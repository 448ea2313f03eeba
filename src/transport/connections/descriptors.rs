//! The process's open-file limit, raised so that the connection cap fits in it.

/// Raises this process's open-file limit so that `wanted` descriptors fit, if the hard limit
/// allows; returns how many fit. A cap above the limit would let accepting fail instead (and
/// new clients be refused at random) rather than be turned away by the rules above.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every platform
pub fn ensure_descriptors(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return wanted;
        }
        if (limit.rlim_cur as u64) < wanted {
            let raised = libc::rlimit {
                rlim_cur: (wanted as libc::rlim_t).min(limit.rlim_max),
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur as u64
}

#[cfg(not(unix))]
pub fn ensure_descriptors(wanted: u64) -> u64 {
    wanted
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn what_fits_is_at_least_what_was_there_and_at_most_the_hard_limit() {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct passed.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        #[allow(clippy::unnecessary_cast)]
        let (soft, hard) = (limit.rlim_cur as u64, limit.rlim_max as u64);
        // Asking for fewer than are already allowed changes nothing.
        assert_eq!(ensure_descriptors(1), soft);
        // Asking for more than the hard limit gets the hard limit, no more.
        let raised = ensure_descriptors(u64::MAX);
        assert!(raised >= soft && raised <= hard, "{raised} outside {soft}..={hard}");
    }
}
