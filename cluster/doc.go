// Package cluster runs lastseen on several servers at once: each server
// runs a Node, and the nodes share one ordered log in etcd, so that every
// node holds the same presence state and can answer every probe and Last
// Activity query locally, whichever node holds the probed user's sessions.
//
// Every input that changes durable state (a presence broadcast, the end of
// a session, Up and Down, the probe limit) is appended to the log (one Put
// of one etcd key per batch, guarded on the writer's lease key) and
// applied by every node in etcd's revision order, through a local
// core.Sharded. Inputs of one user from two nodes do not commute, so none
// is applied before its place in the log is known: a call returns once its
// change is committed and applied on the calling node, with the outputs of
// applying it. Entries carry the writer's clock; a node applies each at
// the latest time applied so far, so time never goes back when clocks
// disagree.
//
// Each node holds an etcd lease and a member key attached to it. When the
// lease expires (the node died, or was cut off longer than Config.LeaseTTL)
// etcd deletes the key: that deletion is an event of the same log, which
// every node applies at the same position by closing that node's sessions
// (the restart rule of package core, for one node of many). From then on
// etcd refuses the node's batches, and its calls return ErrExpired until
// the host calls Rejoin. When etcd has no quorum, changes return
// ErrNotCommitted, and probes are answered from the last applied state.
//
// Nodes snapshot their state, tagged with the log revision, every
// Config.SnapshotEvery entries; the oldest node publishes its snapshot in
// etcd and compacts etcd's history behind the oldest revision a live node
// reported. A new node, or one whose position was compacted away, loads
// the published snapshot and replays the log after it.
//
// See README.md in this directory for how a host starts nodes, and the
// Cluster section of ARCHITECTURE.md for the design and its reasons.
package cluster
