//! Certificate dates against the module's clock (mbedTLS is built without its own).

use mbedtls_rs_sys::{MBEDTLS_X509_BADCERT_EXPIRED, MBEDTLS_X509_BADCERT_FUTURE};

/// A certificate's `notBefore` / `notAfter`, as mbedTLS parsed it (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertTime {
    pub year: i32,
    pub mon: i32,
    pub day: i32,
    pub hour: i32,
    pub min: i32,
    pub sec: i32,
}

impl CertTime {
    /// Seconds since 1970-01-01 UTC (proleptic Gregorian calendar, negative before 1970).
    pub fn unix(&self) -> i64 {
        let (y, m) = (i64::from(self.year), i64::from(self.mon));
        // Days from civil (March-based year so the leap day is last).
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400 + i64::from(self.hour) * 3600 + i64::from(self.min) * 60 + i64::from(self.sec)
    }
}

/// `MBEDTLS_X509_BADCERT_FUTURE` / `_EXPIRED` for a certificate valid from `from` to `to`
/// (both inclusive) at `now` (seconds since 1970 UTC).
pub fn date_flags(from: &CertTime, to: &CertTime, now: u64) -> u32 {
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let mut flags = 0;
    if now < from.unix() {
        flags |= MBEDTLS_X509_BADCERT_FUTURE;
    }
    if now > to.unix() {
        flags |= MBEDTLS_X509_BADCERT_EXPIRED;
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(year: i32, mon: i32, day: i32, hour: i32, min: i32, sec: i32) -> CertTime {
        CertTime { year, mon, day, hour, min, sec }
    }

    #[test]
    fn unix_time_of_known_dates() {
        assert_eq!(t(1970, 1, 1, 0, 0, 0).unix(), 0);
        assert_eq!(t(2000, 3, 1, 0, 0, 0).unix(), 951_868_800);
        assert_eq!(t(2024, 2, 29, 12, 34, 56).unix(), 1_709_210_096);
        assert_eq!(t(2049, 12, 31, 23, 59, 59).unix(), 2_524_607_999);
        assert_eq!(t(1969, 12, 31, 23, 59, 59).unix(), -1);
    }

    #[test]
    fn flags_at_the_edges_of_the_window() {
        let from = t(2020, 1, 1, 0, 0, 0);
        let to = t(2030, 1, 1, 0, 0, 0);
        assert_eq!(date_flags(&from, &to, from.unix() as u64), 0);
        assert_eq!(date_flags(&from, &to, to.unix() as u64), 0);
        assert_eq!(date_flags(&from, &to, from.unix() as u64 - 1), MBEDTLS_X509_BADCERT_FUTURE);
        assert_eq!(date_flags(&from, &to, to.unix() as u64 + 1), MBEDTLS_X509_BADCERT_EXPIRED);
        assert_eq!(date_flags(&from, &to, u64::MAX), MBEDTLS_X509_BADCERT_EXPIRED);
    }
}
