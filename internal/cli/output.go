package cli

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/natsbridge"
)

// obj is a JSON object whose fields keep their order ("event" first).
type obj []field

type field struct {
	k string
	v any
}

// add appends a field.
func (o obj) add(k string, v any) obj { return append(o, field{k, v}) }

// MarshalJSON renders the fields in order.
func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(f.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// event starts a JSON event object.
func event(name string) obj { return obj{{"event", name}} }

// withData adds a payload: a string when it is valid UTF-8, else base64
// with "encoding":"base64" beside it.
func (o obj) withData(key string, data []byte) obj {
	if utf8.Valid(data) {
		return o.add(key, string(data))
	}
	return o.add(key, base64.StdEncoding.EncodeToString(data)).add("encoding", "base64")
}

// printer writes whole lines to a stream from any goroutine. Lines are
// buffered; Flush (or a line written while nothing else is pending) pushes
// them out.
type printer struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func newPrinter(w io.Writer) *printer { return &printer{w: bufio.NewWriterSize(w, 64<<10)} }

// json writes one object as a line and flushes.
func (p *printer) json(o obj) {
	b, err := json.Marshal(o)
	if err != nil {
		b, _ = json.Marshal(event("error").add("error", err.Error()))
	}
	p.mu.Lock()
	p.w.Write(b)
	p.w.WriteByte('\n')
	p.w.Flush()
	p.mu.Unlock()
}

// linef writes one formatted line and flushes.
func (p *printer) linef(format string, args ...any) {
	p.mu.Lock()
	fmt.Fprintf(p.w, format, args...)
	p.w.WriteByte('\n')
	p.w.Flush()
	p.mu.Unlock()
}

// raw writes bytes without flushing (for bulk output); call flush after.
func (p *printer) raw(b ...[]byte) {
	p.mu.Lock()
	for _, x := range b {
		p.w.Write(x)
	}
	p.mu.Unlock()
}

func (p *printer) flush() {
	p.mu.Lock()
	p.w.Flush()
	p.mu.Unlock()
}

// messageJSON renders a received message.
func messageJSON(m *chaski.Message) obj {
	o := event("message").add("topic", m.Topic).add("from", m.From).withData("data", m.Data)
	o = o.add("size", len(m.Data)).add("from_id", m.FromID).add("seq", m.Seq)
	if !m.Time.IsZero() {
		o = o.add("time", m.Time.UTC().Format(time.RFC3339Nano))
	}
	o = o.add("hops", m.Hops).add("via", m.Via)
	if m.Signed {
		o = o.add("signed", true)
	}
	return o
}

// messageText renders a received message for people.
func messageText(m *chaski.Message) string {
	data := string(m.Data)
	if !utf8.Valid(m.Data) {
		data = fmt.Sprintf("<%d bytes, base64 %s>", len(m.Data), base64.StdEncoding.EncodeToString(m.Data))
	}
	return fmt.Sprintf("%s [%s] %s: %s", m.Time.Local().Format("15:04:05"), m.Topic, m.From, data)
}

// eventJSON renders a node event, or returns nil for events that have no
// machine-readable form (latency samples, logs, ...).
func eventJSON(ev chaski.Event) obj {
	switch e := ev.(type) {
	case *natsbridge.StateEvent:
		return natsEventJSON(e)
	case *chaski.EdgeUpEvent:
		return event("edge_up").add("peer", e.Edge.Name).add("address", e.Edge.Address).
			add("peer_id", e.Edge.PeerID).add("remote", e.Edge.Remote).add("dialed", e.Edge.Dialed).
			add("subscriptions", nonNil(e.Edge.Subscriptions)).add("root", e.Edge.Root).
			add("accepts_files", e.Edge.AcceptsFiles).add("tls", e.Edge.TLS)
	case *chaski.EdgeDownEvent:
		return event("edge_down").add("peer", e.Edge.Name).add("address", e.Edge.Address).
			add("reason", e.Reason).add("peer_id", e.Edge.PeerID).add("reconnect", e.Reconnect)
	case *chaski.EdgeStateEvent:
		o := event("edge_state").add("peer", e.Name).add("address", e.Address).
			add("peer_id", e.PeerID).add("state", e.State.String()).add("attempt", e.Attempt)
		if e.Err != "" {
			o = o.add("error", e.Err)
		}
		return o
	case *chaski.PairedEvent:
		return event("paired").add("topic", e.Topic).add("peer", e.Peer).add("first", e.First)
	case *chaski.DiscoveryEvent:
		o := event("discovery").add("topic", e.Topic).add("phase", e.Phase)
		if e.Peer != "" {
			o = o.add("peer", e.Peer)
		}
		if e.Detail != "" {
			o = o.add("detail", e.Detail)
		}
		return o
	case *chaski.NearbyEvent:
		switch e.Change {
		case "found":
			return append(event("nearby"), nearbyJSON(e.Node)...)
		case "lost":
			return event("nearby_lost").add("name", e.Node.Name).add("id", e.Node.ID).add("address", e.Node.Address)
		case "refused":
			return event("nearby_refused").add("name", e.Node.Name).add("id", e.Node.ID).
				add("address", e.Node.Address).add("reason", e.Node.Status)
		}
		return nil
	case *chaski.PeerSubscriptionEvent:
		return event("peer_subscriptions").add("peer", e.Name).add("peer_id", e.PeerID).
			add("subscriptions", nonNil(e.Subscriptions)).add("root", e.Root)
	}
	return nil
}

// eventText renders a node event for people, "" for events not shown.
func eventText(ev chaski.Event) string {
	switch e := ev.(type) {
	case *natsbridge.StateEvent:
		return natsEventText(e)
	case *chaski.EdgeUpEvent:
		dir := "incoming"
		if e.Edge.Dialed {
			dir = "outgoing"
		}
		subs := ""
		if e.Edge.Root {
			subs = ", root"
		} else if len(e.Edge.Subscriptions) > 0 {
			subs = ", subscribes to " + joinComma(e.Edge.Subscriptions)
		}
		return fmt.Sprintf("edge up: %s (%s, %s%s)", e.Edge.Name, e.Edge.Address, dir, subs)
	case *chaski.NearbyEvent:
		switch e.Change {
		case "found":
			topics := "no topics"
			if len(e.Node.Topics) > 0 {
				topics = joinComma(e.Node.Topics)
			}
			return fmt.Sprintf("nearby: %s at %s (%s, %s)", e.Node.Name, e.Node.Address, topics, e.Node.Via)
		case "lost":
			return fmt.Sprintf("nearby node left: %s (%s)", e.Node.Name, e.Node.Address)
		case "refused":
			return fmt.Sprintf("nearby node %s (%s) not connected: %s", e.Node.Name, e.Node.Address, e.Node.Status)
		}
		return ""
	case *chaski.EdgeDownEvent:
		s := fmt.Sprintf("edge down: %s (%s): %s", e.Edge.Name, e.Edge.Address, e.Reason)
		if e.Reconnect {
			s += "; reconnecting"
		}
		return s
	case *chaski.EdgeStateEvent:
		if e.State == chaski.StateClosed {
			s := fmt.Sprintf("gave up reconnecting to %s (%s) after %d attempts", e.Name, e.Address, e.Attempt)
			if e.Err != "" {
				s += ": " + e.Err
			}
			return s
		}
		return fmt.Sprintf("%s %s (%s), attempt %d", e.State, e.Name, e.Address, e.Attempt)
	case *chaski.PairedEvent:
		if e.First {
			return fmt.Sprintf("paired for %q: first node of the topic", e.Topic)
		}
		return fmt.Sprintf("paired for %q with %s", e.Topic, e.Peer)
	case *chaski.DiscoveryEvent:
		if e.Phase == "failed" {
			return fmt.Sprintf("discovery for %q failed: %s", e.Topic, e.Detail)
		}
	}
	return ""
}

func fileReceivedJSON(f chaski.FileReceived) obj {
	return event("file_received").add("topic", f.Topic).add("from", f.From).add("path", f.Path).
		add("size", f.Size).add("sha256", f.SHA256).add("hash", f.Hash).add("name", f.Name).add("from_id", f.FromID).
		add("transfer_id", f.TransferID)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func joinComma(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(x)
	}
	return b.String()
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
