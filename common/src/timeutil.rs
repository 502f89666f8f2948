//! Timestamps as Glance writes and reads them: naive UTC, Python's `isoformat()` on the wire.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike, Utc};

/// Now, truncated to microseconds: what every SQL engine we support stores exactly.
pub fn now() -> NaiveDateTime {
    let now = Utc::now().naive_utc();
    now.with_nanosecond(now.nanosecond() / 1000 * 1000).unwrap_or(now)
}

/// Python's `datetime.isoformat()`: `YYYY-MM-DDTHH:MM:SS[.ffffff]`, no zone.
pub fn isoformat(t: &NaiveDateTime) -> String {
    // Written by hand: chrono's strftime interpretation showed up in listing profiles.
    let (date, micros) = (t.date(), t.nanosecond() / 1000);
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        date.year(),
        date.month(),
        date.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if micros != 0 {
        out.push_str(&format!(".{micros:06}"));
    }
    out
}

/// ISO 8601 in the forms oslo's `parse_isotime` accepted (`2014-01-01`, `20140101`,
/// `2014-01-01T10:00:00.5+01:00`, `...Z`), normalized to naive UTC.
pub fn parse_isotime(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    // Our own isoformat (what the registry sends) first, without strftime interpretation.
    if let Ok(t) = text.parse::<NaiveDateTime>() {
        return Some(t);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.naive_utc());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%:z", "%Y%m%dT%H%M%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t.naive_utc());
        }
    }
    let naive = text.strip_suffix('Z').unwrap_or(text);
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y%m%dT%H%M%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(naive, format) {
            return Some(t);
        }
    }
    for format in ["%Y-%m-%d", "%Y%m%d", "%Y-%m%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(naive, format) {
            return d.and_hms_opt(0, 0, 0);
        }
    }
    None
}

/// serde for `NaiveDateTime` fields on the wire.
pub mod iso {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&isoformat(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDateTime, D::Error> {
        let text = String::deserialize(d)?;
        parse_isotime(&text).ok_or_else(|| D::Error::custom(format!("invalid timestamp {text:?}")))
    }
}

/// serde for `Option<NaiveDateTime>` fields on the wire (`null` when unset).
pub mod iso_opt {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(t: &Option<NaiveDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&isoformat(t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDateTime>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => {
                parse_isotime(&text).map(Some).ok_or_else(|| D::Error::custom(format!("invalid timestamp {text:?}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isoformat_omits_zero_microseconds() {
        let t = NaiveDate::from_ymd_opt(2014, 6, 1).and_then(|d| d.and_hms_micro_opt(10, 0, 0, 123456)).expect("t");
        assert_eq!(isoformat(&t), "2014-06-01T10:00:00.123456");
        let t = NaiveDate::from_ymd_opt(2014, 6, 1).and_then(|d| d.and_hms_opt(10, 0, 0)).expect("t");
        assert_eq!(isoformat(&t), "2014-06-01T10:00:00");
    }

    #[test]
    fn parse_isotime_accepts_oslo_forms() {
        let midnight = NaiveDate::from_ymd_opt(2014, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0));
        assert_eq!(parse_isotime("2014-01-01"), midnight);
        assert_eq!(parse_isotime("20140101"), midnight);
        assert_eq!(parse_isotime("2014-0101"), midnight);
        assert_eq!(parse_isotime("2014-01-01T01:00:00+01:00"), midnight);
        assert_eq!(parse_isotime("2013-12-31T23:00:00-01:00"), midnight);
        assert_eq!(parse_isotime("2014-01-01T00:00:00Z"), midnight);
        assert_eq!(parse_isotime("2014-01-01T00:00:00"), midnight);
        assert_eq!(parse_isotime(""), None);
        assert_eq!(parse_isotime("yesterday"), None);
    }
}
