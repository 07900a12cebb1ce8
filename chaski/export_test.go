package chaski

// Hooks that only tests use: they reach into a node's internals to simulate
// what a real network or process would do.

// crashForTest simulates a process killed with SIGKILL: sockets vanish
// without goodbyes. The node is unusable afterwards except for Close.
func (n *Node) crashForTest() {
	n.closing.Store(true)
	n.ln.Close()
	n.udp.Close()
	for _, e := range n.liveEdges() {
		e.conn.Close()
	}
}

// markFirstForTest sets a topic paired as first of topic (the original's tests
// set paired_event directly).
func (n *Node) markFirstForTest(topic string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p := n.paired[topic]; p != nil {
		p.paired, p.first = true, true
	}
}

// setShortWrites makes e's direct writes put at most k bytes on the socket,
// so that tests exercise the carry of a partial write.
func (e *edge) setShortWrites(k int) {
	e.wmu.Lock()
	e.writeCap = k
	e.wmu.Unlock()
}

// useSendfileOnLoopback makes n's verified sends use sendfile(2) to peers
// on this machine too, as they do to other machines (sendfileSource), so
// that tests on loopback exercise that path.
func (n *Node) useSendfileOnLoopback() { n.sendfileSameHost = true }
