//! `genTime` and certificate validity: RFC 3161 checks the TSA's certificates at the time the
//! token says it was made, so a token stays valid after its TSA certificate expires.

use chrono::{DateTime, NaiveDateTime, Utc};
use cortex_core::{Error, Result};
use der::asn1::Any;
use der::{Tag, Tagged};
use x509_cert::Certificate;

/// Parses a `GeneralizedTime` as RFC 3161 §2.4.2 allows it: `YYYYMMDDhhmmss[.s…]Z`, with
/// optional fractional seconds (which the `der` crate's own type refuses).
pub(crate) fn parse_gen_time(raw: &Any) -> Result<DateTime<Utc>> {
    if raw.tag() != Tag::GeneralizedTime {
        return Err(Error::integrity(format!(
            "TSTInfo genTime is a {} instead of a GeneralizedTime",
            raw.tag()
        )));
    }
    let text = std::str::from_utf8(raw.value())
        .map_err(|_| Error::integrity("TSTInfo genTime is not ASCII"))?;
    let bad = || {
        Error::integrity(format!(
            "TSTInfo genTime {text:?} is not YYYYMMDDhhmmss[.f]Z"
        ))
    };
    let body = text.strip_suffix('Z').ok_or_else(bad)?;
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.len() != 14 || !digits(whole) || !digits(fraction) || body.ends_with('.') {
        return Err(bad());
    }
    let naive = NaiveDateTime::parse_from_str(whole, "%Y%m%d%H%M%S").map_err(|_| bad())?;
    let nanos = fraction_nanos(fraction);
    Ok(naive.and_utc() + chrono::Duration::nanoseconds(nanos))
}

fn fraction_nanos(fraction: &str) -> i64 {
    let mut padded: String = fraction.chars().take(9).collect();
    while padded.len() < 9 {
        padded.push('0');
    }
    padded.parse().unwrap_or(0)
}

/// Fails unless `at` lies within the certificate's validity period (both ends inclusive).
pub(crate) fn check_valid_at(cert: &Certificate, at: DateTime<Utc>) -> Result<()> {
    let validity = cert.tbs_certificate().validity();
    let not_before = to_datetime(validity.not_before.to_unix_duration());
    let not_after = to_datetime(validity.not_after.to_unix_duration());
    if at < not_before || at > not_after {
        return Err(Error::integrity(format!(
            "certificate {} is not valid at the token's genTime {} (valid {} to {})",
            cert.tbs_certificate().subject(),
            at.to_rfc3339(),
            not_before.to_rfc3339(),
            not_after.to_rfc3339()
        )));
    }
    Ok(())
}

fn to_datetime(since_epoch: std::time::Duration) -> DateTime<Utc> {
    let secs = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen_time(text: &str) -> Result<DateTime<Utc>> {
        parse_gen_time(&Any::new(Tag::GeneralizedTime, text.as_bytes()).unwrap())
    }

    #[test]
    fn parses_whole_and_fractional_seconds() {
        assert_eq!(
            gen_time("20241008154032Z").unwrap().to_rfc3339(),
            "2024-10-08T15:40:32+00:00"
        );
        assert_eq!(
            gen_time("20241008154032.25Z").unwrap().to_rfc3339(),
            "2024-10-08T15:40:32.250+00:00"
        );
    }

    #[test]
    fn refuses_local_times_and_junk() {
        for bad in [
            "20241008154032",
            "2024100815403Z",
            "20241008154032.Z",
            "2024-10-08Z",
        ] {
            let err = gen_time(bad).unwrap_err();
            assert!(err.to_string().contains("genTime"), "{bad}: {err}");
        }
    }
}
