package vpc

import (
	"encoding/json"
	"slices"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/store"
)

// Interfaces prepared for the caller's transaction: committed, they are
// what AttachENI would have made, the group's set key names every address
// added; failed, nothing is stored and the addresses are handed out again.
func TestPrepareENIs(t *testing.T) {
	e := newEnv(t)
	v := e.createVpc("10.0.0.0/16")
	sn := e.createSubnet(v, "10.0.1.0/28", "us-east-1b") // .4 to .14
	web := e.createGroup(v, "web")
	req := func(id string) agentapi.ENIRequest {
		return agentapi.ENIRequest{Account: e.acct, Region: "us-east-1", AttachmentID: id, Node: "node-1", Subnets: []string{sn}, Groups: []string{web}}
	}
	commit := func(part store.TxnPart, extra ...clientv3.Cmp) bool {
		t.Helper()
		resp, err := testStore.C.Txn(bg).If(append(part.Cmps, extra...)...).Then(part.Ops...).Commit()
		if err != nil {
			t.Fatal(err)
		}
		part.Done(resp.Succeeded)
		return resp.Succeeded
	}

	// A transaction that fails stores nothing, and its addresses are free.
	_, errs, part := e.s.PrepareENIs(bg, []agentapi.ENIRequest{req("lost-1"), req("lost-2")})
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if commit(part, clientv3.Compare(clientv3.Version(store.Key("no-such-key")), ">", 0)) {
		t.Fatal("the failing condition passed")
	}
	if got, err := testStore.C.Get(bg, setKey(newScope(e.acct, "us-east-1").setName(web))); err != nil || len(got.Kvs) != 0 {
		t.Fatalf("a failed transaction wrote the set key: %v %v", got, err)
	}

	enis, errs, part := e.s.PrepareENIs(bg, []agentapi.ENIRequest{req("att-1"), req("att-2"), {Account: e.acct, Region: "us-east-1"}})
	if errs[0] != nil || errs[1] != nil || errs[2] == nil {
		t.Fatalf("errors %v, want only the third (no attachment, node or subnets)", errs)
	}
	if !commit(part) {
		t.Fatal("the prepared transaction failed")
	}
	if enis[0].PrivateIP != "10.0.1.4" || enis[1].PrivateIP != "10.0.1.5" || enis[0].ID == enis[1].ID {
		t.Fatalf("enis %+v %+v, want .4 and .5 (a failed transaction took none)", enis[0], enis[1])
	}
	// Stored as AttachENI stores them: attaching again returns them.
	for _, eni := range enis[:2] {
		if again := e.mustAttach(eni.AttachmentID, []string{sn}, []string{web}, false); again.ID != eni.ID || again.PrivateIP != eni.PrivateIP {
			t.Errorf("attach of prepared %s: %+v", eni.AttachmentID, again)
		}
		if got, err := testStore.C.Get(bg, fwKey("node-1", eni.ID)); err != nil || len(got.Kvs) != 1 {
			t.Errorf("firewall of %s: %v %v", eni.ID, got, err)
		}
	}
	got, err := testStore.C.Get(bg, setKey(newScope(e.acct, "us-east-1").setName(web)))
	if err != nil || len(got.Kvs) != 1 {
		t.Fatalf("set key: %v %v", got, err)
	}
	var change agentapi.AddressSetChange
	if err := json.Unmarshal(got.Kvs[0].Value, &change); err != nil {
		t.Fatal(err)
	}
	if addrs, add, ok := change.Members(); !ok || !add || !slices.Equal(addrs, []string{"10.0.1.4", "10.0.1.5"}) {
		t.Errorf("set change %+v, want both addresses added", change)
	}
	sets, err := e.s.AddressSets(bg, []string{newScope(e.acct, "us-east-1").setName(web)}, got.Header.Revision, 0)
	if err != nil || len(sets) != 1 || !slices.Equal(sets[0].Addresses, []string{"10.0.1.4", "10.0.1.5"}) {
		t.Errorf("set %+v %v", sets, err)
	}
	// A next one takes the next address.
	if next := e.mustAttach("att-3", []string{sn}, []string{web}, false); next.PrivateIP != "10.0.1.6" {
		t.Errorf("next attach got %s, want 10.0.1.6", next.PrivateIP)
	}
}
