package cli

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/store"
)

// The demo peers chat on demoTopic and publish readings on demoMetrics
// (some of them binary, to show the hex preview).
const (
	demoTopic   = "demo"
	demoMetrics = "metrics"
)

var demoLines = []string{
	"hello from the loopback!",
	"anyone seen the latency graph move?",
	"ping me, I'm right here",
	"sending you a file in a moment",
	"this network has no server, only peers",
	"chaski were the Inca relay runners",
	"the store pane shows our key-value entries",
	"try / to filter, ? for help",
}

// startDemo starts three in-process peers on loopback that connect to main,
// chat on two topics, ping main, send it a small file, and hold store keys
// that main can fetch (main gets one of its own too). stop closes them.
func startDemo(ctx context.Context, main *chaski.Node, log *slog.Logger) (stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	var peers []*chaski.Node
	var wg, drains sync.WaitGroup
	var storeClosers []func() error
	tmpDir, _ := os.MkdirTemp("", "chaski-demo-")
	stop = func() {
		cancel()
		wg.Wait()
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		for _, p := range peers {
			_ = p.Close(cctx)
		}
		drains.Wait()
		for _, c := range storeClosers {
			_ = c()
		}
		if tmpDir != "" {
			os.RemoveAll(tmpDir)
		}
	}
	for i, name := range []string{"demo-ana", "demo-bo", "demo-cy"} {
		cfg := chaski.Config{
			Name:          name,
			Listen:        "127.0.0.1:0",
			Subscriptions: []string{demoTopic, demoMetrics},
			PingInterval:  time.Second,
			Logger:        log.With("demo", name),
		}
		if tmpDir != "" {
			// Demo peers accept files, so a drop in the demo shows a
			// whole transfer (into the demo's temporary directory).
			cfg.DownloadDir = filepath.Join(tmpDir, name)
			cfg.AcceptFiles = os.MkdirAll(cfg.DownloadDir, 0o700) == nil
		}
		if i == 0 && tmpDir != "" {
			// demo-ana holds keys that main can fetch from the network.
			if st, err := store.Open(filepath.Join(tmpDir, "ana.db"), store.Options{}); err == nil {
				_ = st.Set("demo/motd", []byte("welcome to chaski — fetched from demo-ana over the network"), time.Hour)
				_ = st.Set("demo/peers", []byte("demo-ana demo-bo demo-cy"), 0)
				cfg.Store = st
				storeClosers = append(storeClosers, st.Close) // closed by stop, also on failure
			}
		}
		p, err := chaski.Start(cfg)
		if err != nil {
			stop()
			return nil, fmt.Errorf("cannot start the demo peers: %s", cleanErr(err))
		}
		peers = append(peers, p)
		drains.Add(1)
		go func() {
			defer drains.Done()
			for range p.Messages() {
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, p := range peers {
			if _, err := p.Connect(ctx, main.Addr()); err != nil && ctx.Err() == nil {
				log.Warn("demo peer cannot connect", "peer", p.Name(), "err", cleanErr(err))
			}
			if i > 0 {
				_, _ = p.Connect(ctx, peers[i-1].Addr())
			}
		}
		if main.Store() != nil {
			_ = main.StorePut("demo/welcome", []byte("keys live in "+main.Store().Path()+"; press f to fetch demo/motd from a peer"), 10*time.Minute)
		}
		sentFile := false
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(1500+mrand.IntN(2000)) * time.Millisecond):
			}
			p := peers[mrand.IntN(len(peers))]
			_ = p.Publish(ctx, demoTopic, []byte(demoLines[i%len(demoLines)]))
			reading := []byte(fmt.Sprintf("load=%.2f rtt_samples=%d", mrand.Float64()*2, i))
			if i%3 == 2 {
				reading = make([]byte, 24) // a binary reading
				_, _ = rand.Read(reading)
			}
			_ = p.Publish(ctx, demoMetrics, reading)
			if i%4 == 1 {
				_, _ = p.Ping(ctx, main.ID(), 32<<10) // a padded ping, as the P key does
			}
			if !sentFile && i == 2 && tmpDir != "" {
				sentFile = true
				path := filepath.Join(tmpDir, "chaski-demo.bin")
				data := make([]byte, 4<<20)
				_, _ = rand.Read(data)
				if os.WriteFile(path, data, 0o600) == nil {
					if _, err := p.SendFile(ctx, demoTopic, path, nil); err != nil && ctx.Err() == nil {
						log.Warn("demo file not sent", "err", cleanErr(err))
					}
				}
			}
		}
	}()
	return stop, nil
}
