package config

import _ "embed"

// Example is the example configuration: every key, commented, with its
// default. config.example.yaml at the repository root is a copy of it, and
// `msnbridge -e FILE` writes it.
//
//go:embed example.yaml
var Example []byte
