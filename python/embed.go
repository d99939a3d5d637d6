// Package python holds the ohtk Python module that every spawned notebook server can import.
package python

import "embed"

// FS holds the ohtk package (ohtk/__init__.py).
//
//go:embed ohtk/*.py
var FS embed.FS
