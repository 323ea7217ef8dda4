//! Capture timestamps: nanoseconds since the Unix epoch, formatted as RFC 3339 with microseconds.

use std::fmt;

/// A packet's capture time, nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The wall clock.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    pub const fn from_micros(us: u64) -> Self {
        Timestamp(us.saturating_mul(1_000))
    }
    pub const fn from_secs_nanos(secs: u64, nanos: u64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
    }
    pub const fn as_micros(self) -> u64 {
        self.0 / 1_000
    }
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// Microseconds from `earlier` to `self`, zero when `earlier` is later.
    pub const fn micros_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0) / 1_000
    }
    /// RFC 3339 in UTC with exactly six fractional digits, e.g. `2024-05-01T12:00:00.123456Z`.
    pub fn to_rfc3339(self) -> String {
        self.to_string()
    }
    /// Parses RFC 3339 (any offset, any fraction length) into a timestamp.
    pub fn parse_rfc3339(s: &str) -> Result<Timestamp, String> {
        let dt = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map_err(|e| format!("`{s}` is not an RFC 3339 timestamp ({e}); use e.g. 2024-05-01T12:00:00Z"))?;
        let ns = dt.unix_timestamp_nanos();
        if ns < 0 {
            return Err(format!("`{s}` is before 1970"));
        }
        Ok(Timestamp(u64::try_from(ns).unwrap_or(u64::MAX)))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = (self.0 / 1_000_000_000) as i64;
        let micros = (self.0 % 1_000_000_000) / 1_000;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            sod / 3600,
            (sod % 3600) / 60,
            sod % 60
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), after H. Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_with_micros() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000000Z");
        let t = Timestamp::from_secs_nanos(1_714_564_800, 123_456_789);
        assert_eq!(t.to_string(), "2024-05-01T12:00:00.123456Z");
        assert_eq!(
            Timestamp::from_secs_nanos(951_782_400, 0).to_string(),
            "2000-02-29T00:00:00.000000Z"
        );
    }

    #[test]
    fn parse_round_trips() {
        let t = Timestamp::from_secs_nanos(1_714_564_800, 123_456_000);
        assert_eq!(Timestamp::parse_rfc3339(&t.to_string()).unwrap(), t);
        assert_eq!(
            Timestamp::parse_rfc3339("2024-05-01T14:00:00+02:00").unwrap(),
            Timestamp::from_secs_nanos(1_714_564_800, 0)
        );
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    }
}
