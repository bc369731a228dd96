//! The registry driven directly over the embedded SQLite datastore: object lifecycle,
//! optimistic concurrency, subresources, deletion, admission, pagination, selectors and the
//! watch cache, each checked against upstream's observable behaviour.

/// Every test sits in this module so that `cargo test -p tug-apiserver registry` selects them.
mod registry {
    use std::{sync::Arc, time::Duration};

    use anyhow::{Context, bail, ensure};
    use futures::StreamExt;
    use serde_json::{Value, json};
    use tug_apimachinery::{
        fields::FieldSelector,
        labels::Selector,
        watch::{EventType, WatchEvent},
    };
    use tug_apiserver::registry::{
        DeleteOptions, EventStream, ListOptions, Registry, RegistryOptions, RequestContext,
        ResourceStore, ResourceVersionQuery, Update, WatchOptions,
    };
    use tug_storage::sqlite::{SqliteConfig, SqliteStore};

    /// How long a test waits for something that must happen.
    const DEADLINE: Duration = Duration::from_secs(20);

    /// A registry over a fresh datastore; the directory lives as long as the registry.
    struct Cluster {
        registry: Registry,
        _dir: tempfile::TempDir,
    }

    impl Cluster {
        async fn start() -> anyhow::Result<Self> {
            Self::start_with(RegistryOptions {
                bookmark_interval: Duration::from_millis(200),
                progress_interval: Duration::from_millis(200),
                ..RegistryOptions::default()
            })
            .await
        }

        async fn start_with(options: RegistryOptions) -> anyhow::Result<Self> {
            let dir = tempfile::tempdir()?;
            let mut config = SqliteConfig::new(dir.path().join("state.db"));
            config.compaction_interval = None;
            let store = SqliteStore::open(config).await?;
            let registry = Registry::start_with_options(Arc::new(store), options).await?;
            Ok(Self {
                registry,
                _dir: dir,
            })
        }

        fn store(
            &self,
            group: &str,
            version: &str,
            plural: &str,
        ) -> anyhow::Result<&ResourceStore> {
            self.registry
                .get(group, version, plural)
                .map(AsRef::as_ref)
                .with_context(|| format!("{group}/{version}/{plural} is not served"))
        }

        fn pods(&self) -> anyhow::Result<&ResourceStore> {
            self.store("", "v1", "pods")
        }

        fn configmaps(&self) -> anyhow::Result<&ResourceStore> {
            self.store("", "v1", "configmaps")
        }

        fn deployments(&self) -> anyhow::Result<&ResourceStore> {
            self.store("apps", "v1", "deployments")
        }

        fn namespaces(&self) -> anyhow::Result<&ResourceStore> {
            self.store("", "v1", "namespaces")
        }
    }

    fn ns(namespace: &str) -> RequestContext {
        RequestContext {
            namespace: Some(namespace.to_owned()),
            ..RequestContext::default()
        }
    }

    fn cluster_scope() -> RequestContext {
        RequestContext::default()
    }

    fn dry_run(namespace: &str) -> RequestContext {
        RequestContext {
            dry_run: true,
            ..ns(namespace)
        }
    }

    fn rv(obj: &Value) -> String {
        obj["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn rv_num(obj: &Value) -> i64 {
        rv(obj).parse().unwrap_or(0)
    }

    fn names(items: &[Value]) -> Vec<String> {
        items
            .iter()
            .map(|i| {
                i["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    fn latest() -> ResourceVersionQuery {
        ResourceVersionQuery::default()
    }

    fn configmap(name: &str, labels: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})
    }

    fn deployment(name: &str, replicas: i64) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
            },
            "status": {"replicas": 99}
        })
    }

    fn pod(name: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], "terminationGracePeriodSeconds": 30}
        })
    }

    /// Expects an error `Status` with this code and reason; returns its message.
    fn expect_status<T: std::fmt::Debug>(
        result: Result<T, Box<tug_apimachinery::Status>>,
        code: i32,
        reason: &str,
    ) -> anyhow::Result<String> {
        match result {
            Err(status) if status.code == code && status.reason == reason => Ok(status.message),
            Err(status) => bail!(
                "expected {code} {reason}, got {} {}: {}",
                status.code,
                status.reason,
                status.message
            ),
            Ok(value) => bail!("expected {code} {reason}, got success: {value:?}"),
        }
    }

    /// The next event of a watch, within the deadline.
    async fn next(stream: &mut EventStream) -> anyhow::Result<WatchEvent> {
        tokio::time::timeout(DEADLINE, stream.next())
            .await
            .context("no watch event before the deadline")?
            .context("the watch ended")
    }

    /// The next event that is not a bookmark.
    async fn next_change(stream: &mut EventStream) -> anyhow::Result<WatchEvent> {
        loop {
            let event = next(stream).await?;
            if event.event_type != EventType::Bookmark {
                return Ok(event);
            }
        }
    }

    fn kind_and_name(event: &WatchEvent) -> (EventType, String) {
        (
            event.event_type,
            event.object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    }

    #[tokio::test]
    async fn bootstrap_namespaces_exist_after_start_with_their_name_label() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let list = c
            .namespaces()?
            .list(&cluster_scope(), &ListOptions::default())
            .await?;
        let mut got = names(&list.items);
        got.sort();
        assert_eq!(
            got,
            ["default", "kube-node-lease", "kube-public", "kube-system"]
        );
        for item in &list.items {
            let name = item["metadata"]["name"].clone();
            assert_eq!(
                item["metadata"]["labels"]["kubernetes.io/metadata.name"],
                name
            );
            assert_eq!(item["status"]["phase"], json!("Active"));
            assert_eq!(item["spec"]["finalizers"], json!(["kubernetes"]));
            assert_eq!(item["apiVersion"], json!("v1"));
            assert_eq!(item["kind"], json!("Namespace"));
        }
        Ok(())
    }

    #[tokio::test]
    async fn objects_round_trip_through_create_get_list_update_and_delete() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let cms = c.configmaps()?;
        let created = cms
            .create(
                &ns("default"),
                configmap("a", json!({"x": "1"})),
                None,
                None,
            )
            .await?;
        assert_eq!(created["metadata"]["namespace"], json!("default"));
        assert_eq!(created["metadata"]["uid"].as_str().map(str::len), Some(36));
        assert!(
            created["metadata"]["creationTimestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
        assert!(rv_num(&created) > 0);
        assert!(created["metadata"].get("generation").is_none());

        let got = cms.get(&ns("default"), "a", None, &latest()).await?;
        assert_eq!(got, created);

        let list = cms.list(&ns("default"), &ListOptions::default()).await?;
        assert_eq!(names(&list.items), ["a"]);
        assert!(list.resource_version.parse::<i64>()? >= rv_num(&created));

        let mut changed = created.clone();
        changed["data"]["k"] = json!("w");
        let updated = cms
            .update(&ns("default"), "a", None, Update::Replace(changed))
            .await?;
        assert!(!updated.created);
        assert_eq!(updated.object["data"]["k"], json!("w"));
        assert!(rv_num(&updated.object) > rv_num(&created));
        assert_eq!(
            updated.object["metadata"]["uid"],
            created["metadata"]["uid"]
        );

        // An update that changes nothing writes nothing.
        let again = cms
            .update(
                &ns("default"),
                "a",
                None,
                Update::Replace(updated.object.clone()),
            )
            .await?;
        assert_eq!(rv(&again.object), rv(&updated.object));

        let deleted = cms
            .delete(&ns("default"), "a", &DeleteOptions::default())
            .await?;
        assert!(deleted.finished);
        assert_eq!(deleted.object["data"]["k"], json!("w"));
        let msg = expect_status(
            cms.get(&ns("default"), "a", None, &latest()).await,
            404,
            "NotFound",
        )?;
        assert_eq!(msg, "configmaps \"a\" not found");

        // A cluster-scoped kind in a named group.
        let classes = c.store("scheduling.k8s.io", "v1", "priorityclasses")?;
        let pc = classes
        .create(
            &cluster_scope(),
            json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high", "namespace": "ignored"}, "value": 1000}),
            None,
            None,
        )
        .await?;
        assert!(pc["metadata"].get("namespace").is_none());
        let msg = expect_status(
            classes
                .delete(&cluster_scope(), "low", &DeleteOptions::default())
                .await,
            404,
            "NotFound",
        )?;
        assert_eq!(msg, "priorityclasses.scheduling.k8s.io \"low\" not found");
        Ok(())
    }

    #[tokio::test]
    async fn create_checks_namespaces_names_and_resource_versions() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let cms = c.configmaps()?;
        let mut other = configmap("a", json!({}));
        other["metadata"]["namespace"] = json!("kube-system");
        let msg = expect_status(
            cms.create(&ns("default"), other, None, None).await,
            400,
            "BadRequest",
        )?;
        assert_eq!(
            msg,
            "the namespace of the provided object does not match the namespace sent on the request"
        );

        let msg = expect_status(
            cms.create(&ns("default"), configmap("Bad_Name", json!({})), None, None)
                .await,
            422,
            "Invalid",
        )?;
        assert!(
        msg.starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"),
        "{msg}"
    );
        let msg = expect_status(
            cms.create(
                &ns("default"),
                configmap("l", json!({"bad key!": "x"})),
                None,
                None,
            )
            .await,
            422,
            "Invalid",
        )?;
        assert!(
            msg.contains("metadata.labels: Invalid value: \"bad key!\""),
            "{msg}"
        );

        let mut with_rv = configmap("r", json!({}));
        with_rv["metadata"]["resourceVersion"] = json!("5");
        let msg = expect_status(
            cms.create(&ns("default"), with_rv, None, None).await,
            500,
            "InternalError",
        )?;
        assert!(msg.contains("resourceVersion should not be set on objects to be created"));

        cms.create(&ns("default"), configmap("dup", json!({})), None, None)
            .await?;
        let msg = expect_status(
            cms.create(&ns("default"), configmap("dup", json!({})), None, None)
                .await,
            409,
            "AlreadyExists",
        )?;
        assert_eq!(msg, "configmaps \"dup\" already exists");
        Ok(())
    }

    #[tokio::test]
    async fn generate_name_appends_five_characters_from_upstreams_alphabet() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..5 {
            let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "web-"}});
            let created = c
                .configmaps()?
                .create(&ns("default"), obj, None, None)
                .await?;
            let name = created["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            ensure!(
                name.len() == 9 && name.starts_with("web-"),
                "generated {name}"
            );
            ensure!(
                name[4..]
                    .chars()
                    .all(|ch| "bcdfghjklmnpqrstvwxz2456789".contains(ch)),
                "generated {name}"
            );
            assert_eq!(created["metadata"]["generateName"], json!("web-"));
            seen.insert(name);
        }
        assert_eq!(seen.len(), 5);
        Ok(())
    }

    #[tokio::test]
    async fn stale_resource_versions_are_optimistic_lock_conflicts() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let deploys = c.deployments()?;
        let created = deploys
            .create(&ns("default"), deployment("web", 1), None, None)
            .await?;
        let mut first = created.clone();
        first["spec"]["replicas"] = json!(2);
        deploys
            .update(&ns("default"), "web", None, Update::Replace(first))
            .await?;
        let mut stale = created.clone();
        stale["spec"]["replicas"] = json!(3);
        let msg = expect_status(
            deploys
                .update(&ns("default"), "web", None, Update::Replace(stale))
                .await,
            409,
            "Conflict",
        )?;
        assert_eq!(
            msg,
            "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
        );

        // Without a resource version the update is unconditional; patches retry after races.
        let mut unconditional = created.clone();
        unconditional["metadata"]
            .as_object_mut()
            .map(|m| m.remove("resourceVersion"));
        unconditional["spec"]["replicas"] = json!(4);
        let updated = deploys
            .update(&ns("default"), "web", None, Update::Replace(unconditional))
            .await?;
        assert_eq!(updated.object["spec"]["replicas"], json!(4));
        let patched = deploys
            .update(
                &ns("default"),
                "web",
                None,
                Update::Transform(Box::new(|current| {
                    let mut obj = current.cloned().unwrap_or_default();
                    obj["spec"]["replicas"] = json!(5);
                    Ok(obj)
                })),
            )
            .await?;
        assert_eq!(patched.object["spec"]["replicas"], json!(5));
        Ok(())
    }

    #[tokio::test]
    async fn generation_moves_only_when_the_spec_changes() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let deploys = c.deployments()?;
        let created = deploys
            .create(&ns("default"), deployment("web", 1), None, None)
            .await?;
        assert_eq!(created["metadata"]["generation"], json!(1));
        assert_eq!(created["status"], json!({}), "create clears the status");

        let mut relabelled = created.clone();
        relabelled["metadata"]["labels"] = json!({"tier": "front"});
        let relabelled = deploys
            .update(&ns("default"), "web", None, Update::Replace(relabelled))
            .await?
            .object;
        assert_eq!(relabelled["metadata"]["generation"], json!(1));

        let mut scaled = relabelled.clone();
        scaled["spec"]["replicas"] = json!(3);
        scaled["metadata"]["generation"] = json!(7);
        let scaled = deploys
            .update(&ns("default"), "web", None, Update::Replace(scaled))
            .await?
            .object;
        assert_eq!(
            scaled["metadata"]["generation"],
            json!(2),
            "clients cannot set generation"
        );
        Ok(())
    }

    #[tokio::test]
    async fn status_and_main_resource_updates_only_touch_their_half() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let deploys = c.deployments()?;
        let created = deploys
            .create(&ns("default"), deployment("web", 1), None, None)
            .await?;

        let mut status_write = created.clone();
        status_write["status"] = json!({"replicas": 1, "readyReplicas": 1});
        status_write["spec"]["replicas"] = json!(10);
        let after_status = deploys
            .update(
                &ns("default"),
                "web",
                Some("status"),
                Update::Replace(status_write),
            )
            .await?
            .object;
        assert_eq!(
            after_status["status"],
            json!({"replicas": 1, "readyReplicas": 1})
        );
        assert_eq!(
            after_status["spec"]["replicas"],
            json!(1),
            "status updates keep the spec"
        );
        assert_eq!(after_status["metadata"]["generation"], json!(1));

        let mut main_write = after_status.clone();
        main_write["status"] = json!({});
        main_write["spec"]["replicas"] = json!(2);
        let after_main = deploys
            .update(&ns("default"), "web", None, Update::Replace(main_write))
            .await?
            .object;
        assert_eq!(
            after_main["status"],
            json!({"replicas": 1, "readyReplicas": 1})
        );
        assert_eq!(after_main["spec"]["replicas"], json!(2));

        let got = deploys
            .get(&ns("default"), "web", Some("status"), &latest())
            .await?;
        assert_eq!(got, after_main);
        Ok(())
    }

    #[tokio::test]
    async fn scale_maps_onto_spec_replicas() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let deploys = c.deployments()?;
        let created = deploys
            .create(&ns("default"), deployment("web", 2), None, None)
            .await?;
        let scale = deploys
            .get(&ns("default"), "web", Some("scale"), &latest())
            .await?;
        assert_eq!(scale["apiVersion"], json!("autoscaling/v1"));
        assert_eq!(scale["kind"], json!("Scale"));
        assert_eq!(scale["spec"], json!({"replicas": 2}));
        assert_eq!(
            scale["status"],
            json!({"replicas": 0, "selector": "app=web"})
        );
        assert_eq!(scale["metadata"]["uid"], created["metadata"]["uid"]);
        assert_eq!(rv(&scale), rv(&created));

        let mut wanted = scale.clone();
        wanted["spec"]["replicas"] = json!(5);
        let scaled = deploys
            .update(
                &ns("default"),
                "web",
                Some("scale"),
                Update::Replace(wanted),
            )
            .await?;
        assert_eq!(scaled.object["kind"], json!("Scale"));
        assert_eq!(scaled.object["spec"]["replicas"], json!(5));
        let dep = deploys.get(&ns("default"), "web", None, &latest()).await?;
        assert_eq!(dep["spec"]["replicas"], json!(5));
        assert_eq!(dep["metadata"]["generation"], json!(2));

        // The first scale's resource version is stale now.
        let mut stale = scale.clone();
        stale["spec"]["replicas"] = json!(1);
        expect_status(
            deploys
                .update(&ns("default"), "web", Some("scale"), Update::Replace(stale))
                .await,
            409,
            "Conflict",
        )?;
        let mut negative = scaled.object.clone();
        negative["spec"]["replicas"] = json!(-1);
        let msg = expect_status(
            deploys
                .update(
                    &ns("default"),
                    "web",
                    Some("scale"),
                    Update::Replace(negative),
                )
                .await,
            422,
            "Invalid",
        )?;
        assert_eq!(
            msg,
            "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        expect_status(
            deploys
                .get(&ns("default"), "nope", Some("scale"), &latest())
                .await,
            404,
            "NotFound",
        )?;
        Ok(())
    }

    #[tokio::test]
    async fn binding_assigns_a_node_once_and_marks_the_pod_scheduled() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let pods = c.pods()?;
        let created = pods.create(&ns("default"), pod("p"), None, None).await?;
        assert_eq!(
            created["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
        assert_eq!(created["metadata"]["generation"], json!(1));

        let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}});
        let status = pods
            .create(&ns("default"), binding.clone(), Some("p"), Some("binding"))
            .await?;
        assert_eq!(status["status"], json!("Success"));
        assert_eq!(status["code"], json!(201));

        let bound = pods.get(&ns("default"), "p", None, &latest()).await?;
        assert_eq!(bound["spec"]["nodeName"], json!("n1"));
        let conditions = bound["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0]["type"], json!("PodScheduled"));
        assert_eq!(conditions[0]["status"], json!("True"));

        let msg = expect_status(
            pods.create(&ns("default"), binding, Some("p"), Some("binding"))
                .await,
            409,
            "Conflict",
        )?;
        assert_eq!(
            msg,
            "Operation cannot be fulfilled on pods/binding \"p\": pod p is already assigned to node \"n1\""
        );
        Ok(())
    }

    #[tokio::test]
    async fn finalizers_hold_deletion_until_the_last_one_is_removed() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let cms = c.configmaps()?;
        let mut obj = configmap("held", json!({}));
        obj["metadata"]["finalizers"] = json!(["example.com/hold"]);
        cms.create(&ns("default"), obj, None, None).await?;
        let mut watch = cms
            .watch(
                &ns("default"),
                &WatchOptions {
                    version: ResourceVersionQuery {
                        resource_version: Some("0".into()),
                        ..ResourceVersionQuery::default()
                    },
                    ..WatchOptions::default()
                },
            )
            .await?;
        assert_eq!(
            kind_and_name(&next_change(&mut watch).await?),
            (EventType::Added, "held".into())
        );

        let pending = cms
            .delete(&ns("default"), "held", &DeleteOptions::default())
            .await?;
        assert!(!pending.finished);
        assert!(pending.object["metadata"]["deletionTimestamp"].is_string());
        assert_eq!(
            pending.object["metadata"]["deletionGracePeriodSeconds"],
            json!(0)
        );
        let still = cms.get(&ns("default"), "held", None, &latest()).await?;
        assert_eq!(still["metadata"]["finalizers"], json!(["example.com/hold"]));

        // Deleting again changes nothing.
        let again = cms
            .delete(&ns("default"), "held", &DeleteOptions::default())
            .await?;
        assert!(!again.finished);
        assert_eq!(rv(&again.object), rv(&still));

        // No new finalizers while deleting.
        let mut more = still.clone();
        more["metadata"]["finalizers"] = json!(["example.com/hold", "example.com/more"]);
        expect_status(
            cms.update(&ns("default"), "held", None, Update::Replace(more))
                .await,
            422,
            "Invalid",
        )?;

        let mut released = still.clone();
        released["metadata"]
            .as_object_mut()
            .map(|m| m.remove("finalizers"));
        cms.update(&ns("default"), "held", None, Update::Replace(released))
            .await?;
        expect_status(
            cms.get(&ns("default"), "held", None, &latest()).await,
            404,
            "NotFound",
        )?;

        assert_eq!(
            kind_and_name(&next_change(&mut watch).await?),
            (EventType::Modified, "held".into())
        );
        let gone = next_change(&mut watch).await?;
        assert_eq!(kind_and_name(&gone), (EventType::Deleted, "held".into()));
        // Exactly one DELETED.
        let extra = tokio::time::timeout(Duration::from_millis(500), next_change(&mut watch)).await;
        ensure!(
            extra.is_err(),
            "unexpected event after the deletion: {extra:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn propagation_policies_leave_gc_finalizers() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let deploys = c.deployments()?;
        deploys
            .create(&ns("default"), deployment("orphaned", 1), None, None)
            .await?;
        let orphan = deploys
            .delete(
                &ns("default"),
                "orphaned",
                &DeleteOptions {
                    propagation_policy: Some("Orphan".into()),
                    ..DeleteOptions::default()
                },
            )
            .await?;
        assert!(!orphan.finished);
        assert_eq!(orphan.object["metadata"]["finalizers"], json!(["orphan"]));
        assert_eq!(orphan.object["metadata"]["generation"], json!(2));

        deploys
            .create(&ns("default"), deployment("fg", 1), None, None)
            .await?;
        let fg = deploys
            .delete(
                &ns("default"),
                "fg",
                &DeleteOptions {
                    propagation_policy: Some("Foreground".into()),
                    ..DeleteOptions::default()
                },
            )
            .await?;
        assert_eq!(
            fg.object["metadata"]["finalizers"],
            json!(["foregroundDeletion"])
        );

        deploys
            .create(&ns("default"), deployment("bg", 1), None, None)
            .await?;
        let bg = deploys
            .delete(
                &ns("default"),
                "bg",
                &DeleteOptions {
                    propagation_policy: Some("Background".into()),
                    ..DeleteOptions::default()
                },
            )
            .await?;
        assert!(bg.finished);

        // Core v1 ReplicationControllers orphan by default.
        let rcs = c.store("", "v1", "replicationcontrollers")?;
        rcs.create(
        &ns("default"),
        json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"}, "spec": {"selector": {"a": "b"}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
        None,
        None,
    )
    .await?;
        let rc = rcs
            .delete(&ns("default"), "rc", &DeleteOptions::default())
            .await?;
        assert_eq!(rc.object["metadata"]["finalizers"], json!(["orphan"]));

        // Preconditions.
        deploys
            .create(&ns("default"), deployment("pre", 1), None, None)
            .await?;
        let msg = expect_status(
            deploys
                .delete(
                    &ns("default"),
                    "pre",
                    &DeleteOptions {
                        precondition_uid: Some("nope".into()),
                        ..DeleteOptions::default()
                    },
                )
                .await,
            409,
            "Conflict",
        )?;
        assert!(msg.starts_with("Operation cannot be fulfilled on Deployment.apps \"pre\": the UID in the precondition (nope) does not match the UID in record"), "{msg}");
        Ok(())
    }

    #[tokio::test]
    async fn scheduled_pods_are_deleted_gracefully_and_forced_deletes_are_immediate()
    -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let pods = c.pods()?;
        // An unscheduled pod goes at once.
        pods.create(&ns("default"), pod("unscheduled"), None, None)
            .await?;
        let gone = pods
            .delete(&ns("default"), "unscheduled", &DeleteOptions::default())
            .await?;
        assert!(gone.finished);

        let mut scheduled = pod("running");
        scheduled["spec"]["nodeName"] = json!("n1");
        pods.create(&ns("default"), scheduled, None, None).await?;
        let graceful = pods
            .delete(&ns("default"), "running", &DeleteOptions::default())
            .await?;
        assert!(!graceful.finished);
        assert_eq!(
            graceful.object["metadata"]["deletionGracePeriodSeconds"],
            json!(30)
        );
        assert_eq!(graceful.object["metadata"]["generation"], json!(2));
        let deadline = graceful.object["metadata"]["deletionTimestamp"]
            .as_str()
            .unwrap_or_default()
            .to_owned();

        // A longer grace period changes nothing; a shorter one moves the deadline.
        let longer = pods
            .delete(
                &ns("default"),
                "running",
                &DeleteOptions {
                    grace_period_seconds: Some(60),
                    ..DeleteOptions::default()
                },
            )
            .await?;
        assert!(!longer.finished);
        assert_eq!(
            longer.object["metadata"]["deletionTimestamp"],
            json!(deadline)
        );
        let shorter = pods
            .delete(
                &ns("default"),
                "running",
                &DeleteOptions {
                    grace_period_seconds: Some(10),
                    ..DeleteOptions::default()
                },
            )
            .await?;
        assert!(!shorter.finished);
        assert_eq!(
            shorter.object["metadata"]["deletionGracePeriodSeconds"],
            json!(10)
        );

        // --grace-period=0 --force
        let forced = pods
            .delete(
                &ns("default"),
                "running",
                &DeleteOptions {
                    grace_period_seconds: Some(0),
                    ..DeleteOptions::default()
                },
            )
            .await?;
        assert!(forced.finished);
        expect_status(
            pods.get(&ns("default"), "running", None, &latest()).await,
            404,
            "NotFound",
        )?;
        Ok(())
    }

    #[tokio::test]
    async fn namespace_lifecycle_refuses_missing_and_terminating_namespaces() -> anyhow::Result<()>
    {
        let c = Cluster::start().await?;
        let msg = expect_status(
            c.configmaps()?
                .create(&ns("nowhere"), configmap("a", json!({})), None, None)
                .await,
            404,
            "NotFound",
        )?;
        assert_eq!(msg, "namespaces \"nowhere\" not found");

        let namespaces = c.namespaces()?;
        namespaces
            .create(
                &cluster_scope(),
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
                None,
                None,
            )
            .await?;
        c.configmaps()?
            .create(&ns("team"), configmap("a", json!({})), None, None)
            .await?;
        let terminating = namespaces
            .delete(&cluster_scope(), "team", &DeleteOptions::default())
            .await?;
        assert!(!terminating.finished);
        assert_eq!(terminating.object["status"]["phase"], json!("Terminating"));
        assert!(terminating.object["metadata"]["deletionTimestamp"].is_string());
        assert_eq!(
            terminating.object["spec"]["finalizers"],
            json!(["kubernetes"])
        );

        let status = c
            .configmaps()?
            .create(&ns("team"), configmap("b", json!({})), None, None)
            .await
            .err()
            .context("a create in a terminating namespace must fail")?;
        assert_eq!(status.code, 403);
        assert_eq!(
            status.message,
            "configmaps \"b\" is forbidden: unable to create new content in namespace team because it is being terminated"
        );
        let causes = status.details.map(|d| d.causes).unwrap_or_default();
        assert_eq!(
            causes.first().map(|c| c.reason.as_str()),
            Some("NamespaceTerminating")
        );

        // Deleting again is refused until the namespace controller empties spec.finalizers.
        expect_status(
            namespaces
                .delete(&cluster_scope(), "team", &DeleteOptions::default())
                .await,
            409,
            "Conflict",
        )?;
        let msg = expect_status(
            namespaces
                .delete(&cluster_scope(), "default", &DeleteOptions::default())
                .await,
            403,
            "Forbidden",
        )?;
        assert_eq!(
            msg,
            "namespaces \"default\" is forbidden: this namespace may not be deleted"
        );

        // finalize: emptying spec.finalizers of a terminating namespace removes it.
        let mut finalized = namespaces
            .get(&cluster_scope(), "team", None, &latest())
            .await?;
        finalized["spec"]["finalizers"] = json!([]);
        namespaces
            .update(
                &cluster_scope(),
                "team",
                Some("finalize"),
                Update::Replace(finalized),
            )
            .await?;
        expect_status(
            namespaces
                .get(&cluster_scope(), "team", None, &latest())
                .await,
            404,
            "NotFound",
        )?;
        Ok(())
    }

    #[tokio::test]
    async fn paging_with_limit_and_continue_is_a_consistent_snapshot_while_writes_happen()
    -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let cms = c.configmaps()?;
        for i in 0..10 {
            cms.create(
                &ns("default"),
                configmap(&format!("cm-{i:02}"), json!({})),
                None,
                None,
            )
            .await?;
        }
        let page = |token: Option<String>| ListOptions {
            limit: 4,
            continue_token: token,
            ..ListOptions::default()
        };
        let first = cms.list(&ns("default"), &page(None)).await?;
        assert_eq!(names(&first.items), ["cm-00", "cm-01", "cm-02", "cm-03"]);
        assert_eq!(first.remaining_item_count, Some(6));
        let token = first.continue_token.clone().context("a continue token")?;

        // Writes between pages do not show up in the snapshot.
        cms.delete(&ns("default"), "cm-05", &DeleteOptions::default())
            .await?;
        cms.create(&ns("default"), configmap("cm-05a", json!({})), None, None)
            .await?;
        let mut changed = cms.get(&ns("default"), "cm-08", None, &latest()).await?;
        changed["data"]["k"] = json!("changed");
        cms.update(&ns("default"), "cm-08", None, Update::Replace(changed))
            .await?;

        let second = cms.list(&ns("default"), &page(Some(token))).await?;
        assert_eq!(names(&second.items), ["cm-04", "cm-05", "cm-06", "cm-07"]);
        assert_eq!(second.resource_version, first.resource_version);
        assert_eq!(second.remaining_item_count, Some(2));
        let third = cms
            .list(&ns("default"), &page(second.continue_token.clone()))
            .await?;
        assert_eq!(names(&third.items), ["cm-08", "cm-09"]);
        assert_eq!(third.items[0]["data"]["k"], json!("v"));
        assert!(third.continue_token.is_none());
        assert!(third.remaining_item_count.is_none());

        // Tokens are upstream's and garbage is a 400.
        let msg = expect_status(
            cms.list(&ns("default"), &page(Some("garbage!".into())))
                .await,
            400,
            "BadRequest",
        )?;
        assert!(
            msg.starts_with("invalid continue token: continue key is not valid"),
            "{msg}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn expired_continue_tokens_are_410_with_a_fresh_token() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut config = SqliteConfig::new(dir.path().join("state.db"));
        config.compaction_interval = None;
        let store = Arc::new(SqliteStore::open(config).await?);
        let registry = Registry::start(store.clone()).await?;
        let cms = registry.get("", "v1", "configmaps").context("configmaps")?;
        for i in 0..4 {
            cms.create(
                &ns("default"),
                configmap(&format!("c{i}"), json!({})),
                None,
                None,
            )
            .await?;
        }
        let first = cms
            .list(
                &ns("default"),
                &ListOptions {
                    limit: 2,
                    ..ListOptions::default()
                },
            )
            .await?;
        let extra = cms
            .create(&ns("default"), configmap("later", json!({})), None, None)
            .await?;
        tug_storage::Store::compact(store.as_ref(), rv_num(&extra)).await?;
        let status = cms
            .list(
                &ns("default"),
                &ListOptions {
                    limit: 2,
                    continue_token: first.continue_token.clone(),
                    ..ListOptions::default()
                },
            )
            .await
            .err()
            .context("an expired token must fail")?;
        assert_eq!(status.code, 410);
        assert_eq!(status.reason, "Expired");
        assert!(status.message.starts_with("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response"));
        let fresh = status.metadata.continue_token.clone();
        ensure!(!fresh.is_empty(), "the 410 carries a continue token");
        let rest = cms
            .list(
                &ns("default"),
                &ListOptions {
                    limit: 10,
                    continue_token: Some(fresh),
                    ..ListOptions::default()
                },
            )
            .await?;
        assert_eq!(names(&rest.items), ["c2", "c3", "later"]);
        Ok(())
    }

    #[tokio::test]
    async fn watches_from_a_resource_version_deliver_every_change_exactly_once()
    -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let cms = c.configmaps()?;
        let a = cms
            .create(&ns("default"), configmap("a", json!({})), None, None)
            .await?;
        let start = rv(&a);
        let b = cms
            .create(&ns("default"), configmap("b", json!({})), None, None)
            .await?;
        let mut b2 = b.clone();
        b2["data"]["k"] = json!("2");
        cms.update(&ns("default"), "b", None, Update::Replace(b2))
            .await?;

        let mut watch = cms
            .watch(
                &ns("default"),
                &WatchOptions {
                    version: ResourceVersionQuery {
                        resource_version: Some(start.clone()),
                        ..ResourceVersionQuery::default()
                    },
                    ..WatchOptions::default()
                },
            )
            .await?;
        // Writes after the watch started arrive live, after the replayed ones.
        cms.delete(&ns("default"), "a", &DeleteOptions::default())
            .await?;
        let mut seen = Vec::new();
        let mut last = rv_num(&a);
        for _ in 0..3 {
            let event = next_change(&mut watch).await?;
            let at = rv_num(&event.object);
            ensure!(at > last, "events out of order: {at} after {last}");
            last = at;
            seen.push(kind_and_name(&event));
        }
        assert_eq!(
            seen,
            [
                (EventType::Added, "b".to_owned()),
                (EventType::Modified, "b".to_owned()),
                (EventType::Deleted, "a".to_owned()),
            ]
        );
        let extra = tokio::time::timeout(Duration::from_millis(500), next_change(&mut watch)).await;
        ensure!(extra.is_err(), "unexpected extra event: {extra:?}");

        // RV unset: the current state first, then changes.
        let mut fresh = cms.watch(&ns("default"), &WatchOptions::default()).await?;
        assert_eq!(
            kind_and_name(&next_change(&mut fresh).await?),
            (EventType::Added, "b".into())
        );
        cms.create(&ns("default"), configmap("c", json!({})), None, None)
            .await?;
        assert_eq!(
            kind_and_name(&next_change(&mut fresh).await?),
            (EventType::Added, "c".into())
        );
        Ok(())
    }

    #[tokio::test]
    async fn watching_from_before_the_window_is_410_expired() -> anyhow::Result<()> {
        let c = Cluster::start_with(RegistryOptions {
            window_min_events: 0,
            window_max_events: 3,
            ..RegistryOptions::default()
        })
        .await?;
        let cms = c.configmaps()?;
        let first = cms
            .create(&ns("default"), configmap("x0", json!({})), None, None)
            .await?;
        let mut last = first.clone();
        for i in 1..8 {
            last = cms
                .create(
                    &ns("default"),
                    configmap(&format!("x{i}"), json!({})),
                    None,
                    None,
                )
                .await?;
        }
        // Make sure the cache has seen the last write.
        cms.list(
            &ns("default"),
            &ListOptions {
                version: ResourceVersionQuery {
                    resource_version: Some(rv(&last)),
                    ..ResourceVersionQuery::default()
                },
                ..ListOptions::default()
            },
        )
        .await?;
        let mut watch = cms
            .watch(
                &ns("default"),
                &WatchOptions {
                    version: ResourceVersionQuery {
                        resource_version: Some(rv(&first)),
                        ..ResourceVersionQuery::default()
                    },
                    ..WatchOptions::default()
                },
            )
            .await?;
        let event = next(&mut watch).await?;
        assert_eq!(event.event_type, EventType::Error);
        assert_eq!(event.object["code"], json!(410));
        assert_eq!(event.object["reason"], json!("Expired"));
        let message = event.object["message"].as_str().unwrap_or_default();
        ensure!(
            message.starts_with(&format!("too old resource version: {} (", rv(&first))),
            "message {message}"
        );
        ensure!(
            tokio::time::timeout(DEADLINE, watch.next())
                .await?
                .is_none(),
            "the watch ends after the error"
        );
        Ok(())
    }

    #[tokio::test]
    async fn send_initial_events_ends_with_the_initial_events_end_bookmark() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let cms = c.configmaps()?;
        for name in ["a", "b"] {
            cms.create(&ns("default"), configmap(name, json!({})), None, None)
                .await?;
        }
        let mut watch = cms
            .watch(
                &ns("default"),
                &WatchOptions {
                    allow_bookmarks: true,
                    send_initial_events: Some(true),
                    version: ResourceVersionQuery {
                        resource_version: None,
                        resource_version_match: Some("NotOlderThan".into()),
                    },
                    ..WatchOptions::default()
                },
            )
            .await?;
        let mut added = Vec::new();
        let bookmark = loop {
            let event = next(&mut watch).await?;
            match event.event_type {
                EventType::Added => added.push(kind_and_name(&event).1),
                EventType::Bookmark => break event,
                other => bail!("unexpected {other:?} before the bookmark"),
            }
        };
        assert_eq!(added, ["a", "b"]);
        assert_eq!(
            bookmark.object["metadata"]["annotations"],
            json!({"k8s.io/initial-events-end": "true"})
        );
        assert_eq!(bookmark.object["kind"], json!("ConfigMap"));
        assert_eq!(bookmark.object["apiVersion"], json!("v1"));
        let list = cms.list(&ns("default"), &ListOptions::default()).await?;
        ensure!(
            rv_num(&bookmark.object) >= list.items.iter().map(rv_num).max().unwrap_or(0),
            "the bookmark is at least as new as the initial state"
        );

        // Periodic bookmarks follow, and an idle resource's version keeps moving with the
        // datastore's.
        c.deployments()?
            .create(&ns("default"), deployment("elsewhere", 1), None, None)
            .await?;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let event = next(&mut watch).await?;
            ensure!(
                event.event_type == EventType::Bookmark,
                "unexpected {:?}",
                event.event_type
            );
            if rv_num(&event.object) > rv_num(&bookmark.object) {
                break;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "bookmarks never advanced"
            );
        }

        // Validation: sendInitialEvents needs resourceVersionMatch=NotOlderThan.
        let status = cms
            .watch(
                &ns("default"),
                &WatchOptions {
                    send_initial_events: Some(true),
                    ..WatchOptions::default()
                },
            )
            .await
            .err()
            .context("invalid watch options")?;
        assert_eq!(status.code, 422);
        Ok(())
    }

    #[tokio::test]
    async fn selector_filtered_watches_see_objects_enter_and_leave() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let cms = c.configmaps()?;
        cms.create(
            &ns("default"),
            configmap("m", json!({"app": "x"})),
            None,
            None,
        )
        .await?;
        let mut watch = cms
            .watch(
                &ns("default"),
                &WatchOptions {
                    label_selector: Some(Selector::parse("app=x")?),
                    ..WatchOptions::default()
                },
            )
            .await?;
        assert_eq!(
            kind_and_name(&next_change(&mut watch).await?),
            (EventType::Added, "m".into())
        );

        let mut moved = cms.get(&ns("default"), "m", None, &latest()).await?;
        moved["metadata"]["labels"] = json!({"app": "y"});
        let moved = cms
            .update(&ns("default"), "m", None, Update::Replace(moved))
            .await?
            .object;
        let left = next_change(&mut watch).await?;
        assert_eq!(kind_and_name(&left), (EventType::Deleted, "m".into()));
        assert_eq!(rv(&left.object), rv(&moved));
        assert_eq!(left.object["metadata"]["labels"], json!({"app": "x"}));

        let mut back = moved.clone();
        back["metadata"]["labels"] = json!({"app": "x"});
        cms.update(&ns("default"), "m", None, Update::Replace(back))
            .await?;
        assert_eq!(
            kind_and_name(&next_change(&mut watch).await?),
            (EventType::Added, "m".into())
        );

        // Objects in other namespaces or without the label never show up.
        cms.create(
            &ns("kube-system"),
            configmap("other-ns", json!({"app": "x"})),
            None,
            None,
        )
        .await?;
        cms.create(
            &ns("default"),
            configmap("unlabelled", json!({})),
            None,
            None,
        )
        .await?;
        cms.create(
            &ns("default"),
            configmap("last", json!({"app": "x"})),
            None,
            None,
        )
        .await?;
        assert_eq!(
            kind_and_name(&next_change(&mut watch).await?),
            (EventType::Added, "last".into())
        );
        Ok(())
    }

    #[tokio::test]
    async fn label_and_field_selectors_filter_lists_and_unknown_fields_are_refused()
    -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let pods = c.pods()?;
        let mut on_node = pod("on-node");
        on_node["metadata"]["labels"] = json!({"app": "a"});
        on_node["spec"]["nodeName"] = json!("n1");
        pods.create(&ns("default"), on_node, None, None).await?;
        let mut other = pod("other");
        other["metadata"]["labels"] = json!({"app": "b"});
        pods.create(&ns("default"), other, None, None).await?;
        pods.create(&ns("kube-system"), pod("system"), None, None)
            .await?;

        let by_label = pods
            .list(
                &ns("default"),
                &ListOptions {
                    label_selector: Some(Selector::parse("app in (a)")?),
                    ..ListOptions::default()
                },
            )
            .await?;
        assert_eq!(names(&by_label.items), ["on-node"]);
        let by_field = pods
            .list(
                &cluster_scope(),
                &ListOptions {
                    field_selector: Some(FieldSelector::parse("spec.nodeName=")?),
                    ..ListOptions::default()
                },
            )
            .await?;
        assert_eq!(names(&by_field.items), ["other", "system"]);
        let by_namespace = pods
            .list(
                &cluster_scope(),
                &ListOptions {
                    field_selector: Some(FieldSelector::parse("metadata.namespace=kube-system")?),
                    limit: 1,
                    ..ListOptions::default()
                },
            )
            .await?;
        assert_eq!(names(&by_namespace.items), ["system"]);
        assert!(by_namespace.remaining_item_count.is_none());
        let msg = expect_status(
            pods.list(
                &ns("default"),
                &ListOptions {
                    field_selector: Some(FieldSelector::parse("spec.bogus=x")?),
                    ..ListOptions::default()
                },
            )
            .await,
            400,
            "BadRequest",
        )?;
        assert_eq!(msg, "field label not supported: spec.bogus");

        let namespaces = c
            .namespaces()?
            .list(
                &cluster_scope(),
                &ListOptions {
                    field_selector: Some(FieldSelector::parse(
                        "status.phase=Active,metadata.name=default",
                    )?),
                    ..ListOptions::default()
                },
            )
            .await?;
        assert_eq!(names(&namespaces.items), ["default"]);
        Ok(())
    }

    #[tokio::test]
    async fn dry_run_runs_everything_but_the_write() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let cms = c.configmaps()?;
        let before = cms.list(&ns("default"), &ListOptions::default()).await?;
        let dry = cms
            .create(&dry_run("default"), configmap("dry", json!({})), None, None)
            .await?;
        assert!(dry["metadata"]["uid"].is_string());
        assert!(dry["metadata"].get("resourceVersion").is_none());
        expect_status(
            cms.get(&ns("default"), "dry", None, &latest()).await,
            404,
            "NotFound",
        )?;
        expect_status(
            cms.create(
                &dry_run("default"),
                configmap("Bad!", json!({})),
                None,
                None,
            )
            .await,
            422,
            "Invalid",
        )?;

        let real = cms
            .create(&ns("default"), configmap("real", json!({})), None, None)
            .await?;
        let mut changed = real.clone();
        changed["data"]["k"] = json!("dry");
        let updated = cms
            .update(&dry_run("default"), "real", None, Update::Replace(changed))
            .await?;
        assert_eq!(updated.object["data"]["k"], json!("dry"));
        let deleted = cms
            .delete(&dry_run("default"), "real", &DeleteOptions::default())
            .await?;
        assert!(deleted.finished);
        let after = cms.get(&ns("default"), "real", None, &latest()).await?;
        assert_eq!(after, real);
        let list = cms.list(&ns("default"), &ListOptions::default()).await?;
        assert_eq!(list.items.len(), before.items.len() + 1);
        Ok(())
    }

    #[tokio::test]
    async fn put_creates_only_where_upstream_allows_and_apply_always_may() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let msg = expect_status(
            c.configmaps()?
                .update(
                    &ns("default"),
                    "absent",
                    None,
                    Update::Replace(configmap("absent", json!({}))),
                )
                .await,
            404,
            "NotFound",
        )?;
        assert_eq!(msg, "configmaps \"absent\" not found");

        let leases = c.store("coordination.k8s.io", "v1", "leases")?;
        let created = leases
        .update(
            &ns("kube-node-lease"),
            "n1",
            None,
            Update::Replace(json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n1"}, "spec": {"holderIdentity": "n1"}})),
        )
        .await?;
        assert!(created.created);
        assert_eq!(
            created.object["metadata"]["namespace"],
            json!("kube-node-lease")
        );

        let applied = c
            .configmaps()?
            .update(
                &ns("default"),
                "applied",
                None,
                Update::Transform(Box::new(|current| match current {
                    None => Ok(configmap("applied", json!({}))),
                    Some(obj) => Ok(obj.clone()),
                })),
            )
            .await?;
        assert!(applied.created);
        assert!(applied.object["metadata"]["uid"].is_string());
        Ok(())
    }

    #[tokio::test]
    async fn events_are_served_in_both_apis_from_one_store() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let core = c.store("", "v1", "events")?;
        let events = c.store("events.k8s.io", "v1", "events")?;
        core.create(
        &ns("default"),
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"},
               "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
               "reason": "Started", "message": "hello", "type": "Normal", "source": {"component": "kubelet"}}),
        None,
        None,
    )
    .await?;
        let served = events.get(&ns("default"), "e1", None, &latest()).await?;
        assert_eq!(served["apiVersion"], json!("events.k8s.io/v1"));
        assert_eq!(served["regarding"]["name"], json!("p"));
        assert_eq!(served["note"], json!("hello"));
        assert_eq!(served["deprecatedSource"], json!({"component": "kubelet"}));

        let selected = events
            .list(
                &ns("default"),
                &ListOptions {
                    field_selector: Some(FieldSelector::parse("regarding.name=p")?),
                    ..ListOptions::default()
                },
            )
            .await?;
        assert_eq!(names(&selected.items), ["e1"]);
        let core_selected = core
            .list(
                &ns("default"),
                &ListOptions {
                    field_selector: Some(FieldSelector::parse(
                        "involvedObject.kind=Pod,source=kubelet",
                    )?),
                    ..ListOptions::default()
                },
            )
            .await?;
        assert_eq!(names(&core_selected.items), ["e1"]);

        events
        .create(
            &ns("default"),
            json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e2"},
                   "regarding": {"kind": "Node", "name": "n1"}, "note": "from the new API",
                   "reason": "Ready", "type": "Normal", "reportingController": "tug", "action": "Check",
                   "eventTime": "2024-01-01T00:00:00.000000Z"}),
            None,
            None,
        )
        .await?;
        let as_core = core.get(&ns("default"), "e2", None, &latest()).await?;
        assert_eq!(as_core["apiVersion"], json!("v1"));
        assert_eq!(as_core["involvedObject"]["name"], json!("n1"));
        assert_eq!(as_core["message"], json!("from the new API"));
        assert_eq!(as_core["reportingComponent"], json!("tug"));
        Ok(())
    }

    #[tokio::test]
    async fn consistent_reads_see_every_acknowledged_write() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let cms = c.configmaps()?;
        for i in 0..20 {
            let name = format!("c{i}");
            cms.create(&ns("default"), configmap(&name, json!({})), None, None)
                .await?;
            let list = cms.list(&ns("default"), &ListOptions::default()).await?;
            ensure!(names(&list.items).contains(&name), "list missed {name}");
            let got = cms
                .get(
                    &ns("default"),
                    &name,
                    None,
                    &ResourceVersionQuery {
                        resource_version: Some(list.resource_version.clone()),
                        ..ResourceVersionQuery::default()
                    },
                )
                .await?;
            assert_eq!(got["metadata"]["name"], json!(name));
        }
        // A resource version from the future is a 504 after a short wait.
        let status = cms
            .list(
                &ns("default"),
                &ListOptions {
                    version: ResourceVersionQuery {
                        resource_version: Some("999999".into()),
                        ..ResourceVersionQuery::default()
                    },
                    ..ListOptions::default()
                },
            )
            .await
            .err()
            .context("a future resource version must fail")?;
        assert_eq!(status.code, 504);
        Ok(())
    }

    #[tokio::test]
    async fn slow_watchers_are_closed_without_holding_up_the_others() -> anyhow::Result<()> {
        let c = Cluster::start_with(RegistryOptions {
            watcher_buffer: 2,
            ..RegistryOptions::default()
        })
        .await?;
        let cms = c.configmaps()?;
        let from_now = || WatchOptions {
            version: ResourceVersionQuery {
                resource_version: Some("0".into()),
                ..ResourceVersionQuery::default()
            },
            ..WatchOptions::default()
        };
        let mut slow = cms.watch(&ns("default"), &from_now()).await?;
        let mut fast = cms.watch(&ns("default"), &from_now()).await?;
        for i in 0..6 {
            cms.create(
                &ns("default"),
                configmap(&format!("s{i}"), json!({})),
                None,
                None,
            )
            .await?;
            let event = next_change(&mut fast).await?;
            assert_eq!(kind_and_name(&event), (EventType::Added, format!("s{i}")));
        }
        // The slow watcher gets what fitted in its buffer, then its watch ends.
        let mut delivered = 0;
        while let Some(event) = tokio::time::timeout(DEADLINE, slow.next()).await? {
            ensure!(event.event_type == EventType::Added, "unexpected {event:?}");
            delivered += 1;
        }
        ensure!(delivered < 6, "the slow watcher was never closed");
        Ok(())
    }

    #[tokio::test]
    async fn watches_end_at_their_timeout() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let mut watch = c
            .configmaps()?
            .watch(
                &ns("default"),
                &WatchOptions {
                    timeout: Some(Duration::from_millis(300)),
                    ..WatchOptions::default()
                },
            )
            .await?;
        let ended =
            tokio::time::timeout(DEADLINE, async { while watch.next().await.is_some() {} }).await;
        ensure!(ended.is_ok(), "the watch outlived its timeout");
        Ok(())
    }

    #[tokio::test]
    async fn autoscaling_v1_and_v2_share_one_store() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let v1 = c.store("autoscaling", "v1", "horizontalpodautoscalers")?;
        let v2 = c.store("autoscaling", "v2", "horizontalpodautoscalers")?;
        v1.create(
        &ns("default"),
        json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
               "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                        "minReplicas": 1, "maxReplicas": 4, "targetCPUUtilizationPercentage": 60}}),
        None,
        None,
    )
    .await?;
        let as_v2 = v2.get(&ns("default"), "h", None, &latest()).await?;
        assert_eq!(as_v2["apiVersion"], json!("autoscaling/v2"));
        assert_eq!(
            as_v2["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}])
        );
        let as_v1 = v1.get(&ns("default"), "h", None, &latest()).await?;
        assert_eq!(as_v1["spec"]["targetCPUUtilizationPercentage"], json!(60));
        assert_eq!(
            as_v1["status"],
            json!({"currentReplicas": 0, "desiredReplicas": 0})
        );
        Ok(())
    }

    #[tokio::test]
    async fn delete_collection_deletes_what_the_list_selects() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let cms = c.configmaps()?;
        for (name, app) in [("a", "x"), ("b", "x"), ("c", "y")] {
            cms.create(
                &ns("default"),
                configmap(name, json!({"app": app})),
                None,
                None,
            )
            .await?;
        }
        let deleted = cms
            .delete_collection(
                &ns("default"),
                &ListOptions {
                    label_selector: Some(Selector::parse("app=x")?),
                    ..ListOptions::default()
                },
                &DeleteOptions::default(),
            )
            .await?;
        assert_eq!(names(&deleted.items), ["a", "b"]);
        let left = cms.list(&ns("default"), &ListOptions::default()).await?;
        assert_eq!(names(&left.items), ["c"]);
        Ok(())
    }

    #[tokio::test]
    async fn evictions_honour_disruption_budgets() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let pods = c.pods()?;
        let pdbs = c.store("policy", "v1", "poddisruptionbudgets")?;
        // A running, ready pod on a node.
        let mut running = pod("guarded");
        running["metadata"]["labels"] = json!({"app": "db"});
        running["spec"]["nodeName"] = json!("n1");
        let created = pods.create(&ns("default"), running, None, None).await?;
        let mut status = created.clone();
        status["status"] =
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]});
        pods.update(
            &ns("default"),
            "guarded",
            Some("status"),
            Update::Replace(status),
        )
        .await?;

        let budget = pdbs
        .create(
            &ns("default"),
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "db"},
                   "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}}),
            None,
            None,
        )
        .await?;
        let mut budget_status = budget.clone();
        budget_status["status"] = json!({"observedGeneration": 1, "disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1});
        let budget = pdbs
            .update(
                &ns("default"),
                "db",
                Some("status"),
                Update::Replace(budget_status),
            )
            .await?
            .object;

        let eviction = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "guarded", "namespace": "default"}});
        let refused = pods
            .create(
                &ns("default"),
                eviction.clone(),
                Some("guarded"),
                Some("eviction"),
            )
            .await
            .err()
            .context("the budget allows no disruption")?;
        assert_eq!(refused.code, 429);
        assert_eq!(
            refused.message,
            "Cannot evict pod as it would violate the pod's disruption budget."
        );
        let causes = refused.details.map(|d| d.causes).unwrap_or_default();
        assert_eq!(
            causes.first().map(|c| c.message.as_str()),
            Some("The disruption budget db needs 1 healthy pods and has 1 currently")
        );

        let mut allowing = budget.clone();
        allowing["status"]["disruptionsAllowed"] = json!(1);
        pdbs.update(
            &ns("default"),
            "db",
            Some("status"),
            Update::Replace(allowing),
        )
        .await?;
        let accepted = pods
            .create(&ns("default"), eviction, Some("guarded"), Some("eviction"))
            .await?;
        assert_eq!(accepted["status"], json!("Success"));
        let spent = pdbs.get(&ns("default"), "db", None, &latest()).await?;
        assert_eq!(spent["status"]["disruptionsAllowed"], json!(0));
        assert!(spent["status"]["disruptedPods"]["guarded"].is_string());
        let evicted = pods.get(&ns("default"), "guarded", None, &latest()).await?;
        assert!(
            evicted["metadata"]["deletionTimestamp"].is_string(),
            "evicted pods terminate gracefully"
        );

        // Pending pods are not protected by budgets.
        pods.create(&ns("default"), pod("pending"), None, None)
            .await?;
        pods.create(
            &ns("default"),
            json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "pending"}}),
            Some("pending"),
            Some("eviction"),
        )
        .await?;
        expect_status(
            pods.get(&ns("default"), "pending", None, &latest()).await,
            404,
            "NotFound",
        )?;
        Ok(())
    }

    #[tokio::test]
    async fn a_restarted_registry_serves_what_was_stored_and_keeps_bootstrap_idempotent()
    -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state.db");
        let open = || async {
            let deadline = tokio::time::Instant::now() + DEADLINE;
            loop {
                // The previous registry's tasks release the file as they stop.
                match SqliteStore::open(SqliteConfig::new(&path)).await {
                    Ok(store) => return anyhow::Ok(store),
                    Err(e) if tokio::time::Instant::now() < deadline => {
                        wait_before_reopening(e).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let registry = Registry::start(Arc::new(open().await?)).await?;
        let cms = registry.get("", "v1", "configmaps").context("configmaps")?;
        let created = cms
            .create(&ns("kube-system"), configmap("kept", json!({})), None, None)
            .await?;
        drop(registry);

        let registry = Registry::start(Arc::new(open().await?)).await?;
        let cms = registry.get("", "v1", "configmaps").context("configmaps")?;
        let got = cms
            .get(
                &ns("kube-system"),
                "kept",
                None,
                &ResourceVersionQuery {
                    resource_version: Some("0".into()),
                    ..ResourceVersionQuery::default()
                },
            )
            .await?;
        assert_eq!(got, created);
        let namespaces = registry
            .get("", "v1", "namespaces")
            .context("namespaces")?
            .list(&cluster_scope(), &ListOptions::default())
            .await?;
        assert_eq!(namespaces.items.len(), 4);
        Ok(())
    }

    /// Lets the previous registry's background tasks finish before the datastore is reopened.
    async fn wait_before_reopening(_error: tug_storage::Error) {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    #[tokio::test]
    async fn pod_subresources_change_only_their_part() -> anyhow::Result<()> {
        let c = Cluster::start().await?;
        let pods = c.pods()?;
        let created = pods.create(&ns("default"), pod("dbg"), None, None).await?;
        let mut debug = created.clone();
        debug["spec"]["ephemeralContainers"] =
            json!([{"name": "debugger", "image": "busybox", "targetContainerName": "c"}]);
        debug["spec"]["containers"][0]["image"] = json!("nginx");
        debug["metadata"]["labels"] = json!({"sneaky": "yes"});
        let updated = pods
            .update(
                &ns("default"),
                "dbg",
                Some("ephemeralcontainers"),
                Update::Replace(debug),
            )
            .await?
            .object;
        assert_eq!(
            updated["spec"]["ephemeralContainers"][0]["name"],
            json!("debugger")
        );
        assert_eq!(updated["spec"]["containers"][0]["image"], json!("busybox"));
        assert!(updated["metadata"].get("labels").is_none());
        assert_eq!(updated["metadata"]["generation"], json!(2));

        let mut resize = updated.clone();
        resize["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "100m"}});
        resize["spec"]["containers"][0]["image"] = json!("nginx");
        let resized = pods
            .update(
                &ns("default"),
                "dbg",
                Some("resize"),
                Update::Replace(resize),
            )
            .await?
            .object;
        assert_eq!(
            resized["spec"]["containers"][0]["resources"],
            json!({"requests": {"cpu": "100m"}})
        );
        assert_eq!(resized["spec"]["containers"][0]["image"], json!("busybox"));
        assert_eq!(resized["metadata"]["generation"], json!(3));
        Ok(())
    }
}
