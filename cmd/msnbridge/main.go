// Command msnbridge runs the MSN bridge: a Matrix application service and an
// XMPP component in one process. main only hands the process to realMain
// (cli.go), which tests call directly.
package main

import "os"

// version is set at build time: go build -ldflags "-X main.version=1.2.3".
var version = "dev"

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}
