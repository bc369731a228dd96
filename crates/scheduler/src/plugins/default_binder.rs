//! DefaultBinder: binds the pod through the `pods/binding` subresource.

use std::sync::Arc;

use k8s_openapi::{
    api::core::v1::{Binding, ObjectReference, Pod},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{Api, api::PostParams};

use crate::framework::{BindPlugin, CycleState, Handle, Plugin, PodInfo, Status};

/// The plugin's name.
pub const NAME: &str = "DefaultBinder";

/// The plugin.
#[derive(Debug, Default)]
pub struct DefaultBinder;

/// The factory.
pub fn new(_args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(DefaultBinder))
}

impl Plugin for DefaultBinder {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_bind(&self) -> Option<&dyn BindPlugin> {
        Some(self)
    }
}

#[async_trait::async_trait]
impl BindPlugin for DefaultBinder {
    async fn bind(
        &self,
        client: &kube::Client,
        _state: &CycleState,
        pod: &PodInfo,
        node: &str,
    ) -> Status {
        let ns = pod.pod.metadata.namespace.as_deref().unwrap_or("default");
        let name = pod.pod.metadata.name.clone().unwrap_or_default();
        let binding = Binding {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.to_owned()),
                uid: pod.pod.metadata.uid.clone(),
                ..Default::default()
            },
            target: ObjectReference {
                kind: Some("Node".into()),
                name: Some(node.to_owned()),
                ..Default::default()
            },
        };
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let result: Result<serde_json::Value, kube::Error> = api
            .create_subresource("binding", &name, &PostParams::default(), &binding)
            .await;
        match result {
            Ok(_) => Status::success(),
            Err(e) => Status::error(format!("binding rejected: {e}")),
        }
    }
}
