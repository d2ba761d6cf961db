// Package store is the bridge's database: the only package that speaks SQL.
// It owns the schema, its migrations and a typed API for users, MSN logins,
// contacts, ghosts, portals, message mappings and small key-value state.
package store
