package main

import (
	"fmt"

	"github.com/tidemark/tidemark/etcdutil/embedetcd"
)

// startEtcd starts the playground's single-member embedded etcd in dir, serving clients at
// clientURL (its peer port is picked free, since nothing outside dials it). The returned
// function stops it and waits until it has stopped. etcd's own logging is silenced: start-up
// failures come back as errors, and what it logs at shutdown (closed listeners) would only
// clutter the status lines.
func startEtcd(dir, clientURL string) (func(), error) {
	srv, err := embedetcd.Start(embedetcd.Config{Dir: dir, Name: "playground", ClientURL: clientURL, LogLevel: "panic"})
	if err != nil {
		return nil, fmt.Errorf("cannot start the embedded etcd at %s: %w; choose another --etcd-client-url", clientURL, err)
	}
	return func() { _ = srv.Close() }, nil
}
