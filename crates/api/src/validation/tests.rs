//! Data-driven validation tests: objects are defaulted first (upstream validates defaulted
//! objects), then their errors are compared with upstream's exact messages, in order.

use serde_json::{Value, json};

use super::{validate_create, validate_update};
use crate::Gvk;
use crate::defaults::apply_defaults;

fn gvk_of(obj: &Value) -> (String, String) {
    (
        obj["apiVersion"].as_str().unwrap_or_default().to_owned(),
        obj["kind"].as_str().unwrap_or_default().to_owned(),
    )
}

fn defaulted(mut obj: Value) -> Value {
    let (api_version, kind) = gvk_of(&obj);
    apply_defaults(Gvk::from_api_version(&api_version, &kind), &mut obj);
    obj
}

fn strings(errs: tug_apimachinery::validation::ErrorList) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

/// Defaults and validates `obj` for create; the errors must be exactly `want`.
fn check(obj: Value, want: &[&str]) {
    let obj = defaulted(obj);
    let (api_version, kind) = gvk_of(&obj);
    let got = strings(validate_create(
        Gvk::from_api_version(&api_version, &kind),
        &obj,
    ));
    assert_eq!(got, want, "object: {obj}");
}

/// Defaults both, validates the update from `old` to `new`; the errors must be `want`.
fn check_update(old: Value, new: Value, want: &[&str]) {
    let (old, new) = (defaulted(old), defaulted(new));
    let (api_version, kind) = gvk_of(&new);
    let got = strings(validate_update(
        Gvk::from_api_version(&api_version, &kind),
        &new,
        &old,
    ));
    assert_eq!(got, want, "new: {new}");
}

fn with_rv(mut obj: Value) -> Value {
    obj["metadata"]["resourceVersion"] = json!("7");
    obj
}

fn deployment(selector: Value, labels: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": selector,
            "template": {"metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
}

#[test]
fn a_kubectl_created_deployment_is_valid() {
    check(
        deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"}),
        ),
        &[],
    );
}

#[test]
fn deployment_selector_must_match_template_labels() {
    check(
        deployment(json!({"matchLabels": {"app": "y"}}), json!({"app": "x"})),
        &[
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`",
        ],
    );
    let mut no_selector = deployment(json!(null), json!({"app": "x"}));
    no_selector["spec"]
        .as_object_mut()
        .map(|s| s.remove("selector"));
    check(
        no_selector,
        &[
            "spec.selector: Required value",
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`",
        ],
    );
    check(
        deployment(json!({}), json!({"app": "x"})),
        &[
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment",
        ],
    );
}

#[test]
fn deployment_rolling_update_may_not_have_both_limits_zero() {
    let mut d = deployment(json!({"matchLabels": {"app": "x"}}), json!({"app": "x"}));
    d["spec"]["strategy"] = json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}});
    check(
        d.clone(),
        &[
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0",
        ],
    );
    d["spec"]["strategy"] = json!({"rollingUpdate": {"maxSurge": "0%", "maxUnavailable": "150%"}});
    check(
        d.clone(),
        &[
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%",
        ],
    );
    d["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {}});
    check(
        d.clone(),
        &[
            "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
        ],
    );
    d["spec"]["strategy"] = json!({"type": "BlueGreen"});
    check(
        d,
        &[
            "spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:\"BlueGreen\", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: \"Recreate\", \"RollingUpdate\"",
        ],
    );
}

#[test]
fn deployment_numbers_and_template_policy_are_checked() {
    let mut d = deployment(json!({"matchLabels": {"app": "x"}}), json!({"app": "x"}));
    d["spec"]["replicas"] = json!(-1);
    d["spec"]["minReadySeconds"] = json!(700);
    d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    check(
        d,
        &[
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds",
        ],
    );
}

#[test]
fn deployment_selector_is_immutable_in_apps_v1() {
    let old = with_rv(deployment(
        json!({"matchLabels": {"app": "x"}}),
        json!({"app": "x", "tier": "y"}),
    ));
    let new = with_rv(deployment(
        json!({"matchLabels": {"app": "x", "tier": "y"}}),
        json!({"app": "x", "tier": "y"}),
    ));
    check_update(
        old.clone(),
        new,
        &[
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"x\", \"tier\":\"y\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
        ],
    );
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(5);
    check_update(old, scaled, &[]);
}

#[test]
fn invalid_object_names_use_each_kinds_rule() {
    let mut d = deployment(json!({"matchLabels": {"app": "x"}}), json!({"app": "x"}));
    d["metadata"]["name"] = json!("Web_1");
    check(
        d,
        &[
            "metadata.name: Invalid value: \"Web_1\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ],
    );
    check(
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "1web", "namespace": "default"},
            "spec": {"ports": [{"port": 80}]}}),
        &[
            "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        ],
    );
    check(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team.a"}}),
        &["metadata.name: Invalid value: \"team.a\": must not contain dots"],
    );
    check(
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm", "namespace": "default", "generateName": "Bad-"}}),
        &[
            "metadata.generateName: Invalid value: \"Bad-\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ],
    );
    check(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "a:b/c"}, "rules": []}),
        &["metadata.name: Invalid value: \"a:b/c\": may not contain '/'"],
    );
    check(
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "sa", "namespace": "default", "labels": {"a": "-bad"}}}),
        &[
            "metadata.labels: Invalid value: \"-bad\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ],
    );
}

fn stateful_set() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "default", "resourceVersion": "3"},
        "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": "redis"}]}}}})
}

#[test]
fn stateful_sets_forbid_changes_outside_the_allowed_fields() {
    check(stateful_set(), &[]);
    let mut renamed = stateful_set();
    renamed["spec"]["serviceName"] = json!("other");
    check_update(
        stateful_set(),
        renamed,
        &[
            "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ],
    );
    let mut scaled = stateful_set();
    scaled["spec"]["replicas"] = json!(3);
    scaled["spec"]["template"]["spec"]["containers"][0]["image"] = json!("redis:8");
    check_update(stateful_set(), scaled, &[]);
    let mut dotted = stateful_set();
    dotted["metadata"]["name"] = json!("db.v1");
    dotted["spec"]["podManagementPolicy"] = json!("Random");
    check(
        dotted,
        &[
            "metadata.name: Invalid value: \"db.v1\": must not contain dots",
            "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
        ],
    );
}

#[test]
fn daemon_sets_need_exactly_one_nonzero_rolling_limit() {
    let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "kube-system"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": {"rollingUpdate": {"maxUnavailable": 0}},
            "template": {"metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "a", "image": "agent:1"}]}}}});
    check(
        ds,
        &[
            "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0",
        ],
    );
}

/// A Job as the registry prepares it: uid assigned, selector and pod labels generated.
fn job(spec_patch: Value) -> Value {
    let mut j = json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": "u-1"},
        "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}},
            "template": {"metadata": {"labels": {
                "batch.kubernetes.io/controller-uid": "u-1", "batch.kubernetes.io/job-name": "pi",
                "controller-uid": "u-1", "job-name": "pi"}},
                "spec": {"containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Never"}}}});
    if let (Some(spec), Some(patch)) = (j["spec"].as_object_mut(), spec_patch.as_object()) {
        for (k, v) in patch {
            spec.insert(k.clone(), v.clone());
        }
    }
    j
}

#[test]
fn jobs_reject_negative_counts_and_restart_always() {
    check(job(json!({})), &[]);
    check(
        job(json!({"parallelism": -1, "backoffLimit": -2})),
        &[
            "spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
            "spec.backoffLimit: Invalid value: -2: must be greater than or equal to 0",
        ],
    );
    let mut always = job(json!({}));
    always["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
    check(
        always,
        &[
            "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
        ],
    );
    check(
        job(json!({"completionMode": "Indexed", "completions": null, "parallelism": 2})),
        &["spec.completions: Required value: when completion mode is Indexed"],
    );
}

#[test]
fn job_selectors_must_be_generated_and_immutable() {
    let mut foreign = job(json!({}));
    foreign["spec"]["selector"] = json!({"matchLabels": {"app": "x"}});
    foreign["spec"]["template"]["metadata"]["labels"]["app"] = json!("x");
    check(
        foreign,
        &[
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"x\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` not auto-generated",
        ],
    );
    let old = with_rv(job(json!({})));
    let mut new = old.clone();
    new["spec"]["completions"] = json!(3);
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:2");
    let errs = strings(validate_update(
        Gvk::new("batch", "v1", "Job"),
        &defaulted(new),
        &defaulted(old),
    ));
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(
        errs[0],
        "spec.completions: Invalid value: 3: field is immutable"
    );
    assert!(
        errs[1].starts_with("spec.template: Invalid value: "),
        "{}",
        errs[1]
    );
    assert!(errs[1].ends_with(": field is immutable"), "{}", errs[1]);
}

fn cron_job(schedule: &str, tz: Option<&str>) -> Value {
    let mut c = json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {
            "spec": {"containers": [{"name": "hello", "image": "busybox"}], "restartPolicy": "OnFailure"}}}}}});
    if let Some(tz) = tz {
        c["spec"]["timeZone"] = json!(tz);
    }
    c
}

#[test]
fn cron_jobs_check_schedule_and_time_zone() {
    check(cron_job("*/1 * * * *", Some("Europe/Berlin")), &[]);
    check(
        cron_job("x", None),
        &["spec.schedule: Invalid value: \"x\": expected exactly 5 fields, found 1: [x]"],
    );
    check(
        cron_job("0 25 * * *", None),
        &["spec.schedule: Invalid value: \"0 25 * * *\": end of range (25) above maximum (23): 25"],
    );
    check(
        cron_job("* * * * *", Some("Nowhere/Land")),
        &["spec.timeZone: Invalid value: \"Nowhere/Land\": unknown time zone Nowhere/Land"],
    );
    check(
        cron_job("* * * * *", Some("Local")),
        &[
            "spec.timeZone: Invalid value: \"Local\": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ],
    );
    check(
        cron_job("TZ=UTC 0 * * * *", None),
        &[
            "spec.schedule: Invalid value: \"TZ=UTC 0 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        ],
    );
    let mut long = cron_job("@daily", None);
    long["metadata"]["name"] = json!("a".repeat(53));
    check(
        long,
        &[&format!(
            "metadata.name: Invalid value: \"{}\": must be no more than 52 characters",
            "a".repeat(53)
        )],
    );
}

#[test]
fn services_need_ports_unique_names_and_fixed_cluster_ips() {
    check(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}}}),
        &["spec.ports: Required value"],
    );
    check(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "None"}}),
        &[],
    );
    check(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "Magic", "ports": [{"port": 80}, {"name": "b", "port": 70000, "targetPort": "Http_"}]}}),
        &[
            "spec.ports[0].name: Required value",
            "spec.ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.ports[1].targetPort: Invalid value: \"Http_\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
        ],
    );
    let old = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "resourceVersion": "1"},
        "spec": {"clusterIP": "10.43.0.5", "clusterIPs": ["10.43.0.5"], "ports": [{"port": 80}]}});
    let mut new = old.clone();
    new["spec"]["clusterIP"] = json!("10.43.0.6");
    new["spec"]["clusterIPs"] = json!(["10.43.0.6"]);
    check_update(
        old,
        new,
        &["spec.clusterIPs[0]: Invalid value: []string{\"10.43.0.6\"}: may not change once set"],
    );
}

#[test]
fn config_maps_and_secrets_check_keys_types_and_immutability() {
    check(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"},
            "data": {"good.key": "1", "bad key": "2"}}),
        &[
            "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
        ],
    );
    check(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls", "namespace": "default"},
            "type": "kubernetes.io/tls", "stringData": {"tls.crt": "x"}}),
        &["data[tls.key]: Required value"],
    );
    check(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "reg", "namespace": "default"},
            "type": "kubernetes.io/dockerconfigjson", "data": {}}),
        &["data[.dockerconfigjson]: Required value"],
    );
    let big = "a".repeat(1024 * 1024 + 1);
    check(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"},
            "data": {"k": big}}),
        &[": Too long: may not be more than 1048576 bytes"],
    );
    let old = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default", "resourceVersion": "1"},
        "immutable": true, "data": {"a": "1"}});
    let mut new = old.clone();
    new["data"]["a"] = json!("2");
    check_update(
        old.clone(),
        new,
        &["data: Forbidden: field is immutable when `immutable` is set"],
    );
    let mut mutable = old.clone();
    mutable["immutable"] = json!(false);
    check_update(
        old,
        mutable,
        &["immutable: Forbidden: field is immutable when `immutable` is set"],
    );
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default", "resourceVersion": "1"}, "data": {}});
    let mut retyped = secret.clone();
    retyped["type"] = json!("kubernetes.io/basic-auth");
    retyped["data"] = json!({"username": "dQ=="});
    check_update(
        secret,
        retyped,
        &["type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable"],
    );
}

#[test]
fn claims_volumes_and_storage_classes_follow_upstream() {
    check(
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "default"}, "spec": {}}),
        &[
            "spec.accessModes: Required value: at least 1 access mode is required",
            "spec.resources[storage]: Required value",
        ],
    );
    check(
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/d"}}}),
        &[],
    );
    check(
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"}}),
        &["provisioner: Required value"],
    );
    let old = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "fast", "resourceVersion": "1"}, "provisioner": "x.io/p", "parameters": {"a": "1"}});
    let mut new = old.clone();
    new["parameters"]["a"] = json!("2");
    check_update(
        old,
        new,
        &["parameters: Forbidden: updates to parameters are forbidden."],
    );
}

#[test]
fn policies_autoscalers_and_priorities_follow_upstream() {
    check(
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "x"}}}}),
        &[],
    );
    let both = defaulted(
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"minAvailable": 1, "maxUnavailable": "10%", "selector": {}}}),
    );
    let errs = strings(validate_create(
        Gvk::new("policy", "v1", "PodDisruptionBudget"),
        &both,
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("spec: Invalid value: "), "{}", errs[0]);
    assert!(
        errs[0].ends_with(": minAvailable and maxUnavailable cannot be both set"),
        "{}",
        errs[0]
    );
    check(
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h", "namespace": "default"},
            "spec": {"minReplicas": 0, "maxReplicas": 0, "scaleTargetRef": {"kind": "Deployment"}}}),
        &[
            "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
            "spec.maxReplicas: Invalid value: 0: must be greater than 0",
            "spec.scaleTargetRef.name: Required value",
        ],
    );
    check(
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h", "namespace": "default"},
            "spec": {"minReplicas": 5, "maxReplicas": 2,
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}}),
        &["spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"],
    );
    check(
        json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": "high"}, "value": 2000000000}),
        &["value: Forbidden: maximum allowed value of a user defined priority is 1000000000"],
    );
}

#[test]
fn rbac_rules_and_bindings_follow_upstream() {
    check(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "r", "namespace": "default"},
            "rules": [{"apiGroups": [""], "resources": ["pods"]}, {"verbs": ["get"], "nonResourceURLs": ["/x"]}]}),
        &[
            "rules[0].verbs: Required value: verbs must contain at least one value",
            "rules[1].nonResourceURLs: Invalid value: []string{\"/x\"}: namespaced rules cannot apply to non-resource URLs",
        ],
    );
    check(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa"}, {"kind": "Robot", "name": "x"}]}),
        &[
            "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
            "subjects[0].namespace: Required value",
            "subjects[1].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
        ],
    );
    let old = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "b", "namespace": "default", "resourceVersion": "1"},
        "roleRef": {"kind": "Role", "name": "r"}});
    let mut new = old.clone();
    new["roleRef"]["name"] = json!("s");
    check_update(
        old,
        new,
        &[
            "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"s\"}: cannot change roleRef",
        ],
    );
}

#[test]
fn networking_kinds_follow_upstream() {
    check(
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "i", "namespace": "default"},
            "spec": {"rules": [{"host": "example.com", "http": {"paths": [
                {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                {"path": "api", "pathType": "Prefix", "backend": {"service": {"name": "web"}}}]}}]}}),
        &[
            "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified",
            "spec.rules[0].http.paths[1].path: Invalid value: \"api\": must be an absolute path",
            "spec.rules[0].http.paths[1].backend: Required value: port name or number is required",
        ],
    );
    check(
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "n", "namespace": "default"},
            "spec": {"podSelector": {}, "ingress": [{"from": [{}], "ports": [{"protocol": "ICMP"}]}]}}),
        &[
            "spec.ingress[0].ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"TCP\", \"UDP\", \"SCTP\"",
            "spec.ingress[0].from[0]: Required value: must specify a peer",
        ],
    );
    check(
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "e", "namespace": "default"}, "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.300"]}], "ports": [{"port": 80}]}),
        &["endpoints[0].addresses[0]: Invalid value: \"10.0.0.300\": must be a valid IPv4 address"],
    );
    check(
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "l", "namespace": "kube-node-lease"},
            "spec": {"leaseDurationSeconds": 0, "holderIdentity": "n"}}),
        &["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"],
    );
}

#[test]
fn metadata_is_validated_for_every_served_kind_without_panicking() {
    for resource in crate::catalog::resources() {
        let gvk = resource.gvk();
        for obj in [
            json!({}),
            json!({"metadata": {"name": "x", "namespace": "default"}, "spec": "nonsense",
                "data": [1], "rules": {"a": 1}, "subsets": 3}),
            json!([1, 2, 3]),
        ] {
            let mut obj = obj;
            apply_defaults(gvk, &mut obj);
            let _ = validate_create(gvk, &obj);
            let _ = validate_update(gvk, &obj, &obj);
        }
    }
}

#[test]
fn nodes_and_namespaces_check_their_specs() {
    check(
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
            "spec": {"taints": [{"key": "k", "effect": "Sometimes"}], "podCIDRs": ["10.42.0.0/33"]}}),
        &[
            "spec.taints[0].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
            "spec.podCIDRs[0]: Invalid value: \"10.42.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        ],
    );
    check(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"},
            "spec": {"finalizers": ["custom"]}}),
        &[
            "spec.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified",
        ],
    );
}
