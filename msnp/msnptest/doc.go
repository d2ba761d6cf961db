// Package msnptest runs an in-process MSN server for tests, in the manner of
// net/http/httptest: a notification server, switchboards and the HTTP login
// endpoints on 127.0.0.1, behaving as the revival server's transcripts show,
// with hooks for tests to inject faults.
package msnptest
