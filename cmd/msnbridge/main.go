// Command msnbridge runs the MSN bridge: a Matrix application service and an
// XMPP component in one process.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "msnbridge: not yet wired")
	os.Exit(1)
}
