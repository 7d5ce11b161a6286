//! End to end on a real node: README's and docs/'s commands, run as written, against pods that a real
//! kubelet starts from the image built in the same run (`make e2e`: `make cluster-up`, `make
//! image-load`, then this binary with the node's env). PostgreSQL and Redis run on the node's
//! network (inside its namespace) and pods reach them like a managed database, through
//! selector-less Services with Endpoints at the node's address. Each test has its own
//! namespace, dumped (objects, events, descriptions, logs) when it fails and deleted after unless
//! `DBINIT_TEST_KEEP=1`. Without a reachable cluster every test fails with the reason.
//!
//! The node has no cluster DNS; the harness answers the test namespace's Service names on the
//! pods' resolver address (tests/harness/node/dns.py), as cluster DNS would, so README's
//! `postgres`/`redis` resolve. Tests take turns (one node, one namespace's names at a time).
//!
//! Any other cluster works the same given `KUBECONFIG`, `DBINIT_NODE_IP` (an address of this
//! machine the pods can reach, e.g. kind's docker network gateway; PostgreSQL and Redis then
//! listen there), the image loaded onto its nodes as `dbinit:dev`, and for the fault tests
//! `DBINIT_NODE_EXEC` (e.g. `docker exec dbinit-control-plane`); see `dbinit_tests::node`.
//! Pods must run the image of `DBINIT_IMAGE_ARCHIVE` (default target/image/dbinit.oci.tar).
//!
//! The multi-node tier (nodes.rs, rollout.rs, restart.rs: issue 23's experiments 1, 2, 3 and
//! 6) runs when the cluster has a second node (`make cluster-up NODES=2`, `make e2e NODES=2`);
//! on one node each of its tests passes after printing `SKIPPED <test>: needs two nodes`.
//! rollback.rs and contract.rs (experiments 4 and 5, and 4 with a compatibility floor) run on
//! any cluster.
//! Figures go to stdout (`--nocapture`) and target/e2e-figures.txt.

#[path = "e2e/chart.rs"]
mod chart;
#[path = "e2e/common.rs"]
mod common;
#[path = "e2e/contract.rs"]
mod contract;
#[path = "e2e/faults.rs"]
mod faults;
#[path = "e2e/hook.rs"]
mod hook;
#[path = "e2e/image.rs"]
mod image;
#[path = "e2e/lease.rs"]
mod lease;
#[path = "e2e/manifests.rs"]
mod manifests;
#[path = "e2e/newcomer.rs"]
mod newcomer;
#[path = "e2e/nodes.rs"]
mod nodes;
#[path = "e2e/pods.rs"]
mod pods;
#[path = "e2e/restart.rs"]
mod restart;
#[path = "e2e/rollback.rs"]
mod rollback;
#[path = "e2e/rollout.rs"]
mod rollout;
#[path = "e2e/tool.rs"]
mod tool;
#[path = "e2e/watch.rs"]
mod watch;
