// Command etcd is upstream etcd's own entry point, built from its Go module
// at the version pinned in go.mod (etcd's root module cannot be go-installed).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
