package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DurableIdle is how long the server keeps a node's durable consumer after
// the node was last seen; a node offline for longer starts afresh.
const DurableIdle = 72 * time.Hour

// setupStream binds (or creates) the stream, the node's durable consumer,
// and starts consuming. Publications then go through JetStream with
// acknowledgements, so a message lost with a server is sent again.
func (b *Bridge) setupStream(ctx context.Context) error {
	cfg := b.cfg
	all := cfg.Prefix + ".>"
	st, err := b.js.Stream(ctx, cfg.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		st, err = b.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:       cfg.Stream,
			Subjects:   []string{all},
			Storage:    jetstream.FileStorage,
			Duplicates: 2 * time.Minute,
		})
		if err != nil {
			return b.jsErr(err, "cannot create the JetStream stream "+cfg.Stream)
		}
	case err != nil:
		return b.jsErr(err, "cannot open the JetStream stream "+cfg.Stream)
	}
	if subs := st.CachedInfo().Config.Subjects; !covers(subs, all) {
		for _, subj := range b.topics {
			if !covers(subs, subj) {
				return fmt.Errorf("%w: the stream %s does not keep subject %s (its subjects: %s)",
					ErrJetStream, cfg.Stream, subj, strings.Join(subs, ", "))
			}
		}
	}
	filters := make([]string, 0, len(b.topics))
	bySubject := make(map[string]string, len(b.topics))
	for t, subj := range b.topics {
		filters = append(filters, subj)
		bySubject[subj] = t
	}
	cc := jetstream.ConsumerConfig{
		Durable:           cfg.Durable,
		AckPolicy:         jetstream.AckExplicitPolicy,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		MaxAckPending:     4096,
		AckWait:           30 * time.Second,
		InactiveThreshold: DurableIdle,
	}
	if len(filters) == 1 {
		cc.FilterSubject = filters[0]
	} else {
		cc.FilterSubjects = filters
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, cc)
	if err != nil {
		return b.jsErr(err, "cannot create the durable consumer "+cfg.Durable+" on stream "+cfg.Stream)
	}
	b.jsPub, err = jetstream.New(b.nc,
		jetstream.WithPublishAsyncMaxPending(maxAsyncPending),
		jetstream.WithPublishAsyncTimeout(asyncAckTimeout),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, _ *nats.Msg, _ *jetstream.PubAck) {
			b.unacked.Add(-1)
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			// Called with the publisher's lock held: hand the message to
			// the writer, never publish from here.
			select {
			case b.retry <- m:
			default:
				b.unacked.Add(-1)
				b.dropped.Add(1)
			}
		}))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrJetStream, err)
	}
	cctx, err := cons.Consume(func(m jetstream.Msg) {
		var seq uint64
		if md, err := m.Metadata(); err == nil {
			seq = md.Sequence.Stream
		}
		topic, ok := bySubject[m.Subject()]
		if ok {
			b.fromNATS(topic, &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}, seq)
		}
		_ = m.Ack()
	}, jetstream.PullMaxMessages(1024), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if errors.Is(err, jetstream.ErrNoHeartbeat) || errors.Is(err, nats.ErrConnectionClosed) {
			return
		}
		b.mu.Lock()
		b.lastErr = err.Error()
		b.mu.Unlock()
	}))
	if err != nil {
		return b.jsErr(err, "cannot consume from stream "+cfg.Stream)
	}
	b.cons = cctx
	return nil
}

func (b *Bridge) jsErr(err error, what string) error {
	if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) {
		return fmt.Errorf("%w: %s: JetStream is not enabled on the NATS server", ErrJetStream, what)
	}
	if e := b.explain(err, ""); errors.Is(e, ErrPermission) {
		return e
	}
	return fmt.Errorf("%w: %s: %v", ErrJetStream, what, err)
}

// covers reports whether one of the subject patterns matches subj.
func covers(patterns []string, subj string) bool {
	for _, p := range patterns {
		if matchSubject(p, subj) {
			return true
		}
	}
	return false
}

func matchSubject(pattern, subj string) bool {
	pt, st := strings.Split(pattern, "."), strings.Split(subj, ".")
	for i, p := range pt {
		if p == ">" {
			return len(st) > i
		}
		if i >= len(st) || (p != "*" && p != st[i]) {
			return false
		}
	}
	return len(pt) == len(st)
}
