//! "Did you mean ...?" hints, chosen the way BuildKit chooses them: the closest option by
//! Levenshtein distance, below 3 edits, the first one on a tie; none when the value is
//! itself an option (then the error is about something else).

/// BuildKit's hint threshold: a match must be fewer than this many edits away.
const MAX_DISTANCE_EXCLUSIVE: usize = 3;

/// The option `value` was most likely meant to be. Without `case_sensitive`, the options
/// are compared lowercased and the hint takes the case of `value` (all-lower or all-upper).
pub fn search<'a>(
    value: &str,
    options: impl IntoIterator<Item = &'a str>,
    case_sensitive: bool,
) -> Option<String> {
    let fold = |s: &str| {
        if case_sensitive {
            s.to_string()
        } else {
            s.to_lowercase()
        }
    };
    let wanted = fold(value);
    let mut best: Option<(usize, String)> = None;
    for option in options {
        let candidate = fold(option);
        if candidate == wanted {
            return None;
        }
        let distance = strsim::levenshtein(&wanted, &candidate);
        if distance < best.as_ref().map_or(MAX_DISTANCE_EXCLUSIVE, |b| b.0) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, m)| {
        if case_sensitive {
            m
        } else {
            match_case(&m, value)
        }
    })
}

/// BuildKit's `matchCase`: an all-lowercase or all-uppercase value gets its hint in that case.
fn match_case(hint: &str, value: &str) -> String {
    if value == value.to_lowercase() {
        hint.to_lowercase()
    } else if value == value.to_uppercase() {
        hint.to_uppercase()
    } else {
        hint.to_string()
    }
}

/// ` (did you mean X?)` or nothing: the suffix BuildKit appends to an error.
pub(crate) fn hint(suggestion: Option<&str>) -> String {
    suggestion
        .map(|s| format!(" (did you mean {s}?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_within_two_edits() {
        assert_eq!(
            search("mont", ["mount", "network"], true).as_deref(),
            Some("mount")
        );
        assert_eq!(
            search("cahce", ["bind", "cache", "tmpfs"], true).as_deref(),
            Some("cache")
        );
        assert_eq!(search("zzzzzz", ["mount"], true), None);
        // An exact option means the hint would be wrong.
        assert_eq!(search("mount", ["mount", "mounts"], true), None);
        // Case-sensitive search treats another case as a distance.
        assert_eq!(search("Max", ["max"], true).as_deref(), Some("max"));
    }

    #[test]
    fn case_insensitive_keeps_the_values_case() {
        assert_eq!(
            search("RUNN", ["run", "copy"], false).as_deref(),
            Some("RUN")
        );
        assert_eq!(
            search("runn", ["RUN", "COPY"], false).as_deref(),
            Some("run")
        );
        assert_eq!(search("Runn", ["RUN"], false).as_deref(), Some("run"));
        assert_eq!(hint(Some("x")), " (did you mean x?)");
        assert_eq!(hint(None), "");
    }
}
