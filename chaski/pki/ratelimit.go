package pki

import (
	"net"
	"sync"
	"time"
)

// Rate limits of the signing service (token buckets).
const (
	// PerIPBurst requests may arrive at once from one address (IPv4) or one
	// /64 (IPv6); the bucket refills at PerIPRate requests per second.
	PerIPBurst = 5
	PerIPRate  = 1.0
	// GlobalBurst and GlobalRate bound all requests together.
	GlobalBurst = 100
	GlobalRate  = 20.0

	// maxTrackedIPs bounds the per-address table. Idle (full) buckets are
	// dropped when it fills; if it is still full the request is refused.
	maxTrackedIPs = 4096
)

type bucket struct {
	tokens float64
	last   time.Time
}

// refill adds the tokens earned since the last update. A clock that goes
// backwards earns nothing.
func (b *bucket) refill(now time.Time, rate, burst float64) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens += d.Seconds() * rate
		if b.tokens > burst {
			b.tokens = burst
		}
		b.last = now
	}
}

type limiter struct {
	mu     sync.Mutex
	global bucket
	perIP  map[string]*bucket
}

func newLimiter(now time.Time) *limiter {
	return &limiter{
		global: bucket{tokens: GlobalBurst, last: now},
		perIP:  make(map[string]*bucket),
	}
}

// allow takes one token from the address's bucket and one from the global
// bucket, or none if either is empty.
func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.global.refill(now, GlobalRate, GlobalBurst)
	b, ok := l.perIP[key]
	if ok {
		b.refill(now, PerIPRate, PerIPBurst)
	} else {
		if len(l.perIP) >= maxTrackedIPs {
			l.sweep(now)
			if len(l.perIP) >= maxTrackedIPs {
				return false
			}
		}
		b = &bucket{tokens: PerIPBurst, last: now}
	}
	if b.tokens < 1 || l.global.tokens < 1 {
		if !ok {
			l.perIP[key] = b
		}
		return false
	}
	b.tokens--
	l.global.tokens--
	l.perIP[key] = b
	return true
}

// sweep forgets buckets that have refilled completely: forgetting them
// changes nothing, since a new bucket starts full.
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.perIP {
		b.refill(now, PerIPRate, PerIPBurst)
		if b.tokens >= PerIPBurst {
			delete(l.perIP, k)
		}
	}
}

// limiterKey maps a remote address to its rate limit bucket: the IPv4
// address, or the /64 prefix of an IPv6 address (one host usually owns a
// whole /64).
func limiterKey(addr net.Addr) string {
	var ip net.IP
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.IP
	default:
		host, _, err := net.SplitHostPort(addr.String())
		if err != nil {
			return addr.String()
		}
		ip = net.ParseIP(host)
		if ip == nil {
			return host
		}
	}
	if ip4 := ip.To4(); ip4 != nil {
		return ip4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
