package main

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
)

// demoTopic is the topic the demo peers chat on.
const demoTopic = "demo"

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
// chat on the demo topic, get pinged by the keep-alive, and send main a
// small file. stop closes them.
func startDemo(ctx context.Context, main *chaski.Node, log *slog.Logger) (stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	var peers []*chaski.Node
	var wg, drains sync.WaitGroup
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
		if tmpDir != "" {
			os.RemoveAll(tmpDir)
		}
	}
	for _, name := range []string{"demo-ana", "demo-bo", "demo-cy"} {
		p, err := chaski.Start(chaski.Config{
			Name:          name,
			Listen:        "127.0.0.1:0",
			Subscriptions: []string{demoTopic},
			PingInterval:  time.Second,
			Logger:        log.With("demo", name),
		})
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
		sentFile := false
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(1500+mrand.IntN(2000)) * time.Millisecond):
			}
			p := peers[mrand.IntN(len(peers))]
			_ = p.Publish(ctx, demoTopic, []byte(demoLines[i%len(demoLines)]))
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
