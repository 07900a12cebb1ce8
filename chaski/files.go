package chaski

import "github.com/chaski-dev/chaski/chaski/wire"

// fileState tracks file transfers in both directions.
type fileState struct{}

func (f *fileState) init()                     {}
func (f *fileState) edgeLost(n *Node, e *edge) {}

func (n *Node) acceptsFiles() bool { return n.cfg.AcceptFiles && n.cfg.DownloadDir != "" }

func (n *Node) handleFileFrame(e *edge, f wire.Frame) error { return nil }
