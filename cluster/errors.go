package cluster

import "errors"

// ErrNotCommitted means a change was not acknowledged by etcd within
// Config.WriteTimeout: typically the etcd cluster has lost its quorum, or
// this node cannot reach it. The change may still commit later (etcd does
// not say, and nobody can); if it does, every node applies it, but the
// caller received no outputs for it. Probes and queries keep being answered
// from the last applied state.
var ErrNotCommitted = errors.New("cluster: change not committed")

// ErrExpired means this node's lease expired (it was cut off from etcd, or
// paused, for longer than the lease's TTL): the cluster has closed its
// sessions, and every change it tries to append is refused until the host
// calls Rejoin.
var ErrExpired = errors.New("cluster: node lease expired; changes refused until Rejoin")

// ErrStopped means the node was stopped.
var ErrStopped = errors.New("cluster: node stopped")

// ErrConfig means Start was given an unusable Config.
var ErrConfig = errors.New("cluster: bad config")

// ErrCorrupt means a log entry or a snapshot failed its checks.
var ErrCorrupt = errors.New("cluster: corrupt log entry or snapshot")
