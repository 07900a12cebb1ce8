package natsbridge

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chaski-dev/chaski/chaski"
	"github.com/chaski-dev/chaski/chaski/store"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// KV is a JetStream key-value bucket used as a second home for the store:
// puts write through to it (with their TTL) and fetches fall back to it.
type KV struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	bucket string
	nc     *nats.Conn // owned when opened by OpenKV
}

// kvMarkerTTL is how long the bucket keeps the marker of a key that
// expired; setting it is what lets the bucket take per-key TTLs.
const kvMarkerTTL = time.Minute

func bindKV(ctx context.Context, js jetstream.JetStream, bucket string) (*KV, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 1, LimitMarkerTTL: kvMarkerTTL})
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrNoResponders) ||
			errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, fmt.Errorf("%w: key-value bucket %s: JetStream is not enabled on the NATS server", ErrJetStream, bucket)
		}
		return nil, fmt.Errorf("%w: cannot open the key-value bucket %s: %v", ErrJetStream, bucket, err)
	}
	return &KV{js: js, kv: kv, bucket: bucket}, nil
}

// OpenKV connects to NATS and binds the bucket cfg.KV, for commands that do
// not run a bridge (`chaski store put`). Close it when done.
func OpenKV(ctx context.Context, cfg Config) (*KV, error) {
	if cfg.KV == "" {
		return nil, ErrNoKV
	}
	if len(cfg.URLs) == 0 {
		return nil, fmt.Errorf("%w: no URL given", ErrBadURL)
	}
	for _, u := range cfg.URLs {
		if err := checkURL(u); err != nil {
			return nil, err
		}
	}
	opts := []nats.Option{nats.Name("chaski store"), nats.Timeout(orDefault(cfg.ConnectTimeout, 5*time.Second))}
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), append(opts, cfg.Options...)...)
	if err != nil {
		return nil, connectErr(cfg, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w: %v", ErrJetStream, err)
	}
	kv, err := bindKV(ctx, js, cfg.KV)
	if err != nil {
		nc.Close()
		return nil, err
	}
	kv.nc = nc
	return kv, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Close closes the connection OpenKV made.
func (k *KV) Close() {
	if k.nc != nil {
		k.nc.Close()
	}
}

// Bucket returns the bucket's name.
func (k *KV) Bucket() string { return k.bucket }

// KVKey maps a store key to a bucket key: kept as is when the bucket
// accepts it (letters, digits, '-', '_', '/', '=', inner dots), else
// "b64." and its unpadded base64url form.
func KVKey(key string) string {
	ok := key != "" && !strings.HasPrefix(key, ".") && !strings.HasSuffix(key, ".") && !strings.HasPrefix(key, "b64.")
	for i := 0; ok && i < len(key); i++ {
		c := key[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '/' || c == '=' || (c == '.' && key[i-1] != '.')
	}
	if ok {
		return key
	}
	return "b64." + base64.RawURLEncoding.EncodeToString([]byte(key))
}

// Put writes key; ttl > 0 makes the bucket expire it.
func (k *KV) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	subj := "$KV." + k.bucket + "." + KVKey(key)
	var opts []jetstream.PublishOpt
	if ttl > 0 {
		if ttl < time.Second {
			ttl = time.Second // the server's resolution
		}
		opts = append(opts, jetstream.WithMsgTTL(ttl))
	}
	if _, err := k.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Data: value}, opts...); err != nil {
		return fmt.Errorf("natsbridge: cannot write %q to the key-value bucket %s: %w", key, k.bucket, err)
	}
	return nil
}

// Get reads key (chaski.ErrNotFound when the bucket does not have it).
func (k *KV) Get(ctx context.Context, key string) ([]byte, error) {
	e, err := k.kv.Get(ctx, KVKey(key))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, fmt.Errorf("%w: %q is not in the key-value bucket %s either", chaski.ErrNotFound, key, k.bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("natsbridge: cannot read %q from the key-value bucket %s: %w", key, k.bucket, err)
	}
	return e.Value(), nil
}

// KV returns the bridge's bucket, or nil.
func (b *Bridge) KV() *KV { return b.kv }

// StorePut stores the value in the node's store and, with a bucket, in the
// bucket too (with the same TTL; store.UseDefaultTTL means the store's
// default for both).
func (b *Bridge) StorePut(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := b.node.StorePut(key, value, ttl); err != nil {
		return err
	}
	if b.kv == nil {
		return nil
	}
	// The store resolved the TTL (its default, or never): the bucket gets
	// the remaining lifetime of the entry as stored.
	if st := b.node.Store(); st != nil {
		if e, err := st.Lookup(key); err == nil {
			ttl = 0
			if !e.Expires.IsZero() {
				ttl = max(time.Until(e.Expires), time.Second)
			}
		}
	}
	return b.kv.Put(ctx, key, value, ttl)
}

// Fetch is Node.Fetch that falls back to the bucket when neither the local
// store nor the mesh has the key; a value found there is stored locally
// with the store's default TTL.
func (b *Bridge) Fetch(ctx context.Context, key string) ([]byte, error) {
	v, err := b.node.Fetch(ctx, key)
	if err == nil || b.kv == nil || !errors.Is(err, chaski.ErrNotFound) {
		return v, err
	}
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	v, kerr := b.kv.Get(kctx, key)
	if kerr != nil {
		return nil, kerr
	}
	if st := b.node.Store(); st != nil {
		_ = st.Set(key, v, store.UseDefaultTTL)
	}
	return v, nil
}
