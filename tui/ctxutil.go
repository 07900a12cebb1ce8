package tui

import (
	"context"
	"time"
)

func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

func withoutCancel(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }
