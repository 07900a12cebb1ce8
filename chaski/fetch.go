package chaski

type fetchState struct{}

func (f *fetchState) init() {}

func (n *Node) attachStore() {}
func (n *Node) closeHooks()  {}

func (n *Node) handleStoreRequest(e *edge, body []byte) error  { return nil }
func (n *Node) handleStoreResponse(e *edge, body []byte) error { return nil }
