//! The CRI v1 client: RuntimeService and ImageService of the container runtime, over its Unix
//! socket (tonic with a connector that dials the socket; the URI is a placeholder).

use std::{collections::HashMap, path::PathBuf, time::Duration};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::{
    self as cri, image_service_client::ImageServiceClient,
    runtime_service_client::RuntimeServiceClient,
};
use tonic::transport::{Channel, Endpoint};

/// Failures talking to the container runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket could not be dialled.
    #[error("cannot connect to the container runtime at {endpoint}: {source}")]
    Connect {
        /// The socket path.
        endpoint: PathBuf,
        /// The cause.
        #[source]
        source: tonic::transport::Error,
    },
    /// A CRI call failed.
    #[error("CRI {call}: {}", .status.message())]
    Call {
        /// The RPC name.
        call: &'static str,
        /// The gRPC status.
        status: tonic::Status,
    },
    /// A CRI reply lacked a field it must have.
    #[error("CRI {call}: the reply has no {field}")]
    Incomplete {
        /// The RPC name.
        call: &'static str,
        /// The missing field.
        field: &'static str,
    },
}

impl Error {
    /// The gRPC code, for calls that failed remotely.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Self::Call { status, .. } => Some(status.code()),
            _ => None,
        }
    }
}

fn call(name: &'static str) -> impl FnOnce(tonic::Status) -> Error {
    move |status| Error::Call { call: name, status }
}

/// A cloneable CRI client (one HTTP/2 connection, multiplexed).
#[derive(Debug, Clone)]
pub struct Cri {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

impl Cri {
    /// Connects to the runtime's Unix socket; reconnects by itself when the runtime restarts.
    pub async fn connect(socket: PathBuf) -> Result<Self, Error> {
        let path = socket.clone();
        let channel = Endpoint::from_static("http://cri.invalid")
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }))
            .await
            .map_err(|source| Error::Connect {
                endpoint: socket,
                source,
            })?;
        Ok(Self {
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        })
    }

    /// The runtime's name and version.
    pub async fn version(&self) -> Result<cri::VersionResponse, Error> {
        let reply = self
            .runtime
            .clone()
            .version(cri::VersionRequest {
                version: "v1".into(),
            })
            .await
            .map_err(call("Version"))?;
        Ok(reply.into_inner())
    }

    /// The runtime's readiness: `None` when RuntimeReady and NetworkReady are both true, else
    /// a message as upstream's kubelet words it.
    pub async fn readiness_problem(&self) -> Option<String> {
        let reply = match self
            .runtime
            .clone()
            .status(cri::StatusRequest { verbose: false })
            .await
        {
            Ok(r) => r.into_inner(),
            Err(e) => return Some(format!("container runtime is down: {}", e.message())),
        };
        let conditions = reply.status.map(|s| s.conditions).unwrap_or_default();
        for (kind, what) in [
            ("RuntimeReady", "container runtime not ready"),
            ("NetworkReady", "container runtime network not ready"),
        ] {
            match conditions.iter().find(|c| c.r#type == kind) {
                Some(c) if c.status => {}
                Some(c) => {
                    return Some(format!(
                        "{what}: {kind}=false reason:{} message:{}",
                        c.reason, c.message
                    ));
                }
                None => return Some(format!("{what}: {kind} is not reported")),
            }
        }
        None
    }

    /// Runs `cmd` in a container and waits (up to `timeout` seconds); returns the exit code
    /// and the combined output.
    pub async fn exec_sync(
        &self,
        container_id: &str,
        cmd: Vec<String>,
        timeout: i64,
    ) -> Result<(i32, Vec<u8>), Error> {
        let reply = self
            .runtime
            .clone()
            .exec_sync(cri::ExecSyncRequest {
                container_id: container_id.into(),
                cmd,
                timeout,
            })
            .await
            .map_err(call("ExecSync"))?
            .into_inner();
        let mut output = reply.stdout;
        output.extend(reply.stderr);
        Ok((reply.exit_code, output))
    }

    /// Starts a pod sandbox; returns its id.
    pub async fn run_pod_sandbox(&self, config: cri::PodSandboxConfig) -> Result<String, Error> {
        let reply = self
            .runtime
            .clone()
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            })
            .await
            .map_err(call("RunPodSandbox"))?;
        Ok(reply.into_inner().pod_sandbox_id)
    }

    /// Stops a sandbox (its containers are killed, its network torn down).
    pub async fn stop_pod_sandbox(&self, id: &str) -> Result<(), Error> {
        self.runtime
            .clone()
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: id.into(),
            })
            .await
            .map_err(call("StopPodSandbox"))?;
        Ok(())
    }

    /// Removes a stopped sandbox and its containers.
    pub async fn remove_pod_sandbox(&self, id: &str) -> Result<(), Error> {
        self.runtime
            .clone()
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: id.into(),
            })
            .await
            .map_err(call("RemovePodSandbox"))?;
        Ok(())
    }

    /// A sandbox's status.
    pub async fn pod_sandbox_status(&self, id: &str) -> Result<cri::PodSandboxStatus, Error> {
        let reply = self
            .runtime
            .clone()
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: id.into(),
                verbose: false,
            })
            .await
            .map_err(call("PodSandboxStatus"))?;
        reply.into_inner().status.ok_or(Error::Incomplete {
            call: "PodSandboxStatus",
            field: "status",
        })
    }

    /// Sandboxes whose labels include all of `labels`.
    pub async fn list_pod_sandboxes(
        &self,
        labels: HashMap<String, String>,
    ) -> Result<Vec<cri::PodSandbox>, Error> {
        let reply = self
            .runtime
            .clone()
            .list_pod_sandbox(cri::ListPodSandboxRequest {
                filter: Some(cri::PodSandboxFilter {
                    label_selector: labels,
                    ..Default::default()
                }),
            })
            .await
            .map_err(call("ListPodSandbox"))?;
        Ok(reply.into_inner().items)
    }

    /// Creates a container in a sandbox; returns its id.
    pub async fn create_container(
        &self,
        sandbox_id: &str,
        config: cri::ContainerConfig,
        sandbox_config: cri::PodSandboxConfig,
    ) -> Result<String, Error> {
        let reply = self
            .runtime
            .clone()
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: sandbox_id.into(),
                config: Some(config),
                sandbox_config: Some(sandbox_config),
            })
            .await
            .map_err(call("CreateContainer"))?;
        Ok(reply.into_inner().container_id)
    }

    /// Starts a created container.
    pub async fn start_container(&self, id: &str) -> Result<(), Error> {
        self.runtime
            .clone()
            .start_container(cri::StartContainerRequest {
                container_id: id.into(),
            })
            .await
            .map_err(call("StartContainer"))?;
        Ok(())
    }

    /// Stops a container: SIGTERM (or the image's stop signal), SIGKILL after `timeout` seconds.
    pub async fn stop_container(&self, id: &str, timeout: i64) -> Result<(), Error> {
        self.runtime
            .clone()
            .stop_container(cri::StopContainerRequest {
                container_id: id.into(),
                timeout,
            })
            .await
            .map_err(call("StopContainer"))?;
        Ok(())
    }

    /// Removes a container.
    pub async fn remove_container(&self, id: &str) -> Result<(), Error> {
        self.runtime
            .clone()
            .remove_container(cri::RemoveContainerRequest {
                container_id: id.into(),
            })
            .await
            .map_err(call("RemoveContainer"))?;
        Ok(())
    }

    /// Containers whose labels include all of `labels`.
    pub async fn list_containers(
        &self,
        labels: HashMap<String, String>,
    ) -> Result<Vec<cri::Container>, Error> {
        let reply = self
            .runtime
            .clone()
            .list_containers(cri::ListContainersRequest {
                filter: Some(cri::ContainerFilter {
                    label_selector: labels,
                    ..Default::default()
                }),
            })
            .await
            .map_err(call("ListContainers"))?;
        Ok(reply.into_inner().containers)
    }

    /// A container's status (exit code, reason, times).
    pub async fn container_status(&self, id: &str) -> Result<cri::ContainerStatus, Error> {
        let reply = self
            .runtime
            .clone()
            .container_status(cri::ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            })
            .await
            .map_err(call("ContainerStatus"))?;
        reply.into_inner().status.ok_or(Error::Incomplete {
            call: "ContainerStatus",
            field: "status",
        })
    }

    /// The image's status, `None` when it is not present.
    pub async fn image_status(&self, image: &str) -> Result<Option<cri::Image>, Error> {
        let reply = self
            .images
            .clone()
            .image_status(cri::ImageStatusRequest {
                image: Some(image_spec(image)),
                verbose: false,
            })
            .await
            .map_err(call("ImageStatus"))?;
        Ok(reply.into_inner().image)
    }

    /// Pulls an image; returns its reference (digest).
    pub async fn pull_image(
        &self,
        image: &str,
        auth: Option<cri::AuthConfig>,
        sandbox: Option<cri::PodSandboxConfig>,
    ) -> Result<String, Error> {
        let reply = self
            .images
            .clone()
            .pull_image(cri::PullImageRequest {
                image: Some(image_spec(image)),
                auth,
                sandbox_config: sandbox,
            })
            .await
            .map_err(call("PullImage"))?;
        Ok(reply.into_inner().image_ref)
    }
}

fn image_spec(image: &str) -> cri::ImageSpec {
    cri::ImageSpec {
        image: image.into(),
        user_specified_image: image.into(),
        ..Default::default()
    }
}
