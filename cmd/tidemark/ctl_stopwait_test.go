package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/tidemark/tidemark/api"
	"github.com/tidemark/tidemark/etcdutil"
)

// `ctl changefeed pause` and `remove` return only once no node runs the changefeed: right
// after either returns, every node's status API lists it neither running nor stopping.
func TestPauseAndRemoveWaitForTheNodes(t *testing.T) {
	c := startAcceptCluster(t)
	c.ctl(exitOK, "changefeed", "create", "demo", "--tables", "1-6")
	c.settled(6)
	c.ctl(exitOK, "changefeed", "pause", "demo")
	if on := nodesListing(t, c, "demo"); len(on) != 0 {
		t.Fatalf("pause returned while %v still listed demo", on)
	}
	c.ctl(exitOK, "changefeed", "resume", "demo")
	c.settled(6)
	// resume promises nothing about when each node starts its manager (each learns of the
	// resume from its own etcd watch; CI saw one a moment behind), so wait for all three: this
	// proves the listing can see demo, and so that the empty listings above and below mean
	// something.
	c.waitFor("all three nodes listing demo after the resume", 10*time.Second, func() bool {
		return len(nodesListing(t, c, "demo")) == 3
	})
	c.ctl(exitOK, "changefeed", "remove", "demo")
	if on := nodesListing(t, c, "demo"); len(on) != 0 {
		t.Fatalf("remove returned while %v still listed demo", on)
	}
}

// nodesListing asks every registered node's status API whether it runs cf.
func nodesListing(t *testing.T, c *acceptCluster, cf string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nodes, err := etcdutil.ListNodes(ctx, c.cli, etcdutil.Keys{Cluster: "ctltest"})
	if err != nil || len(nodes) != 3 {
		t.Fatalf("registry: %v %+v", err, nodes)
	}
	var on []string
	for _, n := range nodes {
		resp, err := http.Get("http://" + n.StatusAddr + "/api/v1/changefeeds")
		if err != nil {
			t.Fatal(err)
		}
		var feeds []api.ChangefeedSummary
		err = json.NewDecoder(resp.Body).Decode(&feeds)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range feeds {
			if f.ID == cf {
				on = append(on, n.ID)
			}
		}
	}
	return on
}
