module github.com/chaski-dev/chaski/bench

go 1.26.8

require github.com/nats-io/nats.go v1.56.0

require (
	github.com/klauspost/compress v1.20.4 // indirect
	github.com/nats-io/nkeys v0.4.17 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

// The reference programs share internal/bench/stats with 'chaski bench' (one
// percentile schema); the parent module is this repository's root.
require github.com/chaski-dev/chaski v0.0.0

replace github.com/chaski-dev/chaski => ../
