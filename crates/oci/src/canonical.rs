//! Canonical JSON (sorted keys, no whitespace) and RFC 3339 timestamps: the same value
//! always gives the same bytes, whatever the map types inside it (oci-spec uses `HashMap`)
//! and whether or not serde_json's `preserve_order` feature is on somewhere in the build.

use serde::Serialize;
use serde_json::Value;

use crate::error::{OciError, Result};

pub fn to_canonical_json<T: Serialize>(value: &T, what: &str) -> Result<Vec<u8>> {
    let v = serde_json::to_value(value).map_err(|e| OciError::json(what, e))?;
    let mut out = Vec::new();
    write_value(&v, &mut out).map_err(|e| OciError::json(what, e))?;
    Ok(out)
}

pub(crate) fn value_to_canonical_json(v: &Value, what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    write_value(v, &mut out).map_err(|e| OciError::json(what, e))?;
    Ok(out)
}

fn write_value(v: &Value, out: &mut Vec<u8>) -> serde_json::Result<()> {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k)?;
                out.push(b':');
                write_value(&map[k], out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar)?,
    }
    Ok(())
}

/// `seconds since the Unix epoch` as RFC 3339 UTC (`1970-01-01T00:00:00Z`), the format
/// Docker and BuildKit write into `created` fields.
pub fn rfc3339(epoch: i64) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn sorted_keys() {
        let mut m = std::collections::HashMap::new();
        for k in ["z", "a", "m", "b"] {
            m.insert(k, vec![1, 2]);
        }
        let out = to_canonical_json(&m, "t").unwrap();
        assert_eq!(out, br#"{"a":[1,2],"b":[1,2],"m":[1,2],"z":[1,2]}"#);
    }
}
