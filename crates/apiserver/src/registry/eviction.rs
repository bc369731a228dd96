//! `POST pods/<name>/eviction` (upstream's `EvictionREST`): deletes a pod unless that would
//! violate its PodDisruptionBudget, in which case the answer is `429 TooManyRequests` and the
//! client (`kubectl drain`) retries. An allowed eviction spends one of the budget's disruptions.

use serde_json::{Value, json};
use tug_api::catalog;
use tug_apimachinery::{
    GroupResource, Status,
    labels::Selector,
    meta,
    status::{STATUS_FAILURE, StatusCause},
};
use tug_storage::{RangeRequest, Txn, TxnResponse};

use super::{
    DeleteOptions, RequestContext, ResourceStore, Result, admission, codec, objmeta,
    store::{decode_error, storage_error},
};

/// The cause type of a refusal by a disruption budget.
const DISRUPTION_BUDGET_CAUSE: &str = "DisruptionBudget";

/// How many not-yet-confirmed evictions a budget may record (upstream's `MaxDisruptedPodSize`).
const MAX_DISRUPTED_PODS: usize = 2000;

/// How often spending a disruption is retried after the budget changed meanwhile.
const BUDGET_ATTEMPTS: usize = 20;

/// The message of every refusal by a budget.
const VIOLATION: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

fn too_many_requests(retry_after: i32, cause: String) -> Box<Status> {
    let mut status = Status::too_many_requests(VIOLATION, retry_after);
    if let Some(details) = status.details.as_mut() {
        details.causes.push(StatusCause {
            reason: DISRUPTION_BUDGET_CAUSE.to_owned(),
            message: cause,
            field: String::new(),
        });
    }
    Box::new(status)
}

fn still_processing(budget: &str) -> Box<Status> {
    too_many_requests(
        10,
        format!("The disruption budget {budget} is still being processed by the server."),
    )
}

/// The `DeleteOptions` an Eviction carries.
fn delete_options(eviction: &Value) -> (DeleteOptions, bool) {
    let o = eviction
        .get("deleteOptions")
        .cloned()
        .unwrap_or(Value::Null);
    let s = |path: &[&str]| objmeta::str_at(&o, path).map(str::to_owned);
    let dry_run = o
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|d| !d.is_empty());
    (
        DeleteOptions {
            grace_period_seconds: o.get("gracePeriodSeconds").and_then(Value::as_i64),
            propagation_policy: s(&["propagationPolicy"]),
            orphan_dependents: o.get("orphanDependents").and_then(Value::as_bool),
            precondition_uid: s(&["preconditions", "uid"]),
            precondition_resource_version: s(&["preconditions", "resourceVersion"]),
        },
        dry_run,
    )
}

fn pod_phase(pod: &Value) -> &str {
    objmeta::str_at(pod, &["status", "phase"]).unwrap_or_default()
}

fn pod_ready(pod: &Value) -> bool {
    objmeta::at(pod, &["status", "conditions"])
        .and_then(Value::as_array)
        .is_some_and(|conditions| {
            conditions.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

fn status_int(pdb: &Value, field: &str) -> i64 {
    objmeta::at(pdb, &["status", field])
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

impl ResourceStore {
    /// Evicts a pod, honouring its disruption budget.
    pub(crate) async fn evict(
        &self,
        ctx: &RequestContext,
        eviction: Value,
        url_name: Option<&str>,
    ) -> Result<Value> {
        let body_name = meta::name(&eviction).unwrap_or_default().to_owned();
        let name = match url_name {
            Some(url) if url != body_name => {
                return Err(Box::new(Status::bad_request(
                    "name in URL does not match name in Eviction object",
                )));
            }
            Some(url) => url.to_owned(),
            None => body_name,
        };
        let (mut options, body_dry_run) = delete_options(&eviction);
        let ctx = RequestContext {
            dry_run: ctx.dry_run || body_dry_run,
            ..ctx.clone()
        };
        let key = self.key(&ctx, &name)?;
        // An eviction is a create: upstream refuses it in a terminating namespace too.
        admission::namespace_lifecycle(self, self.object_namespace(&ctx)?, &name).await?;
        let Some((pod, revision)) = self.read(&key).await? else {
            return Err(self.not_found(&name));
        };
        let deleting = meta::deletion_timestamp(&pod).is_some();
        let terminal = matches!(pod_phase(&pod), "Succeeded" | "Failed");
        let rv_unset = options.precondition_resource_version.is_none();
        // A pod that is pending, finished or already going away does not count against a
        // budget: delete it directly.
        if terminal || deleting || pod_phase(&pod) == "Pending" {
            if !terminal && !deleting && rv_unset {
                options.precondition_resource_version = Some(revision.to_string());
            }
            self.delete_impl(&ctx, &name, &options).await?;
            return Ok(success());
        }

        let budgets = self.budgets_for(&pod).await?;
        if budgets.len() > 1 {
            return Err(Box::new(Status {
                status: STATUS_FAILURE.to_owned(),
                message: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.".to_owned(),
                code: 500,
                ..Status::default()
            }));
        }
        let mut guard_with_rv = false;
        if let Some((budget_name, _)) = budgets.first() {
            let budget_name = budget_name.clone();
            let unready_but_healthy_enough = {
                let (_, pdb) = &budgets[0];
                !pod_ready(&pod)
                    && status_int(pdb, "currentHealthy") >= status_int(pdb, "desiredHealthy")
                    && status_int(pdb, "desiredHealthy") > 0
            };
            if unready_but_healthy_enough {
                guard_with_rv = true;
            } else {
                self.spend_disruption(&ctx, &budget_name, &name).await?;
            }
        }
        if guard_with_rv && rv_unset {
            options.precondition_resource_version = Some(revision.to_string());
        }
        match self.delete_impl(&ctx, &name, &options).await {
            Ok(_) => Ok(success()),
            Err(status) if status.code == 409 && guard_with_rv && rv_unset => {
                let budget = budgets.first().map(|(n, _)| n.clone()).unwrap_or_default();
                Err(still_processing(&budget))
            }
            Err(status) => Err(status),
        }
    }

    /// The budgets in the pod's namespace whose selector selects it, with their keys' names.
    async fn budgets_for(&self, pod: &Value) -> Result<Vec<(String, Value)>> {
        let Some(pdbs) = catalog::by_gvr("policy", "v1", "poddisruptionbudgets") else {
            return Ok(Vec::new());
        };
        let namespace = meta::namespace(pod).unwrap_or_default();
        let Some(prefix) = pdbs.key_prefix(Some(namespace)) else {
            return Ok(Vec::new());
        };
        let resp = self
            .shared
            .store
            .range(RangeRequest::prefix(prefix))
            .await
            .map_err(|e| {
                storage_error(
                    &e,
                    &GroupResource::new("policy", "poddisruptionbudgets"),
                    "list",
                )
            })?;
        let labels = meta::labels(pod);
        let mut matching = Vec::new();
        for kv in &resp.kvs {
            let pdb = codec::decode(kv).map_err(|e| decode_error(&e))?;
            let selector = objmeta::at(&pdb, &["spec", "selector"]).unwrap_or(&Value::Null);
            // A budget with no or an empty selector selects nothing here.
            let Ok(selector) = Selector::from_label_selector_json(selector) else {
                continue;
            };
            if selector.is_empty() || !selector.matches(&labels) {
                continue;
            }
            let name = meta::name(&pdb).unwrap_or_default().to_owned();
            matching.push((name, pdb));
        }
        Ok(matching)
    }

    /// Upstream's `checkAndDecrement`, retried on write conflicts: takes one disruption from
    /// the budget and records the pod as disrupted.
    async fn spend_disruption(&self, ctx: &RequestContext, budget: &str, pod: &str) -> Result<()> {
        let Some(pdbs) = catalog::by_gvr("policy", "v1", "poddisruptionbudgets") else {
            return Ok(());
        };
        let gr = GroupResource::new("policy", "poddisruptionbudget");
        let Some(key) = pdbs.key(ctx.namespace.as_deref(), budget) else {
            return Ok(());
        };
        for _ in 0..BUDGET_ATTEMPTS {
            let kv = self
                .shared
                .store
                .get(&key)
                .await
                .map_err(|e| storage_error(&e, &gr, "get"))?;
            let Some(kv) = kv else {
                // The budget went away: nothing to honour.
                return Ok(());
            };
            let mut pdb = codec::decode(&kv).map_err(|e| decode_error(&e))?;
            if status_int(&pdb, "observedGeneration") < meta::generation(&pdb).unwrap_or(0) {
                return Err(still_processing(budget));
            }
            let allowed = status_int(&pdb, "disruptionsAllowed");
            if allowed < 0 {
                return Err(Box::new(Status::forbidden(
                    &gr,
                    budget,
                    "pdb disruptions allowed is negative",
                )));
            }
            let disrupted = objmeta::at(&pdb, &["status", "disruptedPods"])
                .and_then(Value::as_object)
                .map_or(0, serde_json::Map::len);
            if disrupted > MAX_DISRUPTED_PODS {
                return Err(Box::new(Status::forbidden(
                    &gr,
                    budget,
                    "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
                )));
            }
            if allowed == 0 {
                return Err(too_many_requests(
                    0,
                    format!(
                        "The disruption budget {budget} needs {} healthy pods and has {} currently",
                        status_int(&pdb, "desiredHealthy"),
                        status_int(&pdb, "currentHealthy")
                    ),
                ));
            }
            if ctx.dry_run {
                return Ok(());
            }
            let status = objmeta::child_mut(&mut pdb, "status");
            objmeta::set(status, "disruptionsAllowed", json!(allowed - 1));
            if allowed - 1 == 0 {
                set_disruption_allowed_false(status);
            }
            let disrupted = objmeta::child_mut(status, "disruptedPods");
            objmeta::set(disrupted, pod, json!(objmeta::now_rfc3339()));
            let bytes = codec::encode(&pdb).map_err(|e| decode_error(&e))?;
            match self
                .shared
                .store
                .txn(Txn::update(key.clone(), kv.mod_revision, bytes))
                .await
            {
                Ok(TxnResponse::Applied { .. }) => return Ok(()),
                Ok(TxnResponse::Rejected { .. }) => continue,
                Err(e) => return Err(storage_error(&e, &gr, "update")),
            }
        }
        Err(Box::new(Status::timeout(
            &format!(
                "couldn't update PodDisruptionBudget {} due to conflicts",
                objmeta::quote(budget)
            ),
            10,
        )))
    }
}

/// Upstream's `UpdateDisruptionAllowedCondition` once no disruption is left.
fn set_disruption_allowed_false(status: &mut Value) {
    let observed = status
        .get("observedGeneration")
        .cloned()
        .unwrap_or(json!(0));
    let conditions = objmeta::object_mut(status)
        .entry("conditions")
        .or_insert_with(|| json!([]));
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    let Some(list) = conditions.as_array_mut() else {
        return;
    };
    let existing = list
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("DisruptionAllowed"));
    let now = objmeta::now_rfc3339();
    match existing {
        Some(c) => {
            if c.get("status").and_then(Value::as_str) != Some("False") {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!("False");
            c["reason"] = json!("InsufficientPods");
            c["observedGeneration"] = observed;
        }
        None => list.push(json!({
            "type": "DisruptionAllowed",
            "status": "False",
            "reason": "InsufficientPods",
            "message": "",
            "observedGeneration": observed,
            "lastTransitionTime": now,
        })),
    }
}

/// The answer to an accepted eviction.
fn success() -> Value {
    let mut status = Status::success();
    status.code = 201;
    status.to_json()
}
