// Package upgrades holds the store's schema as versioned SQL upgrade files
// for go.mau.fi/util/dbutil. Each file starts with a "-- vN -> vM: why"
// header; dialect differences are marked with "-- only: sqlite|postgres".
// Add a new file for every schema change; never edit a released one.
package upgrades

import (
	"embed"

	"go.mau.fi/util/dbutil"
)

// Files are the upgrade files themselves.
//
//go:embed *.sql
var Files embed.FS

// Table is the store's upgrade table, in version order.
var Table dbutil.UpgradeTable

func init() {
	Table = dbutil.BuildUpgradeTable().WithFS(Files).Finish()
}
