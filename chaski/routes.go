package chaski

import (
	"fmt"
	"log/slog"

	"github.com/chaski-dev/chaski/chaski/wire"
)

// frameHandler handles one frame on the reader goroutine of the edge it
// arrived on. It must not block that reader on the network (queue work for
// another goroutine instead); an error closes the edge as a protocol error,
// except errStopReading, which ends the reader quietly.
type frameHandler func(n *Node, e *edge, f wire.Frame) error

// frameRoutes maps a frame kind (the first header byte) to its handler.
// Each feature registers its kinds from an init function in its own file
// (pubsub.go, ping.go, discovery.go, request.go, fetch.go, files.go, and
// edge.go for the connection's own hello and goodbye), so the edge only
// reads frames and hands them on. A nil entry is a kind this node does not
// know. Indexing a fixed array keeps the dispatch to one load and one
// indirect call on the message hot path.
var frameRoutes [256]frameHandler

// routeFrames registers h for kinds. It is called from init functions only,
// before any node exists; registering a kind twice is a programming error.
func routeFrames(h frameHandler, kinds ...wire.Kind) {
	for _, k := range kinds {
		if frameRoutes[k] != nil {
			panic(fmt.Sprintf("chaski: frame kind %v routed twice", k))
		}
		frameRoutes[k] = h
	}
}

// handleFrame dispatches one frame read by e's reader.
func (n *Node) handleFrame(e *edge, f wire.Frame) error {
	if h := frameRoutes[f.Kind]; h != nil {
		return h(n, e, f)
	}
	// Unknown kinds are counted and ignored: a newer peer may speak frames
	// we do not know yet.
	if n.unknown.Add(1)%1000 == 1 {
		n.logf(slog.LevelDebug, "ignoring unknown frame kind", "peer", e.name(), "kind", f.Kind.String())
	}
	return nil
}
