//! Cell formatting shared by the printers: ages, label sets and selectors, quantities, access
//! modes, container lists and upstream's "a, b, c + 2 more..." lists.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, MicroTime, ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::jiff::fmt::strtime;
use tug_apimachinery::labels::{self, Selector};

use super::duration::human_duration;

/// Go's zero `time.Time` (0001-01-01T00:00:00Z), which upstream treats as "unset".
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// A timestamp, with Go's zero time read as unset.
pub(super) fn instant(t: Option<&Time>) -> Option<Timestamp> {
    t.map(|t| t.0)
        .filter(|t| t.as_second() != GO_ZERO_TIME_SECONDS || t.subsec_nanosecond() != 0)
}

/// Like [`instant`], for a `MicroTime`.
pub(super) fn micro_instant(t: Option<&MicroTime>) -> Option<Timestamp> {
    t.map(|t| t.0)
        .filter(|t| t.as_second() != GO_ZERO_TIME_SECONDS || t.subsec_nanosecond() != 0)
}

/// The time elapsed since `t` (`5m3s`), or `<unknown>` when unset: upstream's
/// `translateTimestampSince`.
pub(super) fn since(now: Timestamp, t: Option<Timestamp>) -> String {
    match t {
        Some(t) => human_duration(now.duration_since(t)),
        None => "<unknown>".to_owned(),
    }
}

/// The `Age` cell of an object.
pub(super) fn age(now: Timestamp, meta: &ObjectMeta) -> String {
    since(now, instant(meta.creation_timestamp.as_ref()))
}

/// An object's name.
pub(super) fn name(meta: &ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

/// RFC 3339 in UTC with whole seconds, as Go's `time.RFC3339` layout; unset is Go's zero time.
pub(super) fn rfc3339(t: Option<Timestamp>) -> String {
    match t {
        Some(t) => strtime::format("%Y-%m-%dT%H:%M:%SZ", t)
            .unwrap_or_else(|_| "0001-01-01T00:00:00Z".to_owned()),
        None => "0001-01-01T00:00:00Z".to_owned(),
    }
}

/// A label set as `k=v,k2=v2` sorted by key, or `<none>`: upstream's `labels.FormatLabels`.
pub(super) fn label_set(set: Option<&BTreeMap<String, String>>) -> String {
    let s = set
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    if s.is_empty() { "<none>".to_owned() } else { s }
}

/// A selector as upstream's `LabelSelectorAsSelector(...).String()`: `None` selects nothing
/// and an empty selector everything, both printing as the empty string.
pub(super) fn selector_string(
    selector: Option<&LabelSelector>,
) -> Result<String, labels::LabelsError> {
    let converted = selector.map(|s| labels::LabelSelector {
        match_labels: s.match_labels.clone().unwrap_or_default(),
        match_expressions: s
            .match_expressions
            .iter()
            .flatten()
            .map(|e| labels::LabelSelectorRequirement {
                key: e.key.clone(),
                operator: e.operator.clone(),
                values: e.values.clone().unwrap_or_default(),
            })
            .collect(),
    });
    Ok(Selector::from_label_selector(converted.as_ref())?.to_string())
}

/// A selector as upstream's `metav1.FormatLabelSelector`: `<none>` when it prints empty,
/// `<error>` when it is invalid.
pub(super) fn label_selector(selector: Option<&LabelSelector>) -> String {
    match selector_string(selector) {
        Ok(s) if s.is_empty() => "<none>".to_owned(),
        Ok(s) => s,
        Err(_) => "<error>".to_owned(),
    }
}

/// A quantity in upstream's canonical form (`1Gi`, `500m`); text that does not parse is shown
/// as it is.
pub(super) fn quantity(q: &Quantity) -> String {
    tug_apimachinery::Quantity::parse(&q.0).map_or_else(|_| q.0.clone(), |q| q.to_string())
}

/// An optional quantity: Go prints a nil `*Quantity` as `<nil>`.
pub(super) fn quantity_or_nil(q: Option<&Quantity>) -> String {
    q.map_or_else(|| "<nil>".to_owned(), quantity)
}

/// One resource of a resource list; a missing one is zero.
pub(super) fn resource(list: Option<&BTreeMap<String, Quantity>>, name: &str) -> String {
    list.and_then(|l| l.get(name))
        .map_or_else(|| "0".to_owned(), quantity)
}

/// An `IntOrString` as upstream's `String()`.
pub(super) fn int_or_string(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// Access modes abbreviated and always in the order RWO, ROX, RWX, RWOP.
pub(super) fn access_modes(modes: Option<&Vec<String>>) -> String {
    let modes = modes.map_or(&[][..], Vec::as_slice);
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| modes.iter().any(|m| m == mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The container names and images of a pod template, each joined by commas.
pub(super) fn containers(containers: &[Container]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    let images: Vec<&str> = containers
        .iter()
        .map(|c| c.image.as_deref().unwrap_or_default())
        .collect();
    (names.join(","), images.join(","))
}

/// A `*bool` as upstream prints it: `True`, `False` or `<unset>`.
pub(super) fn bool_ptr(value: Option<bool>) -> String {
    match value {
        Some(true) => "True".to_owned(),
        Some(false) => "False".to_owned(),
        None => "<unset>".to_owned(),
    }
}

/// The first `max` entries joined by commas and, when there were more, ` + N more...`; an
/// empty list is `<unset>`: upstream's `listWithMoreString` over a capped list.
pub(super) fn list_with_more(all: impl IntoIterator<Item = String>, max: usize) -> String {
    let mut shown = Vec::new();
    let mut count = 0;
    for item in all {
        if shown.len() < max {
            shown.push(item);
        }
        count += 1;
    }
    let joined = shown.join(",");
    if count > max {
        format!("{joined} + {} more...", count - max)
    } else if joined.is_empty() {
        "<unset>".to_owned()
    } else {
        joined
    }
}

/// Load-balancer ingress points (IP, else hostname), deduplicated and sorted, joined by
/// commas. Servers print wide, so upstream's 16-character clipping never applies.
pub(super) fn load_balancer_ingress<'a>(
    points: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> String {
    let set: std::collections::BTreeSet<&str> = points
        .into_iter()
        .filter_map(|(ip, hostname)| {
            ip.filter(|s| !s.is_empty())
                .or_else(|| hostname.filter(|s| !s.is_empty()))
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn label_sets_sort_by_key_and_empty_is_none() {
        let set: BTreeMap<String, String> = [("tier", "web"), ("app", "nginx")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        assert_eq!(label_set(Some(&set)), "app=nginx,tier=web");
        assert_eq!(label_set(None), "<none>");
        assert_eq!(label_set(Some(&BTreeMap::new())), "<none>");
    }

    #[test]
    fn selectors_print_like_upstream() {
        let sel = LabelSelector {
            match_labels: Some([("app".to_owned(), "web".to_owned())].into()),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "env".to_owned(),
                    operator: "In".to_owned(),
                    values: Some(vec!["prod".to_owned(), "dev".to_owned()]),
                },
                LabelSelectorRequirement {
                    key: "canary".to_owned(),
                    operator: "DoesNotExist".to_owned(),
                    values: None,
                },
            ]),
        };
        assert_eq!(
            label_selector(Some(&sel)),
            "app=web,!canary,env in (dev,prod)"
        );
        assert_eq!(label_selector(None), "<none>");
        assert_eq!(label_selector(Some(&LabelSelector::default())), "<none>");
        let bad = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "k".to_owned(),
                operator: "Near".to_owned(),
                values: None,
            }]),
            ..LabelSelector::default()
        };
        assert_eq!(label_selector(Some(&bad)), "<error>");
        assert_eq!(selector_string(None).ok().as_deref(), Some(""));
    }

    #[test]
    fn access_modes_use_a_fixed_order_without_duplicates() {
        let modes = [
            "ReadWriteMany",
            "ReadWriteOnce",
            "ReadWriteOnce",
            "ReadWriteOncePod",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(access_modes(Some(&modes)), "RWO,RWX,RWOP");
        assert_eq!(access_modes(None), "");
    }

    #[test]
    fn quantities_print_canonically() {
        assert_eq!(quantity(&Quantity("1024Mi".to_owned())), "1Gi");
        assert_eq!(quantity(&Quantity("1000m".to_owned())), "1");
        assert_eq!(quantity(&Quantity("nonsense".to_owned())), "nonsense");
        assert_eq!(quantity_or_nil(None), "<nil>");
        assert_eq!(resource(None, "storage"), "0");
    }

    #[test]
    fn long_lists_end_with_a_count_of_the_rest() {
        let items = |n: usize| (1..=n).map(|i| format!("10.0.0.{i}"));
        assert_eq!(list_with_more(items(0), 3), "<unset>");
        assert_eq!(list_with_more(items(3), 3), "10.0.0.1,10.0.0.2,10.0.0.3");
        assert_eq!(
            list_with_more(items(5), 3),
            "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more..."
        );
    }

    #[test]
    fn go_zero_time_counts_as_unset() {
        let zero = Time("0001-01-01T00:00:00Z".parse().expect("valid time"));
        assert_eq!(instant(Some(&zero)), None);
        assert_eq!(rfc3339(None), "0001-01-01T00:00:00Z");
        let t: Timestamp = "2024-05-06T07:08:09.5Z".parse().expect("valid time");
        assert_eq!(rfc3339(Some(t)), "2024-05-06T07:08:09Z");
    }
}
