//! Cluster DNS: `<svc>.<ns>.svc.cluster.local` records from Services and EndpointSlices.
//!
//! **Architecture Invariant:** talks only to the API server.
