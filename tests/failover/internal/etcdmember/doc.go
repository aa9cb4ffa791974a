// Command etcdmember runs one member of a multi-member etcd cluster, built from the etcd server
// module this project depends on. The failover harness uses it when no `etcd` binary (Debian's
// etcd-server) is installed. It accepts the subset of etcd's own flags the harness passes, with
// the same names, so either binary takes the same command line.
package main
