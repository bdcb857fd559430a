package ecs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// How hosts authenticate on the agent protocol:
//
//   - berth's own capacity presents the platform's join token and may act
//     for any node;
//   - a user's host joins with a request signed by that user's credentials
//     (agentJoin) and gets a node token "node.<node id>.<secret>", which
//     authenticates it as that one node only. The control plane keeps the
//     secret's SHA-256 in nodeowners/<node>; deregistering the instance
//     deletes it, revoking the token.

type callerKey struct{}

// agentCaller is the authenticated host of an agent call.
type agentCaller struct {
	platform bool
	node     string    // a node token's node
	owner    nodeOwner // a node token's owner
}

// may reports whether the caller may act as node.
func (c agentCaller) may(node string) bool { return c.platform || (node != "" && c.node == node) }

func callerOf(ctx context.Context) agentCaller {
	c, _ := ctx.Value(callerKey{}).(agentCaller)
	return c
}

// mayAct answers 403 and returns false when the caller may not act as node.
func mayAct(w http.ResponseWriter, r *http.Request, node string) bool {
	if callerOf(r.Context()).may(node) {
		return true
	}
	agentError(w, http.StatusForbidden, "this host may not act as node "+node)
	return false
}

// authenticateAgent checks an agent call's bearer token.
func (s *Service) authenticateAgent(ctx context.Context, token string) (agentCaller, bool) {
	if s.cfg.AgentTokenValid != nil && s.cfg.AgentTokenValid(ctx, token) {
		return agentCaller{platform: true}, true
	}
	rest, ok := strings.CutPrefix(token, "node.")
	if !ok {
		return agentCaller{}, false
	}
	node, secret, ok := strings.Cut(rest, ".")
	if !ok || node == "" || secret == "" {
		return agentCaller{}, false
	}
	var owner nodeOwner
	if _, err := s.st.Get(ctx, store.Key("nodeowners", node), &owner); err != nil {
		return agentCaller{}, false
	}
	if subtle.ConstantTimeCompare([]byte(hashToken(secret)), []byte(owner.TokenHash)) != 1 {
		return agentCaller{}, false
	}
	return agentCaller{node: node, owner: owner}, true
}

// AgentCaller authenticates a bearer token of the agent protocol for other
// services' agent endpoints (logs): it returns the node the token may act
// for ("" for the platform's token, which may act for any) and whether the
// token is valid at all.
func (s *Service) AgentCaller(ctx context.Context, token string) (node string, ok bool) {
	c, ok := s.authenticateAgent(ctx, token)
	return c.node, ok
}

func hashToken(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// agentJoin registers a host as a container instance of the signing
// user's cluster and hands it a fresh node token (a repeated join, after an
// agent restart, replaces the token).
func (s *Service) agentJoin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		agentError(w, http.StatusBadRequest, "read join request: "+err.Error())
		return
	}
	if s.cfg.VerifySignature == nil {
		agentError(w, http.StatusNotFound, "this control plane takes no container instances")
		return
	}
	id, err := s.cfg.VerifySignature(ctx, r, body)
	if err != nil {
		var perr *protocol.Error
		if errors.As(err, &perr) {
			agentError(w, http.StatusForbidden, perr.Code+": "+perr.Message)
			return
		}
		agentError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	region := id.Region
	sc := scope{account: id.AccountID, region: region}
	var req agentapi.JoinRequest
	if err := json.Unmarshal(body, &req); err != nil {
		agentError(w, http.StatusBadRequest, "a join request is JSON: "+err.Error())
		return
	}
	cluster, err := s.getCluster(ctx, sc, req.Cluster)
	if err != nil {
		agentError(w, http.StatusNotFound, "cluster "+clusterName(req.Cluster)+" not found in account "+sc.account+", region "+sc.region+": create it first")
		return
	}
	az := req.AvailabilityZone
	if az == "" {
		az = sc.region + "a"
	}
	secret := randomSecret()
	rec, err := s.registerInstance(ctx, sc, registration{
		Cluster: cluster, InstanceArn: req.ContainerInstanceArn, NodeID: req.NodeID, AZ: az,
		InstanceType: req.InstanceType, Architecture: req.Architecture, CPU: req.CPU, Memory: req.MemoryMiB,
		ReservedPorts: defaultReservedPorts, Attributes: req.Attributes, AgentVersion: req.AgentVersion,
		Provider: req.CapacityProvider, HostAddress: req.HostAddress,
	}, hashToken(secret))
	if err != nil {
		var perr *protocol.Error
		if errors.As(err, &perr) {
			agentError(w, http.StatusBadRequest, perr.Message)
			return
		}
		agentError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	s.log.Info("container instance joined", "instance", rec.Instance.ContainerInstanceArn, "node", rec.NodeID, "az", az)
	agentReply(w, agentapi.JoinResponse{
		ContainerInstanceArn: rec.Instance.ContainerInstanceArn, ClusterArn: cluster.ClusterArn,
		Token: "node." + rec.NodeID + "." + secret,
	})
}

// defaultReservedPorts are the host ports ECS reserves on a container
// instance (SSH, docker, the ECS agent's).
var defaultReservedPorts = []int{22, 2375, 2376, 51678, 51679}

func randomSecret() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
