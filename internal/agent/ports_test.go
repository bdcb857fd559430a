package agent

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/agentapi"
)

// The allocation of bridge addresses and host ports, from the records.

func TestPickPorts(t *testing.T) {
	h := NewHostSandboxesWith(t.TempDir(), nil, HostNetworkConfig{HostAddress: netip.MustParseAddr("127.0.0.9"),
		DynamicPortFirst: 50000, DynamicPortLast: 50003})
	other := []sandboxRecord{{TaskID: "other", NetworkMode: agentapi.NetworkModeBridge,
		Bindings: []agentapi.NetworkBinding{{HostPort: 50001}, {HostPort: 8080}}}}
	pm := func(container, host int) agentapi.PortMapping {
		return agentapi.PortMapping{ContainerPort: container, HostPort: host, Protocol: "tcp", ContainerName: "c"}
	}
	tests := []struct {
		name    string
		ports   []agentapi.PortMapping
		avoid   map[int]bool
		want    []int  // host ports; nil: any distinct dynamic ones
		wantErr string // substring
	}{
		{name: "fixed", ports: []agentapi.PortMapping{pm(80, 9000)}, want: []int{9000}},
		{name: "fixed taken by another task", ports: []agentapi.PortMapping{pm(80, 8080)}, wantErr: "taken"},
		{name: "dynamic skip the other task's and the fixed", ports: []agentapi.PortMapping{pm(80, 0), pm(81, 50000), pm(82, 0)}},
		{name: "dynamic avoid", ports: []agentapi.PortMapping{pm(80, 0)}, avoid: map[int]bool{50000: true, 50002: true}, want: []int{50003}},
		{name: "range exhausted", ports: []agentapi.PortMapping{pm(80, 0), pm(81, 0), pm(82, 0), pm(83, 0)}, wantErr: "no free host port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := agentapi.TaskSpec{TaskID: "t", NetworkMode: agentapi.NetworkModeBridge, PortMappings: tc.ports}
			got, err := h.pickPorts(spec, other, tc.avoid)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			seen := map[int]bool{}
			for i, b := range got {
				if b.BindIP != "127.0.0.9" || b.ContainerPort != tc.ports[i].ContainerPort || b.Protocol != "tcp" || b.ContainerName != "c" {
					t.Errorf("binding %+v", b)
				}
				if seen[b.HostPort] || b.HostPort == 50001 || b.HostPort == 8080 {
					t.Errorf("host port %d given twice or taken", b.HostPort)
				}
				seen[b.HostPort] = true
				if tc.ports[i].HostPort == 0 && (b.HostPort < 50000 || b.HostPort > 50003) {
					t.Errorf("dynamic port %d out of range", b.HostPort)
				}
				if tc.want != nil && b.HostPort != tc.want[i] {
					t.Errorf("host port %d, want %d", b.HostPort, tc.want[i])
				}
			}
		})
	}
}

func TestFreeAddress(t *testing.T) {
	h := NewHostSandboxesWith(t.TempDir(), nil, HostNetworkConfig{BridgeSubnet: netip.MustParsePrefix("10.9.0.0/29")})
	var recs []sandboxRecord
	var got []string
	for {
		a, err := h.freeAddress(recs)
		if err != nil {
			break
		}
		got = append(got, a.String())
		recs = append(recs, sandboxRecord{TaskID: a.String(), Bridge: &bridgeRecord{Network: h.net.BridgeNetwork, Address: a.String()}})
	}
	// .0 is the network, .1 the gateway, .7 the broadcast address.
	if want := "10.9.0.2 10.9.0.3 10.9.0.4 10.9.0.5 10.9.0.6"; strings.Join(got, " ") != want {
		t.Errorf("addresses %v, want %s", got, want)
	}
	// A freed address is given again; another network's records do not count.
	recs[1].Bridge.Network = "bridge-other"
	if a, err := h.freeAddress(recs); err != nil || a.String() != "10.9.0.3" {
		t.Errorf("after a release: %v, %v", a, err)
	}
}
