//go:build !unix

package datadir

import "os"

// lock does nothing where flock(2) is missing: ohtkhub serves from Linux.
func lock(*os.File, string) error { return nil }
