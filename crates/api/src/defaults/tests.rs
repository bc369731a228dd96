//! Golden tests: objects as kubectl 1.32 sends them, defaulted, compared with what upstream
//! v1.33 stores (`kubectl get -o json` minus the fields the registry and allocators add).

use serde_json::{Value, json};

use super::apply_defaults;
use crate::Gvk;

/// Defaults `input` as `api_version`/`kind` and compares the result with `want`.
fn check(input: Value, want: Value) {
    let api_version = input["apiVersion"].as_str().unwrap_or_default().to_owned();
    let kind = input["kind"].as_str().unwrap_or_default().to_owned();
    let mut got = input;
    apply_defaults(Gvk::from_api_version(&api_version, &kind), &mut got);
    assert_eq!(
        got,
        want,
        "\ngot:  {}\nwant: {}",
        serde_json::to_string_pretty(&got).unwrap_or_default(),
        serde_json::to_string_pretty(&want).unwrap_or_default()
    );
}

/// The pod spec defaults every template gets, around `containers`.
fn template_spec(containers: Value) -> Value {
    json!({
        "containers": containers,
        "dnsPolicy": "ClusterFirst",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "terminationGracePeriodSeconds": 30
    })
}

fn defaulted_container(name: &str, image: &str, pull: &str) -> Value {
    json!({
        "name": name,
        "image": image,
        "imagePullPolicy": pull,
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File"
    })
}

#[test]
fn kubectl_create_deployment_gets_upstream_defaults() {
    check(
        json!({"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","creationTimestamp":null,"labels":{"app":"web"}},
            "spec":{"replicas":1,"selector":{"matchLabels":{"app":"web"}},
                "template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},
                    "spec":{"containers":[{"name":"busybox","image":"busybox","resources":{}}]}},
                "strategy":{}},"status":{}}),
        json!({"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","creationTimestamp":null,"labels":{"app":"web"}},
            "spec":{"replicas":1,"selector":{"matchLabels":{"app":"web"}},
                "template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},
                    "spec": template_spec(json!([defaulted_container("busybox", "busybox", "Always")]))},
                "strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},
                "revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}),
    );
}

#[test]
fn recreate_deployments_get_no_rolling_update_block() {
    check(
        json!({"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"d"},
            "spec":{"replicas":3,"strategy":{"type":"Recreate"},"revisionHistoryLimit":2}}),
        json!({"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"d"},
            "spec":{"replicas":3,"strategy":{"type":"Recreate"},"revisionHistoryLimit":2,
                "progressDeadlineSeconds":600}}),
    );
}

#[test]
fn kubectl_run_pod_gets_pod_only_defaults() {
    check(
        json!({"kind":"Pod","apiVersion":"v1","metadata":{"name":"web","creationTimestamp":null,"labels":{"run":"web"}},
            "spec":{"containers":[{"name":"web","image":"nginx:1.25","ports":[{"containerPort":80}],"resources":{}}],
                "restartPolicy":"Always","dnsPolicy":"ClusterFirst"},"status":{}}),
        json!({"kind":"Pod","apiVersion":"v1","metadata":{"name":"web","creationTimestamp":null,"labels":{"run":"web"}},
            "spec":{"containers":[{"name":"web","image":"nginx:1.25","imagePullPolicy":"IfNotPresent",
                    "ports":[{"containerPort":80,"protocol":"TCP"}],"resources":{},
                    "terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],
                "restartPolicy":"Always","dnsPolicy":"ClusterFirst","enableServiceLinks":true,
                "schedulerName":"default-scheduler","securityContext":{},"terminationGracePeriodSeconds":30},
            "status":{}}),
    );
}

#[test]
fn pod_probes_env_volumes_and_resources_are_defaulted() {
    check(
        json!({"kind":"Pod","apiVersion":"v1","metadata":{"name":"p"},"spec":{
            "hostNetwork": true,
            "containers":[{"name":"c","image":"app:latest",
                "ports":[{"containerPort":8080}],
                "env":[{"name":"NODE","valueFrom":{"fieldRef":{"fieldPath":"spec.nodeName"}}}],
                "resources":{"limits":{"cpu":"0.5","memory":"128Mi"}},
                "livenessProbe":{"httpGet":{"port":8080}},
                "readinessProbe":{"grpc":{"port":9000},"periodSeconds":5},
                "lifecycle":{"preStop":{"httpGet":{"port":80,"path":"/stop"}}}}],
            "volumes":[{"name":"a"},{"name":"b","secret":{"secretName":"s"}},
                {"name":"c","configMap":{"name":"cm"}},{"name":"d","hostPath":{"path":"/x"}},
                {"name":"e","projected":{"sources":[{"serviceAccountToken":{"path":"t"}},
                    {"downwardAPI":{"items":[{"path":"n","fieldRef":{"fieldPath":"metadata.name"}}]}}]}},
                {"name":"f","downwardAPI":{"items":[{"path":"l","fieldRef":{"fieldPath":"metadata.labels"}}]}}]}}),
        json!({"kind":"Pod","apiVersion":"v1","metadata":{"name":"p"},"spec":{
            "hostNetwork": true,
            "containers":[{"name":"c","image":"app:latest","imagePullPolicy":"Always",
                "ports":[{"containerPort":8080,"hostPort":8080,"protocol":"TCP"}],
                "env":[{"name":"NODE","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"spec.nodeName"}}}],
                "resources":{"limits":{"cpu":"500m","memory":"128Mi"},"requests":{"cpu":"500m","memory":"128Mi"}},
                "livenessProbe":{"httpGet":{"port":8080,"path":"/","scheme":"HTTP"},
                    "timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3},
                "readinessProbe":{"grpc":{"port":9000,"service":""},"periodSeconds":5,
                    "timeoutSeconds":1,"successThreshold":1,"failureThreshold":3},
                "lifecycle":{"preStop":{"httpGet":{"port":80,"path":"/stop","scheme":"HTTP"}}},
                "terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],
            "volumes":[{"name":"a","emptyDir":{}},{"name":"b","secret":{"secretName":"s","defaultMode":420}},
                {"name":"c","configMap":{"name":"cm","defaultMode":420}},{"name":"d","hostPath":{"path":"/x","type":""}},
                {"name":"e","projected":{"defaultMode":420,"sources":[
                    {"serviceAccountToken":{"path":"t","expirationSeconds":3600}},
                    {"downwardAPI":{"items":[{"path":"n","fieldRef":{"apiVersion":"v1","fieldPath":"metadata.name"}}]}}]}},
                {"name":"f","downwardAPI":{"defaultMode":420,"items":[{"path":"l","fieldRef":{"apiVersion":"v1","fieldPath":"metadata.labels"}}]}}],
            "dnsPolicy":"ClusterFirst","restartPolicy":"Always","enableServiceLinks":true,
            "schedulerName":"default-scheduler","securityContext":{},"terminationGracePeriodSeconds":30}}),
    );
}

#[test]
fn kubectl_create_service_gets_affinity_and_traffic_policies() {
    check(
        json!({"kind":"Service","apiVersion":"v1","metadata":{"name":"web","creationTimestamp":null,"labels":{"app":"web"}},
            "spec":{"ports":[{"name":"80-8080","protocol":"TCP","port":80,"targetPort":8080}],
                "selector":{"app":"web"},"type":"ClusterIP"},"status":{"loadBalancer":{}}}),
        json!({"kind":"Service","apiVersion":"v1","metadata":{"name":"web","creationTimestamp":null,"labels":{"app":"web"}},
            "spec":{"ports":[{"name":"80-8080","protocol":"TCP","port":80,"targetPort":8080}],
                "selector":{"app":"web"},"type":"ClusterIP","sessionAffinity":"None",
                "internalTrafficPolicy":"Cluster"},"status":{"loadBalancer":{}}}),
    );
}

#[test]
fn load_balancer_services_default_target_ports_and_external_policy() {
    check(
        json!({"kind":"Service","apiVersion":"v1","metadata":{"name":"lb"},
            "spec":{"type":"LoadBalancer","sessionAffinity":"ClientIP","ports":[{"port":443,"targetPort":0}]}}),
        json!({"kind":"Service","apiVersion":"v1","metadata":{"name":"lb"},
            "spec":{"type":"LoadBalancer","sessionAffinity":"ClientIP",
                "sessionAffinityConfig":{"clientIP":{"timeoutSeconds":10800}},
                "ports":[{"port":443,"targetPort":443,"protocol":"TCP"}],
                "externalTrafficPolicy":"Cluster","internalTrafficPolicy":"Cluster",
                "allocateLoadBalancerNodePorts":true}}),
    );
}

#[test]
fn statefulsets_default_policies_and_claim_templates() {
    check(
        json!({"kind":"StatefulSet","apiVersion":"apps/v1","metadata":{"name":"db"},"spec":{
            "serviceName":"db","selector":{"matchLabels":{"app":"db"}},
            "template":{"metadata":{"labels":{"app":"db"}},"spec":{"containers":[{"name":"db","image":"redis:7"}]}},
            "volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"accessModes":["ReadWriteOnce"],
                "resources":{"requests":{"storage":"1Gi"}}}}]}}),
        json!({"kind":"StatefulSet","apiVersion":"apps/v1","metadata":{"name":"db"},"spec":{
            "serviceName":"db","selector":{"matchLabels":{"app":"db"}},
            "template":{"metadata":{"labels":{"app":"db"}},"spec":template_spec(json!([{
                "name":"db","image":"redis:7","imagePullPolicy":"IfNotPresent",
                "terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}]))},
            "volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"accessModes":["ReadWriteOnce"],
                "resources":{"requests":{"storage":"1Gi"}},"volumeMode":"Filesystem"},"status":{"phase":"Pending"}}],
            "podManagementPolicy":"OrderedReady",
            "updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":0}},
            "persistentVolumeClaimRetentionPolicy":{"whenDeleted":"Retain","whenScaled":"Retain"},
            "replicas":1,"revisionHistoryLimit":10}}),
    );
}

#[test]
fn daemonsets_and_replicasets_get_their_defaults() {
    check(
        json!({"kind":"DaemonSet","apiVersion":"apps/v1","metadata":{"name":"ds"},"spec":{}}),
        json!({"kind":"DaemonSet","apiVersion":"apps/v1","metadata":{"name":"ds"},"spec":{
            "updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":1,"maxSurge":0}},
            "revisionHistoryLimit":10}}),
    );
    check(
        json!({"kind":"ReplicaSet","apiVersion":"apps/v1","metadata":{"name":"rs"}}),
        json!({"kind":"ReplicaSet","apiVersion":"apps/v1","metadata":{"name":"rs"},"spec":{"replicas":1}}),
    );
}

#[test]
fn kubectl_create_job_gets_batch_defaults_and_template_labels() {
    check(
        json!({"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"j","creationTimestamp":null},
            "spec":{"template":{"metadata":{"creationTimestamp":null},
                "spec":{"containers":[{"name":"j","image":"busybox","resources":{}}],"restartPolicy":"Never"}}},
            "status":{}}),
        json!({"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"j","creationTimestamp":null},
            "spec":{"template":{"metadata":{"creationTimestamp":null},
                "spec":{"containers":[defaulted_container("j","busybox","Always")],"restartPolicy":"Never",
                    "dnsPolicy":"ClusterFirst","schedulerName":"default-scheduler","securityContext":{},
                    "terminationGracePeriodSeconds":30}},
                "completions":1,"parallelism":1,"backoffLimit":6,"completionMode":"NonIndexed",
                "suspend":false,"podReplacementPolicy":"TerminatingOrFailed","manualSelector":false},
            "status":{}}),
    );
    // Completions stay unset when parallelism is given; a failure policy selects `Failed`.
    check(
        json!({"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"j","labels":{"x":"y"}},"spec":{"parallelism":3,
            "podFailurePolicy":{"rules":[{"action":"Ignore","onPodConditions":[{"type":"DisruptionTarget"}]}]},
            "template":{"metadata":{"labels":{"a":"b"}}}}}),
        json!({"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"j","labels":{"x":"y"}},"spec":{"parallelism":3,
            "podFailurePolicy":{"rules":[{"action":"Ignore","onPodConditions":[{"type":"DisruptionTarget","status":"True"}]}]},
            "template":{"metadata":{"labels":{"a":"b"}}},
            "backoffLimit":6,"completionMode":"NonIndexed","suspend":false,
            "podReplacementPolicy":"Failed","manualSelector":false}}),
    );
}

#[test]
fn kubectl_create_cronjob_defaults_the_schedule_policy_not_the_job_spec() {
    check(
        json!({"kind":"CronJob","apiVersion":"batch/v1","metadata":{"name":"c","creationTimestamp":null},
            "spec":{"schedule":"*/1 * * * *","jobTemplate":{"metadata":{"name":"c","creationTimestamp":null},
                "spec":{"template":{"metadata":{"creationTimestamp":null},
                    "spec":{"containers":[{"name":"c","image":"busybox","resources":{}}],"restartPolicy":"OnFailure"}}}}},
            "status":{}}),
        json!({"kind":"CronJob","apiVersion":"batch/v1","metadata":{"name":"c","creationTimestamp":null},
            "spec":{"schedule":"*/1 * * * *","jobTemplate":{"metadata":{"name":"c","creationTimestamp":null},
                "spec":{"template":{"metadata":{"creationTimestamp":null},
                    "spec":{"containers":[defaulted_container("c","busybox","Always")],"restartPolicy":"OnFailure",
                        "dnsPolicy":"ClusterFirst","schedulerName":"default-scheduler","securityContext":{},
                        "terminationGracePeriodSeconds":30}}}},
                "concurrencyPolicy":"Allow","suspend":false,"successfulJobsHistoryLimit":3,"failedJobsHistoryLimit":1},
            "status":{}}),
    );
}

#[test]
fn namespaces_get_the_name_label_and_active_phase() {
    check(
        json!({"kind":"Namespace","apiVersion":"v1","metadata":{"name":"dev","creationTimestamp":null},"spec":{},"status":{}}),
        json!({"kind":"Namespace","apiVersion":"v1","metadata":{"name":"dev","creationTimestamp":null,
            "labels":{"kubernetes.io/metadata.name":"dev"}},"spec":{},"status":{"phase":"Active"}}),
    );
}

#[test]
fn secrets_default_to_opaque_and_fold_string_data_into_data() {
    check(
        json!({"kind":"Secret","apiVersion":"v1","metadata":{"name":"s"},"data":{"a":"eA=="},"stringData":{"b":"hi","a":"yo"}}),
        json!({"kind":"Secret","apiVersion":"v1","metadata":{"name":"s"},"type":"Opaque","data":{"a":"eW8=","b":"aGk="}}),
    );
    check(
        json!({"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c"}}),
        json!({"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c"}}),
    );
}

#[test]
fn volumes_and_claims_get_modes_policies_and_pending_phases() {
    check(
        json!({"kind":"PersistentVolumeClaim","apiVersion":"v1","metadata":{"name":"c"},
            "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1024Mi"}}}}),
        json!({"kind":"PersistentVolumeClaim","apiVersion":"v1","metadata":{"name":"c"},
            "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}},"volumeMode":"Filesystem"},
            "status":{"phase":"Pending"}}),
    );
    check(
        json!({"kind":"PersistentVolume","apiVersion":"v1","metadata":{"name":"v"},
            "spec":{"capacity":{"storage":"5Gi"},"accessModes":["ReadWriteOnce"],"hostPath":{"path":"/data"}}}),
        json!({"kind":"PersistentVolume","apiVersion":"v1","metadata":{"name":"v"},
            "spec":{"capacity":{"storage":"5Gi"},"accessModes":["ReadWriteOnce"],"hostPath":{"path":"/data","type":""},
                "persistentVolumeReclaimPolicy":"Retain","volumeMode":"Filesystem"},
            "status":{"phase":"Pending"}}),
    );
    check(
        json!({"kind":"StorageClass","apiVersion":"storage.k8s.io/v1","metadata":{"name":"s"},"provisioner":"x.io/p"}),
        json!({"kind":"StorageClass","apiVersion":"storage.k8s.io/v1","metadata":{"name":"s"},"provisioner":"x.io/p",
            "reclaimPolicy":"Delete","volumeBindingMode":"Immediate"}),
    );
}

#[test]
fn replication_controllers_take_selector_and_labels_from_the_template() {
    check(
        json!({"kind":"ReplicationController","apiVersion":"v1","metadata":{"name":"rc"},
            "spec":{"template":{"metadata":{"labels":{"app":"x"}},"spec":{"containers":[{"name":"c","image":"i:1"}]}}}}),
        json!({"kind":"ReplicationController","apiVersion":"v1","metadata":{"name":"rc","labels":{"app":"x"}},
            "spec":{"replicas":1,"selector":{"app":"x"},"template":{"metadata":{"labels":{"app":"x"}},
                "spec":template_spec(json!([{"name":"c","image":"i:1","imagePullPolicy":"IfNotPresent",
                    "terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}]))}}}),
    );
}

#[test]
fn small_kinds_of_other_groups_get_their_defaults() {
    check(
        json!({"kind":"RoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"b"},
            "roleRef":{"kind":"Role","name":"r"},
            "subjects":[{"kind":"User","name":"u"},{"kind":"Group","name":"g"},{"kind":"ServiceAccount","name":"s","namespace":"n"}]}),
        json!({"kind":"RoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"b"},
            "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"r"},
            "subjects":[{"kind":"User","name":"u","apiGroup":"rbac.authorization.k8s.io"},
                {"kind":"Group","name":"g","apiGroup":"rbac.authorization.k8s.io"},
                {"kind":"ServiceAccount","name":"s","namespace":"n"}]}),
    );
    check(
        json!({"kind":"PriorityClass","apiVersion":"scheduling.k8s.io/v1","metadata":{"name":"p"},"value":10}),
        json!({"kind":"PriorityClass","apiVersion":"scheduling.k8s.io/v1","metadata":{"name":"p"},"value":10,
            "preemptionPolicy":"PreemptLowerPriority"}),
    );
    check(
        json!({"kind":"NetworkPolicy","apiVersion":"networking.k8s.io/v1","metadata":{"name":"n"},
            "spec":{"podSelector":{},"egress":[{"ports":[{"port":53}]}]}}),
        json!({"kind":"NetworkPolicy","apiVersion":"networking.k8s.io/v1","metadata":{"name":"n"},
            "spec":{"podSelector":{},"egress":[{"ports":[{"port":53,"protocol":"TCP"}]}],
                "policyTypes":["Ingress","Egress"]}}),
    );
    check(
        json!({"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"name":"e"},
            "addressType":"IPv4","endpoints":[],"ports":[{"port":80}]}),
        json!({"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"name":"e"},
            "addressType":"IPv4","endpoints":[],"ports":[{"port":80,"name":"","protocol":"TCP"}]}),
    );
    check(
        json!({"kind":"Endpoints","apiVersion":"v1","metadata":{"name":"e"},
            "subsets":[{"addresses":[{"ip":"10.0.0.1"}],"ports":[{"port":80}]}]}),
        json!({"kind":"Endpoints","apiVersion":"v1","metadata":{"name":"e"},
            "subsets":[{"addresses":[{"ip":"10.0.0.1"}],"ports":[{"port":80,"protocol":"TCP"}]}]}),
    );
    check(
        json!({"kind":"Lease","apiVersion":"coordination.k8s.io/v1","metadata":{"name":"l"},"spec":{}}),
        json!({"kind":"Lease","apiVersion":"coordination.k8s.io/v1","metadata":{"name":"l"},"spec":{}}),
    );
}

#[test]
fn autoscalers_get_min_replicas_cpu_metric_and_behavior_rules() {
    check(
        json!({"kind":"HorizontalPodAutoscaler","apiVersion":"autoscaling/v2","metadata":{"name":"h"},
            "spec":{"maxReplicas":5,"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"web"},
                "behavior":{"scaleDown":{"stabilizationWindowSeconds":60}}}}),
        json!({"kind":"HorizontalPodAutoscaler","apiVersion":"autoscaling/v2","metadata":{"name":"h"},
            "spec":{"maxReplicas":5,"minReplicas":1,
                "scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"web"},
                "metrics":[{"type":"Resource","resource":{"name":"cpu","target":{"type":"Utilization","averageUtilization":80}}}],
                "behavior":{
                    "scaleDown":{"stabilizationWindowSeconds":60,"selectPolicy":"Max",
                        "policies":[{"type":"Percent","value":100,"periodSeconds":15}]},
                    "scaleUp":{"stabilizationWindowSeconds":0,"selectPolicy":"Max",
                        "policies":[{"type":"Pods","value":4,"periodSeconds":15},{"type":"Percent","value":100,"periodSeconds":15}]}}}}),
    );
    check(
        json!({"kind":"HorizontalPodAutoscaler","apiVersion":"autoscaling/v1","metadata":{"name":"h"},"spec":{"maxReplicas":3}}),
        json!({"kind":"HorizontalPodAutoscaler","apiVersion":"autoscaling/v1","metadata":{"name":"h"},"spec":{"maxReplicas":3,"minReplicas":1}}),
    );
}

#[test]
fn limit_ranges_default_container_limits_from_max_and_requests_from_limits() {
    check(
        json!({"kind":"LimitRange","apiVersion":"v1","metadata":{"name":"l"},"spec":{"limits":[
            {"type":"Container","max":{"cpu":"2"},"min":{"memory":"64Mi"}},
            {"type":"Pod","max":{"cpu":"4"}}]}}),
        json!({"kind":"LimitRange","apiVersion":"v1","metadata":{"name":"l"},"spec":{"limits":[
            {"type":"Container","max":{"cpu":"2"},"min":{"memory":"64Mi"},
                "default":{"cpu":"2"},"defaultRequest":{"cpu":"2","memory":"64Mi"}},
            {"type":"Pod","max":{"cpu":"4"}}]}}),
    );
}

#[test]
fn malformed_objects_are_left_alone_without_panicking() {
    for kind in [
        "Pod",
        "Service",
        "Secret",
        "Namespace",
        "Node",
        "PersistentVolume",
    ] {
        let mut weird = json!({"spec": "x", "metadata": 3, "status": [], "stringData": 1});
        apply_defaults(Gvk::new("", "v1", kind), &mut weird);
    }
    for (group, kind) in [
        ("apps", "Deployment"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("batch", "Job"),
        ("batch", "CronJob"),
    ] {
        let mut weird = json!({"spec": {"template": {"spec": {"containers": [1, "x", {"ports": 5}]}},
            "replicas": "x", "strategy": 7, "updateStrategy": [], "jobTemplate": {"spec": 1}}});
        apply_defaults(Gvk::new(group, "v1", kind), &mut weird);
    }
    let mut not_an_object = json!([1, 2]);
    apply_defaults(Gvk::new("", "v1", "Pod"), &mut not_an_object);
    assert_eq!(not_an_object, json!([1, 2]));
}
